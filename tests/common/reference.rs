//! A plain f64 reference of every op of the network, for the tests to hold both backends
//! against: one function per op, forward and backward, written as the textbook loops of
//! docs/spec.md (in the style of karpathy/llm.c's `train_gpt2.c`) with nothing clever and no
//! calls into qnn's own kernels (src/ops, src/cpu.rs).
//!
//! Tensors come in and go out as f64 (the f32 inputs a backend is given, widened exactly with
//! [`f64s`]); every sum and product is done in f64, so the only rounding left is f64's (about
//! 1e-16 relative), far below the f32 error a backend may make. The activation quantizer is the
//! scalar definition of `qnn::quant` (the project's definition, pinned level by level in
//! tests/quantizers.rs), applied to the value rounded to f32 as the spec defines it; the weight
//! quantizer is written out here from docs/spec.md §4, with `qnn::quant::weight_exponent` for
//! the exponent f.
//!
//! Layouts: tensors row-major, images NCHW; batch-norm statistics [mean 0..C, inv_std C..2C];
//! the loss accumulator [loss sum, wrong, calls, first bad call, bad rows] (`LossAcc`).

use qnn::backend::{
    AdamConfig, ChannelShape, ConvShape, DenseShape, PoolShape, Shift, StepScalars, UpdateRule,
};
use qnn::quant::{weight_exponent, ActQuant, WeightQuant};

/// The f32 values a backend is given, as the f64 values the reference computes with (exact).
pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// ---- data ---------------------------------------------------------------------------------

/// Batch assembly.
/// pixels [count, c, h, w] u8, labels [count], indices [batch] (index i ≥ count is image
/// i − count mirrored left-right), shifts [batch] or empty (none) → x [batch, c, h, w] =
/// pixel·2/255 − 1, labels [batch]. With a shift (dy, dx) — a random crop — x(ch, row, col)
/// is the (mirrored) image's pixel (ch, row + dy, col + dx), or pixel 0 when that lies outside
/// the image: CIFAR's zero padding.
pub fn gather_batch(
    pixels: &[u8],
    labels: &[u16],
    (c, h, w): (usize, usize, usize),
    indices: &[u32],
    shifts: &[Shift],
) -> (Vec<f64>, Vec<u32>) {
    let count = labels.len();
    let image_len = c * h * w;
    let mut x = vec![0.0f64; indices.len() * image_len];
    let mut out_labels = vec![0u32; indices.len()];
    for (b, &index) in indices.iter().enumerate() {
        let index = index as usize;
        let (image, flip) = if index >= count {
            (index - count, true)
        } else {
            (index, false)
        };
        let (dy, dx) = match shifts.get(b) {
            Some(s) => (s.dy as i64, s.dx as i64),
            None => (0, 0),
        };
        for ch in 0..c {
            for row in 0..h {
                for col in 0..w {
                    // the mirrored image's pixel (ch, src_row, src_col)
                    let src_row = row as i64 + dy;
                    let src_col = col as i64 + dx;
                    let pixel =
                        if src_row < 0 || src_row >= h as i64 || src_col < 0 || src_col >= w as i64
                        {
                            0u8
                        } else {
                            let (src_row, src_col) = (src_row as usize, src_col as usize);
                            let file_col = if flip { w - 1 - src_col } else { src_col };
                            pixels[image * image_len + (ch * h + src_row) * w + file_col]
                        };
                    let dst = b * image_len + (ch * h + row) * w + col;
                    x[dst] = pixel as f64 * 2.0 / 255.0 - 1.0;
                }
            }
        }
        out_labels[b] = labels[image] as u32;
    }
    (x, out_labels)
}

// ---- convolution (cross-correlation): square kernel, stride, zero padding -----------------
//
// x [batch, cin, h, w], w [cout, cin, k, k], b [cout] → y [batch, cout, oh, ow] with k, stride
// and pad from the ConvShape, oh = (h + 2·pad − k)/stride + 1 and ow = (w + 2·pad − k)/stride + 1
// (floor; 0 when the kernel does not fit). Output (oy, ox) with tap (ky, kx) reads input
// (oy·stride + ky − pad, ox·stride + kx − pad); taps outside the image read 0.

