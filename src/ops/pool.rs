//! Max pool 2×2 stride 2 (floor) and global average pool — shaders/pool.wgsl. Max pool: the
//! first maximum of each window in row-major order wins; backward routes the gradient to it
//! alone. Global average pool: each plane's values summed one by one in pixel order, then
//! multiplied by the f32 1/(h·w) ([`global_scale`]), the same arithmetic on both backends, so
//! they agree bit for bit; backward spreads dy·(1/(h·w)) over the plane.

use crate::backend::{Buf, Family, PoolShape};
use crate::gpu::{grid_1d, shaders, Access, GpuBackend, Kernel, WG_CONSTANT};
use crate::par;

/// Which of a window's four values (row-major a, b / c, d) is its first maximum, as 0..3.
#[inline(always)]
fn first_max(a: f32, b: f32, c: f32, d: f32) -> (u32, f32) {
    // compare-and-select only (no branches), so rows of windows vectorize
    let (mut arg, mut m) = (0u32, a);
    if b > m {
        (arg, m) = (1, b);
    }
    if c > m {
        (arg, m) = (2, c);
    }
    if d > m {
        (arg, m) = (3, d);
    }
    (arg, m)
}

/// One plane: y [h/2, w/2] = max of each 2×2 window of x [h, w].
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(crate) fn forward_plane(x: &[f32], h: usize, w: usize, y: &mut [f32]) {
    let ow = w / 2;
    for (oy, out) in y.chunks_exact_mut(ow.max(1)).take(h / 2).enumerate() {
        let (r0, _) = x[2 * oy * w..][..2 * ow].as_chunks::<2>();
        let (r1, _) = x[(2 * oy + 1) * w..][..2 * ow].as_chunks::<2>();
        for ((o, p), q) in out.iter_mut().zip(r0).zip(r1) {
            *o = first_max(p[0], p[1], q[0], q[1]).1;
        }
    }
}

/// One plane: dy [h/2, w/2] routed to each window's first maximum in x [h, w]; zero elsewhere.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(crate) fn backward_plane(x: &[f32], dy: &[f32], h: usize, w: usize, dx: &mut [f32]) {
    let (oh, ow) = (h / 2, w / 2);
    // rows and columns past the last whole window (odd sizes) get no gradient
    dx[2 * oh * w..].fill(0.0);
    for oy in 0..oh {
        let g = &dy[oy * ow..(oy + 1) * ow];
        let (top, bottom) = dx[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
        top[2 * ow..].fill(0.0);
        bottom[2 * ow..].fill(0.0);
        let (d0, _) = top[..2 * ow].as_chunks_mut::<2>();
        let (d1, _) = bottom[..2 * ow].as_chunks_mut::<2>();
        let (r0, _) = x[2 * oy * w..][..2 * ow].as_chunks::<2>();
        let (r1, _) = x[(2 * oy + 1) * w..][..2 * ow].as_chunks::<2>();
        for ((((p, q), o0), o1), &gv) in r0.iter().zip(r1).zip(d0).zip(d1).zip(g) {
            let (arg, _) = first_max(p[0], p[1], q[0], q[1]);
            let on = |k: u32| (arg == k) as u32 as f32 * gv;
            *o0 = [on(0), on(1)];
            *o1 = [on(2), on(3)];
        }
    }
}

/// [`forward_plane`] that also records which of each window's four values was its first
/// maximum (0..3, row-major) in `arg [h/2, w/2]`, for [`backward_plane_from_argmax`].
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(crate) fn forward_plane_argmax(x: &[f32], h: usize, w: usize, y: &mut [f32], arg: &mut [u8]) {
    let ow = w / 2;
    let rows = y
        .chunks_exact_mut(ow.max(1))
        .zip(arg.chunks_exact_mut(ow.max(1)));
    for (oy, (out, out_arg)) in rows.take(h / 2).enumerate() {
        let (r0, _) = x[2 * oy * w..][..2 * ow].as_chunks::<2>();
        let (r1, _) = x[(2 * oy + 1) * w..][..2 * ow].as_chunks::<2>();
        for (((o, a), p), q) in out.iter_mut().zip(out_arg).zip(r0).zip(r1) {
            let (k, m) = first_max(p[0], p[1], q[0], q[1]);
            (*o, *a) = (m, k as u8);
        }
    }
}

