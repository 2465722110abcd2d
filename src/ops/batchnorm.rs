//! Batch norm (Lasagne's BatchNormLayer) and per-channel sums — shaders/batchnorm.wgsl,
//! shaders/batchnorm_backward.wgsl, shaders/reduce.wgsl.
//!
//! Tensors are seen as [batch, channels, hw]. Statistics buffers hold [mean 0..C, inv_std C..2C].

use crate::backend::{BatchNorm, BnAct, BnGrads, Buf, ChannelShape, Family, PoolShape, Pooled};
use crate::gpu::{grid_1d, shaders, Access, GpuBackend, Kernel, WG_CONSTANT};
use crate::ops::pool;
use crate::par;
use crate::quant::{ActFn, ActQuant};

/// Added to the variance before the inverse square root.
pub const EPS: f32 = 1e-4;
/// Weight of the batch statistics in the running statistics' moving average.
pub const ALPHA: f32 = 0.1;

/// Lanes of the CPU reductions: each plane is summed in 16 f32 partial sums (so the loop
/// vectorizes), planes are added in f64 in a fixed order.
const LANES: usize = 16;

/// Σ over batch and hw of `plane_sum(c, n, base)` for each channel c, where `plane_sum` sums
/// the plane of image n starting at flat index `base`; channels in parallel.
fn per_channel(s: ChannelShape, plane_sum: impl Fn(usize, usize) -> f64 + Sync + Send) -> Vec<f64> {
    par::map(s.channels, |c| {
        (0..s.batch)
            .map(|n| plane_sum(c, (n * s.channels + c) * s.hw))
            .sum()
    })
}

/// (Σ f(a, b).0, Σ f(a, b).1) over two equally long slices, in [`LANES`] f32 partial sums,
/// returned in f64. Inlined into its (multiversioned) callers so the loop gets their vector
/// width; `f` must be monomorphic there (no match per element) for the loop to vectorize.
#[inline(always)]
fn lane_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut s0, mut s1) = ([0.0f32; LANES], [0.0f32; LANES]);
    let (ac, at) = a.as_chunks::<LANES>();
    let (bc, bt) = b.as_chunks::<LANES>();
    for (x, y) in ac.iter().zip(bc) {
        for j in 0..LANES {
            let (p, q) = f(x[j], y[j]);
            s0[j] += p;
            s1[j] += q;
        }
    }
    let (mut t0, mut t1) = (0.0f64, 0.0f64);
    for (&x, &y) in at.iter().zip(bt) {
        let (p, q) = f(x, y);
        t0 += p as f64;
        t1 += q as f64;
    }
    let add = |s: [f32; LANES]| s.iter().map(|&v| v as f64).sum::<f64>();
    (add(s0) + t0, add(s1) + t1)
}

/// [`lane_sums`] that also stores f(a, b).0 over `a`: the same sums, in the same order.
#[inline(always)]
fn lane_sums_store(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut s0, mut s1) = ([0.0f32; LANES], [0.0f32; LANES]);
    let (ac, at) = a.as_chunks_mut::<LANES>();
    let (bc, bt) = b.as_chunks::<LANES>();
    for (x, y) in ac.iter_mut().zip(bc) {
        for j in 0..LANES {
            let (p, q) = f(x[j], y[j]);
            x[j] = p;
            s0[j] += p;
            s1[j] += q;
        }
    }
    let (mut t0, mut t1) = (0.0f64, 0.0f64);
    for (x, &y) in at.iter_mut().zip(bt) {
        let (p, q) = f(*x, y);
        *x = p;
        t0 += p as f64;
        t1 += q as f64;
    }
    let add = |s: [f32; LANES]| s.iter().map(|&v| v as f64).sum::<f64>();
    (add(s0) + t0, add(s1) + t1)
}

