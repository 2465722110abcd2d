//! Every op of the [`Backend`] trait against the plain f64 reference of
//! tests/common/reference.rs: on the CPU backend always, and on the GPU backend where wgpu finds
//! an adapter (lavapipe in CI; elsewhere the GPU half prints a skip line), on fresh random inputs
//! at odd sizes.
//!
//! Errors are measured as max|got − want| / max|want| over a tensor ([`assert_close`]). Each
//! tolerance sits next to its assertion with its reason: f32 sums of K terms in some order lose
//! about √K·2⁻²⁴ relative to the tensor's scale in practice (K·2⁻²⁴ at worst), so sums of a few
//! hundred terms stay below 1e-5; ops without sums (quantizers, pooling, routing) must agree
//! exactly. Where a discrete choice (a quantizer level, a straight-through mask, a pooling
//! winner) is taken on a value the backends compute in f32 (u = bn(z) in the fused ops), the
//! output is bracketed by the reference at u ± [`U_BAND`], and backward cases whose choices
//! could flip within that band are redrawn.
//!
//! `QNN_REFERENCE_ERRORS=1 cargo test --test reference -- --nocapture` prints every measured
//! error, to re-derive the tolerances.

mod common;

use common::reference::{self as r, f64s};
use common::{
    all_activations, cpu, gpu, pad1, read, read_u32, rng, run_act, run_dense, run_pool, uniform,
    upload, upload_u32, zeros,
};
use qnn::backend::{
    AdamConfig, BatchIndices, BatchNorm, BnAct, BnActGrads, BnActTensors, BnGrads, BnParams,
    BnStats, ChannelShape, ConvShape, DenseShape, LossAcc, LossShape, ParamTensors, PoolShape,
    Pooled, Shift, StepScalars, UpdateRule,
};
use qnn::quant::{ActQuant, Nonlinearity, WeightQuant};
use qnn::{Backend, Dtype};
use rand::rngs::SmallRng;
use rand::Rng;

// ---- comparisons ----------------------------------------------------------------------------

/// "cpu" or "gpu", for messages.
fn which<B: Backend>(b: &B) -> &'static str {
    if b.is_gpu() {
        "gpu"
    } else {
        "cpu"
    }
}

fn print_errors() -> bool {
    std::env::var("QNN_REFERENCE_ERRORS").is_ok_and(|v| v == "1")
}

/// max|got − want| / max(max|want|, floor), all finite.
fn rel_err(what: &str, got: &[f32], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    assert!(
        got.iter().all(|v| v.is_finite()),
        "{what}: non-finite output"
    );
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (&g, &w)| m.max((g as f64 - w).abs()));
    diff / scale
}

/// max|got − want| ≤ tol·max|want| (relative to the tensor's largest value).
#[track_caller]
fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_close_scaled(what, got, want, f64::MIN_POSITIVE, tol);
}

/// max|got − want| ≤ tol·max(max|want|, scale): for tensors whose true value is 0 or nearly so
/// (what is left is rounding noise of the size of `scale`).
#[track_caller]
fn assert_close_scaled(what: &str, got: &[f32], want: &[f64], scale: f64, tol: f64) {
    let e = rel_err(what, got, want, scale);
    if print_errors() {
        eprintln!("{what}: relative error {e:.2e} (tolerance {tol:.0e})");
    }
    assert!(e <= tol, "{what}: relative error {e:.3e} > {tol:.0e}");
}

/// got == want element by element (as f64; −0 equals 0).
#[track_caller]
fn assert_exact(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g as f64 == w, "{what}[{i}]: {g} vs {w}");
    }
}

/// lo ≤ got ≤ hi element by element.
#[track_caller]
fn assert_between(what: &str, got: &[f32], lo: &[f64], hi: &[f64]) {
    assert_eq!(got.len(), lo.len(), "{what}: lengths differ");
    for (i, &g) in got.iter().enumerate() {
        let g = g as f64;
        assert!(
            lo[i] <= g && g <= hi[i],
            "{what}[{i}]: {g} outside [{}, {}]",
            lo[i],
            hi[i]
        );
    }
}

/// Compares a batch-norm backward's [dx, dγ, dβ] with the reference's, given the backward's
/// input dy, the forward's input x and the statistics. The results can cancel to nearly 0 (with
/// M = 2 values per channel, dx is (1 − x̂²)-small), so each is held to 2e-5 of the magnitudes
/// it is computed from rather than of itself: dx to max γ·inv_std·|dy| (the size of its three
/// terms), dγ to max_c Σ|dy·x̂| and dβ to max_c Σ|dy| (f32 sums of M ≤ 4509 terms lose
/// ≲ √M·2⁻²⁴ ≈ 4e-6 of Σ|terms| in practice).
#[track_caller]
fn assert_bn_backward(
    what: &str,
    got: [&[f32]; 3],
    want: &r::BnBackward,
    s: ChannelShape,
    (dy, x, gamma, stats): (&[f64], &[f64], &[f64], &[f64]),
) {
    let c_n = s.channels;
    let (mut dx_scale, mut dgamma_scale, mut dbeta_scale) = (0.0f64, 0.0f64, 0.0f64);
    for c in 0..c_n {
        let (mean, inv_std) = (stats[c], stats[c_n + c]);
        let (mut sum_dyx, mut sum_dy) = (0.0f64, 0.0f64);
        for n in 0..s.batch {
            for i in 0..s.hw {
                let k = (n * c_n + c) * s.hw + i;
                dx_scale = dx_scale.max((gamma[c] * inv_std * dy[k]).abs());
                sum_dyx += (dy[k] * (x[k] - mean) * inv_std).abs();
                sum_dy += dy[k].abs();
            }
        }
        (dgamma_scale, dbeta_scale) = (dgamma_scale.max(sum_dyx), dbeta_scale.max(sum_dy));
    }
    let tiny = 1e-30; // all-zero gradients (nothing pooled) must come out as zeros
    assert_close_scaled(
        &format!("{what} dx"),
        got[0],
        &want.dx,
        dx_scale + tiny,
        2e-5,
    );
    assert_close_scaled(
        &format!("{what} dgamma"),
        got[1],
        &want.dgamma,
        dgamma_scale + tiny,
        2e-5,
    );
    assert_close_scaled(
        &format!("{what} dbeta"),
        got[2],
        &want.dbeta,
        dbeta_scale + tiny,
        2e-5,
    );
}

// ---- discrete choices on f32-computed values ------------------------------------------------

/// How far a backend's u = bn(z) (f32 batch statistics over at most a few thousand values of
/// magnitude ≤ 5: relative error ≲ 1e-6, |u| ≲ 6) may lie from the reference's f64 u: 1e-4
/// leaves a wide margin and is still far below a quantizer step (≥ 2⁻⁷ here).
const U_BAND: f64 = 1e-4;

/// act(u − δ) and act(u + δ), δ = [`U_BAND`]: the activation is non-decreasing, so every value a
/// backend may give lies between them.
fn act_band(a: ActQuant, u: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let at = |d: f64| -> Vec<f64> {
        u.iter()
            .map(|&v| a.forward((v + d) as f32) as f64)
            .collect()
    };
    (at(-U_BAND), at(U_BAND))
}

