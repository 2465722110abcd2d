//! Batch assembly: gather u8 images by index, scale to [−1, 1], optional left-right flip and
//! crop shift — shaders/data.wgsl.

use crate::backend::{BatchIndices, Buf, Family, ImageSet, Shift};
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

/// x[b] = image(indices[b]) scaled, flipped when indices[b] ≥ count, then shifted by shifts[b]
/// (pixel 0 outside the image) when `shifts` is not empty (it then holds one per index);
/// labels likewise.
#[allow(clippy::too_many_arguments)]
pub fn gather_batch(
    pixels: &[u8],
    all_labels: &[u32],
    chw: (usize, usize, usize),
    count: usize,
    indices: &[u32],
    shifts: &[Shift],
    x: &mut [f32],
    labels: &mut [u32],
) {
    let (c, h, w) = chw;
    let len = c * h * w;
    // a pixel outside the image (after a shift) reads as 0
    let outside = scale_pixel(0);
    for (b, &idx) in indices.iter().enumerate() {
        let idx = idx as usize;
        let (img, flip) = if idx >= count {
            (idx - count, true)
        } else {
            (idx, false)
        };
        let src = &pixels[img * len..(img + 1) * len];
        let dst = &mut x[b * len..(b + 1) * len];
        let s = shifts.get(b).copied().unwrap_or_default();
        if s == Shift::default() {
            for (row_src, row_dst) in src.chunks(w).zip(dst.chunks_mut(w)) {
                for (j, d) in row_dst.iter_mut().enumerate() {
                    *d = scale_pixel(row_src[if flip { w - 1 - j } else { j }]);
                }
            }
        } else {
            // the source of output row/column k: k + d when it lies inside 0..n
            let inside = |k: usize, d: i32, n: usize| {
                let v = k as i64 + d as i64;
                (0..n as i64).contains(&v).then_some(v as usize)
            };
            for (plane_src, plane_dst) in src.chunks(h * w).zip(dst.chunks_mut(h * w)) {
                for (i, row_dst) in plane_dst.chunks_mut(w).enumerate() {
                    let Some(si) = inside(i, s.dy, h) else {
                        row_dst.fill(outside);
                        continue;
                    };
                    let row_src = &plane_src[si * w..(si + 1) * w];
                    for (j, d) in row_dst.iter_mut().enumerate() {
                        *d = match inside(j, s.dx, w) {
                            Some(sj) => scale_pixel(row_src[if flip { w - 1 - sj } else { sj }]),
                            None => outside,
                        };
                    }
                }
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
    /// 1: `batch` packed shifts follow the indices ([`Shift::pack`]); 0: none.
    shifted: u32,
}

/// Images per shard so that one shard fits a storage binding of `max_bytes`.
pub fn images_per_shard(image_len: usize, max_bytes: u64) -> usize {
    ((max_bytes / image_len.max(1) as u64) as usize).max(1)
}

pub(crate) fn gpu_gather_batch(
    g: &mut GpuBackend,
    set: &ImageSet,
    batch: BatchIndices,
    x: Buf,
    labels: Buf,
) {
    let BatchIndices {
        indices,
        batch,
        shifted,
    } = batch;
    for shard in &set.shards {
        let p = Params {
            batch: batch as u32,
            c: set.c as u32,
            h: set.h as u32,
            w: set.w as u32,
            count: set.count as u32,
            shard_start: shard.first as u32,
            shard_count: shard.count as u32,
            shifted: shifted as u32,
        };
        g.dispatch(
            &GATHER,
            &p,
            &[shard.pixels, indices, set.labels, x, labels],
            grid_1d(batch * set.image_len()),
        );
    }
}
