//! Convolution with bias, any square kernel, stride and zero padding — shaders/conv.wgsl.
//! x [batch, cin, h, w], w [cout, cin, kernel, kernel], b [cout] → y [batch, cout, out_h, out_w],
//! out_h = (h + 2·pad − kernel)/stride + 1 (floor), out_w likewise ([`ConvShape`]); the K index
//! of every product is ci·kernel² + kh·kernel + kw on both backends.
//!
//! CPU, the seed's geometry (3×3, stride 1, pad 1): layers of 16+ channels and 8+ pixels a side
//! by Winograd's F(2×2, 3×3) (conv/winograd.rs: 2.25× fewer multiplies, exact on quantized
//! values); the others per image, in blocks of output pixels that keep their im2col columns in
//! L2 cache, im2col (one shifted copy per tap, `Tap`) then a SIMD GEMM (ops/gemm.rs). The input
//! gradient is a forward convolution with the filters turned (or col2im where cin < cout);
//! binary layers by XNOR-popcount. Any other geometry: the same blocks of output pixels through
//! a general im2col / col2im (any kernel, stride, pad: `im2col_general`) and the same GEMM.
//! Images in parallel, each thread reusing its scratch; the weight gradient sums groups of
//! images in a fixed order, so no result depends on the thread count.
//! GPU: implicit GEMM (no im2col buffer), 64×64 tiles in workgroup memory; the weight gradient
//! splits its long K = batch·out_h·out_w over slices that a second kernel adds in a fixed order.

use crate::backend::{Buf, ConvShape, Family};
use crate::gpu::{grid_1d, shaders, Access, GpuBackend, Kernel, WG_CONSTANT};
use crate::ops::gemm;
use crate::par;
use std::ops::Range;

mod winograd;

/// Tap r = kh·3 + kw of a 3×3 kernel as a shift of the flattened plane: output pixel p reads
/// input pixel p + offset, for p in `inside` (the rest of the plane is clipped by row), and
/// the pixels of `edge_row` / `edge_col` (if any) read outside the image though p + offset
/// lies in the plane (the row wraps).
struct Tap {
    offset: isize,
    inside: Range<usize>,
    edge_row: Option<usize>,
    edge_col: Option<usize>,
}

impl Tap {
    fn all(h: usize, w: usize) -> [Tap; 9] {
        std::array::from_fn(|r| Tap::new(r, h, w))
    }

    fn new(r: usize, h: usize, w: usize) -> Tap {
        let (dy, dx) = (r as isize / 3 - 1, r as isize % 3 - 1);
        let hw = (h * w) as isize;
        let offset = dy * w as isize + dx;
        // p and p + offset both in 0..hw (empty when the shift is a whole plane or more)
        let lo = (-offset).clamp(0, hw);
        let inside = lo as usize..(hw - offset).clamp(lo, hw) as usize;
        let edge_row = match dy {
            -1 => Some(0),
            1 => Some(h - 1),
            _ => None,
        };
        let edge_col = match dx {
            -1 => Some(0),
            1 => Some(w - 1),
            _ => None,
        };
        Tap {
            offset,
            inside,
            edge_row,
            edge_col,
        }
    }

    /// The pixels of `px` that read inside the plane: (their range, the range they read).
    fn copied(&self, px: &Range<usize>) -> (Range<usize>, Range<usize>) {
        let lo = self.inside.start.clamp(px.start, px.end);
        let hi = self.inside.end.clamp(lo, px.end);
        if lo == hi {
            return (lo..lo, 0..0);
        }
        let src = (lo as isize + self.offset) as usize;
        (lo..hi, src..src + (hi - lo))
    }

