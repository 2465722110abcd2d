//! Max pool 2×2 stride 2 (floor) — shaders/pool.wgsl. The first maximum of each window in
//! row-major order wins; backward routes the gradient to it alone.

use crate::backend::{Buf, PoolShape};
use crate::gpu::{grid_1d, shaders, Access, GpuBackend, Kernel};
use crate::par;

/// Offset (0..3 as dy·2+dx) of the window's first maximum, and the maximum.
fn window_max(x: &[f32], w: usize, base: usize) -> (usize, f32) {
    let v = [x[base], x[base + 1], x[base + w], x[base + w + 1]];
    let mut arg = 0;
    for k in 1..4 {
        if v[k] > v[arg] {
            arg = k;
        }
    }
    (arg, v[arg])
}

/// y [planes, h/2, w/2] = max of each 2×2 window of x [planes, h, w].
pub fn forward(s: PoolShape, x: &[f32], y: &mut [f32]) {
    let (oh, ow) = (s.out_h(), s.out_w());
    par::for_each_chunk(&mut y[..s.y_len()], (oh * ow).max(1), |p, out| {
        for (i, o) in out.iter_mut().enumerate() {
            let base = (p * s.h + 2 * (i / ow)) * s.w + 2 * (i % ow);
            *o = window_max(x, s.w, base).1;
        }
    });
}

/// dx [planes, h, w]: dy routed to each window's first maximum in x, zero elsewhere.
pub fn backward(s: PoolShape, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (oh, ow) = (s.out_h(), s.out_w());
    par::for_each_chunk(&mut dx[..s.x_len()], s.h * s.w, |p, out| {
        out.fill(0.0);
        for oy in 0..oh {
            for ox in 0..ow {
                let base = (p * s.h + 2 * oy) * s.w + 2 * ox;
                let (arg, _) = window_max(x, s.w, base);
                out[(2 * oy + arg / 2) * s.w + 2 * ox + arg % 2] = dy[(p * oh + oy) * ow + ox];
            }
        }
    });
}

// ---- GPU ----------------------------------------------------------------------------------

const RW: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];
static FORWARD: Kernel = Kernel {
    shader: &shaders::POOL,
    entry: "pool_forward",
    constants: &[],
    storage: RW,
};
static BACKWARD: Kernel = Kernel {
    shader: &shaders::POOL,
    entry: "pool_backward",
    constants: &[],
    storage: RW,
};

/// The uniform parameters of pool.wgsl — the twin of its `struct Params`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    planes: u32,
    h: u32,
    w: u32,
    _pad: u32,
}

fn params(s: PoolShape) -> Params {
    Params {
        planes: s.planes as u32,
        h: s.h as u32,
        w: s.w as u32,
        _pad: 0,
    }
}

pub(crate) fn gpu_forward(g: &mut GpuBackend, s: PoolShape, x: Buf, y: Buf) {
    g.dispatch(&FORWARD, &params(s), &[x, x, y], grid_1d(s.y_len()));
}

pub(crate) fn gpu_backward(g: &mut GpuBackend, s: PoolShape, x: Buf, dy: Buf, dx: Buf) {
    g.dispatch(&BACKWARD, &params(s), &[x, dy, dx], grid_1d(s.x_len()));
}