/// The input pixel (iy, ix) that tap (ky, kx) of output (oy, ox) reads, or None in the padding.
fn conv_tap(
    s: ConvShape,
    (oy, ox): (usize, usize),
    (ky, kx): (usize, usize),
) -> Option<(usize, usize)> {
    let iy = (oy * s.stride + ky) as isize - s.pad as isize;
    let ix = (ox * s.stride + kx) as isize - s.pad as isize;
    let inside = iy >= 0 && ix >= 0 && (iy as usize) < s.h && (ix as usize) < s.w;
    inside.then_some((iy as usize, ix as usize))
}

/// Output height and width: ((h + 2·pad − k)/stride + 1, (w + 2·pad − k)/stride + 1), 0 where
/// the kernel does not fit.
fn conv_out(s: ConvShape) -> (usize, usize) {
    let out = |n: usize| {
        if n + 2 * s.pad < s.kernel {
            0
        } else {
            (n + 2 * s.pad - s.kernel) / s.stride + 1
        }
    };
    (out(s.h), out(s.w))
}

/// y [batch, cout, oh, ow] = Σ_{ci, ky, kx} w[co, ci, ky, kx]·x[n, ci, oy·stride + ky − pad,
/// ox·stride + kx − pad] + b[co] with x [batch, cin, h, w], w [cout, cin, k, k], b [cout].
pub fn conv_forward(s: ConvShape, x: &[f64], wt: &[f64], bias: &[f64]) -> Vec<f64> {
    let ConvShape {
        batch,
        cin,
        cout,
        h,
        w,
        kernel: k,
        ..
    } = s;
    let (oh, ow) = conv_out(s);
    let mut y = vec![0.0f64; batch * cout * oh * ow];
    for n in 0..batch {
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = bias[co];
                    for ci in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let Some((iy, ix)) = conv_tap(s, (oy, ox), (ky, kx)) else {
                                    continue;
                                };
                                let xi = ((n * cin + ci) * h + iy) * w + ix;
                                let wi = ((co * cin + ci) * k + ky) * k + kx;
                                sum += wt[wi] * x[xi];
                            }
                        }
                    }
                    y[((n * cout + co) * oh + oy) * ow + ox] = sum;
                }
            }
        }
    }
    y
}

/// dx [batch, cin, h, w] = Σ over the outputs each input pixel fed: dx[n, ci, oy·stride + ky −
/// pad, ox·stride + kx − pad] += w[co, ci, ky, kx]·dy[n, co, oy, ox] with dy [batch, cout, oh,
/// ow], w [cout, cin, k, k]; pixels no tap reads (strides, valid padding) get 0.
pub fn conv_grad_input(s: ConvShape, dy: &[f64], wt: &[f64]) -> Vec<f64> {
    let ConvShape {
        batch,
        cin,
        cout,
        h,
        w,
        kernel: k,
        ..
    } = s;
    let (oh, ow) = conv_out(s);
    let mut dx = vec![0.0f64; batch * cin * h * w];
    for n in 0..batch {
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dy[((n * cout + co) * oh + oy) * ow + ox];
                    for ci in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let Some((iy, ix)) = conv_tap(s, (oy, ox), (ky, kx)) else {
                                    continue;
                                };
                                let xi = ((n * cin + ci) * h + iy) * w + ix;
                                dx[xi] += wt[((co * cin + ci) * k + ky) * k + kx] * g;
                            }
                        }
                    }
                }
            }
        }
    }
    dx
}