    /// Zeroes the entries of `row` (pixels `px` of an im2col row) that read outside the image.
    fn clear_edges(&self, row: &mut [f32], px: &Range<usize>, w: usize) {
        let (copied, _) = self.copied(px);
        row[..copied.start - px.start].fill(0.0);
        row[copied.end - px.start..].fill(0.0);
        if let Some(y) = self.edge_row {
            let (lo, hi) = ((y * w).max(px.start), ((y + 1) * w).min(px.end));
            if lo < hi {
                row[lo - px.start..hi - px.start].fill(0.0);
            }
        }
        if let Some(x) = self.edge_col {
            // the first pixel at or after px.start in column x
            let first = px.start + (x + w - px.start % w) % w;
            if first < px.end {
                row[first - px.start..]
                    .iter_mut()
                    .step_by(w)
                    .for_each(|v| *v = 0.0);
            }
        }
    }
}

/// col[(ci·9 + kh·3 + kw), p − px.start] = x_img[ci, y+kh−1, x+kw−1] (0 outside) for the
/// output pixels p = y·w + x in `px`: each tap one copy of the shifted plane, then its wrapped
/// edge zeroed (copied row by row, or pixel by pixel with a bounds test, it cost as much as the
/// GEMM).
fn im2col(x: &[f32], cin: usize, (h, w): (usize, usize), px: &Range<usize>, col: &mut [f32]) {
    let (hw, len) = (h * w, px.len());
    let taps = Tap::all(h, w);
    for ci in 0..cin {
        let plane = &x[ci * hw..(ci + 1) * hw];
        for (r, tap) in taps.iter().enumerate() {
            let row = &mut col[(ci * 9 + r) * len..(ci * 9 + r + 1) * len];
            let (dst, src) = tap.copied(px);
            row[dst.start - px.start..dst.end - px.start].copy_from_slice(&plane[src]);
            tap.clear_edges(row, px, w);
        }
    }
}

/// dx_img[ci, y+kh−1, x+kw−1] += col[(ci·9 + r), p − px.start]: the adjoint of [`im2col`].
/// Clears the entries of `col` that fall outside the image (they are discarded anyway), so
/// each tap is one contiguous sum.
fn col2im(col: &mut [f32], cin: usize, (h, w): (usize, usize), px: &Range<usize>, dx: &mut [f32]) {
    let (hw, len) = (h * w, px.len());
    let taps = Tap::all(h, w);
    for ci in 0..cin {
        let plane = &mut dx[ci * hw..(ci + 1) * hw];
        for (r, tap) in taps.iter().enumerate() {
            let row = &mut col[(ci * 9 + r) * len..(ci * 9 + r + 1) * len];
            tap.clear_edges(row, px, w);
            let (from, to) = tap.copied(px);
            plane[to]
                .iter_mut()
                .zip(&row[from.start - px.start..from.end - px.start])
                .for_each(|(d, v)| *d += v);
        }
    }
}

/// One output row's share of a block of output pixels, for one tap (kh, kw) of a geometry:
/// the block's entries `out` (indices into the block), of which `valid` read inside the input
/// image — entry `valid.start + i` reads input pixel `src + i·stride` of the plane — and the
/// rest read the zero padding.
struct Run {
    out: Range<usize>,
    valid: Range<usize>,
    src: usize,
}

/// The [`Run`]s of tap (kh, kw) over the output pixels `px` (p = oy·out_w + ox), row by row.
fn runs(s: ConvShape, (kh, kw): (usize, usize), px: &Range<usize>) -> impl Iterator<Item = Run> {
    let (ow, stride, pad) = (s.out_w(), s.stride.max(1), s.pad);
    // output columns whose input column ox·stride + kw − pad lies in 0..w
    let lo = pad.saturating_sub(kw).div_ceil(stride);
    let hi = (s.w + pad)
        .checked_sub(kw + 1)
        .map_or(0, |last| last / stride + 1)
        .min(ow);
    let rows = if px.is_empty() {
        0..0
    } else {
        px.start / ow..(px.end - 1) / ow + 1
    };
    let px = px.clone();
    rows.map(move |oy| {
        let row = oy * ow;
        let (ox0, ox1) = (px.start.max(row) - row, px.end.min(row + ow) - row);
        let out = row + ox0 - px.start..row + ox1 - px.start;
        // input row oy·stride + kh − pad
        let iy = (oy * stride + kh).checked_sub(pad).filter(|&iy| iy < s.h);
        match iy {
            Some(iy) if lo.max(ox0) < hi.min(ox1) => {
                let (a, b) = (lo.max(ox0), hi.min(ox1));
                Run {
                    valid: row + a - px.start..row + b - px.start,
                    src: iy * s.w + a * stride + kw - pad,
                    out,
                }
            }
            _ => Run {
                valid: out.start..out.start,
                src: 0,
                out,
            },
        }
    })
}