/// No straight-through mask changes within u ± δ (the mask is 1 on one interval of u, so equal
/// values at both ends and the centre mean no edge inside).
fn mask_clear(a: ActQuant, u: &[f64]) -> bool {
    u.iter().all(|&v| {
        let m = |d: f64| a.grad_mask((v + d) as f32);
        m(-U_BAND) == m(0.0) && m(0.0) == m(U_BAND)
    })
}

/// Every 2×2 window's first maximum of act(u) stays the winner for any values within the
/// window's bands: an earlier value can never reach it, a later one never exceed it.
fn routing_clear(p: PoolShape, a: ActQuant, u: &[f64]) -> bool {
    let (lo, hi) = act_band(a, u);
    let val = r::act_forward(a, u);
    for plane in 0..p.planes {
        for oy in 0..p.h / 2 {
            for ox in 0..p.w / 2 {
                let (j, _) = r::window_argmax(p, &val, plane, oy, ox);
                for dy in 0..2 {
                    for dx in 0..2 {
                        let i = (plane * p.h + 2 * oy + dy) * p.w + 2 * ox + dx;
                        let clear = match i.cmp(&j) {
                            std::cmp::Ordering::Less => hi[i] < lo[j],
                            std::cmp::Ordering::Equal => true,
                            std::cmp::Ordering::Greater => hi[i] <= lo[j],
                        };
                        if !clear {
                            return false;
                        }
                    }
                }
            }
        }
    }
    true
}

/// `draw(rng)` with seeds `seed`, `seed + 1`, … until `clear` accepts the case (no discrete
/// choice within the rounding band); at most 50 tries.
fn draw_clear<T>(
    seed: u64,
    mut draw: impl FnMut(&mut SmallRng) -> T,
    clear: impl Fn(&T) -> bool,
) -> T {
    for k in 0..50 {
        let case = draw(&mut rng(seed + k));
        if clear(&case) {
            return case;
        }
    }
    panic!("seed {seed}: 50 draws in a row had a value within the rounding band of a step");
}

/// ±1 values (BinaryNet's activations and weights).
fn signs(r: &mut SmallRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| if r.random::<bool>() { 1.0 } else { -1.0 })
        .collect()
}

/// γ in [0.5, 1.5], β in [−0.5, 0.5], running statistics [mean 0..C in ±0.1, inv_std C..2C in
/// [0.5, 2]].
fn bn_params(r: &mut SmallRng, c: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let gamma = uniform(r, c, 0.5, 1.5);
    let beta = uniform(r, c, -0.5, 0.5);
    let mut running = uniform(r, c, -0.1, 0.1);
    running.extend(uniform(r, c, 0.5, 2.0));
    (gamma, beta, running)
}

fn conv_shape((batch, cin, cout, h, w): (usize, usize, usize, usize, usize)) -> ConvShape {
    ConvShape {
        batch,
        cin,
        cout,
        h,
        w,
        ..ConvShape::SAME_3X3
    }
}

/// A conv of `(batch, cin, cout, h, w)` with this (kernel, stride, pad).
fn conv_geometry(
    shape: (usize, usize, usize, usize, usize),
    (kernel, stride, pad): (usize, usize, usize),
) -> ConvShape {
    ConvShape {
        kernel,
        stride,
        pad,
        ..conv_shape(shape)
    }
}

// ---- the backend calls: one small helper per op (a signature change is a one-place edit) -----

fn run_gather<B: Backend>(
    b: &mut B,
    pixels: &[u8],
    labels: &[u16],
    chw: (usize, usize, usize),
    idx: &[u32],
    shifts: &[Shift],
) -> (Vec<f32>, Vec<u32>) {
    let set = b.upload_images(pixels, labels, chw).expect("upload images");
    // the indices, then the packed shifts (when there are any)
    let words: Vec<u32> = idx
        .iter()
        .copied()
        .chain(shifts.iter().map(|s| s.pack()))
        .collect();
    let ib = upload_u32(b, &words);
    let (x, l) = (
        zeros(b, idx.len() * chw.0 * chw.1 * chw.2),
        b.alloc(idx.len(), Dtype::U32),
    );
    let batch = BatchIndices {
        indices: ib,
        batch: idx.len(),
        shifted: !shifts.is_empty(),
    };
    b.gather_batch(&set, batch, x, l);
    (read(b, x), read_u32(b, l))
}

/// [y, dx, dw, dbias] of a conv layer; dbias = channel_sum(dy).
fn run_conv<B: Backend>(
    b: &mut B,
    s: ConvShape,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    dy: &[f32],
) -> [Vec<f32>; 4] {
    let (xb, wb, bb, dyb) = (upload(b, x), upload(b, w), upload(b, bias), upload(b, dy));
    let (y, dx, dw, db) = (
        zeros(b, s.y_len()),
        zeros(b, s.x_len()),
        zeros(b, s.w_len()),
        zeros(b, s.cout),
    );
    b.conv_forward(s, xb, wb, bb, y);
    b.conv_grad_input(s, dyb, wb, dx);
    b.conv_grad_weight(s, dyb, xb, dw);
    let cs = ChannelShape {
        batch: s.batch,
        channels: s.cout,
        hw: s.out_h() * s.out_w(),
    };
    b.channel_sum(cs, dyb, db);
    [read(b, y), read(b, dx), read(b, dw), read(b, db)]
}

fn run_conv_binary<B: Backend>(
    b: &mut B,
    s: ConvShape,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
) -> Vec<f32> {
    let (xb, wb, bb, y) = (
        upload(b, x),
        upload(b, w),
        upload(b, bias),
        zeros(b, s.y_len()),
    );
    b.conv_forward_binary(s, xb, wb, bb, y);
    read(b, y)
}

/// A batch norm over `s` with these γ, β, batch statistics and running statistics.
fn upload_bn<B: Backend>(
    b: &mut B,
    s: ChannelShape,
    gamma: &[f32],
    beta: &[f32],
    batch_stats: &[f32],
    running: &[f32],
) -> BatchNorm {
    BatchNorm {
        shape: s,
        params: BnParams {
            gamma: upload(b, gamma),
            beta: upload(b, beta),
        },
        stats: BnStats {
            batch: upload(b, batch_stats),
            running: upload(b, running),
        },
    }
}

fn upload_bn_grads<B: Backend>(b: &mut B, c: usize) -> BnGrads {
    BnGrads {
        dgamma: zeros(b, c),
        dbeta: zeros(b, c),
    }
}

/// [y, batch stats, running stats] of the training forward.
fn run_bn_train<B: Backend>(
    b: &mut B,
    s: ChannelShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running: &[f32],
) -> [Vec<f32>; 3] {
    let bn = upload_bn(b, s, gamma, beta, &vec![0.0; 2 * s.channels], running);
    let (xb, y) = (upload(b, x), zeros(b, s.len()));
    b.bn_train(bn, xb, y);
    [
        read(b, y),
        read(b, bn.stats.batch),
        read(b, bn.stats.running),
    ]
}

/// y of the evaluation forward with these running statistics.
fn run_bn_eval<B: Backend>(
    b: &mut B,
    s: ChannelShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running: &[f32],
) -> Vec<f32> {
    let bn = upload_bn(b, s, gamma, beta, &vec![0.0; 2 * s.channels], running);
    let (xb, y) = (upload(b, x), zeros(b, s.len()));
    b.bn_eval(bn, xb, y);
    read(b, y)
}