/// In place over a plane, da → du = da·mask(u) with u = (x − m)·k + b, returning
/// (Σ du, Σ du·x̂), x̂ = (x − m)·istd: [`grad_sums`] with `act`, keeping du.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn mask_in_place_sums(
    d: &mut [f32],
    x: &[f32],
    m: f32,
    istd: f32,
    k: f32,
    b: f32,
    act: ActFn,
) -> (f64, f64) {
    // one loop per activation, so each is monomorphic and vectorizes
    match act {
        ActFn::Quantized(l) => {
            let mask = |u| ActFn::Quantized(l).grad_mask(u);
            lane_sums_store(d, x, masked_terms(m, istd, k, b, &mask))
        }
        ActFn::Relu => {
            let mask = |u| ActFn::Relu.grad_mask(u);
            lane_sums_store(d, x, masked_terms(m, istd, k, b, &mask))
        }
        ActFn::Hardtanh => {
            let mask = |u| ActFn::Hardtanh.grad_mask(u);
            lane_sums_store(d, x, masked_terms(m, istd, k, b, &mask))
        }
    }
}

/// In place over a plane: d = k·(du − db − x̂·dg) from du (the last step of [`backward`]).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn grad_plane_in_place(d: &mut [f32], x: &[f32], m: f32, istd: f32, k: f32, db: f32, dg: f32) {
    for (o, &v) in d.iter_mut().zip(x) {
        *o = k * (*o - db - (v - m) * istd * dg);
    }
}

#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn sum(v: &[f32]) -> f64 {
    lane_sums(v, v, |x, _| (x, 0.0)).0
}

#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn sum_sq_diff(v: &[f32], m: f32) -> f64 {
    lane_sums(v, v, |x, _| ((x - m) * (x - m), 0.0)).0
}

/// The two terms of the backward's sums for one element: (du, du·x̂) from (dy, x), with
/// du = dy·mask(u), u = (x − m)·k + b, x̂ = (x − m)·istd ([`grad_sums`] and
/// [`mask_in_place_sums`] both take them, so their sums agree bit for bit).
#[inline(always)]
fn masked_terms(
    m: f32,
    istd: f32,
    k: f32,
    b: f32,
    mask: &impl Fn(f32) -> f32,
) -> impl Fn(f32, f32) -> (f32, f32) + '_ {
    move |g, v| {
        let du = g * mask((v - m) * k + b);
        (du, du * ((v - m) * istd))
    }
}

/// (Σ du, Σ du·x̂) over a plane: the sums of [`masked_terms`].
#[inline(always)]
fn grad_sums_with(
    dy: &[f32],
    x: &[f32],
    m: f32,
    istd: f32,
    k: f32,
    b: f32,
    mask: impl Fn(f32) -> f32,
) -> (f64, f64) {
    lane_sums(dy, x, masked_terms(m, istd, k, b, &mask))
}

/// (Σ dy, Σ dy·x̂) over a plane, x̂ = (x − m)·istd; with `act`, dy is first multiplied by the
/// activation's straight-through mask at u = (x − m)·k + b (the fused backward of [`train`] with an activation).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn grad_sums(
    dy: &[f32],
    x: &[f32],
    m: f32,
    istd: f32,
    k: f32,
    b: f32,
    act: Option<ActFn>,
) -> (f64, f64) {
    match act {
        None => lane_sums(dy, x, |g, v| (g, g * ((v - m) * istd))),
        Some(ActFn::Quantized(l)) => {
            grad_sums_with(dy, x, m, istd, k, b, |u| ActFn::Quantized(l).grad_mask(u))
        }
        Some(ActFn::Relu) => grad_sums_with(dy, x, m, istd, k, b, |u| ActFn::Relu.grad_mask(u)),
        Some(ActFn::Hardtanh) => {
            grad_sums_with(dy, x, m, istd, k, b, |u| ActFn::Hardtanh.grad_mask(u))
        }
    }
}

