//! The CPU backend's matrix multiply (no WGSL twin: the GPU's convolutions are implicit GEMMs
//! in shaders/conv.wgsl). Natively faer, whose kernels are chosen at run time for the CPU
//! (AVX-512, AVX2+FMA, NEON, …); in wasm, matrixmultiply through ndarray (SIMD128).
//! Single-threaded: the callers parallelize over images, and the result does not depend on
//! the thread count.

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
    #[cfg(not(target_arch = "wasm32"))]
    {
        use faer::{Accum, MatMut, MatRef, Par};
        let a = if a_transposed {
            MatRef::from_row_major_slice(&a[..k * m], k, m).transpose()
        } else {
            MatRef::from_row_major_slice(&a[..m * k], m, k)
        };
        let b = if b_transposed {
            MatRef::from_row_major_slice(&b[..n * k], n, k).transpose()
        } else {
            MatRef::from_row_major_slice(&b[..k * n], k, n)
        };
        let c = MatMut::from_row_major_slice_mut(&mut c[..m * n], m, n);
        let beta = if accumulate {
            Accum::Add
        } else {
            Accum::Replace
        };
        faer::linalg::matmul::matmul(c, beta, a, b, 1.0f32, Par::Seq);
    }
    #[cfg(target_arch = "wasm32")]
    {
        fn view(d: &[f32], r: usize, c: usize, t: bool) -> ndarray::ArrayView2<'_, f32> {
            let v = ArrayView2::from_shape((r, c), &d[..r * c]).expect("shape checked by caller");
            if t {
                v.reversed_axes()
            } else {
                v
            }
        }
        use ndarray::linalg::general_mat_mul;
        use ndarray::{ArrayView2, ArrayViewMut2};
        let a = if a_transposed {
            view(a, k, m, true)
        } else {
            view(a, m, k, false)
        };
        let b = if b_transposed {
            view(b, n, k, true)
        } else {
            view(b, k, n, false)
        };
        let mut c =
            ArrayViewMut2::from_shape((m, n), &mut c[..m * n]).expect("shape checked by caller");
        general_mat_mul(1.0, &a, &b, if accumulate { 1.0 } else { 0.0 }, &mut c);
    }
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
}