/// col[(ci·kernel² + kh·kernel + kw), p − px.start] = x_img[ci, oy·stride + kh − pad,
/// ox·stride + kw − pad] (0 outside the image) for the output pixels p = oy·out_w + ox in `px`:
/// [`im2col`] for any kernel, stride and pad. x_img [cin, h, w], col [cin·kernel², px.len()].
fn im2col_general(s: ConvShape, x: &[f32], px: &Range<usize>, col: &mut [f32]) {
    let (hw, taps, len, stride) = (s.h * s.w, s.taps(), px.len(), s.stride.max(1));
    for ci in 0..s.cin {
        let plane = &x[ci * hw..(ci + 1) * hw];
        for t in 0..taps {
            let row = &mut col[(ci * taps + t) * len..(ci * taps + t + 1) * len];
            for run in runs(s, (t / s.kernel, t % s.kernel), px) {
                row[run.out.start..run.valid.start].fill(0.0);
                row[run.valid.end..run.out.end].fill(0.0);
                let dst = &mut row[run.valid.clone()];
                if stride == 1 {
                    dst.copy_from_slice(&plane[run.src..run.src + dst.len()]);
                } else {
                    let src = plane[run.src..].iter().step_by(stride);
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v);
                }
            }
        }
    }
}

/// dx_img[ci, oy·stride + kh − pad, ox·stride + kw − pad] += col[(ci·kernel² + kh·kernel + kw),
/// p − px.start] for the entries inside the image: the adjoint of [`im2col_general`].
/// col [cin·kernel², px.len()], dx_img [cin, h, w].
fn col2im_general(s: ConvShape, col: &[f32], px: &Range<usize>, dx: &mut [f32]) {
    let (hw, taps, len, stride) = (s.h * s.w, s.taps(), px.len(), s.stride.max(1));
    for ci in 0..s.cin {
        let plane = &mut dx[ci * hw..(ci + 1) * hw];
        for t in 0..taps {
            let row = &col[(ci * taps + t) * len..(ci * taps + t + 1) * len];
            for run in runs(s, (t / s.kernel, t % s.kernel), px) {
                let from = &row[run.valid.clone()];
                let to = plane[run.src..].iter_mut().step_by(stride);
                to.zip(from).for_each(|(d, v)| *d += v);
            }
        }
    }
}

/// The im2col columns of one image x_img [cin, h, w] for the output pixels `px`, col
/// [cin·kernel², px.len()]: the seed's geometry by shifted copies ([`im2col`]), any other by
/// [`im2col_general`].
fn columns(s: ConvShape, x: &[f32], px: &Range<usize>, col: &mut [f32]) {
    if s.is_same_3x3() {
        im2col(x, s.cin, (s.h, s.w), px, col);
    } else {
        im2col_general(s, x, px, col);
    }
}

/// dx_img [cin, h, w] += the adjoint of [`columns`] applied to col [cin·kernel², px.len()]
/// (which the seed's [`col2im`] clears where it falls outside the image).
fn add_columns(s: ConvShape, col: &mut [f32], px: &Range<usize>, dx: &mut [f32]) {
    if s.is_same_3x3() {
        col2im(col, s.cin, (s.h, s.w), px, dx);
    } else {
        col2im_general(s, col, px, dx);
    }
}

