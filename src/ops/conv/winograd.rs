//! The CPU's 3×3 convolutions (stride 1, pad 1) by Winograd's minimal filtering F(2×2, 3×3)
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2×2 block of
//! output pixels comes from a 4×4 input tile with 16 multiplies per (input, output) channel pair
//! instead of 36, so the GEMMs shrink 2.25× against im2col.
//!
//! For one tile d [4×4] (input rows 2ty−1 … 2ty+2, columns 2tx−1 … 2tx+2, 0 outside) and one
//! filter g [3×3]:
//!
//! ```text
//!   y [2×2] = Aᵀ·(U ⊙ V)·A,  U = G·g·Gᵀ [4×4],  V = Bᵀ·d·B [4×4]
//!   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]   G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//!   Aᵀ = [1 1 1 0; 0 1 −1 −1]
//! ```
//!
//! Summed over input channels, each of the 16 positions ξ of the 4×4 is one GEMM over a block
//! of tiles: M_ξ [cout, tiles] = U_ξ [cout, cin] · V_ξ [cin, tiles]. The weight gradient is its
//! adjoint: dU_ξ [cout, cin] = Σ_tiles (A·dy·Aᵀ)_ξ · V_ξᵀ, then dg = Gᵀ·dU·G.
//!
//! Every entry of A and B is 0 or ±1, and G's are 0, ±½ or 1: on quantized weights and
//! activations (small multiples of powers of two) every product and sum is exact, so the result
//! is the same float as the direct sum, as long as that one is exact too (binary layers: tested
//! against the XNOR path bit for bit). On arbitrary floats it differs from im2col by rounding
//! only (tested against f64 loops).
//!
//! Work is cut into blocks of tiles — whole images when they are small, else rows of tiles of one
//! image — sized so that a block's transformed input and output stay in a core's L2 cache;
//! images in parallel, each thread transforming into its scratch.

use crate::backend::ConvShape;
use crate::ops::gemm;
use crate::par;
use std::ops::Range;

/// Floats of transformed input and output (16·(cin + cout) per tile) a block works on at once.
const BLOCK_FLOATS: usize = 256 * 1024;

/// Whether a convolution of this shape is worth its transforms. Measured side by side with
/// im2col (batch 64, two AVX-512 cores): forward and weight gradient 1.3–1.6× faster at 64 and
/// 128 channels of 16×16 and 32×32, ~1.1× at 16 channels of 32×32; at 8×8, 1.4× on the weight
/// gradient at 128 channels and even overall at 64 (forward the same, weight gradient 10 %
/// slower). Not used for the first layer's 3 channels (GEMMs with K = 3 are mostly overhead),
/// nor below 8×8 (not measured: a row of 2 or 3 tiles, the transforms' fixed costs dominate).
/// Only the seed's geometry (3×3, stride 1, pad 1): F(2×2, 3×3) is that convolution.
pub fn suits(s: ConvShape) -> bool {
    s.is_same_3x3() && s.cin >= 16 && s.cout >= 16 && s.h >= 8 && s.w >= 8
}

/// The filters transformed, U [16, cout, cin] from w [cout, cin, 3, 3]: U_ξ = (G·g·Gᵀ)_ξ.
pub fn transform_filters(w: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    let pairs = cout * cin;
    // G·g [4×3] of every filter first: each column (a, b, c) of g → (a, (a+b+c)/2, (a−b+c)/2, c)
    let mut down = vec![[[0.0f32; 3]; 4]; pairs];
    par::for_each_chunk(&mut down, FILTERS_PER_TASK, |t, chunk| {
        let filters = w[t * FILTERS_PER_TASK * 9..].chunks_exact(9);
        for (d, g) in chunk.iter_mut().zip(filters) {
            *d = std::array::from_fn(|i| {
                std::array::from_fn(|kw| filter_point(i, [g[kw], g[3 + kw], g[6 + kw]]))
            });
        }
    });
    // then ·Gᵀ, one position ξ at a time: contiguous writes, not 16 scattered ones per filter
    let mut u = vec![0.0f32; 16 * pairs];
    par::for_each_chunk(&mut u, pairs, |xi, u_xi| {
        let (i, j) = (xi / 4, xi % 4);
        for (u, d) in u_xi.iter_mut().zip(&down) {
            *u = filter_point(j, d[i]);
        }
    });
    u
}

