//! Batch assembly: gather u8 images by index, scale to [−1, 1], optional left-right flip —
//! shaders/data.wgsl.

use crate::backend::{Buf, Family, ImageSet};
use crate::gpu::{grid_1d, shaders, Access, GpuBackend, Kernel, WG_CONSTANT};

/// Pixel scaling (docs/spec.md): x·2/255 − 1.
pub fn scale_pixel(v: u8) -> f32 {
    v as f32 * (2.0 / 255.0) - 1.0
}

/// Checks that `pixels` holds exactly `count` images of c·h·w bytes (both backends' uploads).
pub fn check_pixel_count(
    pixels: &[u8],
    count: usize,
    chw: (usize, usize, usize),
) -> Result<(), crate::Error> {
    let (c, h, w) = chw;
    if pixels.len() != count * c * h * w {
        return Err(crate::Error::Shape(format!(
            "{} pixel bytes for {count} images of {c}×{h}×{w}",
            pixels.len()
        )));
    }
    Ok(())
}

/// x[b] = image(indices[b]) scaled, flipped when indices[b] ≥ count; labels likewise.
#[allow(clippy::too_many_arguments)]
pub fn gather_batch(
    pixels: &[u8],
    all_labels: &[u32],
    chw: (usize, usize, usize),
    count: usize,
    indices: &[u32],
    x: &mut [f32],
    labels: &mut [u32],
) {
    let (c, h, w) = chw;
    let len = c * h * w;
    for (b, &idx) in indices.iter().enumerate() {
        let idx = idx as usize;
        let (img, flip) = if idx >= count {
            (idx - count, true)
        } else {
            (idx, false)
        };
        let src = &pixels[img * len..(img + 1) * len];
        let dst = &mut x[b * len..(b + 1) * len];
        for (row_src, row_dst) in src.chunks(w).zip(dst.chunks_mut(w)) {
            for (j, d) in row_dst.iter_mut().enumerate() {
                *d = scale_pixel(row_src[if flip { w - 1 - j } else { j }]);
            }
        }
        labels[b] = all_labels[img];
    }
}

// ---- GPU ----------------------------------------------------------------------------------

use Access::{Read as R, ReadWrite as W};
pub(crate) static GATHER: Kernel = Kernel {
    name: "gather_batch",
    family: Family::Data,
    shader: &shaders::DATA,
    entry: "gather_batch",
    constants: &[WG_CONSTANT],
    storage: &[R, R, R, W, W],
    params_bytes: size_of::<Params>(),
};

/// The uniform parameters of data.wgsl — the twin of its `struct Params`, field by field.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    c: u32,
    h: u32,
    w: u32,
    /// Images in the whole set (indices ≥ count are flipped images).
    count: u32,
    /// The first image and the number of images in this shard.
    shard_start: u32,
    shard_count: u32,
    _pad: u32,
}

/// Images per shard so that one shard fits a storage binding of `max_bytes`.
pub fn images_per_shard(image_len: usize, max_bytes: u64) -> usize {
    ((max_bytes / image_len.max(1) as u64) as usize).max(1)
}

pub(crate) fn gpu_gather_batch(
    g: &mut GpuBackend,
    set: &ImageSet,
    indices: Buf,
    batch: usize,
    x: Buf,
    labels: Buf,
) {
    for shard in &set.shards {
        let p = Params {
            batch: batch as u32,
            c: set.c as u32,
            h: set.h as u32,
            w: set.w as u32,
            count: set.count as u32,
            shard_start: shard.first as u32,
            shard_count: shard.count as u32,
            _pad: 0,
        };
        g.dispatch(
            &GATHER,
            &p,
            &[shard.pixels, indices, set.labels, x, labels],
            grid_1d(batch * set.image_len()),
        );
    }
}