/// Floats of im2col columns worked on at once: pixel blocks keep the block (and the GEMM's
/// packing of it) in a core's L2 cache — a 32×32 image's 64-channel columns (2.4 MB) did not fit.
const COLUMN_BLOCK: usize = 150 * 1024;

/// The output pixels of an image in blocks whose columns hold at most [`COLUMN_BLOCK`] floats
/// (`k` per pixel), in multiples of 16 pixels; none if `hw` is 0.
fn pixel_blocks(hw: usize, k: usize) -> impl Iterator<Item = Range<usize>> {
    let n = (COLUMN_BLOCK / k.max(1)).max(16) / 16 * 16;
    let n = hw
        .div_ceil(hw.div_ceil(n).max(1))
        .next_multiple_of(16)
        .min(hw);
    (0..hw).step_by(n.max(1)).map(move |p| p..(p + n).min(hw))
}

/// y [batch, cout, out_h, out_w] = conv(x [batch, cin, h, w], w [cout, cin, kernel, kernel]) +
/// b [cout]
pub fn forward(s: ConvShape, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    if winograd::suits(s) {
        let u = winograd::transform_filters(w, s.cout, s.cin);
        return winograd::forward(s, x, &u, b, y);
    }
    let (hw, ohw) = (s.h * s.w, s.out_h() * s.out_w());
    par::for_each_chunk(&mut y[..s.y_len()], s.cout * ohw, |n, y_n| {
        forward_image(s, &x[n * s.cin * hw..(n + 1) * s.cin * hw], w, b, y_n);
    });
}

/// One image: y_n [cout, out_h, out_w] = conv(x_n [cin, h, w], w) + b (no bias if `b` is
/// empty). The sum is formed first and the bias added last, so where the products are integers
/// (binary layers) the result is exactly fl(S + b) — what [`forward_binary`] computes with
/// integers.
fn forward_image(s: ConvShape, x_n: &[f32], w: &[f32], b: &[f32], y_n: &mut [f32]) {
    let (hw, k) = (s.out_h() * s.out_w(), s.cin * s.taps());
    for px in pixel_blocks(hw, k) {
        par::with_scratch(k * px.len(), |col| {
            columns(s, x_n, &px, col);
            // y_n [cout, px] = w [cout, k] · col [k, px]
            let dims = (s.cout, px.len(), k);
            let y = &mut y_n[px.start..];
            gemm::matmul_strided(y, w, col, dims, (hw, k, px.len()), false, false, false);
        });
    }
    for (row, &bias) in y_n.chunks_mut(hw).zip(b) {
        row.iter_mut().for_each(|v| *v += bias);
    }
}

/// Bits of a ±1 tensor, 64 channels a word: `bits[p·words + i]` holds channels 64i … 64i+63
/// of pixel p (1 for −1), from `t [c, hw]` (channel-major). `None` when a value is not ±1
/// (a NaN must reach the loss, so such inputs take the float path).
fn pack_signs(t: &[f32], c: usize, hw: usize) -> Option<Vec<u64>> {
    let words = c.div_ceil(64);
    let mut bits = vec![0u64; hw * words];
    let mut all_signs = true;
    for (ch, plane) in t.chunks_exact(hw).take(c).enumerate() {
        let (word, bit) = (ch / 64, ch % 64);
        all_signs &= if words == 1 {
            pack_plane(plane, bit, &mut bits) // contiguous: vectorized
        } else {
            pack_into(plane, bit, bits.iter_mut().skip(word).step_by(words))
        };
    }
    all_signs.then_some(bits)
}

/// bits[p] |= (plane[p] == −1) << bit, branch-free; whether every value was ±1.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn pack_plane(plane: &[f32], bit: usize, bits: &mut [u64]) -> bool {
    pack_into(plane, bit, bits.iter_mut())
}