/// Filters (or filter gradients) transformed per parallel task.
const FILTERS_PER_TASK: usize = 2048;

/// Entry i of G·(a, b, c).
fn filter_point(i: usize, [a, b, c]: [f32; 3]) -> f32 {
    match i {
        0 => a,
        1 => (a + b + c) * 0.5,
        2 => (a - b + c) * 0.5,
        _ => c,
    }
}

/// A block of tiles: tile rows `rows` of the first `images` images of a work item, ordered
/// image, tile row, tile column.
struct Block {
    images: usize,
    rows: Range<usize>,
}

/// How a batch of `s` is cut: images per work item, and each item's blocks of tiles.
struct Plan {
    tiles_h: usize,
    tiles_w: usize,
    images_per_item: usize,
    rows_per_block: usize,
}

impl Plan {
    fn new(s: ConvShape) -> Plan {
        let (tiles_h, tiles_w) = (s.h.div_ceil(2), s.w.div_ceil(2));
        let per_image = tiles_h * tiles_w;
        let target = (BLOCK_FLOATS / (16 * (s.cin + s.cout))).max(tiles_w);
        let images_per_item = (target / per_image).clamp(1, s.batch.max(1));
        let rows_per_block = (target / tiles_w).clamp(1, tiles_h);
        Plan {
            tiles_h,
            tiles_w,
            images_per_item,
            rows_per_block,
        }
    }

    /// The blocks of a work item of `images` images.
    fn blocks(&self, images: usize) -> Vec<Block> {
        if images > 1 {
            return vec![Block {
                images,
                rows: 0..self.tiles_h,
            }];
        }
        (0..self.tiles_h)
            .step_by(self.rows_per_block)
            .map(|r| Block {
                images: 1,
                rows: r..(r + self.rows_per_block).min(self.tiles_h),
            })
            .collect()
    }

    /// Floats the transforms of one plane of a block need (its rows split by parity and column,
    /// and the partial transforms; input_plane takes the most).
    fn plane_scratch(&self) -> usize {
        16 * (self.rows_per_block + 1) * self.tiles_w
    }

    fn tiles(&self, b: &Block) -> usize {
        b.images * b.rows.len() * self.tiles_w
    }
}

/// y [batch, cout, h, w] = conv(x [batch, cin, h, w], g) + b, with `u` = [`transform_filters`]
/// of g (no bias if `b` is empty). As in im2col's path, the bias is added to the finished sum.
pub fn forward(s: ConvShape, x: &[f32], u: &[f32], b: &[f32], y: &mut [f32]) {
    let (hw, plan) = (s.h * s.w, Plan::new(s));
    let item = plan.images_per_item;
    par::for_each_chunk(&mut y[..s.y_len()], item * s.cout * hw, |i, y_item| {
        let x_item = &x[i * item * s.cin * hw..];
        for block in plan.blocks(y_item.len() / (s.cout * hw)) {
            let tiles = plan.tiles(&block);
            let scratch_len = 16 * (s.cin + s.cout) * tiles + plan.plane_scratch();
            par::with_scratch(scratch_len, |buf| {
                let (v, rest) = buf.split_at_mut(16 * s.cin * tiles);
                let (m, scratch) = rest.split_at_mut(16 * s.cout * tiles);
                transform_block(s, &plan, &block, x_item, s.cin, v, scratch, input_plane);
                // M_ξ [cout, tiles] = U_ξ [cout, cin] · V_ξ [cin, tiles]
                for xi in 0..16 {
                    let u_xi = &u[xi * s.cout * s.cin..];
                    let (v_xi, m_xi) = (&v[xi * s.cin * tiles..], &mut m[xi * s.cout * tiles..]);
                    let dims = (s.cout, tiles, s.cin);
                    gemm::matmul(m_xi, u_xi, v_xi, dims, false, false, false);
                }
                transform_outputs(s, &plan, &block, m, b, y_item, scratch);
            });
        }
    });
}

/// A plane's transform into the Winograd domain: tile rows `rows` of a plane [h, w] to
/// out[ξ·stride + r·tiles_w + tx] ([`input_plane`], [`grad_plane`]).
type PlaneTransform = fn(&[f32], (usize, usize), Range<usize>, &mut [f32], &mut [f32], usize);