/// dw [cout, cin, k, k] = Σ_{n, oy, ox} dy[n, co, oy, ox]·x[n, ci, oy·stride + ky − pad,
/// ox·stride + kx − pad] with dy [batch, cout, oh, ow], x [batch, cin, h, w].
pub fn conv_grad_weight(s: ConvShape, dy: &[f64], x: &[f64]) -> Vec<f64> {
    let ConvShape {
        batch,
        cin,
        cout,
        h,
        w,
        kernel: k,
        ..
    } = s;
    let (oh, ow) = conv_out(s);
    let mut dw = vec![0.0f64; cout * cin * k * k];
    for n in 0..batch {
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dy[((n * cout + co) * oh + oy) * ow + ox];
                    for ci in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let Some((iy, ix)) = conv_tap(s, (oy, ox), (ky, kx)) else {
                                    continue;
                                };
                                let xi = ((n * cin + ci) * h + iy) * w + ix;
                                dw[((co * cin + ci) * k + ky) * k + kx] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    dw
}

/// out [channels] = Σ_{n, i} x[n, c, i] with x [batch, channels, hw] (a bias's gradient).
pub fn channel_sum(s: ChannelShape, x: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0f64; s.channels];
    for n in 0..s.batch {
        for (c, o) in out.iter_mut().enumerate() {
            for i in 0..s.hw {
                *o += x[(n * s.channels + c) * s.hw + i];
            }
        }
    }
    out
}

// ---- dense layer --------------------------------------------------------------------------

/// y [batch, outputs] = x·Wᵀ + b with x [batch, inputs], W [outputs, inputs], b [outputs].
pub fn dense_forward(s: DenseShape, x: &[f64], wt: &[f64], bias: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0f64; s.batch * s.outputs];
    for n in 0..s.batch {
        for o in 0..s.outputs {
            let mut sum = bias[o];
            for i in 0..s.inputs {
                sum += x[n * s.inputs + i] * wt[o * s.inputs + i];
            }
            y[n * s.outputs + o] = sum;
        }
    }
    y
}

/// dx [batch, inputs] = dy·W with dy [batch, outputs], W [outputs, inputs].
pub fn dense_grad_input(s: DenseShape, dy: &[f64], wt: &[f64]) -> Vec<f64> {
    let mut dx = vec![0.0f64; s.batch * s.inputs];
    for n in 0..s.batch {
        for i in 0..s.inputs {
            let mut sum = 0.0f64;
            for o in 0..s.outputs {
                sum += dy[n * s.outputs + o] * wt[o * s.inputs + i];
            }
            dx[n * s.inputs + i] = sum;
        }
    }
    dx
}

/// dW [outputs, inputs] = dyᵀ·x with dy [batch, outputs], x [batch, inputs].
pub fn dense_grad_weight(s: DenseShape, dy: &[f64], x: &[f64]) -> Vec<f64> {
    let mut dw = vec![0.0f64; s.outputs * s.inputs];
    for o in 0..s.outputs {
        for i in 0..s.inputs {
            let mut sum = 0.0f64;
            for n in 0..s.batch {
                sum += dy[n * s.outputs + o] * x[n * s.inputs + i];
            }
            dw[o * s.inputs + i] = sum;
        }
    }
    dw
}

// ---- batch norm (Lasagne's form) ----------------------------------------------------------

/// Added to the variance before the inverse square root.
pub const BN_EPS: f64 = 1e-4;
/// Weight of the batch statistics in the running statistics' moving average.
pub const BN_ALPHA: f64 = 0.1;

/// What the training forward produces: y [batch, channels, hw], the batch statistics
/// [mean 0..C, inv_std C..2C] and the moved running statistics (same layout).
pub struct BnTrain {
    pub y: Vec<f64>,
    pub stats: Vec<f64>,
    pub running: Vec<f64>,
}

/// Training-mode batch norm of x [batch, channels, hw], per channel over the M = batch·hw values:
/// mean = Σx/M, var = Σ(x − mean)²/M (biased), inv_std = 1/√(var + 1e-4),
/// y = (x − mean)·γ·inv_std + β; running ← 0.9·running + 0.1·batch, for mean and inv_std alike.
/// gamma, beta [channels]; running [2·channels].
pub fn batchnorm_train(
    s: ChannelShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    running: &[f64],
) -> BnTrain {
    let (c_n, m) = (s.channels, (s.batch * s.hw) as f64);
    let at = |n: usize, c: usize, i: usize| x[(n * c_n + c) * s.hw + i];
    let mut stats = vec![0.0f64; 2 * c_n];
    for c in 0..c_n {
        let mut sum = 0.0;
        for n in 0..s.batch {
            for i in 0..s.hw {
                sum += at(n, c, i);
            }
        }
        let mean = sum / m;
        let mut sq = 0.0;
        for n in 0..s.batch {
            for i in 0..s.hw {
                sq += (at(n, c, i) - mean).powi(2);
            }
        }
        let var = sq / m;
        stats[c] = mean;
        stats[c_n + c] = 1.0 / (var + BN_EPS).sqrt();
    }
    let new_running = (0..2 * c_n)
        .map(|k| (1.0 - BN_ALPHA) * running[k] + BN_ALPHA * stats[k])
        .collect();
    let y = batchnorm_apply(s, x, gamma, beta, &stats);
    BnTrain {
        y,
        stats,
        running: new_running,
    }
}