/// Sign bit `bit` of each value of `plane` into the words `bits` yields; whether all were ±1.
#[inline(always)]
fn pack_into<'a>(plane: &[f32], bit: usize, bits: impl Iterator<Item = &'a mut u64>) -> bool {
    let mut all_signs = true;
    for (b, &v) in bits.zip(plane) {
        *b |= ((v == -1.0) as u64) << bit;
        all_signs &= (v == -1.0) | (v == 1.0);
    }
    all_signs
}

/// One image of a binary layer, pixel by pixel: each input word of each tap inside the image
/// is XORed with that word of every filter at once (filters side by side, so the loop over
/// them is a vector XOR + popcount) and the differing bits counted per filter; taps outside the
/// image are skipped (zero padding). Σ x·w = cin·(taps inside) − 2·(differing bits).
/// `xb [hw, words]`, `wb_t [9, words, cout]`; y_n [cout, hw] = (S as f32) + bias.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512vpopcntdq+popcnt",
    "x86_64+avx2+fma+popcnt",
    "aarch64+neon"
))]
fn xnor_image(xb: &[u64], wb_t: &[u64], s: ConvShape, b: &[f32], y_n: &mut [f32]) {
    let words = s.cin.div_ceil(64);
    let (h, w, hw) = (s.h as isize, s.w as isize, s.h * s.w);
    let mut differ = vec![0u32; s.cout];
    for p in 0..hw {
        let (py, px) = ((p / s.w) as isize, (p % s.w) as isize);
        differ.fill(0);
        let mut inside = 0;
        for t in 0..9 {
            let (qy, qx) = (py + t as isize / 3 - 1, px + t as isize % 3 - 1);
            if qy < 0 || qy >= h || qx < 0 || qx >= w {
                continue;
            }
            inside += 1;
            let q = (qy * w + qx) as usize;
            for (i, &xw) in xb[q * words..(q + 1) * words].iter().enumerate() {
                let filters = &wb_t[(t * words + i) * s.cout..][..s.cout];
                for (d, &f) in differ.iter_mut().zip(filters) {
                    *d += (xw ^ f).count_ones();
                }
            }
        }
        let same_minus_differ = (inside * s.cin) as i32;
        for (co, &d) in differ.iter().enumerate() {
            y_n[co * hw + p] = (same_minus_differ - 2 * d as i32) as f32 + b[co];
        }
    }
}

/// [`forward`] for a binary layer (weights and inputs ±1): each 3×3·cin dot product is an
/// XNOR-popcount of packed bits, exactly equal to the float path (the sums are integers far
/// below 2^24, and both add the bias last). Falls back to the float path, image by image, if
/// the input holds anything but ±1, and entirely if the weights do or if the geometry is not
/// the seed's (3×3, stride 1, pad 1): x [batch, cin, h, w] → y [batch, cout, out_h, out_w].
pub fn forward_binary(s: ConvShape, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    if !s.is_same_3x3() {
        return forward(s, x, w, b, y);
    }
    let hw = s.h * s.w;
    let words = s.cin.div_ceil(64);
    // weights as [9, words, cout]: word i of tap t of every filter side by side
    let mut wb_t = vec![0u64; 9 * words * s.cout];
    for co in 0..s.cout {
        let filt = &w[co * s.cin * 9..(co + 1) * s.cin * 9];
        // [cin, 9] → channel-major planes of 9 "pixels": bits [9, words]
        let Some(bits) = pack_signs(filt, s.cin, 9) else {
            return forward(s, x, w, b, y);
        };
        for (tw, &v) in bits.iter().enumerate() {
            wb_t[tw * s.cout + co] = v;
        }
    }
    par::for_each_chunk(&mut y[..s.y_len()], s.cout * hw, |n, y_n| {
        let x_n = &x[n * s.cin * hw..(n + 1) * s.cin * hw];
        match pack_signs(x_n, s.cin, hw) {
            Some(xb) => xnor_image(&xb, &wb_t, s, b, y_n),
            None => forward_image(s, x_n, w, b, y_n),
        }
    });
}