/// One block's planes through `transform`: out [16, c, tiles] from the work item's images
/// [.., c, h, w] (V of the inputs, or Mdy of the output gradients).
#[allow(clippy::too_many_arguments)]
fn transform_block(
    s: ConvShape,
    plan: &Plan,
    block: &Block,
    images: &[f32],
    c: usize,
    out: &mut [f32],
    plane_scratch: &mut [f32],
    transform: PlaneTransform,
) {
    let (hw, tiles) = (s.h * s.w, plan.tiles(block));
    let per_image = block.rows.len() * plan.tiles_w;
    for n in 0..block.images {
        for ch in 0..c {
            let plane = &images[(n * c + ch) * hw..][..hw];
            let out = &mut out[ch * tiles + n * per_image..];
            let rows = block.rows.clone();
            transform(plane, (s.h, s.w), rows, plane_scratch, out, c * tiles);
        }
    }
}

/// V_ξ of the tiles of tile rows `rows` of a plane [h, w] to out[ξ·stride + r·tiles_w + tx]
/// (r counted from rows.start).
///
/// Every step after the first is one long loop over the block, not one per row of tiles (a
/// row holds 4 to 16 tiles: too few for the compiler's vector loops, whose fixed costs then
/// exceed the sums). The rows are split into even and odd columns and kept apart by the parity
/// of their padded row: tile row r reads padded rows 2r … 2r + 3, so with the parities apart
/// its four rows lie at the same offset of two arrays, and the next tile row one row further.
/// Then B across and Bᵀ down.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn input_plane(
    plane: &[f32],
    (h, w): (usize, usize),
    rows: Range<usize>,
    scratch: &mut [f32],
    out: &mut [f32],
    stride: usize,
) {
    let (tw, n) = (w.div_ceil(2), rows.len());
    // padded row p = 2k + c (parity class c, k in 0 ..= n) is image row 2·rows.start − 1 + p
    let class_len = (n + 1) * tw;
    let (split, rest) = scratch.split_at_mut(4 * class_len); // [class][even, odd][n + 1][tw]
    let across = &mut rest[..8 * class_len]; // [j][class][n + 1][tw]

    // the rows in the plane's order, each to its parity class (front to back, the order the
    // hardware prefetcher streams best; most of this function's time is waiting for the rows)
    for p in 0..2 * (n + 1) {
        let (c, k) = (p % 2, p / 2);
        let (even, odd) = split[2 * c * class_len..][..2 * class_len].split_at_mut(class_len);
        let (e, o) = (&mut even[k * tw..][..tw], &mut odd[k * tw..][..tw]);
        let y = (2 * rows.start + p).wrapping_sub(1);
        if y < h {
            split_row(&plane[y * w..][..w], e, o);
        } else {
            e.fill(0.0);
            o.fill(0.0);
        }
    }
    // B across: d = (x[2tx−1], x[2tx], x[2tx+1], x[2tx+2]) = (o[tx−1], e[tx], o[tx], e[tx+1])
    // → d0 − d2, d1 + d2, d2 − d1, d1 − d3. The shifted ones run along the whole class, then
    // their first and last tile of each row are put right (0 beyond the image).
    for c in 0..2 {
        let (e, o) = split[2 * c * class_len..][..2 * class_len].split_at(class_len);
        let at = |j: usize| (2 * j + c) * class_len;
        let a0 = &mut across[at(0)..][..class_len];
        lanes::map2(&mut a0[1..], &o[..class_len - 1], &o[1..], |a, b| a - b);
        (0..class_len).step_by(tw).for_each(|q| a0[q] = 0.0 - o[q]);
        let a3 = &mut across[at(3)..][..class_len];
        lanes::map2(
            &mut a3[..class_len - 1],
            &e[..class_len - 1],
            &e[1..],
            |a, b| a - b,
        );
        (tw - 1..class_len).step_by(tw).for_each(|q| a3[q] = e[q]);
        // (these two after, so the edge stores above are long done when read below)
        lanes::map2(&mut across[at(1)..][..class_len], e, o, |a, b| a + b);
        lanes::map2(&mut across[at(2)..][..class_len], o, e, |a, b| a - b);
    }
    // Bᵀ down: padded rows (2r, 2r+1, 2r+2, 2r+3) = (class 0, class 1) at k = r, then r + 1
    let len = n * tw;
    for (j, pair) in across.chunks_exact(2 * class_len).enumerate() {
        let (c0, c1) = pair.split_at(class_len);
        let (r0, r1, r2, r3) = (&c0[..len], &c1[..len], &c0[tw..tw + len], &c1[tw..tw + len]);
        for i in 0..4 {
            let v = &mut out[(i * 4 + j) * stride..][..len];
            match i {
                0 => lanes::map2(v, r0, r2, |a, c| a - c),
                1 => lanes::map2(v, r1, r2, |b, c| b + c),
                2 => lanes::map2(v, r2, r1, |c, b| c - b),
                _ => lanes::map2(v, r1, r3, |b, d| b - d),
            }
        }
    }
}