/// y [batch, channels, hw] = (x − mean)·γ·inv_std + β with given statistics
/// [mean 0..C, inv_std C..2C] (f64: the training forward's own).
pub fn batchnorm_apply(
    s: ChannelShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    stats: &[f64],
) -> Vec<f64> {
    let c_n = s.channels;
    let mut y = vec![0.0f64; s.len()];
    for n in 0..s.batch {
        for c in 0..c_n {
            let (mean, inv_std) = (stats[c], stats[c_n + c]);
            for i in 0..s.hw {
                let k = (n * c_n + c) * s.hw + i;
                y[k] = (x[k] - mean) * gamma[c] * inv_std + beta[c];
            }
        }
    }
    y
}

/// Evaluation-mode batch norm: y [batch, channels, hw] = (x − run_mean)·γ·run_inv_std + β,
/// running [2·channels] = [mean 0..C, inv_std C..2C].
pub fn batchnorm_eval(
    s: ChannelShape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    running: &[f64],
) -> Vec<f64> {
    batchnorm_apply(s, x, gamma, beta, running)
}

/// What the backward produces: dx [batch, channels, hw], dγ and dβ [channels].
pub struct BnBackward {
    pub dx: Vec<f64>,
    pub dgamma: Vec<f64>,
    pub dbeta: Vec<f64>,
}

/// Batch-norm backward through the batch statistics, given the forward's input x and its
/// statistics [mean 0..C, inv_std C..2C]; with x̂ = (x − mean)·inv_std and M = batch·hw:
/// dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·inv_std·(dy − dβ/M − x̂·dγ/M).
/// dy, x [batch, channels, hw]; gamma [channels].
pub fn batchnorm_backward(
    s: ChannelShape,
    dy: &[f64],
    x: &[f64],
    gamma: &[f64],
    stats: &[f64],
) -> BnBackward {
    let (c_n, m) = (s.channels, (s.batch * s.hw) as f64);
    let idx = |n: usize, c: usize, i: usize| (n * c_n + c) * s.hw + i;
    let (mut dgamma, mut dbeta) = (vec![0.0f64; c_n], vec![0.0f64; c_n]);
    let mut dx = vec![0.0f64; s.len()];
    for c in 0..c_n {
        let (mean, inv_std) = (stats[c], stats[c_n + c]);
        for n in 0..s.batch {
            for i in 0..s.hw {
                let k = idx(n, c, i);
                let xhat = (x[k] - mean) * inv_std;
                dbeta[c] += dy[k];
                dgamma[c] += dy[k] * xhat;
            }
        }
        for n in 0..s.batch {
            for i in 0..s.hw {
                let k = idx(n, c, i);
                let xhat = (x[k] - mean) * inv_std;
                dx[k] = gamma[c] * inv_std * (dy[k] - dbeta[c] / m - xhat * dgamma[c] / m);
            }
        }
    }
    BnBackward { dx, dgamma, dbeta }
}

// ---- activation (straight-through estimator) ----------------------------------------------

/// y [n] = act(x): the quantized or float activation of docs/spec.md §4.
pub fn act_forward(a: ActQuant, x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| a.forward(v as f32) as f64).collect()
}

/// dx [n] = dy·act'(x): 1 where −1 ≤ x ≤ 1 and the unclipped level lies in [lo, hi]
/// (quantized), x > 0 (float relu), −1 ≤ x ≤ 1 (float hardtanh); else 0.
pub fn act_backward(a: ActQuant, x: &[f64], dy: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(dy)
        .map(|(&v, &g)| g * a.grad_mask(v as f32) as f64)
        .collect()
}

