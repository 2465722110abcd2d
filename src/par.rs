//! Data parallelism with rayon: natively, and in the page's threaded wasm module (built with the
//! atomics target feature: web/pkg-mt/, rayon over Web Workers); plain loops in the
//! single-threaded wasm module.

#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
use rayon::prelude::*;

/// Calls `f(i, chunk)` for each `chunk`-sized piece of `data`, in parallel natively.
pub fn for_each_chunk<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let chunk = chunk.max(1);
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    data.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| f(i, c));
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    data.chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| f(i, c));
}

/// Calls `f(i, a_chunk, b_chunk)` for the i-th `ca`-sized piece of `a` and `cb`-sized piece of
/// `b` together (as many pieces in each), in parallel natively.
pub fn for_each_chunk_pair<T: Send, U: Send>(
    a: &mut [T],
    ca: usize,
    b: &mut [U],
    cb: usize,
    f: impl Fn(usize, &mut [T], &mut [U]) + Sync + Send,
) {
    let (ca, cb) = (ca.max(1), cb.max(1));
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    a.par_chunks_mut(ca)
        .zip(b.par_chunks_mut(cb))
        .enumerate()
        .for_each(|(i, (x, y))| f(i, x, y));
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    a.chunks_mut(ca)
        .zip(b.chunks_mut(cb))
        .enumerate()
        .for_each(|(i, (x, y))| f(i, x, y));
}

/// `f(i, chunk)` for each `chunk`-sized piece of `data`, collected in order; in parallel
/// natively.
pub fn map_chunks<T: Send, R: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) -> R + Sync + Send,
) -> Vec<R> {
    let chunk = chunk.max(1);
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    return data
        .par_chunks_mut(chunk)
        .enumerate()
        .map(|(i, c)| f(i, c))
        .collect();
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    return data
        .chunks_mut(chunk)
        .enumerate()
        .map(|(i, c)| f(i, c))
        .collect();
}

/// `(0..n).map(f).collect()`, in parallel natively; the order of the results is always 0..n.
pub fn map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    return (0..n).into_par_iter().map(f).collect();
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    return (0..n).map(f).collect();
}

thread_local! {
    /// Each thread's scratch, kept between calls: a fresh buffer per image (an im2col matrix,
    /// say) costs a zeroed mapping and its page faults, as slow as the work done in it.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Calls `f` with this thread's scratch of `len` floats (contents unspecified). Not reentrant:
/// `f` must not call it again, nor start parallel work (this thread could pick up a task that
/// does); either would panic on the second borrow.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < len {
            c.resize(len, 0.0);
        }
        f(&mut c[..len])
    })
}
