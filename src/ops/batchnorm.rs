//! Batch norm (Lasagne's BatchNormLayer) and per-channel sums — shaders/batchnorm.wgsl,
//! shaders/batchnorm_backward.wgsl, shaders/reduce.wgsl.
//!
//! Tensors are seen as [batch, channels, hw]. Statistics buffers hold [mean 0..C, inv_std C..2C].

use crate::backend::{Buf, ChannelShape};
use crate::gpu::{grid_1d, shaders, Access, GpuBackend, Kernel};
use crate::par;

/// Added to the variance before the inverse square root.
pub const EPS: f32 = 1e-4;
/// Weight of the batch statistics in the running statistics' moving average.
pub const ALPHA: f32 = 0.1;

/// Sums over batch and hw of f(c, i) for each channel c (i the flat index), accumulated in f64.
fn per_channel(s: ChannelShape, f: impl Fn(usize, usize) -> f64 + Sync + Send) -> Vec<f64> {
    par::map(s.channels, |c| {
        let mut acc = 0.0f64;
        for n in 0..s.batch {
            let base = (n * s.channels + c) * s.hw;
            for i in base..base + s.hw {
                acc += f(c, i);
            }
        }
        acc
    })
}

/// y = (x − mean)·γ·inv_std + β per channel (element-wise part of both modes).
fn apply(s: ChannelShape, x: &[f32], gamma: &[f32], beta: &[f32], stats: &[f32], y: &mut [f32]) {
    let c_n = s.channels;
    par::for_each_chunk(&mut y[..s.len()], s.hw, |plane, out| {
        let c = plane % c_n;
        let (m, k, b) = (stats[c], gamma[c] * stats[c_n + c], beta[c]);
        let src = &x[plane * s.hw..(plane + 1) * s.hw];
        out.iter_mut()
            .zip(src)
            .for_each(|(o, &v)| *o = (v - m) * k + b);
    });
}

/// Training mode: batch statistics (biased variance) into `stats`, running statistics updated.
pub fn train(
    s: ChannelShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    y: &mut [f32],
    stats: &mut [f32],
    running: &mut [f32],
) {
    let count = (s.batch * s.hw) as f64;
    let mean = per_channel(s, |_, i| x[i] as f64);
    let mean: Vec<f32> = mean.iter().map(|&v| (v / count) as f32).collect();
    let var = per_channel(s, |c, i| {
        let d = (x[i] - mean[c]) as f64;
        d * d
    });
    let c_n = s.channels;
    for c in 0..c_n {
        let istd = 1.0 / ((var[c] / count) as f32 + EPS).sqrt();
        stats[c] = mean[c];
        stats[c_n + c] = istd;
        running[c] = (1.0 - ALPHA) * running[c] + ALPHA * mean[c];
        running[c_n + c] = (1.0 - ALPHA) * running[c_n + c] + ALPHA * istd;
    }
    apply(s, x, gamma, beta, stats, y);
}

/// Evaluation mode with the given (running) statistics.
pub fn eval(s: ChannelShape, x: &[f32], gamma: &[f32], beta: &[f32], stats: &[f32], y: &mut [f32]) {
    apply(s, x, gamma, beta, stats, y);
}

/// dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·inv_std·(dy − dβ/M − x̂·dγ/M), x̂ = (x − mean)·inv_std.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    s: ChannelShape,
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    stats: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let c_n = s.channels;
    let sum_dy = per_channel(s, |_, i| dy[i] as f64);
    let sum_dy_xhat = per_channel(s, |c, i| {
        dy[i] as f64 * ((x[i] - stats[c]) * stats[c_n + c]) as f64
    });
    for c in 0..c_n {
        dbeta[c] = sum_dy[c] as f32;
        dgamma[c] = sum_dy_xhat[c] as f32;
    }
    let inv_m = 1.0 / (s.batch * s.hw) as f32;
    let (dgamma, dbeta) = (&*dgamma, &*dbeta);
    par::for_each_chunk(&mut dx[..s.len()], s.hw, |plane, out| {
        let c = plane % c_n;
        let (m, istd) = (stats[c], stats[c_n + c]);
        let (db, dg, k) = (dbeta[c] * inv_m, dgamma[c] * inv_m, gamma[c] * istd);
        let base = plane * s.hw;
        for (j, o) in out.iter_mut().enumerate() {
            let xh = (x[base + j] - m) * istd;
            *o = k * (dy[base + j] - db - xh * dg);
        }
    });
}

/// out[c] = Σ_{n,hw} x[n,c,hw]
pub fn channel_sum(s: ChannelShape, x: &[f32], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(per_channel(s, |_, i| x[i] as f64)) {
        *o = v as f32;
    }
}

// ---- GPU ----------------------------------------------------------------------------------

use Access::{Read as R, ReadWrite as W};