// ---- max pool 2×2, stride 2 ---------------------------------------------------------------

/// y [planes, h/2, w/2] = max of each 2×2 window of x [planes, h, w]; sizes round down (an odd
/// last row or column belongs to no window).
pub fn maxpool_forward(s: PoolShape, x: &[f64]) -> Vec<f64> {
    let (oh, ow) = (s.h / 2, s.w / 2);
    let mut y = vec![0.0f64; s.planes * oh * ow];
    for p in 0..s.planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let (k, _) = window_argmax(s, x, p, oy, ox);
                y[(p * oh + oy) * ow + ox] = x[k];
            }
        }
    }
    y
}

/// dx [planes, h, w]: each dy [planes, h/2, w/2] goes to its window's first maximum in x
/// (row-major order), every other input gets 0.
pub fn maxpool_backward(s: PoolShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let (oh, ow) = (s.h / 2, s.w / 2);
    let mut dx = vec![0.0f64; s.planes * s.h * s.w];
    for p in 0..s.planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let (k, _) = window_argmax(s, x, p, oy, ox);
                dx[k] += dy[(p * oh + oy) * ow + ox];
            }
        }
    }
    dx
}

/// (flat index into x, value) of the first maximum of window (oy, ox) of plane p, row-major.
pub fn window_argmax(s: PoolShape, x: &[f64], p: usize, oy: usize, ox: usize) -> (usize, f64) {
    let first = (p * s.h + 2 * oy) * s.w + 2 * ox;
    let mut best = (first, x[first]);
    for dy in 0..2 {
        for dx in 0..2 {
            let k = (p * s.h + 2 * oy + dy) * s.w + 2 * ox + dx;
            if x[k] > best.1 {
                best = (k, x[k]);
            }
        }
    }
    best
}

// ---- global average pool -----------------------------------------------------------------------

/// Global average pool: y [planes] = (Σ_{y, x} x[plane, y, x]) / (h·w) with x [planes, h, w].
pub fn global_pool_forward(s: PoolShape, x: &[f64]) -> Vec<f64> {
    let hw = s.h * s.w;
    let mut y = vec![0.0f64; s.planes];
    for (p, out) in y.iter_mut().enumerate() {
        let mut sum = 0.0;
        for i in 0..hw {
            sum += x[p * hw + i];
        }
        *out = sum / hw as f64;
    }
    y
}

/// Its backward: dx [planes, h, w] = dy[plane] / (h·w) at every pixel, dy [planes].
pub fn global_pool_backward(s: PoolShape, dy: &[f64]) -> Vec<f64> {
    let hw = s.h * s.w;
    let mut dx = vec![0.0f64; s.planes * hw];
    for p in 0..s.planes {
        for i in 0..hw {
            dx[p * hw + i] = dy[p] / hw as f64;
        }
    }
    dx
}

// ---- conv weight quantizer ----------------------------------------------------------------

/// (max|w|, wq [n]) for a whole weight tensor w [n] (docs/spec.md §4): m = max|w|,
/// f = floor(log2(1/m)) (0 for m = 0), wq = clip(round_half_even(w·2^(nb−1+f)), −2^(nb−1), U)
/// / 2^(nb−1+f) with U = 2^(nb−1) (symmetric) or 2^(nb−1) − 1; binary: +1 for w ≥ 0 else −1;
/// float: w.
pub fn weight_quantize(q: WeightQuant, w: &[f64]) -> (f64, Vec<f64>) {
    let absmax = w.iter().fold(0.0f64, |m, &v| m.max(v.abs()));
    let wq = w
        .iter()
        .map(|&v| match q {
            WeightQuant::None => v,
            WeightQuant::Binary => {
                if v >= 0.0 {
                    1.0
                } else {
                    -1.0
                }
            }
            WeightQuant::Bits { bits, sym } => {
                let half = 2f64.powi(bits as i32 - 1);
                let scale = 2f64.powi(bits as i32 - 1 + weight_exponent(absmax as f32));
                let top = if sym { half } else { half - 1.0 };
                (v * scale).round_ties_even().clamp(-half, top) / scale
            }
        })
        .collect();
    (absmax, wq)
}