/// e[k] = row[2k], o[k] = row[2k + 1] for k in 0 .. ⌈w/2⌉ (0 past the row).
#[inline(always)]
fn split_row(row: &[f32], e: &mut [f32], o: &mut [f32]) {
    for (pair, (e, o)) in row.chunks_exact(2).zip(e.iter_mut().zip(o.iter_mut())) {
        *e = pair[0];
        *o = pair[1];
    }
    if row.len() % 2 == 1 {
        let last = row.len() / 2;
        (e[last], o[last]) = (row[row.len() - 1], 0.0);
    }
}

/// The block's M [16, cout, tiles] back to pixels: y = Aᵀ·M·A (+ bias) into y_item
/// [.., cout, h, w]; the halves of tiles past an odd edge are dropped.
fn transform_outputs(
    s: ConvShape,
    plan: &Plan,
    block: &Block,
    m: &[f32],
    b: &[f32],
    y_item: &mut [f32],
    plane_scratch: &mut [f32],
) {
    let (hw, tiles) = (s.h * s.w, plan.tiles(block));
    let per_image = block.rows.len() * plan.tiles_w;
    for n in 0..block.images {
        for co in 0..s.cout {
            let plane = &mut y_item[(n * s.cout + co) * hw..][..hw];
            let bias = b.get(co).copied().unwrap_or(0.0);
            let m_plane = &m[co * tiles + n * per_image..];
            let rows = block.rows.clone();
            output_plane(
                m_plane,
                s.cout * tiles,
                rows,
                bias,
                (s.h, s.w),
                plane_scratch,
                plane,
            );
        }
    }
}

/// Output rows of tile rows `rows` of a plane [h, w] from m[ξ·stride + r·tiles_w + tx]:
/// Aᵀ down (m0 + m1 + m2, m1 − m2 − m3), then across into even and odd columns plus the bias,
/// each a loop over the whole block; then merged into the plane row by row.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn output_plane(
    m: &[f32],
    stride: usize,
    rows: Range<usize>,
    bias: f32,
    (h, w): (usize, usize),
    scratch: &mut [f32],
    plane: &mut [f32],
) {
    let (tw, n) = (w.div_ceil(2), rows.len());
    let len = n * tw;
    let (down, rest) = scratch.split_at_mut(8 * len); // [i][j][n][tw]
    let columns = &mut rest[..2 * len]; // [even, odd][n][tw]
    let m_at = |xi: usize| &m[xi * stride..][..len];
    for j in 0..4 {
        let (m0, m1, m2, m3) = (m_at(j), m_at(4 + j), m_at(8 + j), m_at(12 + j));
        lanes::map3(&mut down[j * len..][..len], m0, m1, m2, |a, b, c| a + b + c);
        lanes::map3(&mut down[(4 + j) * len..][..len], m1, m2, m3, |b, c, d| {
            b - c - d
        });
    }
    // output row 2(rows.start + r) + i: even columns d0 + d1 + d2, odd ones d1 − d2 − d3
    for (i, d) in down.chunks_exact(4 * len).enumerate() {
        let (d0, d1, d2, d3) = (
            &d[..len],
            &d[len..2 * len],
            &d[2 * len..3 * len],
            &d[3 * len..],
        );
        let (even, odd) = columns.split_at_mut(len);
        lanes::map3(even, d0, d1, d2, |a, b, c| a + b + c + bias);
        lanes::map3(odd, d1, d2, d3, |b, c, d| b - c - d + bias);
        for r in 0..n {
            let y = 2 * (rows.start + r) + i;
            if y < h {
                let (e, o) = (&even[r * tw..][..tw], &odd[r * tw..][..tw]);
                merge_row(&mut plane[y * w..][..w], e, o);
            }
        }
    }
}

