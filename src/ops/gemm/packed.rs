//! The wasm build's matrix multiply: packed panels and a 4×8 register tile, in plain Rust that
//! LLVM turns into WebAssembly SIMD (128-bit lanes: two vectors a row of the tile). Natively the
//! same code runs in the tests only (faer multiplies there).
//!
//! c [m, n] (+)= a [m, k] · b [k, n], any row strides, either operand transposed:
//!
//! ```text
//!   a → panels of MR = 4 rows     [⌈m/4⌉][k][4], zero past m
//!   b → panels of NR = 8 columns  [⌈n/8⌉][k][8], zero past n
//!   every (b panel, a panel) pair: a 4×8 tile of c in 8 vectors over the k steps; each step
//!   loads b's 8 values (2 vector loads), splats a's 4 (load-splats, no lane shuffle) and does
//!   8 multiply-adds; the tile's part inside c is then written (or added)
//! ```
//!
//! Why this shape: 11 of x86's 16 vector registers are live, so nothing spills; each operand is
//! packed once a call by row copies (the Winograd GEMMs are small, k = 64–128, so a copy that
//! costs more than a few cycles an element would cost as much as the multiplies).
//! matrixmultiply's 8×8 wasm kernel, used before, keeps 16 accumulators and splats a by lane
//! shuffles (a shuffle per multiply-add, all on one port). Relaxed SIMD's fused multiply-add
//! (f32x4_relaxed_madd) was measured too: 1.04× on AMD EPYC (Zen runs a separate multiply and
//! add on other pipes), not worth a second module for the browsers without it.
//!
//! Each element of c sums its k products in order from 0, then adds to c (with `accumulate`):
//! the result depends on the shapes only, not on threads or alignment.

use std::cell::RefCell;

/// Rows of a register tile.
const MR: usize = 4;
/// Columns of a register tile (two 128-bit vectors).
const NR: usize = 8;

thread_local! {
    /// The packed a and b, reused across calls (no allocation per multiply).
    static PACKED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// c [m, n] (+)= a·b as in [`super::matmul_strided`]: `lda`/`ldb`/`ldc` the row strides of the
/// row-major matrices as stored, `a_transposed`/`b_transposed` whether they hold aᵀ/bᵀ.
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    (m, n, k): (usize, usize, usize),
    (ldc, lda, ldb): (usize, usize, usize),
    a_transposed: bool,
    b_transposed: bool,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // an empty sum
        if !accumulate {
            (0..m).for_each(|i| c[i * ldc..][..n].fill(0.0));
        }
        return;
    }
    PACKED.with(|packed| {
        let (pa, pb) = &mut *packed.borrow_mut();
        // a's rows are b's columns of the transposed product: one packing routine for both
        pack::<MR>(pa, a, lda, m, k, a_transposed);
        pack::<NR>(pb, b, ldb, n, k, !b_transposed);
        for (jp, b_panel) in pb.chunks_exact(k * NR).enumerate() {
            let j0 = jp * NR;
            let cols = NR.min(n - j0);
            for (ip, a_panel) in pa.chunks_exact(k * MR).enumerate() {
                let i0 = ip * MR;
                let t = tile(a_panel, b_panel);
                for (i, row) in t.iter().enumerate().take(MR.min(m - i0)) {
                    let c_row = &mut c[(i0 + i) * ldc + j0..][..cols];
                    match (accumulate, <&mut [f32; NR]>::try_from(&mut *c_row)) {
                        // a whole row of the tile: a fixed-size copy (vector stores, not a
                        // call to memcpy)
                        (false, Ok(whole)) => *whole = *row,
                        (false, Err(_)) => c_row.copy_from_slice(&row[..cols]),
                        (true, _) => {
                            for (cij, &v) in c_row.iter_mut().zip(row) {
                                *cij += v;
                            }
                        }
                    }
                }
            }
        }
    });
}

/// `lines` lines of length k from `x` (rows `ld` apart) into panels of W lines: panel p holds
/// element r of line p·W + l at [p][r][l], zero past the last line. A line is a column of the
/// stored matrix (`lines_are_columns`: b as stored, or a stored transposed), copied W at a time
/// along a row, or else a row, W rows read side by side. W is a constant so that a whole
/// panel's step is a fixed-size copy (two vector loads and stores), not a call to memcpy.
fn pack<const W: usize>(
    out: &mut Vec<f32>,
    x: &[f32],
    ld: usize,
    lines: usize,
    k: usize,
    lines_are_columns: bool,
) {
    // every value is written below (padding included): no clearing first
    out.resize(lines.div_ceil(W) * k * W, 0.0);
    for (p, panel) in out.chunks_exact_mut(k * W).enumerate() {
        let (l0, count) = (p * W, W.min(lines - p * W));
        let steps = panel.chunks_exact_mut(W);
        match (lines_are_columns, count == W) {
            (true, true) => {
                // step r of the panel is x[r][l0 .. l0+W]
                for (r, step) in steps.enumerate() {
                    let src: &[f32; W] = x[r * ld + l0..][..W].try_into().expect("W values");
                    step.copy_from_slice(src);
                }
            }
            (false, true) => {
                // step r of the panel is x[l0 + l][r] for l in 0..W
                let rows: [&[f32]; W] = std::array::from_fn(|l| &x[(l0 + l) * ld..][..k]);
                for (r, step) in steps.enumerate() {
                    for (v, row) in step.iter_mut().zip(&rows) {
                        *v = row[r];
                    }
                }
            }
            // the last panel, part lines and part zeros
            (_, false) => {
                for (r, step) in steps.enumerate() {
                    for (l, v) in step.iter_mut().enumerate() {
                        *v = match (l < count, lines_are_columns) {
                            (false, _) => 0.0,
                            (true, true) => x[r * ld + l0 + l],
                            (true, false) => x[(l0 + l) * ld + r],
                        };
                    }
                }
            }
        }
    }
}