// ---- squared hinge loss -------------------------------------------------------------------

/// The loss accumulator, [`qnn::backend::LossAcc`]'s layout:
/// [loss sum, wrong count, calls, first bad call, bad rows].
pub type LossAccum = [f64; 5];

/// One call of the loss on scores y [batch, K] (K = `classes`) with labels [batch]; t_k = +1
/// for the label, −1 otherwise: acc[0] += Σ_b (1/K)·Σ_k max(0, 1 − t_k·y_bk)², acc[1] += rows
/// whose first argmax is not the label, acc[2] += 1, acc[3] = acc[2] at the first call with a
/// non-finite row, acc[4] += non-finite rows. Returns the gradient of the batch mean loss,
/// dy [batch, K]: −2·t_k·max(0, 1 − t_k·y_bk)/(batch·K).
pub fn squared_hinge(
    batch: usize,
    classes: usize,
    y: &[f64],
    labels: &[u32],
    acc: &mut LossAccum,
) -> Vec<f64> {
    let mut dy = vec![0.0f64; batch * classes];
    let mut bad_rows = 0.0;
    for b in 0..batch {
        let label = labels[b] as usize;
        let row = &y[b * classes..(b + 1) * classes];
        let mut sum = 0.0f64;
        let mut argmax = 0;
        for k in 0..classes {
            let v = row[k];
            if v > row[argmax] {
                argmax = k;
            }
            let t = if k == label { 1.0 } else { -1.0 };
            let hinge = (1.0 - t * v).max(0.0);
            sum += hinge * hinge;
            dy[b * classes + k] = -2.0 * t * hinge / (batch * classes) as f64;
        }
        acc[0] += sum / classes as f64;
        if argmax != label {
            acc[1] += 1.0;
        }
        if row.iter().any(|v| !v.is_finite()) || !sum.is_finite() {
            bad_rows += 1.0;
        }
    }
    acc[2] += 1.0;
    if bad_rows > 0.0 && acc[3] == 0.0 {
        acc[3] = acc[2];
    }
    acc[4] += bad_rows;
    dy
}

// ---- optimizers ---------------------------------------------------------------------------

/// p ← rule(p_old, p_new): Plain takes p_new; ScaledClip (BinaryNet's quantized update) takes
/// clip(p_old + scale·(p_new − p_old), −1, 1).
pub fn apply_rule(rule: UpdateRule, old: f64, new: f64) -> f64 {
    match rule {
        UpdateRule::Plain => new,
        UpdateRule::ScaledClip { scale } => (old + scale as f64 * (new - old)).clamp(-1.0, 1.0),
    }
}

/// One Adam step in Lasagne's form over p, g, m, v [n], with a = step.adam_step
/// (= lr·√(1 − β2^t)/(1 − β1^t)): m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g²,
/// p_new = p − a·m/(√v + ε), then `rule`.
pub fn adam(
    rule: UpdateRule,
    cfg: AdamConfig,
    step: StepScalars,
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
) {
    let (b1, b2, eps) = (cfg.beta1 as f64, cfg.beta2 as f64, cfg.eps as f64);
    let a = step.adam_step as f64;
    for i in 0..p.len() {
        let gi = g[i];
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        let new = p[i] - a * m[i] / (v[i].sqrt() + eps);
        p[i] = apply_rule(rule, p[i], new);
    }
}

/// One SGD-with-momentum step over p, g, vel [n], with lr and μ from `step`:
/// vel ← μ·vel − lr·g, p_new = p + vel, then `rule`.
pub fn sgd(rule: UpdateRule, step: StepScalars, p: &mut [f64], g: &[f64], vel: &mut [f64]) {
    let (lr, mu) = (step.lr as f64, step.momentum as f64);
    for i in 0..p.len() {
        vel[i] = mu * vel[i] - lr * g[i];
        let new = p[i] + vel[i];
        p[i] = apply_rule(rule, p[i], new);
    }
}