static PARTIAL: Kernel = Kernel {
    shader: &shaders::BATCHNORM,
    entry: "bn_partial",
    constants: &[],
    storage: &[R, R, R, W, W, W, W],
};
static STATS: Kernel = Kernel {
    shader: &shaders::BATCHNORM,
    entry: "bn_stats",
    constants: &[],
    storage: &[R, R, R, W, W, W, W],
};
static APPLY: Kernel = Kernel {
    shader: &shaders::BATCHNORM,
    entry: "bn_apply",
    constants: &[],
    storage: &[R, R, R, W, W],
};
static BACK_PARTIAL: Kernel = Kernel {
    shader: &shaders::BATCHNORM_BACKWARD,
    entry: "bn_backward_partial",
    constants: &[],
    storage: &[R, R, R, R, W, W, W, W],
};
static BACK_REDUCE: Kernel = Kernel {
    shader: &shaders::BATCHNORM_BACKWARD,
    entry: "bn_backward_reduce",
    constants: &[],
    storage: &[R, R, R, R, W, W, W, W],
};
static BACK_APPLY: Kernel = Kernel {
    shader: &shaders::BATCHNORM_BACKWARD,
    entry: "bn_backward_apply",
    constants: &[],
    storage: &[R, R, R, R, W, W, W, W],
};
static CHANNEL_SUM_PARTIAL: Kernel = Kernel {
    shader: &shaders::REDUCE,
    entry: "channel_sum_partial",
    constants: &[],
    storage: &[R, W, W],
};
static CHANNEL_SUM: Kernel = Kernel {
    shader: &shaders::REDUCE,
    entry: "channel_sum",
    constants: &[],
    storage: &[R, W, W],
};

/// The uniform parameters of batchnorm.wgsl, batchnorm_backward.wgsl and reduce.wgsl — the
/// twin of their `struct Params`, field by field.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    channels: u32,
    hw: u32,
    /// Chunks each channel's batch·hw values are split into for the partial reductions.
    slices: u32,
    /// Values per chunk.
    chunk: u32,
    _pad: [u32; 3],
}

/// Values a reduction workgroup takes at least; chunks per channel at most.
const MIN_CHUNK: usize = 4096;
const MAX_SLICES: usize = 64;

impl Params {
    fn new(s: ChannelShape) -> Self {
        let count = s.batch * s.hw;
        let slices = count.div_ceil(MIN_CHUNK).clamp(1, MAX_SLICES);
        Params {
            batch: s.batch as u32,
            channels: s.channels as u32,
            hw: s.hw as u32,
            slices: slices as u32,
            chunk: count.div_ceil(slices) as u32,
            _pad: [0; 3],
        }
    }

    /// Grid of the partial reductions: x chunks, y channels.
    fn partial_grid(&self) -> [u32; 3] {
        [self.slices, self.channels, 1]
    }

    /// Grid of the merges: one thread per channel, 64 per workgroup.
    fn merge_grid(&self) -> [u32; 3] {
        [self.channels.div_ceil(64), 1, 1]
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn gpu_train(
    g: &mut GpuBackend,
    s: ChannelShape,
    x: Buf,
    gamma: Buf,
    beta: Buf,
    y: Buf,
    stats: Buf,
    running: Buf,
) {
    let p = Params::new(s);
    let part = g.scratch("bn_partials", 3 * s.channels * p.slices as usize);
    let bufs = [x, gamma, beta, y, stats, running, part];
    g.dispatch(&PARTIAL, &p, &bufs, p.partial_grid());
    g.dispatch(&STATS, &p, &bufs, p.merge_grid());
    g.dispatch(&APPLY, &p, &bufs[..5], grid_1d(s.len()));
}

pub(crate) fn gpu_eval(
    g: &mut GpuBackend,
    s: ChannelShape,
    x: Buf,
    gamma: Buf,
    beta: Buf,
    stats: Buf,
    y: Buf,
) {
    let p = Params::new(s);
    g.dispatch(&APPLY, &p, &[x, gamma, beta, y, stats], grid_1d(s.len()));
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn gpu_backward(
    g: &mut GpuBackend,
    s: ChannelShape,
    dy: Buf,
    x: Buf,
    gamma: Buf,
    stats: Buf,
    dx: Buf,
    dgamma: Buf,
    dbeta: Buf,
) {
    let p = Params::new(s);
    let part = g.scratch("bn_partials", 3 * s.channels * p.slices as usize);
    let bufs = [dy, x, gamma, stats, dx, dgamma, dbeta, part];
    g.dispatch(&BACK_PARTIAL, &p, &bufs, p.partial_grid());
    g.dispatch(&BACK_REDUCE, &p, &bufs, p.merge_grid());
    g.dispatch(&BACK_APPLY, &p, &bufs, grid_1d(s.len()));
}

pub(crate) fn gpu_channel_sum(g: &mut GpuBackend, s: ChannelShape, x: Buf, out: Buf) {
    let p = Params::new(s);
    let part = g.scratch("bn_partials", 3 * s.channels * p.slices as usize);
    g.dispatch(&CHANNEL_SUM_PARTIAL, &p, &[x, out, part], p.partial_grid());
    g.dispatch(&CHANNEL_SUM, &p, &[x, out, part], p.merge_grid());
}