/// dx [batch, cin, h, w] = ∂/∂x of Σ dy·conv(x, w), dy [batch, cout, out_h, out_w],
/// w [cout, cin, kernel, kernel]
pub fn grad_input(s: ConvShape, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    if s.is_same_3x3() && (s.cin >= s.cout || winograd::suits(swap_channels(s))) {
        grad_input_turned(s, dy, w, dx)
    } else {
        grad_input_col2im(s, dy, w, dx)
    }
}

/// The shape of the input gradient as a convolution: cout channels in, cin out.
fn swap_channels(s: ConvShape) -> ConvShape {
    ConvShape {
        cin: s.cout,
        cout: s.cin,
        ..s
    }
}

/// [`grad_input`] as a forward convolution: the adjoint of a 3×3 convolution is the
/// convolution of dy with every filter turned 180° and the channel roles swapped (cout → cin
/// channels, no bias), w_turned [cin, cout, 3, 3] = w[co, ci, 8 − t]. Faster than col2im
/// (its GEMM has M = cin rows), unless cin is small against cout.
fn grad_input_turned(s: ConvShape, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let mut w_turned = vec![0.0f32; s.w_len()];
    for (co, filter) in w[..s.w_len()].chunks_exact(s.cin * 9).enumerate() {
        for (ci, taps) in filter.chunks_exact(9).enumerate() {
            for (t, &v) in taps.iter().enumerate() {
                w_turned[(ci * s.cout + co) * 9 + 8 - t] = v;
            }
        }
    }
    let turned = swap_channels(s);
    if winograd::suits(turned) {
        let u = winograd::transform_filters(&w_turned, turned.cout, turned.cin);
        return winograd::forward(turned, dy, &u, &[], dx);
    }
    let hw = s.h * s.w;
    par::for_each_chunk(&mut dx[..s.x_len()], s.cin * hw, |n, dx_n| {
        let dy_n = &dy[n * s.cout * hw..(n + 1) * s.cout * hw];
        forward_image(turned, dy_n, &w_turned, &[], dx_n);
    });
}

/// [`grad_input`] as dcol = wᵀ·dy, then col2im (the adjoint of im2col), per image in blocks
/// of output pixels: dcol [cin·kernel², px] = wᵀ [cin·kernel², cout] · dy_n [cout, px].
fn grad_input_col2im(s: ConvShape, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let (hw, ohw, k) = (s.h * s.w, s.out_h() * s.out_w(), s.cin * s.taps());
    par::for_each_chunk(&mut dx[..s.x_len()], s.cin * hw, |n, dx_n| {
        dx_n.fill(0.0);
        let dy_n = &dy[n * s.cout * ohw..(n + 1) * s.cout * ohw];
        for px in pixel_blocks(ohw, k) {
            par::with_scratch(k * px.len(), |dcol| {
                // dcol [k, px] = wᵀ [k, cout] · dy_n [cout, px]
                let dims = (k, px.len(), s.cout);
                let strides = (px.len(), k, ohw);
                let dy_px = &dy_n[px.start..];
                gemm::matmul_strided(dcol, w, dy_px, dims, strides, true, false, false);
                add_columns(s, dcol, &px, dx_n);
            });
        }
    });
}

/// Images per group of the weight gradient: groups are summed in order, so the result does not
/// depend on the thread count. Each group has its own accumulator (1 MB at 128 → 128 channels
/// in Winograd's domain), zeroed and summed at the end: groups of 4 images cost 2.5× the time
/// of groups of 16 at 8×8 (1.5× at 16×16), and 16 still gives a batch of 64 four groups.
const GRAD_WEIGHT_GROUP: usize = 16;