/// [dx, dγ, dβ] of the backward with these batch statistics.
fn run_bn_backward<B: Backend>(
    b: &mut B,
    s: ChannelShape,
    x: &[f32],
    gamma: &[f32],
    stats: &[f32],
    dy: &[f32],
) -> [Vec<f32>; 3] {
    let beta = vec![0.0; s.channels];
    let bn = upload_bn(b, s, gamma, &beta, stats, &vec![0.0; 2 * s.channels]);
    let (xb, dyb, dx) = (upload(b, x), upload(b, dy), zeros(b, s.len()));
    let g = upload_bn_grads(b, s.channels);
    b.bn_backward(bn, xb, dyb, dx, g);
    [read(b, dx), read(b, g.dgamma), read(b, g.dbeta)]
}

/// (max|w|, wq).
fn run_weight_quantize<B: Backend>(b: &mut B, q: WeightQuant, w: &[f32]) -> (f32, Vec<f32>) {
    let wb = upload(b, w);
    let (m, wq) = (zeros(b, 1), zeros(b, w.len()));
    b.weight_quantize(q, wb, m, wq);
    (read(b, m)[0], read(b, wq))
}

/// One loss call per (scores, labels, with gradient) into one accumulator, in order: each
/// call's gradient (empty without) and the accumulator after all of them.
fn run_loss<B: Backend>(
    b: &mut B,
    s: LossShape,
    calls: &[(Vec<f32>, Vec<u32>, bool)],
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let acc = zeros(b, LossAcc::LEN);
    let mut grads = Vec::new();
    for (y, labels, with_grad) in calls {
        let (yb, lb) = (upload(b, y), upload_u32(b, labels));
        let dy = with_grad.then(|| zeros(b, y.len()));
        b.loss(s, yb, lb, dy, acc);
        grads.push(dy.map(|d| read(b, d)).unwrap_or_default());
    }
    (grads, read(b, acc))
}

/// Adam (`sgd` false) or SGD steps with these scalars on one tensor: [p, m (or the
/// velocity), v].
fn run_update<B: Backend>(
    b: &mut B,
    rule: UpdateRule,
    sgd: bool,
    p: &[f32],
    g: &[f32],
    steps: &[StepScalars],
) -> [Vec<f32>; 3] {
    let t = ParamTensors {
        value: upload(b, p),
        grad: upload(b, g),
        m: zeros(b, p.len()),
        v: zeros(b, p.len()),
    };
    let step = b.alloc(StepScalars::LEN, Dtype::F32);
    for s in steps {
        b.write_f32(step, &s.to_vec());
        if sgd {
            b.sgd(rule, t, step);
        } else {
            b.adam(rule, AdamConfig::default(), t, step);
        }
    }
    [read(b, t.value), read(b, t.m), read(b, t.v)]
}

/// The inputs of a conv layer's batch norm + activation (+ pool): z, γ, β, running statistics
/// and the incoming gradient (da, or dpooled).
struct BnActCase {
    z: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running: Vec<f32>,
    grad: Vec<f32>,
}

/// A case's batch norm + activation on the backend, and its z with zeroed u and a.
fn upload_bn_act<B: Backend>(
    b: &mut B,
    s: ChannelShape,
    act: ActQuant,
    c: &BnActCase,
) -> (BnAct, BnActTensors) {
    let bn = upload_bn(
        b,
        s,
        &c.gamma,
        &c.beta,
        &vec![0.0; 2 * s.channels],
        &c.running,
    );
    let t = BnActTensors {
        z: upload(b, &c.z),
        u: zeros(b, s.len()),
        a: zeros(b, s.len()),
    };
    (BnAct { bn, act }, t)
}

/// bn_act_train, bn_act_eval (with the moved running statistics), act_bn_backward:
/// [a, batch stats, running stats, eval a, dz, dγ, dβ].
fn run_bn_act<B: Backend>(
    b: &mut B,
    s: ChannelShape,
    act: ActQuant,
    c: &BnActCase,
) -> [Vec<f32>; 7] {
    let (l, t) = upload_bn_act(b, s, act, c);
    let bn = l.bn;
    let te = BnActTensors {
        z: t.z,
        u: zeros(b, s.len()),
        a: zeros(b, s.len()),
    };
    let g = BnActGrads {
        da: upload(b, &c.grad),
        du: zeros(b, s.len()),
        dz: zeros(b, s.len()),
        params: upload_bn_grads(b, s.channels),
    };
    b.bn_act_train(l, t);
    // read the training forward's outputs before the evaluation forward and the backward run
    let (a, stats, running) = (
        read(b, t.a),
        read(b, bn.stats.batch),
        read(b, bn.stats.running),
    );
    b.act_bn_backward(l, t, g);
    b.bn_act_eval(l, te);
    [
        a,
        stats,
        running,
        read(b, te.a),
        read(b, g.dz),
        read(b, g.params.dgamma),
        read(b, g.params.dbeta),
    ]
}

/// bn_act_pool_train then pool_act_bn_backward:
/// [pooled, batch stats, running stats, dz, dγ, dβ, dbias].
fn run_bn_act_pool<B: Backend>(
    b: &mut B,
    s: ChannelShape,
    p: PoolShape,
    act: ActQuant,
    c: &BnActCase,
) -> [Vec<f32>; 7] {
    let (l, t) = upload_bn_act(b, s, act, c);
    let bn = l.bn;
    let pool = Pooled {
        shape: p,
        out: zeros(b, p.y_len().max(1)),
        window: b.alloc(p.y_len().div_ceil(4).max(1), Dtype::U32),
    };
    let dpooled = upload(b, &pad1(&c.grad));
    let g = BnActGrads {
        da: zeros(b, s.len()),
        du: zeros(b, s.len()),
        dz: zeros(b, s.len()),
        params: upload_bn_grads(b, s.channels),
    };
    let dbias = zeros(b, s.channels);
    b.bn_act_pool_train(l, t, pool);
    b.pool_act_bn_backward(l, t, pool, dpooled, g, dbias);
    let mut pooled = read(b, pool.out);
    pooled.truncate(p.y_len());
    [
        pooled,
        read(b, bn.stats.batch),
        read(b, bn.stats.running),
        read(b, g.dz),
        read(b, g.params.dgamma),
        read(b, g.params.dbeta),
        read(b, dbias),
    ]
}

// ---- the checks, generic over the backend ----------------------------------------------------

