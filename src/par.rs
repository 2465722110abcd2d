//! Data parallelism that degrades to plain loops on wasm (no threads in the browser here).

#[cfg(not(target_arch = "wasm32"))]
use rayon::prelude::*;

/// Calls `f(i, chunk)` for each `chunk`-sized piece of `data`, in parallel natively.
pub fn for_each_chunk<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let chunk = chunk.max(1);
    #[cfg(not(target_arch = "wasm32"))]
    data.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| f(i, c));
    #[cfg(target_arch = "wasm32")]
    data.chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| f(i, c));
}

/// `(0..n).map(f).collect()`, in parallel natively; the order of the results is always 0..n.
pub fn map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(not(target_arch = "wasm32"))]
    return (0..n).into_par_iter().map(f).collect();
    #[cfg(target_arch = "wasm32")]
    return (0..n).map(f).collect();
}