/// The 4×8 tile a_panel [k][4] · b_panel [k][8], summed over k in order. Fixed-size arrays and
/// chunks_exact let LLVM keep `acc` in 8 vector registers and drop every bound check.
#[inline(always)]
fn tile(a_panel: &[f32], b_panel: &[f32]) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    for (a, b) in a_panel.chunks_exact(MR).zip(b_panel.chunks_exact(NR)) {
        let a: &[f32; MR] = a.try_into().expect("chunks of MR");
        let b: &[f32; NR] = b.try_into().expect("chunks of NR");
        for (row, &ai) in acc.iter_mut().zip(a) {
            for (cij, &bj) in row.iter_mut().zip(b) {
                *cij += ai * bj;
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// c (+)= a·b from the definition, in f64.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        c: &mut [f32],
        a: &[f32],
        b: &[f32],
        (m, n, k): (usize, usize, usize),
        (ldc, lda, ldb): (usize, usize, usize),
        (ta, tb): (bool, bool),
        accumulate: bool,
    ) {
        for i in 0..m {
            for j in 0..n {
                let mut s = if accumulate {
                    c[i * ldc + j] as f64
                } else {
                    0.0
                };
                for p in 0..k {
                    let x = if ta { a[p * lda + i] } else { a[i * lda + p] };
                    let y = if tb { b[j * ldb + p] } else { b[p * ldb + j] };
                    s += x as f64 * y as f64;
                }
                c[i * ldc + j] = s as f32;
            }
        }
    }

    /// Claim: at odd sizes (tile edges in m and n, k = 0, 1 and above 256), in
    /// every layout, with row strides wider than the rows, the packed multiply matches the
    /// definition within 1e-5 relative to the sum of |products| (f32 rounding of a k-term sum),
    /// and writes nothing outside c's m × n view.
    #[test]
    fn packed_matches_the_definition_at_odd_sizes() {
        let mut seed = 0x9e37_79b9u32;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32) * 2.0 - 1.0
        };
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 2),
            (4, 8, 7),
            (5, 9, 0),
            (13, 17, 300),
            (67, 70, 33),
            (130, 3, 513),
            (2, 200, 257),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for accumulate in [false, true] {
                    let pad = 3;
                    let (ar, ac) = if ta { (k, m) } else { (m, k) };
                    let (br, bc) = if tb { (n, k) } else { (k, n) };
                    let (lda, ldb, ldc) = (ac + pad, bc + pad, n + pad);
                    let a: Vec<f32> = (0..ar * lda).map(|_| rand()).collect();
                    let b: Vec<f32> = (0..br * ldb).map(|_| rand()).collect();
                    let c0: Vec<f32> = (0..m * ldc).map(|_| rand()).collect();
                    let (mut got, mut want) = (c0.clone(), c0.clone());
                    let dims = (m, n, k);
                    let ld = (ldc, lda, ldb);
                    matmul_strided(&mut got, &a, &b, dims, ld, ta, tb, accumulate);
                    reference(&mut want, &a, &b, dims, ld, (ta, tb), accumulate);
                    for i in 0..m {
                        for j in 0..ldc {
                            let (g, w) = (got[i * ldc + j], want[i * ldc + j]);
                            let at = format!("{m}×{n}×{k} t{ta}{tb} acc {accumulate} ({i},{j})");
                            if j >= n {
                                assert_eq!(g, c0[i * ldc + j], "{at}: outside c was written");
                            } else {
                                let scale = k as f32 + 2.0;
                                assert!((g - w).abs() <= 1e-5 * scale, "{at}: {g} vs {w}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Claim: on quantized values (small multiples of powers of two, the Winograd path's
    /// inputs) the packed multiply is exact: bit-identical to the f64 definition.
    #[test]
    fn packed_is_exact_on_quantized_values() {
        let (m, n, k) = (37, 45, 300);
        let q = |i: usize, s: usize| ((i * s) % 15) as f32 / 8.0 - 0.875;
        let a: Vec<f32> = (0..m * k).map(|i| q(i, 7)).collect();
        let b: Vec<f32> = (0..k * n).map(|i| q(i, 11)).collect();
        let (mut got, mut want) = (vec![0.0; m * n], vec![0.0; m * n]);
        matmul_strided(&mut got, &a, &b, (m, n, k), (n, k, n), false, false, false);
        reference(
            &mut want,
            &a,
            &b,
            (m, n, k),
            (n, k, n),
            (false, false),
            false,
        );
        assert_eq!(got, want);
    }
}