fn check_gather<B: Backend>(b: &mut B) {
    let dev = which(b);
    for (i, chw) in [(3usize, 7usize, 5usize), (1, 1, 6), (2, 4, 1), (3, 9, 11)]
        .into_iter()
        .enumerate()
    {
        let mut rr = rng(1000 + i as u64);
        let count = 11;
        let len = chw.0 * chw.1 * chw.2;
        let mut pixels: Vec<u8> = (0..count * len).map(|_| rr.random()).collect();
        (pixels[0], pixels[1]) = (0, 255); // both ends of the range
                                           // labels of up to 1,000 classes (above a byte's range too)
        let labels: Vec<u16> = (0..count).map(|_| rr.random_range(0..1000)).collect();
        let mut idx: Vec<u32> = (0..9)
            .map(|_| rr.random_range(0..2 * count as u32))
            .collect();
        (idx[0], idx[1], idx[2]) = (0, count as u32, 2 * count as u32 - 1); // plain, flipped, last
        let (want_x, want_l) = r::gather_batch(&pixels, &labels, chw, &idx, &[]);
        let (x, l) = run_gather(b, &pixels, &labels, chw, &idx, &[]);
        let what = format!("{dev} gather_batch {chw:?}");
        // p·2/255 − 1 in f32: two or three roundings of values ≤ 2, ≤ 3·2⁻²⁴ ≈ 2e-7
        assert_close(&what, &x, &want_x, 3e-7);
        assert_eq!(l, want_l, "{what}: labels");
        // a crop of 0 everywhere is the batch without crops, bit for bit
        let zero = vec![Shift::default(); idx.len()];
        let (x0, l0) = run_gather(b, &pixels, &labels, chw, &idx, &zero);
        assert_eq!(
            x0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{what}: zero shifts"
        );
        assert_eq!(l0, l, "{what}: zero shifts' labels");
        // random crops (flipped images among them): a pixel, half the image and more (a shift
        // past the side leaves nothing of the image), each with both extremes ±pad
        let side = chw.1.max(chw.2) as i32;
        for pad in [1, 2, (side + 1) / 2, side + 1] {
            let mut shifts: Vec<Shift> = (0..idx.len())
                .map(|_| Shift {
                    dy: rr.random_range(-pad..=pad),
                    dx: rr.random_range(-pad..=pad),
                })
                .collect();
            shifts[0] = Shift { dy: -pad, dx: pad };
            shifts[1] = Shift { dy: pad, dx: -pad }; // on a flipped image
            shifts[2] = Shift { dy: 0, dx: pad };
            let (want_x, want_l) = r::gather_batch(&pixels, &labels, chw, &idx, &shifts);
            let (x, l) = run_gather(b, &pixels, &labels, chw, &idx, &shifts);
            let what = format!("{dev} gather_batch {chw:?} cropped ±{pad}");
            assert_close(&what, &x, &want_x, 3e-7);
            assert_eq!(l, want_l, "{what}: labels");
        }
    }
}

fn check_conv<B: Backend>(b: &mut B) {
    // odd sizes; a 1×1 image (every tap but the centre in the padding); ≥ 16 channels and
    // ≥ 8 pixels a side (the CPU's Winograd path); a one-row image
    let shapes = [
        (3, 13, 5, 7, 5),
        (1, 3, 4, 1, 1),
        (2, 16, 17, 9, 11),
        (2, 5, 3, 1, 7),
    ];
    let cases: Vec<ConvShape> = shapes.into_iter().map(conv_shape).collect();
    check_conv_cases(b, &cases, 2000);
}

/// The geometries other than the seed's (kernel, stride, pad), at odd sizes: 1×1 "same"
/// (pad 0), 5×5 "same" (pad 2), 5×5 "valid" (pad 0, the output 4 pixels smaller), 3×3
/// stride 2 "same" on an odd 7×9 image (output 4×5, the last input row and column read by one
/// tap only), 1×1 stride 2 (input pixels no output reads get a zero gradient), 3×3 "valid";
/// 3×3 "valid" again at ≥ 16 channels and ≥ 8 pixels a side (the size the CPU's Winograd path
/// takes for the seed's geometry, which it must not take here); 5×5 stride 2 "same".
fn check_conv_geometries<B: Backend>(b: &mut B) {
    let cases = [
        conv_geometry((3, 13, 5, 7, 5), (1, 1, 0)),
        conv_geometry((2, 5, 4, 9, 7), (5, 1, 2)),
        conv_geometry((2, 4, 3, 9, 11), (5, 1, 0)),
        conv_geometry((2, 6, 5, 7, 9), (3, 2, 1)),
        conv_geometry((3, 7, 4, 7, 9), (1, 2, 0)),
        conv_geometry((2, 5, 6, 9, 7), (3, 1, 0)),
        conv_geometry((2, 16, 17, 9, 11), (3, 1, 0)),
        conv_geometry((2, 3, 4, 9, 8), (5, 2, 2)),
    ];
    check_conv_cases(b, &cases, 2100);
}

/// Each conv of `cases` on fresh random inputs (seeds from `seed`) against the f64 loops:
/// forward, input, weight and bias gradients.
fn check_conv_cases<B: Backend>(b: &mut B, cases: &[ConvShape], seed: u64) {
    let dev = which(b);
    for (i, &s) in cases.iter().enumerate() {
        let mut rr = rng(seed + i as u64);
        let x = uniform(&mut rr, s.x_len(), -1.0, 1.0);
        let w = uniform(&mut rr, s.w_len(), -1.0, 1.0);
        let bias = uniform(&mut rr, s.cout, -1.0, 1.0);
        let dy = uniform(&mut rr, s.y_len(), -1.0, 1.0);
        let got = run_conv(b, s, &x, &w, &bias, &dy);
        let (x, w, bias, dy) = (f64s(&x), f64s(&w), f64s(&bias), f64s(&dy));
        let cs = ChannelShape {
            batch: s.batch,
            channels: s.cout,
            hw: s.out_h() * s.out_w(),
        };
        let want = [
            r::conv_forward(s, &x, &w, &bias),
            r::conv_grad_input(s, &dy, &w),
            r::conv_grad_weight(s, &dy, &x),
            r::channel_sum(cs, &dy),
        ];
        for (k, name) in [
            "forward",
            "grad input",
            "grad weight",
            "bias grad (channel_sum)",
        ]
        .into_iter()
        .enumerate()
        {
            // f32 sums of K ≤ 198 products of values ≤ 1 (K = kernel²·cin, kernel²·cout,
            // batch·out_h·out_w; on the CPU also through Winograd's transforms): √K·2⁻²⁴ ≈ 1e-6
            // of the tensor's scale in practice (seen: 5e-7), K·2⁻²⁴ ≈ 1.2e-5 at worst. 1e-5
            assert_close(&format!("{dev} conv {name} {s:?}"), &got[k], &want[k], 1e-5);
        }
    }
}

fn check_conv_binary<B: Backend>(b: &mut B) {
    let dev = which(b);
    // channels around the 64-bit words of an XNOR kernel; a 1×1 image
    let shapes = [
        (3, 13, 5, 7, 5),
        (2, 65, 3, 3, 5),
        (1, 64, 2, 4, 3),
        (2, 1, 3, 1, 1),
    ];
    for (i, shape) in shapes.into_iter().enumerate() {
        let s = conv_shape(shape);
        let mut rr = rng(2500 + i as u64);
        let (x, w) = (signs(&mut rr, s.x_len()), signs(&mut rr, s.w_len()));
        let bias = uniform(&mut rr, s.cout, -0.7, 0.7);
        let got = run_conv_binary(b, s, &x, &w, &bias);
        let want = r::conv_forward(s, &f64s(&x), &f64s(&w), &f64s(&bias));
        // an integer sum of K = 9·cin ≤ 585 terms ±1 (exact in f32) plus a bias: at most K
        // roundings of a value ≤ K, K·2⁻²⁴ ≈ 3.5e-5 relative to it at worst; 1e-5 relative to
        // the tensor (sums of ±1 random walk, the bias is added once or twice in practice)
        assert_close(
            &format!("{dev} conv_forward_binary {s:?}"),
            &got,
            &want,
            1e-5,
        );
    }
}