/// The weight gradient's group sums added in group order, element by element (so the result
/// does not depend on the thread count), in parallel over slices; zeros of `len` if none.
fn sum_groups(groups: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    const SLICE: usize = 16 * 1024;
    let mut groups = groups.into_iter();
    let mut sum = groups.next().unwrap_or_else(|| vec![0.0; len]);
    let rest: Vec<Vec<f32>> = groups.collect();
    par::for_each_chunk(&mut sum, SLICE, |t, slice| {
        for g in &rest {
            let g = &g[t * SLICE..][..slice.len()];
            slice.iter_mut().zip(g).for_each(|(d, v)| *d += v);
        }
    });
    sum
}

/// dw [cout, cin, kernel, kernel] = Σ_n dy_n · im2col(x_n)ᵀ, dy [batch, cout, out_h, out_w],
/// x [batch, cin, h, w]
pub fn grad_weight(s: ConvShape, dy: &[f32], x: &[f32], dw: &mut [f32]) {
    if winograd::suits(s) {
        return winograd::grad_weight(s, dy, x, dw, GRAD_WEIGHT_GROUP);
    }
    let (hw, ohw, k) = (s.h * s.w, s.out_h() * s.out_w(), s.cin * s.taps());
    let groups = s.batch.div_ceil(GRAD_WEIGHT_GROUP);
    // each group's sum transposed, dwᵀ [k, cout]: faer runs this shape ~25 % faster than
    // [cout, k] += dy·colᵀ (measured on AVX-512: 159 vs 124 GFLOP/s at k 576, cout 64)
    let partial = par::map(groups, |g| {
        let mut acc_t = vec![0.0f32; k * s.cout];
        for n in g * GRAD_WEIGHT_GROUP..((g + 1) * GRAD_WEIGHT_GROUP).min(s.batch) {
            let (x_n, dy_n) = (&x[n * s.cin * hw..], &dy[n * s.cout * ohw..]);
            for px in pixel_blocks(ohw, k) {
                par::with_scratch(k * px.len(), |col| {
                    columns(s, x_n, &px, col);
                    // acc_t [k, cout] += col [k, px] · dy_nᵀ [px, cout]
                    let dims = (k, s.cout, px.len());
                    let strides = (s.cout, px.len(), ohw);
                    let dy_px = &dy_n[px.start..];
                    gemm::matmul_strided(&mut acc_t, col, dy_px, dims, strides, false, true, true);
                });
            }
        }
        acc_t
    });
    let sum_t = sum_groups(partial, k * s.cout);
    for (j, row) in sum_t.chunks_exact(s.cout).enumerate() {
        for (co, &v) in row.iter().enumerate() {
            dw[co * k + j] = v;
        }
    }
}

// ---- GPU ----------------------------------------------------------------------------------

const RW: &[Access] = &[Access::Read, Access::Read, Access::Read, Access::ReadWrite];

