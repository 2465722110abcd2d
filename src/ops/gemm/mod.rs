//! The CPU backend's matrix multiply (no WGSL twin: the GPU's convolutions are implicit GEMMs
//! in shaders/conv.wgsl). Natively faer, whose kernels are chosen at run time for the CPU
//! (AVX-512, AVX2+FMA, NEON, …); in wasm, [`packed`]'s panels and 4×8 tile (SIMD128).
//! Single-threaded: the callers parallelize over images, and the result does not depend on
//! the thread count.

/// The wasm build's multiply (tested natively too).
pub mod packed;

/// c [m, n] = a·b, or c += a·b with `accumulate`; all row-major. `a` is [m, k], or [k, m] with
/// `a_transposed`; `b` is [k, n], or [n, k] with `b_transposed`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    (m, n, k): (usize, usize, usize),
    a_transposed: bool,
    b_transposed: bool,
    accumulate: bool,
) {
    let row_len = |t: bool, r: usize, c: usize| if t { r } else { c };
    let strides = (n, row_len(a_transposed, m, k), row_len(b_transposed, k, n));
    matmul_strided(
        c,
        a,
        b,
        (m, n, k),
        strides,
        a_transposed,
        b_transposed,
        accumulate,
    );
}

/// [`matmul`] on matrices whose rows lie `strides` = (c's, a's, b's) elements apart (row-major
/// with a leading dimension: a block of columns of a wider matrix, say).
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
    // the elements a view of rows × cols with this row stride spans
    let span = |rows: usize, cols: usize, ld: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * ld + cols
        }
    };
    let (ar, ac) = if a_transposed { (k, m) } else { (m, k) };
    let (br, bc) = if b_transposed { (n, k) } else { (k, n) };
    let (a, b) = (&a[..span(ar, ac, lda)], &b[..span(br, bc, ldb)]);
    let c = &mut c[..span(m, n, ldc)];
    #[cfg(not(target_arch = "wasm32"))]
    {
        use faer::{Accum, MatMut, MatRef, Par};
        let a = MatRef::from_row_major_slice_with_stride(a, ar, ac, lda);
        let a = if a_transposed { a.transpose() } else { a };
        let b = MatRef::from_row_major_slice_with_stride(b, br, bc, ldb);
        let b = if b_transposed { b.transpose() } else { b };
        // row-major c as the transpose of a column-major view: faer 0.24's
        // from_row_major_slice_with_stride_mut swaps the two strides (it writes out of bounds)
        let c = MatMut::from_column_major_slice_with_stride_mut(c, n, m, ldc).transpose_mut();
        let beta = if accumulate {
            Accum::Add
        } else {
            Accum::Replace
        };
        faer::linalg::matmul::matmul(c, beta, a, b, 1.0f32, Par::Seq);
    }
    #[cfg(target_arch = "wasm32")]
    packed::matmul_strided(
        c,
        a,
        b,
        (m, n, k),
        (ldc, lda, ldb),
        a_transposed,
        b_transposed,
        accumulate,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_matches_the_definition() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        let t = |x: &[f32], r: usize, c: usize| -> Vec<f32> {
            (0..c * r).map(|i| x[(i % r) * c + i / r]).collect()
        };
        let mut want = vec![1.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] += (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
            }
        }
        let (at, bt) = (t(&a, m, k), t(&b, k, n));
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut c = vec![1.0f32; m * n];
            let aa = if ta { &at } else { &a };
            let bb = if tb { &bt } else { &b };
            matmul(&mut c, aa, bb, (m, n, k), ta, tb, true);
            for (g, w) in c.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{ta} {tb}: {g} vs {w}");
            }
            matmul(&mut c, aa, bb, (m, n, k), ta, tb, false);
            for (g, w) in c.iter().zip(&want) {
                assert!((g - (w - 1.0)).abs() < 1e-5, "replace {ta} {tb}");
            }
        }
    }

    #[test]
    fn strided_views_read_and_write_only_their_columns() {
        // c [m, n] = a [m, k] · b [k, n] where each lives in columns 2.. of a wider matrix
        let (m, n, k, pad) = (4, 6, 5, 3);
        let wide = |r: usize, c: usize, seed: f32| -> Vec<f32> {
            (0..r * (c + pad))
                .map(|i| (i as f32 * seed).sin())
                .collect()
        };
        let (a, b) = (wide(m, k, 0.37), wide(k, n, 0.91));
        let at = |i: usize, p: usize| a[i * (k + pad) + 2 + p];
        let bt = |p: usize, j: usize| b[p * (n + pad) + 2 + j];
        let mut c = vec![7.0f32; m * (n + pad)];
        let ld = (n + pad, k + pad, n + pad);
        matmul_strided(
            &mut c[2..],
            &a[2..],
            &b[2..],
            (m, n, k),
            ld,
            false,
            false,
            false,
        );
        for i in 0..m {
            for j in 0..n + pad {
                let got = c[i * (n + pad) + j];
                if (2..n + 2).contains(&j) {
                    let want: f32 = (0..k).map(|p| at(i, p) * bt(p, j - 2)).sum();
                    assert!((got - want).abs() < 1e-5, "{i},{j}: {got} vs {want}");
                } else {
                    assert_eq!(got, 7.0, "{i},{j} outside the view was written");
                }
            }
        }
    }
}