fn check_dense<B: Backend>(b: &mut B) {
    let dev = which(b);
    let shapes = [(3, 455, 10), (1, 9, 10), (13, 35, 7)];
    for (i, (batch, inputs, outputs)) in shapes.into_iter().enumerate() {
        let s = DenseShape {
            batch,
            inputs,
            outputs,
        };
        let mut rr = rng(3000 + i as u64);
        let x = uniform(&mut rr, batch * inputs, -1.0, 1.0);
        let w = uniform(&mut rr, outputs * inputs, -1.0, 1.0);
        let bias = uniform(&mut rr, outputs, -1.0, 1.0);
        let dy = uniform(&mut rr, batch * outputs, -1.0, 1.0);
        let got = run_dense(b, s, &x, &w, &bias, &dy);
        let (x, w, bias, dy) = (f64s(&x), f64s(&w), f64s(&bias), f64s(&dy));
        let cs = ChannelShape {
            batch,
            channels: outputs,
            hw: 1,
        };
        let want = [
            r::dense_forward(s, &x, &w, &bias),
            r::dense_grad_input(s, &dy, &w),
            r::dense_grad_weight(s, &dy, &x),
            r::channel_sum(cs, &dy),
        ];
        for (k, name) in [
            "forward",
            "grad input",
            "grad weight",
            "bias grad (channel_sum)",
        ]
        .into_iter()
        .enumerate()
        {
            // f32 sums of K ≤ 455 products of values ≤ 1 (K = inputs, outputs, batch):
            // √K·2⁻²⁴ ≈ 1.3e-6 of the tensor's scale in practice (seen: 3.4e-7). 1e-5
            assert_close(
                &format!("{dev} dense {name} {s:?}"),
                &got[k],
                &want[k],
                1e-5,
            );
        }
    }
}

/// (batch, channels, hw, the inputs' range): 7×5 images, 13 channels, 3 images, with an
/// offset and a spread like conv outputs; the same with a spread of 0.03 (variance 7.5e-5, of
/// the size of eps = 1e-4, so eps shows); the dense layer's batch norm (hw 1); one image of one
/// pixel (M = 1: variance 0, the output is β); more than 4096 values per channel (the GPU's
/// reductions split a channel into chunks).
const BN_CASES: [(usize, usize, usize, (f32, f32)); 5] = [
    (3, 13, 35, (-3.0, 5.0)),
    (3, 13, 35, (0.4, 0.43)),
    (16, 10, 1, (-3.0, 5.0)),
    (1, 3, 1, (-3.0, 5.0)),
    (9, 3, 501, (-3.0, 5.0)),
];

fn check_batchnorm<B: Backend>(b: &mut B) {
    let dev = which(b);
    for (i, (batch, channels, hw, (lo, hi))) in BN_CASES.into_iter().enumerate() {
        let s = ChannelShape {
            batch,
            channels,
            hw,
        };
        let mut rr = rng(4000 + i as u64);
        let x = uniform(&mut rr, s.len(), lo, hi);
        let (gamma, beta, running) = bn_params(&mut rr, channels);
        let dy = uniform(&mut rr, s.len(), -1.0, 1.0);
        let what = |op: &str| format!("{dev} batchnorm {op} {s:?}");

        let want = r::batchnorm_train(s, &f64s(&x), &f64s(&gamma), &f64s(&beta), &f64s(&running));
        let [y, stats, new_running] = run_bn_train(b, s, &x, &gamma, &beta, &running);
        // mean and Σ(x − mean)² are f32 sums of M ≤ 4509 values ≤ 5 (the CPU merges planes in
        // f64): √M·2⁻²⁴ ≈ 4e-6 relative at most in practice; the stats and the running average
        // inherit it, y too, times γ·inv_std ≤ 1.5·115 where the spread is 0.03 (x − mean
        // off by the mean's rounding, 2⁻²⁴·0.43: ≈ 4e-6 of |y| ≈ 2; seen: 2e-6). 2e-5
        assert_close(&what("train y"), &y, &want.y, 2e-5);
        assert_close(&what("train batch stats"), &stats, &want.stats, 2e-5);
        assert_close(
            &what("train running stats"),
            &new_running,
            &want.running,
            2e-5,
        );

        // no sums: (x − mean)·γ·inv_std + β is three or four f32 roundings of values ≲ 8
        let want_eval =
            r::batchnorm_eval(s, &f64s(&x), &f64s(&gamma), &f64s(&beta), &f64s(&running));
        let y_eval = run_bn_eval(b, s, &x, &gamma, &beta, &running);
        assert_close(&what("eval y"), &y_eval, &want_eval, 1e-6);

        // the backward is given the batch statistics (the reference's, rounded to f32) and
        // takes them as they are
        let stats32: Vec<f32> = want.stats.iter().map(|&v| v as f32).collect();
        let [dx, dgamma, dbeta] = run_bn_backward(b, s, &x, &gamma, &stats32, &dy);
        let (dy, x, gamma, stats) = (f64s(&dy), f64s(&x), f64s(&gamma), f64s(&stats32));
        let want_g = r::batchnorm_backward(s, &dy, &x, &gamma, &stats);
        // dβ = Σ dy, dγ = Σ dy·x̂: f32 sums of M ≤ 4509 terms; dx = γ·inv_std·(dy − dβ/M −
        // x̂·dγ/M). 2e-5 of the terms' size (see assert_bn_backward)
        assert_bn_backward(
            &what("backward"),
            [&dx, &dgamma, &dbeta],
            &want_g,
            s,
            (&dy, &x, &gamma, &stats),
        );
    }
}

fn check_activation<B: Backend>(b: &mut B) {
    let dev = which(b);
    let mut rr = rng(5000);
    let mut x = uniform(&mut rr, 1001, -1.6, 1.6);
    // rounding ties of every width up to 2⁻⁶ and the mask edges
    for k in -64..=64 {
        x.push(k as f32 / 64.0);
        x.push(k as f32 / 64.0 + 1.0 / 512.0);
    }
    x.extend([-1.0, 1.0, -1.0000001, 1.0000001, 0.0, -0.0]);
    let dy = uniform(&mut rr, x.len(), -1.0, 1.0);
    for a in all_activations() {
        let [y, dx] = run_act(b, a, &x, &dy);
        let what = format!("{dev} activation {a:?}");
        // element-wise with the spec's arithmetic on the same f32 values: exact
        assert_exact(
            &format!("{what} forward"),
            &y,
            &r::act_forward(a, &f64s(&x)),
        );
        assert_exact(
            &format!("{what} backward"),
            &dx,
            &r::act_backward(a, &f64s(&x), &f64s(&dy)),
        );
    }
}

fn check_pool<B: Backend>(b: &mut B) {
    let dev = which(b);
    // odd height and width (the last row and column belong to no window), a 1-pixel-high
    // image (nothing to pool), a 1-pixel-wide one, an even square
    let shapes = [(39, 7, 5), (6, 1, 5), (4, 6, 1), (5, 6, 6)];
    for (i, (planes, h, w)) in shapes.into_iter().enumerate() {
        let p = PoolShape { planes, h, w };
        let mut rr = rng(6000 + i as u64);
        // quantized-looking inputs: few levels, many ties within a window
        let x: Vec<f32> = uniform(&mut rr, p.x_len(), 0.0, 4.0)
            .into_iter()
            .map(|v| v.floor() / 4.0)
            .collect();
        let dy = uniform(&mut rr, p.y_len(), -1.0, 1.0);
        let [y, dx] = run_pool(b, p, &x, &dy);
        let what = format!("{dev} maxpool {p:?}");
        // a copy and a routing, no arithmetic: exact
        assert_exact(
            &format!("{what} forward"),
            &y,
            &r::maxpool_forward(p, &f64s(&x)),
        );
        assert_exact(
            &format!("{what} backward"),
            &dx,
            &r::maxpool_backward(p, &f64s(&x), &f64s(&dy)),
        );
    }
}