pub(crate) static FORWARD: Kernel = Kernel {
    name: "conv forward",
    family: Family::ConvForward,
    shader: &shaders::CONV,
    entry: "conv_gemm",
    constants: &[("MODE", 0.0)],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static GRAD_INPUT: Kernel = Kernel {
    name: "conv grad input",
    family: Family::ConvGradInput,
    shader: &shaders::CONV,
    entry: "conv_gemm",
    constants: &[("MODE", 1.0)],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static GRAD_WEIGHT: Kernel = Kernel {
    name: "conv grad weight",
    family: Family::ConvGradWeight,
    shader: &shaders::CONV,
    entry: "conv_gemm",
    constants: &[("MODE", 2.0)],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static SUM_SLICES: Kernel = Kernel {
    name: "conv grad weight (slice sum)",
    family: Family::ConvGradWeight,
    shader: &shaders::CONV,
    entry: "sum_slices",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};

const TILE: usize = 64;

/// The uniform parameters of conv.wgsl — the twin of its `struct Params`, field by field. The
/// GEMM is M×N×K (see the shader's header); `k_per_slice` is the K range of one slice of the
/// weight gradient (and the slice count for `sum_slices`); h, w are the input's, out_h, out_w
/// the output's ([`ConvShape::out_h`]).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    cin: u32,
    cout: u32,
    h: u32,
    w: u32,
    m: u32,
    n: u32,
    k: u32,
    k_per_slice: u32,
    kernel: u32,
    stride: u32,
    pad: u32,
    out_h: u32,
    out_w: u32,
    _pad: [u32; 2],
}

fn params(s: ConvShape, m: usize, n: usize, k: usize, k_per_slice: usize) -> Params {
    Params {
        batch: s.batch as u32,
        cin: s.cin as u32,
        cout: s.cout as u32,
        h: s.h as u32,
        w: s.w as u32,
        m: m as u32,
        n: n as u32,
        k: k as u32,
        k_per_slice: k_per_slice as u32,
        kernel: s.kernel as u32,
        stride: s.stride.max(1) as u32,
        pad: s.pad as u32,
        out_h: s.out_h() as u32,
        out_w: s.out_w() as u32,
        _pad: [0; 2],
    }
}

fn grid(m: usize, n: usize, slices: usize) -> [u32; 3] {
    [
        n.div_ceil(TILE) as u32,
        m.div_ceil(TILE) as u32,
        slices as u32,
    ]
}

/// y [batch, cout, out_h, out_w]: M = cout, N = batch·out_h·out_w, K = cin·kernel².
pub(crate) fn gpu_forward(g: &mut GpuBackend, s: ConvShape, x: Buf, w: Buf, b: Buf, y: Buf) {
    let (m, n, k) = (s.cout, s.batch * s.out_h() * s.out_w(), s.cin * s.taps());
    g.dispatch(
        &FORWARD,
        &params(s, m, n, k, k),
        &[w, x, b, y],
        grid(m, n, 1),
    );
}

/// dx [batch, cin, h, w]: M = cin, N = batch·h·w, K = cout·kernel².
pub(crate) fn gpu_grad_input(g: &mut GpuBackend, s: ConvShape, dy: Buf, w: Buf, dx: Buf) {
    let (m, n, k) = (s.cin, s.batch * s.h * s.w, s.cout * s.taps());
    g.dispatch(
        &GRAD_INPUT,
        &params(s, m, n, k, k),
        &[w, dy, w, dx],
        grid(m, n, 1),
    );
}

/// Target number of workgroups for the weight gradient, whose output alone gives few tiles.
const GRAD_WEIGHT_GROUPS: usize = 512;

/// dw [cout, cin, kernel, kernel]: M = cout, N = cin·kernel², K = batch·out_h·out_w.
pub(crate) fn gpu_grad_weight(g: &mut GpuBackend, s: ConvShape, dy: Buf, x: Buf, dw: Buf) {
    let (m, n, k) = (s.cout, s.cin * s.taps(), s.batch * s.out_h() * s.out_w());
    let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
    // slices of at least 256 K-steps each, about GRAD_WEIGHT_GROUPS workgroups in all
    let slices = (GRAD_WEIGHT_GROUPS / tiles).clamp(1, k.div_ceil(256).max(1));
    let k_per_slice = k.div_ceil(slices).next_multiple_of(16).max(16);
    let slices = k.div_ceil(k_per_slice).max(1);
    if slices == 1 {
        g.dispatch(
            &GRAD_WEIGHT,
            &params(s, m, n, k, k_per_slice),
            &[dy, x, dy, dw],
            grid(m, n, 1),
        );
        return;
    }
    let partial = g.scratch("conv_grad_weight", slices * m * n);
    g.dispatch(
        &GRAD_WEIGHT,
        &params(s, m, n, k, k_per_slice),
        &[dy, x, dy, partial],
        grid(m, n, slices),
    );
    g.dispatch(
        &SUM_SLICES,
        &params(s, m, n, k, slices),
        &[partial, partial, partial, dw],
        grid_1d(m * n),
    );
}