/// row[2k] = e[k], row[2k + 1] = o[k]: the inverse of [`split_row`] (o's last is dropped
/// for odd w).
#[inline(always)]
fn merge_row(row: &mut [f32], e: &[f32], o: &[f32]) {
    for (pair, (e, o)) in row.chunks_exact_mut(2).zip(e.iter().zip(o)) {
        pair[0] = *e;
        pair[1] = *o;
    }
    if row.len() % 2 == 1 {
        row[row.len() - 1] = e[row.len() / 2];
    }
}

/// dw [cout, cin, 3, 3] = Σ_n ∂/∂g of Σ dy_n·conv(x_n, g): per group of `group` images the
/// sum dU [16, cout, cin] of the tiles' (A·dy·Aᵀ)_ξ · V_ξᵀ, the groups added in order (the result
/// does not depend on the thread count), then dg = Gᵀ·dU·G.
pub fn grad_weight(s: ConvShape, dy: &[f32], x: &[f32], dw: &mut [f32], group: usize) {
    let (hw, plan) = (s.h * s.w, Plan::new(s));
    let pairs = s.cout * s.cin;
    let partial = par::map(s.batch.div_ceil(group), |g| {
        let mut du = vec![0.0f32; 16 * pairs];
        let images = g * group..((g + 1) * group).min(s.batch);
        let (x_g, dy_g) = (
            &x[images.start * s.cin * hw..],
            &dy[images.start * s.cout * hw..],
        );
        // blocks within this group: whole images together where they fit
        let mut n = 0;
        while n < images.len() {
            let count = plan.images_per_item.min(images.len() - n);
            let (x_item, dy_item) = (&x_g[n * s.cin * hw..], &dy_g[n * s.cout * hw..]);
            for block in plan.blocks(count) {
                let tiles = plan.tiles(&block);
                let scratch_len = 16 * (s.cin + s.cout) * tiles + plan.plane_scratch();
                par::with_scratch(scratch_len, |buf| {
                    let (v, rest) = buf.split_at_mut(16 * s.cin * tiles);
                    let (mdy, scratch) = rest.split_at_mut(16 * s.cout * tiles);
                    transform_block(s, &plan, &block, x_item, s.cin, v, scratch, input_plane);
                    transform_block(s, &plan, &block, dy_item, s.cout, mdy, scratch, grad_plane);
                    // dU_ξ [cout, cin] += Mdy_ξ [cout, tiles] · V_ξᵀ [tiles, cin]
                    for xi in 0..16 {
                        let (mdy_xi, v_xi) =
                            (&mdy[xi * s.cout * tiles..], &v[xi * s.cin * tiles..]);
                        let du_xi = &mut du[xi * pairs..];
                        let dims = (s.cout, s.cin, tiles);
                        gemm::matmul(du_xi, mdy_xi, v_xi, dims, false, true, true);
                    }
                });
            }
            n += count;
        }
        du
    });
    let du = super::sum_groups(partial, 16 * pairs);
    // dg = Gᵀ·dU·G: (p0, p1, p2, p3) → (p0 + (p1+p2)/2, (p1−p2)/2, (p1+p2)/2 + p3) both ways
    let adjoint = |p: [f32; 4]| {
        let half_sum = (p[1] + p[2]) * 0.5;
        [p[0] + half_sum, (p[1] - p[2]) * 0.5, half_sum + p[3]]
    };
    par::for_each_chunk(&mut dw[..pairs * 9], FILTERS_PER_TASK * 9, |t, chunk| {
        for (k, g) in chunk.chunks_exact_mut(9).enumerate() {
            let pair = t * FILTERS_PER_TASK + k;
            let du_pair: [[f32; 4]; 4] =
                std::array::from_fn(|i| std::array::from_fn(|j| du[(i * 4 + j) * pairs + pair]));
            let cols: [[f32; 3]; 4] = std::array::from_fn(|j| adjoint(du_pair.map(|row| row[j])));
            for (kh, taps) in g.chunks_exact_mut(3).enumerate() {
                taps.copy_from_slice(&adjoint(cols.map(|c| c[kh])));
            }
        }
    });
}

