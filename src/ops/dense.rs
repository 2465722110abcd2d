//! Dense layer y = x·Wᵀ + b — shaders/dense.wgsl. x [batch, inputs], W [outputs, inputs].

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::backend::{Buf, DenseShape, Family};
use crate::gpu::{grid_1d, shaders, Access, GpuBackend, Kernel, WG_CONSTANT};

fn view(d: &[f32], r: usize, c: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((r, c), &d[..r * c]).expect("shape checked by caller")
}
fn view_mut(d: &mut [f32], r: usize, c: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((r, c), &mut d[..r * c]).expect("shape checked by caller")
}

/// y [batch, outputs] = x·Wᵀ + b
pub fn forward(s: DenseShape, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    for row in y[..s.batch * s.outputs].chunks_mut(s.outputs) {
        row.copy_from_slice(&b[..s.outputs]);
    }
    let wt = view(w, s.outputs, s.inputs).reversed_axes();
    general_mat_mul(
        1.0,
        &view(x, s.batch, s.inputs),
        &wt,
        1.0,
        &mut view_mut(y, s.batch, s.outputs),
    );
}

/// dx [batch, inputs] = dy·W
pub fn grad_input(s: DenseShape, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    general_mat_mul(
        1.0,
        &view(dy, s.batch, s.outputs),
        &view(w, s.outputs, s.inputs),
        0.0,
        &mut view_mut(dx, s.batch, s.inputs),
    );
}

/// dW [outputs, inputs] = dyᵀ·x
pub fn grad_weight(s: DenseShape, dy: &[f32], x: &[f32], dw: &mut [f32]) {
    let dyt = view(dy, s.batch, s.outputs).reversed_axes();
    general_mat_mul(
        1.0,
        &dyt,
        &view(x, s.batch, s.inputs),
        0.0,
        &mut view_mut(dw, s.outputs, s.inputs),
    );
}

// ---- GPU ----------------------------------------------------------------------------------

const RW: &[Access] = &[Access::Read, Access::Read, Access::Read, Access::ReadWrite];
pub(crate) static FORWARD: Kernel = Kernel {
    name: "dense_forward",
    family: Family::Dense,
    shader: &shaders::DENSE,
    entry: "dense_forward",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static GRAD_INPUT: Kernel = Kernel {
    name: "dense_grad_input",
    family: Family::Dense,
    shader: &shaders::DENSE,
    entry: "dense_grad_input",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static GRAD_WEIGHT: Kernel = Kernel {
    name: "dense_grad_weight",
    family: Family::Dense,
    shader: &shaders::DENSE,
    entry: "dense_grad_weight",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};

/// The uniform parameters of dense.wgsl — the twin of its `struct Params`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    inputs: u32,
    outputs: u32,
    _pad: u32,
}

fn params(s: DenseShape) -> Params {
    Params {
        batch: s.batch as u32,
        inputs: s.inputs as u32,
        outputs: s.outputs as u32,
        _pad: 0,
    }
}

pub(crate) fn gpu_forward(g: &mut GpuBackend, s: DenseShape, x: Buf, w: Buf, b: Buf, y: Buf) {
    g.dispatch(
        &FORWARD,
        &params(s),
        &[x, w, b, y],
        grid_1d(s.batch * s.outputs),
    );
}

pub(crate) fn gpu_grad_input(g: &mut GpuBackend, s: DenseShape, dy: Buf, w: Buf, dx: Buf) {
    g.dispatch(
        &GRAD_INPUT,
        &params(s),
        &[dy, w, w, dx],
        grid_1d(s.batch * s.inputs),
    );
}

pub(crate) fn gpu_grad_weight(g: &mut GpuBackend, s: DenseShape, dy: Buf, x: Buf, dw: Buf) {
    g.dispatch(
        &GRAD_WEIGHT,
        &params(s),
        &[dy, x, x, dw],
        grid_1d(s.outputs * s.inputs),
    );
}