/// [`backward_plane`] from the window maxima recorded by [`forward_plane_argmax`] instead of
/// the activations: the same values, bit for bit.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(crate) fn backward_plane_from_argmax(
    arg: &[u8],
    dy: &[f32],
    h: usize,
    w: usize,
    dx: &mut [f32],
) {
    let (oh, ow) = (h / 2, w / 2);
    dx[2 * oh * w..].fill(0.0);
    for oy in 0..oh {
        let (g, a) = (&dy[oy * ow..(oy + 1) * ow], &arg[oy * ow..(oy + 1) * ow]);
        let (top, bottom) = dx[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
        top[2 * ow..].fill(0.0);
        bottom[2 * ow..].fill(0.0);
        // as backward_plane: a product with 0 or 1, so a negative gradient leaves −0. Four
        // windows at a time, the indices compared as floats: whole vectors in wasm (its byte
        // compares would be taken apart lane by lane)
        let on = |k: f32, j: f32, gv: f32| (k == j) as u32 as f32 * gv;
        let (g4, g_tail) = g.as_chunks::<4>();
        let (a4, a_tail) = a.as_chunks::<4>();
        let (t8, t_tail) = top[..2 * ow].as_chunks_mut::<8>();
        let (b8, b_tail) = bottom[..2 * ow].as_chunks_mut::<8>();
        for (((t, b), gv), k) in t8.iter_mut().zip(b8).zip(g4).zip(a4) {
            let k = k.map(|v| v as f32);
            for i in 0..4 {
                t[2 * i] = on(k[i], 0.0, gv[i]);
                t[2 * i + 1] = on(k[i], 1.0, gv[i]);
                b[2 * i] = on(k[i], 2.0, gv[i]);
                b[2 * i + 1] = on(k[i], 3.0, gv[i]);
            }
        }
        let (t2, _) = t_tail.as_chunks_mut::<2>();
        let (b2, _) = b_tail.as_chunks_mut::<2>();
        for (((o0, o1), &gv), &k) in t2.iter_mut().zip(b2).zip(g_tail).zip(a_tail) {
            let k = k as f32;
            *o0 = [on(k, 0.0, gv), on(k, 1.0, gv)];
            *o1 = [on(k, 2.0, gv), on(k, 3.0, gv)];
        }
    }
}

/// y [planes, h/2, w/2] = max of each 2×2 window of x [planes, h, w].
pub fn forward(s: PoolShape, x: &[f32], y: &mut [f32]) {
    let (oh, ow) = (s.out_h(), s.out_w());
    if oh * ow == 0 {
        return;
    }
    let hw = s.h * s.w;
    par::for_each_chunk(&mut y[..s.y_len()], oh * ow, |p, out| {
        forward_plane(&x[p * hw..(p + 1) * hw], s.h, s.w, out);
    });
}

/// dx [planes, h, w]: dy routed to each window's first maximum in x, zero elsewhere.
pub fn backward(s: PoolShape, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (oh, ow) = (s.out_h(), s.out_w());
    let hw = s.h * s.w;
    par::for_each_chunk(&mut dx[..s.x_len()], hw, |p, out| {
        backward_plane(&x[p * hw..(p + 1) * hw], &dy[p * oh * ow..], s.h, s.w, out);
    });
}

/// The factor of the global average pool, 1/(h·w) rounded to f32 once (in Rust, for both
/// backends: the GPU gets it in its uniform).
pub fn global_scale(s: PoolShape) -> f32 {
    1.0 / (s.h * s.w) as f32
}

/// Planes of the global average pool per parallel task.
const GLOBAL_PLANES_PER_TASK: usize = 64;

/// y [planes] = (Σ_p x[plane, p], summed in pixel order p = 0, 1, …) · [`global_scale`], with
/// x [planes, h, w]. A plain sequential sum (the compiler does not reorder f32 additions), as
/// the GPU's one thread per plane computes it.
pub fn global_forward(s: PoolShape, x: &[f32], y: &mut [f32]) {
    let (hw, scale) = (s.h * s.w, global_scale(s));
    par::for_each_chunk(&mut y[..s.planes], GLOBAL_PLANES_PER_TASK, |t, out| {
        let first = t * GLOBAL_PLANES_PER_TASK;
        for (i, o) in out.iter_mut().enumerate() {
            let plane = &x[(first + i) * hw..(first + i + 1) * hw];
            let mut sum = 0.0f32;
            for &v in plane {
                sum += v;
            }
            *o = sum * scale;
        }
    });
}

/// dx [planes, h, w] = dy[plane] · [`global_scale`] at every pixel of the plane; dy [planes].
pub fn global_backward(s: PoolShape, dy: &[f32], dx: &mut [f32]) {
    let (hw, scale) = (s.h * s.w, global_scale(s));
    if hw == 0 {
        return;
    }
    par::for_each_chunk(&mut dx[..s.x_len()], hw, |p, out| out.fill(dy[p] * scale));
}

// ---- GPU ----------------------------------------------------------------------------------

const RW: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];
pub(crate) static FORWARD: Kernel = Kernel {
    name: "pool_forward",
    family: Family::Pooling,
    shader: &shaders::POOL,
    entry: "pool_forward",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static BACKWARD: Kernel = Kernel {
    name: "pool_backward",
    family: Family::Pooling,
    shader: &shaders::POOL,
    entry: "pool_backward",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static GLOBAL_FORWARD: Kernel = Kernel {
    name: "global_pool_forward",
    family: Family::Pooling,
    shader: &shaders::POOL,
    entry: "global_pool_forward",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static GLOBAL_BACKWARD: Kernel = Kernel {
    name: "global_pool_backward",
    family: Family::Pooling,
    shader: &shaders::POOL,
    entry: "global_pool_backward",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};

/// The uniform parameters of pool.wgsl — the twin of its `struct Params`. `scale` is
/// [`global_scale`] (the max pool does not read it).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    planes: u32,
    h: u32,
    w: u32,
    scale: f32,
}

fn params(s: PoolShape) -> Params {
    Params {
        planes: s.planes as u32,
        h: s.h as u32,
        w: s.w as u32,
        scale: global_scale(s),
    }
}

pub(crate) fn gpu_forward(g: &mut GpuBackend, s: PoolShape, x: Buf, y: Buf) {
    g.dispatch(&FORWARD, &params(s), &[x, x, y], grid_1d(s.y_len()));
}

pub(crate) fn gpu_backward(g: &mut GpuBackend, s: PoolShape, x: Buf, dy: Buf, dx: Buf) {
    g.dispatch(&BACKWARD, &params(s), &[x, dy, dx], grid_1d(s.x_len()));
}

/// y [planes] = the mean of each plane of x [planes, h, w]: one thread per plane.
pub(crate) fn gpu_global_forward(g: &mut GpuBackend, s: PoolShape, x: Buf, y: Buf) {
    g.dispatch(&GLOBAL_FORWARD, &params(s), &[x, x, y], grid_1d(s.planes));
}

/// dx [planes, h, w] = dy [planes] · 1/(h·w): one thread per element of dx.
pub(crate) fn gpu_global_backward(g: &mut GpuBackend, s: PoolShape, dy: Buf, dx: Buf) {
    g.dispatch(
        &GLOBAL_BACKWARD,
        &params(s),
        &[dy, dy, dx],
        grid_1d(s.x_len()),
    );
}