fn check_global_pool<B: Backend>(b: &mut B) {
    let dev = which(b);
    // odd h·w (3×5: 1/15 is not a power of two, so its f32 is rounded); 1×1 (the mean is the
    // value); an odd 11×13 plane (143 terms); more planes than a GPU workgroup has threads
    let shapes = [(7, 3, 5), (4, 1, 1), (5, 11, 13), (300, 2, 3)];
    for (i, (planes, h, w)) in shapes.into_iter().enumerate() {
        let p = PoolShape { planes, h, w };
        let mut rr = rng(6500 + i as u64);
        let x = uniform(&mut rr, p.x_len(), -1.0, 1.0);
        let dy = uniform(&mut rr, planes, -1.0, 1.0);
        let (xb, dyb) = (upload(b, &x), upload(b, &dy));
        let (y, dx) = (zeros(b, planes), zeros(b, p.x_len()));
        b.global_pool_forward(p, xb, y);
        b.global_pool_backward(p, dyb, dx);
        let (y, dx) = (read(b, y), read(b, dx));
        let what = format!("{dev} global pool {p:?}");
        // an f32 sum of h·w ≤ 143 terms (each step rounded, ≤ 2⁻²⁴ of Σ|x| of the plane) then
        // one product with f32(1/(h·w)) (two more roundings): ≤ (h·w + 2)·2⁻²⁴ ≈ 8.6e-6 of the
        // plane's mean |x| at worst. The means of random ±1 values can cancel to nearly 0, so
        // the error is measured against the largest mean |x|, not against the means. 1e-5
        let abs_mean =
            r::global_pool_forward(p, &f64s(&x).iter().map(|v| v.abs()).collect::<Vec<_>>());
        let scale = abs_mean.into_iter().fold(1e-30, f64::max);
        let want_y = r::global_pool_forward(p, &f64s(&x));
        assert_close_scaled(&format!("{what} forward"), &y, &want_y, scale, 1e-5);
        // dy·f32(1/(h·w)): two roundings, ≤ 2·2⁻²⁴ ≈ 1.2e-7 of each value. 2e-7
        let want_dx = r::global_pool_backward(p, &f64s(&dy));
        assert_close(&format!("{what} backward"), &dx, &want_dx, 2e-7);
    }
}

fn check_weight_quantize<B: Backend>(b: &mut B) {
    let dev = which(b);
    let qs = [
        WeightQuant::None,
        WeightQuant::Binary,
        WeightQuant::Bits { bits: 1, sym: true },
        WeightQuant::Bits {
            bits: 1,
            sym: false,
        },
        WeightQuant::Bits { bits: 2, sym: true },
        WeightQuant::Bits {
            bits: 2,
            sym: false,
        },
        WeightQuant::Bits { bits: 4, sym: true },
        WeightQuant::Bits {
            bits: 4,
            sym: false,
        },
        WeightQuant::Bits {
            bits: 8,
            sym: false,
        },
        WeightQuant::Bits {
            bits: 16,
            sym: true,
        },
    ];
    let mut rr = rng(7000);
    // 13·5·9 weights at scales giving f = 0, 1, 6; a tensor whose max is exactly 2⁻² (f = 2);
    // one weight; all zeros (f = 0)
    let mut tensors: Vec<Vec<f32>> = [(585, 1.0f32), (117, 0.3), (45, 0.01), (1, 0.7)]
        .into_iter()
        .map(|(n, scale)| {
            uniform(&mut rr, n, -1.0, 1.0)
                .into_iter()
                .map(|v| v * scale)
                .collect()
        })
        .collect();
    let mut pow2 = uniform(&mut rr, 27, -0.25, 0.25);
    pow2[13] = -0.25;
    tensors.push(pow2);
    tensors.push(vec![0.0; 9]);
    for w in &tensors {
        for q in qs {
            let (absmax, wq) = run_weight_quantize(b, q, w);
            let (want_max, want_wq) = r::weight_quantize(q, &f64s(w));
            let what = format!("{} weight_quantize {q:?} n={}", dev, w.len());
            // a maximum, a power-of-two scale, a rounding to an integer, a clip: exact
            assert_exact(&format!("{what} max|w|"), &[absmax], &[want_max]);
            assert_exact(&what, &wq, &want_wq);
        }
    }
}

fn check_loss<B: Backend>(b: &mut B) {
    let dev = which(b);
    // ten classes (the seeds of the first version of this check), the fewest, an odd count and
    // the most
    let cases = [(10usize, 8000u64), (2, 8200), (37, 8400), (1000, 8600)];
    for (classes, seed) in cases {
        for (i, batch) in [1usize, 13, 257].into_iter().enumerate() {
            check_loss_at(b, dev, LossShape { batch, classes }, seed + i as u64);
        }
    }
}

fn check_loss_at<B: Backend>(b: &mut B, dev: &str, s: LossShape, seed: u64) {
    let LossShape { batch, classes } = s;
    let mut rr = rng(seed);
    let draw = |rr: &mut SmallRng| -> (Vec<f32>, Vec<u32>) {
        let y = uniform(rr, batch * classes, -2.0, 2.0);
        let labels = (0..batch)
            .map(|_| rr.random_range(0..classes as u32))
            .collect();
        (y, labels)
    };
    let (mut y1, mut l1) = draw(&mut rr);
    // a tie for the maximum: the first one counts, so a label on the second is wrong
    let (first, second) = if classes > 5 { (2, 5) } else { (0, 1) };
    y1[..classes].fill(-1.0);
    y1[first] = 0.5;
    y1[second] = 0.5;
    l1[0] = second as u32;
    let (y2, l2) = draw(&mut rr);
    // a training call, an evaluation call (no gradient), a training call
    let calls = vec![
        (y1.clone(), l1.clone(), true),
        (y2.clone(), l2.clone(), false),
        (y2.clone(), l1.clone(), true),
    ];
    let (grads, acc) = run_loss(b, s, &calls);
    let mut want_acc: r::LossAccum = [0.0; 5];
    let want_g1 = r::squared_hinge(batch, classes, &f64s(&y1), &l1, &mut want_acc);
    r::squared_hinge(batch, classes, &f64s(&y2), &l2, &mut want_acc);
    let want_g3 = r::squared_hinge(batch, classes, &f64s(&y2), &l1, &mut want_acc);
    let what = format!("{dev} loss batch {batch} classes {classes}");
    // −2·t·max(0, 1 − t·y)/(B·K): two or three f32 roundings (B·K ≤ 257,000 is exact in
    // f32), whatever K
    assert_close(&format!("{what} gradient 1"), &grads[0], &want_g1, 1e-6);
    assert!(grads[1].is_empty());
    assert_close(&format!("{what} gradient 3"), &grads[2], &want_g3, 1e-6);
    // the loss sum: each row an f32 sum of K squares ≤ 9 (relative error √K·2⁻²⁴ in
    // practice, ≈ 2e-6 at K = 1,000), divided by K, then the rows and 3 calls summed
    // (the GPU's tree in f32: a few 2⁻²⁴ more); 2e-5 at every K up to 1,000
    assert_close(&format!("{what} loss sum"), &acc[..1], &want_acc[..1], 2e-5);
    // counts: exact
    assert_exact(
        &format!("{what} wrong, calls, bad"),
        &acc[1..],
        &want_acc[1..],
    );
    assert_eq!(acc[3], 0.0, "{what}: no bad call");
    assert!(acc[1] >= 1.0, "{what}: the tie counts as wrong");

    // a non-finite row in the second of three calls: counts only (the loss of a NaN score
    // and its gradient are not specified)
    let mut bad = y2.clone();
    bad[classes * (batch - 1) + 3.min(classes - 1)] = f32::NAN;
    if batch > 1 {
        bad[4] = f32::INFINITY;
    }
    let calls = vec![
        (y1.clone(), l1.clone(), false),
        (bad.clone(), l2.clone(), true),
        (y2.clone(), l2.clone(), false),
    ];
    let (_, acc) = run_loss(b, s, &calls);
    let mut want_acc: r::LossAccum = [0.0; 5];
    for (y, l, _) in &calls {
        r::squared_hinge(batch, classes, &f64s(y), l, &mut want_acc);
    }
    assert_exact(
        &format!("{what} with a non-finite row: calls, first bad call, bad rows"),
        &acc[2..],
        &want_acc[2..],
    );
    assert_eq!(acc[3], 2.0, "{what}: the second call went bad");
}