/// One plane of y = (x − m)·k + b, then the activation when there is one.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn apply_plane(x: &[f32], m: f32, k: f32, b: f32, act: Option<ActFn>, y: &mut [f32]) {
    // one loop per activation, so each is monomorphic and vectorizes
    match act {
        None => y.iter_mut().zip(x).for_each(|(o, &v)| *o = (v - m) * k + b),
        Some(ActFn::Quantized(l)) => y
            .iter_mut()
            .zip(x)
            .for_each(|(o, &v)| *o = ActFn::Quantized(l).forward((v - m) * k + b)),
        Some(ActFn::Relu) => y
            .iter_mut()
            .zip(x)
            .for_each(|(o, &v)| *o = ActFn::Relu.forward((v - m) * k + b)),
        Some(ActFn::Hardtanh) => y
            .iter_mut()
            .zip(x)
            .for_each(|(o, &v)| *o = ActFn::Hardtanh.forward((v - m) * k + b)),
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn grad_plane_with(
    dy: &[f32],
    x: &[f32],
    m: f32,
    istd: f32,
    k: f32,
    b: f32,
    db: f32,
    dg: f32,
    dx: &mut [f32],
    mask: impl Fn(f32) -> f32,
) {
    for ((o, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
        let du = g * mask((v - m) * k + b);
        *o = k * (du - db - (v - m) * istd * dg);
    }
}

/// One plane of dx = k·(du − db − x̂·dg), du = dy (times the activation's mask with `act`).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
#[allow(clippy::too_many_arguments)]
fn grad_plane(
    dy: &[f32],
    x: &[f32],
    m: f32,
    istd: f32,
    k: f32,
    b: f32,
    db: f32,
    dg: f32,
    act: Option<ActFn>,
    dx: &mut [f32],
) {
    match act {
        None => grad_plane_with(dy, x, m, istd, k, b, db, dg, dx, |_| 1.0),
        Some(ActFn::Quantized(l)) => grad_plane_with(dy, x, m, istd, k, b, db, dg, dx, |u| {
            ActFn::Quantized(l).grad_mask(u)
        }),
        Some(ActFn::Relu) => grad_plane_with(dy, x, m, istd, k, b, db, dg, dx, |u| {
            ActFn::Relu.grad_mask(u)
        }),
        Some(ActFn::Hardtanh) => grad_plane_with(dy, x, m, istd, k, b, db, dg, dx, |u| {
            ActFn::Hardtanh.grad_mask(u)
        }),
    }
}

/// y = (x − mean)·γ·inv_std + β per channel, then `act` if any (element-wise part of both modes).
fn apply(
    s: ChannelShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &[f32],
    act: Option<ActFn>,
    y: &mut [f32],
) {
    let c_n = s.channels;
    par::for_each_chunk(&mut y[..s.len()], s.hw, |plane, out| {
        let c = plane % c_n;
        let (m, k, b) = (stats[c], gamma[c] * stats[c_n + c], beta[c]);
        apply_plane(&x[plane * s.hw..(plane + 1) * s.hw], m, k, b, act, out);
    });
}

/// Batch statistics (biased variance) into `stats`, running statistics moved towards them.
/// One pass over memory: each image's plane is summed, then its squared deviations from its
/// own mean are taken while the plane is still in cache, and the planes are merged in f64
/// (M2 = Σ_p [M2_p + n·(μ_p − μ)²], Chan et al.), as accurate as two passes over the batch.
fn batch_stats(s: ChannelShape, x: &[f32], stats: &mut [f32], running: &mut [f32]) {
    let (count, n) = ((s.batch * s.hw) as f64, s.hw as f64);
    let c_n = s.channels;
    let moments = par::map(c_n, |c| {
        // (Σ x, Σ (x − m_p)² − n·(μ_p − m_p)²) per plane: m_p is μ_p = Σx/n rounded to f32
        let planes: Vec<(f64, f64)> = (0..s.batch)
            .map(|i| {
                let base = (i * c_n + c) * s.hw;
                let plane = &x[base..base + s.hw];
                let total = sum(plane);
                let (mu, m) = (total / n, (total / n) as f32);
                (total, sum_sq_diff(plane, m) - n * (mu - m as f64).powi(2))
            })
            .collect();
        let mean = planes.iter().map(|p| p.0).sum::<f64>() / count;
        let m2: f64 = planes
            .iter()
            .map(|&(total, m2)| m2 + n * (total / n - mean).powi(2))
            .sum();
        (mean, m2.max(0.0))
    });
    for (c, (mean, m2)) in moments.into_iter().enumerate() {
        let mean = mean as f32;
        let istd = 1.0 / ((m2 / count) as f32 + EPS).sqrt();
        stats[c] = mean;
        stats[c_n + c] = istd;
        running[c] = (1.0 - ALPHA) * running[c] + ALPHA * mean;
        running[c_n + c] = (1.0 - ALPHA) * running[c_n + c] + ALPHA * istd;
    }
}

/// Training mode: batch statistics (biased variance) into `stats`, running statistics updated,
/// y = bn(x); with `act`, y = act(bn(x)) in the same pass (bn(x) itself is not stored: the
/// backward with the same `act` recomputes it).
#[allow(clippy::too_many_arguments)]
pub fn train(
    s: ChannelShape,
    act: Option<ActQuant>,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    y: &mut [f32],
    stats: &mut [f32],
    running: &mut [f32],
) {
    batch_stats(s, x, stats, running);
    apply(s, x, gamma, beta, stats, act.map(ActQuant::compile), y);
}

/// [`train`] with `act`, then 2×2 max pooling into `pooled [batch, c, h/2, w/2]`, plane by
/// plane: the full-size activation only lives in a per-thread plane while it is pooled, and
/// what the backward needs of it — which of each window's four values was the maximum — goes
/// to `window` (0..3, one byte per pooled value; `s.hw` = h·w). Images only 1 pixel high or
/// wide (nothing to pool) write their activations to `a`, which is otherwise left alone.
#[allow(clippy::too_many_arguments)]
pub fn train_pooled(
    s: ChannelShape,
    (h, w): (usize, usize),
    act: ActQuant,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    a: &mut [f32],
    pooled: &mut [f32],
    window: &mut [u8],
    stats: &mut [f32],
    running: &mut [f32],
) {
    batch_stats(s, x, stats, running);
    let (act, c_n, hw, ohw) = (act.compile(), s.channels, s.hw, (h / 2) * (w / 2));
    let stats = &*stats;
    if ohw == 0 {
        return apply(s, x, gamma, beta, stats, Some(act), a);
    }
    let planes = s.batch * c_n;
    par::for_each_chunk_pair(
        &mut pooled[..planes * ohw],
        ohw,
        &mut window[..planes * ohw],
        ohw,
        |plane, pooled_p, window_p| {
            let c = plane % c_n;
            let (m, k, b) = (stats[c], gamma[c] * stats[c_n + c], beta[c]);
            par::with_scratch(hw, |a_p| {
                apply_plane(&x[plane * hw..(plane + 1) * hw], m, k, b, Some(act), a_p);
                pool::forward_plane_argmax(a_p, h, w, pooled_p, window_p);
            });
        },
    );
}

/// The backward of [`train_pooled`]: each activation plane's gradient is routed from
/// `dpooled [batch, c, h/2, w/2]` to its window's maximum (as `window` recorded it; what
/// [`pool::backward`] finds in the activations) straight into `dx`, masked there in place while
/// the sums are taken, and `dx` is finished in a second pass, which also sums each finished
/// plane for the conv bias's gradient `dbias` — no full-size activation gradient in between, no
/// pass of its own for the bias. Bit for bit the four ops (pool backward, [`backward`] with
/// `act`, [`channel_sum`] of dx).
#[allow(clippy::too_many_arguments)]
pub fn backward_pooled(
    s: ChannelShape,
    (h, w): (usize, usize),
    act: ActQuant,
    dpooled: &[f32],
    window: &[u8],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dbias: &mut [f32],
) {
    let (act, c_n, hw, ohw) = (act.compile(), s.channels, s.hw, (h / 2) * (w / 2));
    let planes = s.batch * c_n;
    let coef = |c: usize| {
        let (m, istd) = (stats[c], stats[c_n + c]);
        (m, istd, gamma[c] * istd, beta[c])
    };
    let mut sums = vec![(0.0f64, 0.0f64); planes];
    par::for_each_chunk_pair(&mut dx[..planes * hw], hw, &mut sums, 1, |plane, d, sum| {
        let (m, istd, k, b) = coef(plane % c_n);
        let r = plane * hw..(plane + 1) * hw;
        let (dp, win) = (&dpooled[plane * ohw..], &window[plane * ohw..]);
        pool::backward_plane_from_argmax(win, dp, h, w, d);
        sum[0] = mask_in_place_sums(d, &x[r], m, istd, k, b, act);
    });
    // per channel, images in order: the sums of [`backward`]
    for c in 0..c_n {
        let (sdy, sdyx) = (0..s.batch).fold((0.0f64, 0.0f64), |(p, q), n| {
            let (a, b) = sums[n * c_n + c];
            (p + a, q + b)
        });
        dbeta[c] = sdy as f32;
        dgamma[c] = sdyx as f32;
    }
    let inv_m = 1.0 / (s.batch * hw) as f32;
    let (dgamma, dbeta) = (&*dgamma, &*dbeta);
    let mut plane_sums = vec![0.0f64; planes];
    par::for_each_chunk_pair(
        &mut dx[..planes * hw],
        hw,
        &mut plane_sums,
        1,
        |plane, d, sum_d| {
            let c = plane % c_n;
            let (m, istd, k, _) = coef(c);
            let xp = &x[plane * hw..(plane + 1) * hw];
            grad_plane_in_place(d, xp, m, istd, k, dbeta[c] * inv_m, dgamma[c] * inv_m);
            sum_d[0] = sum(d);
        },
    );
    // per channel, images in order: what [`channel_sum`] adds
    for (c, out) in dbias.iter_mut().enumerate().take(c_n) {
        *out = (0..s.batch).map(|i| plane_sums[i * c_n + c]).sum::<f64>() as f32;
    }
}

/// Evaluation mode with the given (running) statistics; with `act`, followed by it in one pass.
#[allow(clippy::too_many_arguments)]
pub fn eval(
    s: ChannelShape,
    act: Option<ActQuant>,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &[f32],
    y: &mut [f32],
) {
    apply(s, x, gamma, beta, stats, act.map(ActQuant::compile), y);
}

/// dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·inv_std·(dy − dβ/M − x̂·dγ/M), x̂ = (x − mean)·inv_std.
/// With `act` (the backward of [`train`] with it), dy is the activation's gradient and is first
/// multiplied by its mask at bn(x), recomputed from x, β and the statistics exactly as the
/// forward computed it — one pass for the sums and one for dx, with no du buffer. `beta` is
/// read only with `act`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    s: ChannelShape,
    act: Option<ActQuant>,
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let act = act.map(ActQuant::compile);
    let c_n = s.channels;
    let coef = |c: usize| {
        let (m, istd) = (stats[c], stats[c_n + c]);
        let b = if act.is_some() { beta[c] } else { 0.0 };
        (m, istd, gamma[c] * istd, b)
    };
    let sums = par::map(s.channels, |c| {
        let (m, istd, k, b) = coef(c);
        (0..s.batch).fold((0.0f64, 0.0f64), |(a, g), n| {
            let base = (n * c_n + c) * s.hw;
            let r = base..base + s.hw;
            let (sa, sg) = grad_sums(&dy[r.clone()], &x[r], m, istd, k, b, act);
            (a + sa, g + sg)
        })
    });
    for (c, (sdy, sdyx)) in sums.into_iter().enumerate() {
        dbeta[c] = sdy as f32;
        dgamma[c] = sdyx as f32;
    }
    let inv_m = 1.0 / (s.batch * s.hw) as f32;
    let (dgamma, dbeta) = (&*dgamma, &*dbeta);
    par::for_each_chunk(&mut dx[..s.len()], s.hw, |plane, out| {
        let c = plane % c_n;
        let (m, istd, k, b) = coef(c);
        let r = plane * s.hw..(plane + 1) * s.hw;
        grad_plane(
            &dy[r.clone()],
            &x[r],
            m,
            istd,
            k,
            b,
            dbeta[c] * inv_m,
            dgamma[c] * inv_m,
            act,
            out,
        );
    });
}

/// out[c] = Σ_{n,hw} x[n,c,hw]
pub fn channel_sum(s: ChannelShape, x: &[f32], out: &mut [f32]) {
    let sums = per_channel(s, |_, base| sum(&x[base..base + s.hw]));
    for (o, v) in out.iter_mut().zip(sums) {
        *o = v as f32;
    }
}

// ---- GPU ----------------------------------------------------------------------------------

use Access::{Read as R, ReadWrite as W};

pub(crate) static PARTIAL: Kernel = Kernel {
    name: "bn_partial",
    family: Family::BatchNorm,
    shader: &shaders::BATCHNORM,
    entry: "bn_partial",
    constants: &[],
    storage: &[R, R, R, W, W, W, W],
    params_bytes: size_of::<Params>(),
};
pub(crate) static STATS: Kernel = Kernel {
    name: "bn_stats",
    family: Family::BatchNorm,
    shader: &shaders::BATCHNORM,
    entry: "bn_stats",
    constants: &[("EPS", EPS as f64), ("ALPHA", ALPHA as f64)],
    storage: &[R, R, R, W, W, W, W],
    params_bytes: size_of::<Params>(),
};
pub(crate) static APPLY: Kernel = Kernel {
    name: "bn_apply",
    family: Family::BatchNorm,
    shader: &shaders::BATCHNORM,
    entry: "bn_apply",
    constants: &[WG_CONSTANT],
    storage: &[R, R, R, W, W],
    params_bytes: size_of::<Params>(),
};
pub(crate) static APPLY_POOL: Kernel = Kernel {
    name: "bn_apply_pool",
    family: Family::BatchNorm,
    shader: &shaders::BATCHNORM,
    entry: "bn_apply_pool",
    constants: &[WG_CONSTANT],
    storage: &[R, R, R, W, W, W, W, W],
    params_bytes: size_of::<Params>(),
};
pub(crate) static BACK_PARTIAL: Kernel = Kernel {
    name: "bn_backward_partial",
    family: Family::BatchNorm,
    shader: &shaders::BATCHNORM_BACKWARD,
    entry: "bn_backward_partial",
    constants: &[],
    storage: &[R, R, R, R, W, W, W, W],
    params_bytes: size_of::<Params>(),
};
pub(crate) static BACK_REDUCE: Kernel = Kernel {
    name: "bn_backward_reduce",
    family: Family::BatchNorm,
    shader: &shaders::BATCHNORM_BACKWARD,
    entry: "bn_backward_reduce",
    constants: &[],
    storage: &[R, R, R, R, W, W, W, W],
    params_bytes: size_of::<Params>(),
};
pub(crate) static BACK_APPLY: Kernel = Kernel {
    name: "bn_backward_apply",
    family: Family::BatchNorm,
    shader: &shaders::BATCHNORM_BACKWARD,
    entry: "bn_backward_apply",
    constants: &[WG_CONSTANT],
    storage: &[R, R, R, R, W, W, W, W],
    params_bytes: size_of::<Params>(),
};
pub(crate) static CHANNEL_SUM_PARTIAL: Kernel = Kernel {
    name: "channel_sum_partial",
    family: Family::BatchNorm,
    shader: &shaders::REDUCE,
    entry: "channel_sum_partial",
    constants: &[],
    storage: &[R, W, W],
    params_bytes: size_of::<Params>(),
};
pub(crate) static CHANNEL_SUM: Kernel = Kernel {
    name: "channel_sum",
    family: Family::BatchNorm,
    shader: &shaders::REDUCE,
    entry: "channel_sum",
    constants: &[],
    storage: &[R, W, W],
    params_bytes: size_of::<Params>(),
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
    /// The activation fused into `bn_apply` and the backward (common.wgsl's `Act`: ACT_QUANT,
    /// ACT_RELU, ACT_HARDTANH), or ACT_NONE (3).
    act: u32,
    act_scale: f32,
    act_lo: f32,
    act_hi: f32,
    /// With the 2×2 pool fused: the planes' height and width (0: no pool).
    pool_h: u32,
    pool_w: u32,
    _pad: u32,
}

/// common.wgsl's ACT_NONE: a batch norm without its activation.
const ACT_NONE: u32 = 3;

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
            act: ACT_NONE,
            act_scale: 1.0,
            act_lo: 0.0,
            act_hi: 0.0,
            pool_h: 0,
            pool_w: 0,
            _pad: 0,
        }
    }

    /// The same, with `act` and the 2×2 pool over planes of `pool`'s h × w fused.
    fn with_pool(s: ChannelShape, act: ActQuant, pool: PoolShape) -> Self {
        Params {
            pool_h: pool.h as u32,
            pool_w: pool.w as u32,
            ..Params::with_act(s, act)
        }
    }

    /// The same, with `act` fused.
    fn with_act(s: ChannelShape, act: ActQuant) -> Self {
        let (mode, scale, lo, hi) = crate::ops::quantize::gpu_act(act);
        Params {
            act: mode,
            act_scale: scale,
            act_lo: lo,
            act_hi: hi,
            ..Params::new(s)
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

/// The batch statistics of x (and the running ones moved): the PARTIAL and STATS dispatches.
/// Returns the bindings 1–7 they took, `y` at 4, for the apply kernels.
fn gpu_stats(g: &mut GpuBackend, bn: BatchNorm, p: &Params, x: Buf, y: Buf) -> [Buf; 7] {
    let (s, pr, st) = (bn.shape, bn.params, bn.stats);
    let part = g.scratch("bn_partials", 3 * s.channels * p.slices as usize);
    let bufs = [x, pr.gamma, pr.beta, y, st.batch, st.running, part];
    g.dispatch(&PARTIAL, p, &bufs, p.partial_grid());
    g.dispatch(&STATS, p, &bufs, p.merge_grid());
    bufs
}

/// y = bn(x) with the batch statistics, or act(bn(x)) with `act` (one pass; bn(x) not stored).
pub(crate) fn gpu_train(g: &mut GpuBackend, bn: BatchNorm, act: Option<ActQuant>, x: Buf, y: Buf) {
    let p = act.map_or(Params::new(bn.shape), |a| Params::with_act(bn.shape, a));
    let bufs = gpu_stats(g, bn, &p, x, y);
    g.dispatch(&APPLY, &p, &bufs[..5], grid_1d(bn.shape.len()));
}

/// Normalizes with the running statistics (the APPLY kernel reads its statistics at binding
/// 5), then `act` if given.
pub(crate) fn gpu_eval(g: &mut GpuBackend, bn: BatchNorm, act: Option<ActQuant>, x: Buf, y: Buf) {
    let (s, pr) = (bn.shape, bn.params);
    let p = act.map_or(Params::new(s), |a| Params::with_act(s, a));
    let bufs = [x, pr.gamma, pr.beta, y, bn.stats.running];
    g.dispatch(&APPLY, &p, &bufs, grid_1d(s.len()));
}

/// dx and dγ, dβ from dy; with `act`, dy is the activation's gradient and is first multiplied
/// by its mask at bn(x), recomputed (the backward of [`gpu_train`] with it).
pub(crate) fn gpu_backward(
    g: &mut GpuBackend,
    bn: BatchNorm,
    act: Option<ActQuant>,
    x: Buf,
    dy: Buf,
    dx: Buf,
    d: BnGrads,
) {
    let p = act.map_or(Params::new(bn.shape), |a| Params::with_act(bn.shape, a));
    backward_with(g, bn, &p, None, (x, dy, dx), d);
}

/// Batch norm, `act` and the 2×2 max pool in one pass after the statistics: `pool.out` the
/// pooled act(bn(x)), `pool.window` which of each window's inputs was the maximum; bn(x) and
/// act(bn(x)) are not stored. For planes of 2×2 or more (nothing is pooled otherwise: the
/// caller takes the separate ops).
pub(crate) fn gpu_train_pool(g: &mut GpuBackend, l: BnAct, x: Buf, pool: Pooled) {
    let p = Params::with_pool(l.bn.shape, l.act, pool.shape);
    let [x, gamma, beta, out, batch, running, part] = gpu_stats(g, l.bn, &p, x, pool.out);
    let bufs = [x, gamma, beta, out, batch, running, part, pool.window];
    g.dispatch(
        &APPLY_POOL,
        &p,
        &bufs,
        grid_1d(pool.shape.y_len().div_ceil(4)),
    );
}

/// The backward of [`gpu_train_pool`]: `dpooled` routed through the window maxima, then as
/// [`gpu_backward`] with `act`, then the conv bias's gradient `dbias` = Σ dx per channel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gpu_backward_pool(
    g: &mut GpuBackend,
    l: BnAct,
    x: Buf,
    pool: Pooled,
    dpooled: Buf,
    dx: Buf,
    d: BnGrads,
    dbias: Buf,
) {
    let p = Params::with_pool(l.bn.shape, l.act, pool.shape);
    backward_with(g, l.bn, &p, Some(pool), (x, dpooled, dx), d);
    gpu_channel_sum(g, l.bn.shape, dx, dbias);
}

/// The three backward dispatches with `p`'s activation and pool: β (with an activation) and the
/// pool's window words go into the partial sums' scratch after the sums — a binding of their
/// own would pass WebGPU's limit of 8 storage buffers a stage.
fn backward_with(
    g: &mut GpuBackend,
    bn: BatchNorm,
    p: &Params,
    pool: Option<Pooled>,
    (x, dy, dx): (Buf, Buf, Buf),
    d: BnGrads,
) {
    let s = bn.shape;
    let sums = 2 * s.channels * p.slices as usize;
    let words = pool.map_or(0, |pool| pool.shape.y_len().div_ceil(4));
    let need = (3 * s.channels * p.slices as usize).max(sums + s.channels + words);
    let part = g.scratch("bn_partials", need);
    if p.act != ACT_NONE {
        g.record_copy_into(bn.params.beta, part, sums as u64 * 4, s.channels as u64 * 4);
    }
    if let Some(pool) = pool {
        let at = (sums + s.channels) as u64 * 4;
        g.record_copy_into(pool.window, part, at, words as u64 * 4);
    }
    let bufs = [
        dy,
        x,
        bn.params.gamma,
        bn.stats.batch,
        dx,
        d.dgamma,
        d.dbeta,
        part,
    ];
    g.dispatch(&BACK_PARTIAL, p, &bufs, p.partial_grid());
    g.dispatch(&BACK_REDUCE, p, &bufs, p.merge_grid());
    g.dispatch(&BACK_APPLY, p, &bufs, grid_1d(s.len()));
}

pub(crate) fn gpu_channel_sum(g: &mut GpuBackend, s: ChannelShape, x: Buf, out: Buf) {
    let p = Params::new(s);
    let part = g.scratch("bn_partials", 3 * s.channels * p.slices as usize);
    g.dispatch(&CHANNEL_SUM_PARTIAL, &p, &[x, out, part], p.partial_grid());
    g.dispatch(&CHANNEL_SUM, &p, &[x, out, part], p.merge_grid());
}
