//! Squared hinge loss, its gradient and the error count — shaders/loss.wgsl.

use crate::backend::{Buf, Family, LossShape};
use crate::gpu::{shaders, Access, GpuBackend, Kernel};

/// Index of the first maximum (numpy's argmax).
pub fn argmax(row: &[f32]) -> usize {
    let mut arg = 0;
    for (k, &v) in row.iter().enumerate() {
        if v > row[arg] {
            arg = k;
        }
    }
    arg
}

/// Adds Σ_b mean_k max(0, 1 − t·y)² to acc[0] and the wrong-argmax count to acc[1], counts the
/// call in acc[2] and non-finite rows in acc[3..5] (layout: [`crate::backend::LossAcc`]);
/// with `dy`, writes the gradient of the batch mean. `y` holds `s.batch` rows of `s.classes`
/// scores.
pub fn squared_hinge(
    s: LossShape,
    y: &[f32],
    labels: &[u32],
    mut dy: Option<&mut [f32]>,
    acc: &mut [f32],
) {
    let LossShape { batch, classes } = s;
    let grad_scale = -2.0 / (batch * classes) as f32;
    let (mut loss, mut wrong, mut bad) = (0.0f64, 0.0f32, 0.0f32);
    for b in 0..batch {
        let row = &y[b * classes..(b + 1) * classes];
        let label = labels[b] as usize;
        let mut sum = 0.0f32;
        let mut finite = true;
        for (k, &v) in row.iter().enumerate() {
            let t = if k == label { 1.0 } else { -1.0 };
            let h = (1.0 - t * v).max(0.0);
            sum += h * h;
            finite &= v.is_finite();
            if let Some(d) = dy.as_deref_mut() {
                d[b * classes + k] = grad_scale * t * h;
            }
        }
        loss += (sum / classes as f32) as f64;
        if argmax(row) != label {
            wrong += 1.0;
        }
        if !(finite && sum.is_finite()) {
            bad += 1.0;
        }
    }
    acc[0] += loss as f32;
    acc[1] += wrong;
    acc[2] += 1.0;
    if bad > 0.0 && acc[3] == 0.0 {
        acc[3] = acc[2];
    }
    acc[4] += bad;
}

// ---- GPU ----------------------------------------------------------------------------------

/// The uniform parameters of loss.wgsl — the twin of its `struct Params`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    /// 1: write the gradient into `dy`.
    write_grad: u32,
    /// Scores per row.
    classes: u32,
    _pad: u32,
}

pub(crate) static SQUARED_HINGE: Kernel = Kernel {
    name: "squared_hinge",
    family: Family::Loss,
    shader: &shaders::LOSS,
    entry: "squared_hinge",
    constants: &[],
    storage: &[
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
    params_bytes: size_of::<Params>(),
};

pub(crate) fn gpu_squared_hinge(
    g: &mut GpuBackend,
    s: LossShape,
    y: Buf,
    labels: Buf,
    dy: Option<Buf>,
    acc: Buf,
) {
    // without a gradient the kernel still needs a writable buffer bound at `dy`: a scratch one
    let (dy, write) = match dy {
        Some(d) => (d, 1),
        None => (g.scratch("loss_no_grad", s.batch * s.classes), 0),
    };
    let p = Params {
        batch: s.batch as u32,
        write_grad: write,
        classes: s.classes as u32,
        _pad: 0,
    };
    g.dispatch(&SQUARED_HINGE, &p, &[y, labels, dy, acc], [1, 1, 1]);
}