fn check_optimizers<B: Backend>(b: &mut B) {
    let dev = which(b);
    let mut rr = rng(9000);
    let n = 585;
    let p = uniform(&mut rr, n, -1.0, 1.0);
    let mut g = uniform(&mut rr, n, -0.1, 0.1);
    g[7] = 0.0; // no step at all where the gradient is 0
    let cfg = AdamConfig::default();
    for rule in [UpdateRule::Plain, UpdateRule::ScaledClip { scale: 27.71 }] {
        for sgd in [false, true] {
            let steps: Vec<StepScalars> = (1..=3u64)
                .map(|t| {
                    if sgd {
                        StepScalars::sgd(0.01, 0.9)
                    } else {
                        StepScalars::adam(0.003, t, cfg)
                    }
                })
                .collect();
            let got = run_update(b, rule, sgd, &p, &g, &steps);
            let (mut want_p, mut want_m, mut want_v) = (f64s(&p), vec![0.0; n], vec![0.0; n]);
            for (t, s) in (1..).zip(&steps) {
                if sgd {
                    r::sgd(rule, *s, &mut want_p, &f64s(&g), &mut want_m);
                } else {
                    // the step size of docs/spec.md §5, a = lr·√(1 − β2^t)/(1 − β1^t)
                    let (b1, b2) = (cfg.beta1 as f64, cfg.beta2 as f64);
                    let a = 0.003f32 as f64 * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
                    assert!(
                        (s.adam_step as f64 - a).abs() <= 1e-6 * a,
                        "adam_step t={t}"
                    );
                    r::adam(
                        rule,
                        cfg,
                        *s,
                        &mut want_p,
                        &f64s(&g),
                        &mut want_m,
                        &mut want_v,
                    );
                }
            }
            let what = format!("{} {} {rule:?}", dev, if sgd { "sgd" } else { "adam" });
            // three steps of a few f32 roundings each; ScaledClip multiplies p_new − p (an f32
            // difference of values ≤ 1, off by up to 2⁻²⁴) by 27.71: ≈ 3·27.71·6e-8 ≈ 5e-6
            // relative to |p| ≤ 1. 2e-5
            assert_close(&format!("{what} p"), &got[0], &want_p, 2e-5);
            // m, v (or the velocity): a few roundings per step
            assert_close(&format!("{what} m"), &got[1], &want_m, 1e-6);
            if !sgd {
                assert_close(&format!("{what} v"), &got[2], &want_v, 1e-6);
            }
            if let UpdateRule::ScaledClip { .. } = rule {
                assert!(
                    got[0].iter().all(|v| (-1.0..=1.0).contains(v)),
                    "{what}: clipped to [−1, 1]"
                );
            }
        }
    }
}

/// The reference of a conv layer's batch norm + activation: (batch-norm training forward,
/// u = bn(z)).
fn bn_act_reference(s: ChannelShape, c: &BnActCase) -> r::BnTrain {
    r::batchnorm_train(
        s,
        &f64s(&c.z),
        &f64s(&c.gamma),
        &f64s(&c.beta),
        &f64s(&c.running),
    )
}

fn draw_bn_act(rr: &mut SmallRng, s: ChannelShape, grad_len: usize) -> BnActCase {
    let z = uniform(rr, s.len(), -3.0, 3.0);
    let (gamma, beta, running) = bn_params(rr, s.channels);
    let grad = uniform(rr, grad_len, -1.0, 1.0);
    BnActCase {
        z,
        gamma,
        beta,
        running,
        grad,
    }
}

fn check_bn_act<B: Backend>(b: &mut B) {
    let dev = which(b);
    let shapes = [(3, 13, 35), (2, 5, 1), (4, 3, 64)];
    for (i, (batch, channels, hw)) in shapes.into_iter().enumerate() {
        let s = ChannelShape {
            batch,
            channels,
            hw,
        };
        for (j, act) in all_activations().into_iter().enumerate() {
            // redrawn until no u lies within U_BAND of a mask edge: the backward's sums would
            // take a different set of terms
            let c = draw_clear(
                10_000 + 100 * i as u64 + 1000 * j as u64,
                |rr| draw_bn_act(rr, s, s.len()),
                |c| mask_clear(act, &bn_act_reference(s, c).y),
            );
            let want = bn_act_reference(s, &c);
            let got = run_bn_act(b, s, act, &c);
            let what = |op: &str| format!("{dev} bn+act {act:?} {s:?} {op}");

            // a = act(u) for a u within the band of the reference's
            let (lo, hi) = act_band(act, &want.y);
            assert_between(&what("train a"), &got[0], &lo, &hi);
            // as batchnorm_train: f32 sums of M ≤ 256 values; 2e-5
            assert_close(&what("batch stats"), &got[1], &want.stats, 2e-5);
            assert_close(&what("running stats"), &got[2], &want.running, 2e-5);

            // evaluation with the moved running statistics
            let u_eval = r::batchnorm_apply(
                s,
                &f64s(&c.z),
                &f64s(&c.gamma),
                &f64s(&c.beta),
                &want.running,
            );
            let (lo, hi) = act_band(act, &u_eval);
            assert_between(&what("eval a"), &got[3], &lo, &hi);

            // du = da·act'(u), then the batch norm's backward with the batch statistics
            let du = r::act_backward(act, &want.y, &f64s(&c.grad));
            let (z, gamma) = (f64s(&c.z), f64s(&c.gamma));
            let g = r::batchnorm_backward(s, &du, &z, &gamma, &want.stats);
            // as batchnorm_backward: f32 sums of M ≤ 256 terms; 2e-5 of the terms' size
            assert_bn_backward(
                &what("backward"),
                [&got[4], &got[5], &got[6]],
                &g,
                s,
                (&du, &z, &gamma, &want.stats),
            );
        }
    }
}

