//! Adam (Lasagne's form), SGD with momentum, and BinaryNet's scaled-and-clipped rule for
//! quantized weights — shaders/optimizer.wgsl.

use crate::backend::{AdamConfig, Buf, Family, ParamTensors, StepScalars, UpdateRule};
use crate::gpu::{grid_1d, shaders, Access, GpuBackend, Kernel, WG_CONSTANT};

fn apply_rule(rule: UpdateRule, old: f32, new: f32) -> f32 {
    match rule {
        UpdateRule::Plain => new,
        UpdateRule::ScaledClip { scale } => (old + scale * (new - old)).clamp(-1.0, 1.0),
    }
}

/// `step` is the [`StepScalars`] buffer's contents.
pub fn adam(
    rule: UpdateRule,
    cfg: AdamConfig,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: &[f32],
) {
    let a = step[0];
    for i in 0..p.len() {
        let gi = g[i];
        m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * gi;
        v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * gi * gi;
        let old = p[i];
        p[i] = apply_rule(rule, old, old - a * m[i] / (v[i].sqrt() + cfg.eps));
    }
}

/// SGD with momentum: vel = μ·vel − lr·g, then `rule` applied to p + vel; `step` is the
/// [`StepScalars`] buffer's contents.
pub fn sgd(rule: UpdateRule, p: &mut [f32], g: &[f32], vel: &mut [f32], step: &[f32]) {
    let (lr, mu) = (step[1], step[2]);
    for i in 0..p.len() {
        vel[i] = mu * vel[i] - lr * g[i];
        let old = p[i];
        p[i] = apply_rule(rule, old, old + vel[i]);
    }
}

// ---- GPU ----------------------------------------------------------------------------------

use Access::{Read as R, ReadWrite as W};
pub(crate) static ADAM: Kernel = Kernel {
    name: "adam",
    family: Family::Optimizer,
    shader: &shaders::OPTIMIZER,
    entry: "adam",
    constants: &[WG_CONSTANT],
    storage: &[R, R, W, W, W],
    params_bytes: size_of::<Params>(),
};
pub(crate) static SGD: Kernel = Kernel {
    name: "sgd",
    family: Family::Optimizer,
    shader: &shaders::OPTIMIZER,
    entry: "sgd",
    constants: &[WG_CONSTANT],
    storage: &[R, R, W, W],
    params_bytes: size_of::<Params>(),
};

/// The uniform parameters of optimizer.wgsl — the twin of its `struct Params`, field by field.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    /// 0: plain, 1: BinaryNet's scaled and clipped update.
    rule: u32,
    scale: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    _pad: [u32; 2],
}

fn params(rule: UpdateRule, n: usize, cfg: AdamConfig) -> Params {
    let (rule, scale) = match rule {
        UpdateRule::Plain => (0, 1.0f32),
        UpdateRule::ScaledClip { scale } => (1, scale),
    };
    Params {
        n: n as u32,
        rule,
        scale,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        _pad: [0; 2],
    }
}

pub(crate) fn gpu_adam(
    g: &mut GpuBackend,
    rule: UpdateRule,
    cfg: AdamConfig,
    t: ParamTensors,
    step: Buf,
) {
    debug_assert!(step.len >= StepScalars::LEN);
    let n = t.value.len;
    g.dispatch(
        &ADAM,
        &params(rule, n, cfg),
        &[t.grad, step, t.value, t.m, t.v],
        grid_1d(n),
    );
}

/// SGD's velocity is `t.m`.
pub(crate) fn gpu_sgd(g: &mut GpuBackend, rule: UpdateRule, t: ParamTensors, step: Buf) {
    let n = t.value.len;
    g.dispatch(
        &SGD,
        &params(rule, n, AdamConfig::default()),
        &[t.grad, step, t.value, t.m],
        grid_1d(n),
    );
}