/// (A·dy·Aᵀ)_ξ of the tiles of tile rows `rows` of a gradient plane [h, w] (dy_tile: the 2×2
/// gradient of a tile's outputs, 0 past an odd edge) to out[ξ·stride + r·tiles_w + tx]: with A = [1 0; 1 1; 1 −1; 0 −1], a pair (a, b) becomes
/// (a, a + b, a − b, −b), down then across. As in [`input_plane`], the rows are split into even
/// and odd columns and kept apart by parity first, so each step is one loop over the block.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn grad_plane(
    plane: &[f32],
    (h, w): (usize, usize),
    rows: Range<usize>,
    scratch: &mut [f32],
    out: &mut [f32],
    stride: usize,
) {
    let (tw, n) = (w.div_ceil(2), rows.len());
    let len = n * tw;
    let (split, rest) = scratch.split_at_mut(4 * len); // [row parity][even, odd][n][tw]
    let (down_e, rest) = rest.split_at_mut(len);
    let down_o = &mut rest[..len];
    for q in 0..2 * n {
        // rows in the plane's order, each to its parity class
        let (c, k) = (q % 2, q / 2);
        let (even, odd) = split[2 * c * len..][..2 * len].split_at_mut(len);
        let (e, o) = (&mut even[k * tw..][..tw], &mut odd[k * tw..][..tw]);
        let y = 2 * rows.start + q;
        if y < h {
            split_row(&plane[y * w..][..w], e, o);
        } else {
            e.fill(0.0); // past an odd bottom edge
            o.fill(0.0);
        }
    }
    let (e0, o0) = (&split[..len], &split[len..2 * len]);
    let (e1, o1) = (&split[2 * len..3 * len], &split[3 * len..]);
    for i in 0..4 {
        let (down_e, down_o): (&[f32], &[f32]) = match i {
            0 => (e0, o0),
            1 => {
                lanes::map2(down_e, e0, e1, |a, b| a + b);
                lanes::map2(down_o, o0, o1, |a, b| a + b);
                (down_e, down_o)
            }
            2 => {
                lanes::map2(down_e, e0, e1, |a, b| a - b);
                lanes::map2(down_o, o0, o1, |a, b| a - b);
                (down_e, down_o)
            }
            _ => {
                lanes::map1(down_e, e1, |b| -b);
                lanes::map1(down_o, o1, |b| -b);
                (down_e, down_o)
            }
        };
        for j in 0..4 {
            let m = &mut out[(i * 4 + j) * stride..][..len];
            match j {
                0 => m.copy_from_slice(down_e),
                1 => lanes::map2(m, down_e, down_o, |a, b| a + b),
                2 => lanes::map2(m, down_e, down_o, |a, b| a - b),
                _ => lanes::map1(m, down_o, |b| -b),
            }
        }
    }
}

/// Element-wise loops over whole blocks (long enough for the compiler's vector loops).
mod lanes {
    /// d[k] = f(a[k])
    #[inline(always)]
    pub fn map1(d: &mut [f32], a: &[f32], f: impl Fn(f32) -> f32) {
        let n = d.len();
        d.iter_mut().zip(&a[..n]).for_each(|(d, &a)| *d = f(a));
    }

    /// d[k] = f(a[k], b[k])
    #[inline(always)]
    pub fn map2(d: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
        let n = d.len();
        for (d, (&a, &b)) in d.iter_mut().zip(a[..n].iter().zip(&b[..n])) {
            *d = f(a, b);
        }
    }

    /// d[k] = f(a[k], b[k], c[k])
    #[inline(always)]
    pub fn map3(d: &mut [f32], a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) {
        let n = d.len();
        let abc = a[..n].iter().zip(&b[..n]).zip(&c[..n]);
        for (d, ((&a, &b), &c)) in d.iter_mut().zip(abc) {
            *d = f(a, b, c);
        }
    }
}