fn check_bn_act_pool<B: Backend>(b: &mut B) {
    let dev = which(b);
    use Nonlinearity::*;
    // the activations of the trainer's usual settings: quantized ones tie often in a window
    let acts = [
        ActQuant::Quantized {
            nl: Hardtanh,
            bits: 0,
            sym: true,
        },
        ActQuant::Quantized {
            nl: Hardtanh,
            bits: 2,
            sym: true,
        },
        ActQuant::Quantized {
            nl: Hardtanh,
            bits: 2,
            sym: false,
        },
        ActQuant::Quantized {
            nl: Relu,
            bits: 4,
            sym: false,
        },
        ActQuant::Float(Relu),
        ActQuant::Float(Hardtanh),
    ];
    // 7×5 (odd: the last row and column belong to no window), 1 pixel high (nothing pooled: all
    // gradients 0), an even square
    let shapes = [(3, 13, 7, 5), (2, 3, 1, 5), (2, 4, 6, 6)];
    for (i, (batch, channels, h, w)) in shapes.into_iter().enumerate() {
        let s = ChannelShape {
            batch,
            channels,
            hw: h * w,
        };
        let p = PoolShape {
            planes: batch * channels,
            h,
            w,
        };
        for (j, act) in acts.into_iter().enumerate() {
            // redrawn until no pooling winner and no mask can change within U_BAND of the
            // reference's u
            let c = draw_clear(
                20_000 + 100 * i as u64 + 1000 * j as u64,
                |rr| draw_bn_act(rr, s, p.y_len()),
                |c| {
                    let u = bn_act_reference(s, c).y;
                    mask_clear(act, &u) && routing_clear(p, act, &u)
                },
            );
            let want = bn_act_reference(s, &c);
            let got = run_bn_act_pool(b, s, p, act, &c);
            let what = |op: &str| format!("{dev} bn+act+pool {act:?} {s:?} {p:?} {op}");

            // pooled = max over the window of act(u), u within the band (max is monotone)
            let (lo, hi) = act_band(act, &want.y);
            let (lo, hi) = (r::maxpool_forward(p, &lo), r::maxpool_forward(p, &hi));
            assert_between(&what("pooled"), &got[0], &lo, &hi);
            // as batchnorm_train: f32 sums of M ≤ 105 values; 2e-5
            assert_close(&what("batch stats"), &got[1], &want.stats, 2e-5);
            assert_close(&what("running stats"), &got[2], &want.running, 2e-5);

            // da = dpooled routed to each window's first maximum of a, du = da·act'(u), the
            // batch norm's backward, dbias = Σ dz per channel
            let a = r::act_forward(act, &want.y);
            let da = r::maxpool_backward(p, &a, &f64s(&c.grad));
            let du = r::act_backward(act, &want.y, &da);
            let (z, gamma) = (f64s(&c.z), f64s(&c.gamma));
            let g = r::batchnorm_backward(s, &du, &z, &gamma, &want.stats);
            // as batchnorm_backward: f32 sums of M ≤ 105 terms; 2e-5 of the terms' size
            assert_bn_backward(
                &what("backward"),
                [&got[3], &got[4], &got[5]],
                &g,
                s,
                (&du, &z, &gamma, &want.stats),
            );
            // dbias = Σ dz per channel is 0 in exact arithmetic (dz has no mean): a backend
            // gives the rounding noise of an f32 sum of M terms, held to 2e-5 of max_c Σ|dz|
            // (a wrong sum, of da say, is of the order of Σ|dz| itself)
            let dbias = r::channel_sum(s, &g.dx);
            let dz_abs: Vec<f64> = g.dx.iter().map(|v| v.abs()).collect();
            let scale = r::channel_sum(s, &dz_abs).into_iter().fold(1e-30, f64::max);
            assert_close_scaled(&what("dbias"), &got[6], &dbias, scale, 2e-5);
        }
    }
}

// ---- the tests: the CPU always, the GPU where there is an adapter ---------------------------

/// gather_batch scales pixels to x·2/255 − 1, mirrors indices ≥ count and shifts by random crops
/// (zero padding; a crop of 0 is no crop, bit for bit), on CPU and GPU.
#[test]
fn gather_batch_matches_f64_reference_on_both_backends() {
    check_gather(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_gather(&mut g);
}

/// The 3×3 conv's forward, input, weight and bias (channel_sum) gradients match the f64 loops.
#[test]
fn conv_matches_f64_reference_on_both_backends() {
    check_conv(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_conv(&mut g);
}

/// Every other geometry (kernel 1, 3, 5; stride 1, 2; "same" and "valid" padding) at odd sizes:
/// the conv's forward, input, weight and bias gradients match the f64 loops on CPU and GPU.
#[test]
fn conv_of_any_geometry_matches_f64_reference_on_both_backends() {
    check_conv_geometries(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_conv_geometries(&mut g);
}

/// conv_forward_binary on ±1 inputs and weights matches the f64 conv on CPU and GPU.
#[test]
fn binary_conv_matches_f64_reference_on_both_backends() {
    check_conv_binary(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_conv_binary(&mut g);
}

/// The dense layer's forward, input, weight and bias gradients match the f64 loops.
#[test]
fn dense_matches_f64_reference_on_both_backends() {
    check_dense(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_dense(&mut g);
}

/// Batch norm's training forward (both statistics), evaluation and backward match the f64 ones.
#[test]
fn batchnorm_train_eval_backward_match_f64_reference_on_both_backends() {
    check_batchnorm(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_batchnorm(&mut g);
}

/// Every activation's forward and straight-through backward equal the reference exactly.
#[test]
fn activations_equal_reference_exactly_on_both_backends() {
    check_activation(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_activation(&mut g);
}

/// The 2×2 max pool and its backward (first maximum wins, sizes floor) equal the reference.
#[test]
fn maxpool_equals_reference_exactly_on_both_backends() {
    check_pool(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_pool(&mut g);
}

/// The global average pool (sum in pixel order times f32 1/(h·w)) and its backward match the
/// f64 mean on CPU and GPU, for odd h·w and a 1×1 plane.
#[test]
fn global_pool_matches_f64_reference_on_both_backends() {
    check_global_pool(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_global_pool(&mut g);
}

/// weight_quantize's max|w| and levels equal the reference exactly for every quantizer.
#[test]
fn weight_quantize_equals_reference_exactly_on_both_backends() {
    check_weight_quantize(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_weight_quantize(&mut g);
}

/// The squared-hinge loss's gradient and every field of its LossAcc match the reference.
#[test]
fn loss_and_accumulator_match_f64_reference_on_both_backends() {
    check_loss(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_loss(&mut g);
}

/// Adam and momentum SGD, with the plain and the scaled-and-clipped rule, match the f64 steps.
#[test]
fn optimizers_match_f64_reference_on_both_backends() {
    check_optimizers(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_optimizers(&mut g);
}

/// bn_act_train, bn_act_eval and act_bn_backward match the f64 reference for every activation.
#[test]
fn fused_batchnorm_activation_matches_f64_reference_on_both_backends() {
    check_bn_act(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_bn_act(&mut g);
}

/// bn_act_pool_train and pool_act_bn_backward (with the bias gradient) match the f64 reference.
#[test]
fn fused_batchnorm_activation_pool_matches_f64_reference_on_both_backends() {
    check_bn_act_pool(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_bn_act_pool(&mut g);
}
