//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cli;
pub mod reference;

use qnn::backend::{ChannelShape, DenseShape, PoolShape};
use qnn::data::{Dataset, DatasetKind, Split};
use qnn::quant::{ActQuant, Nonlinearity};
use qnn::{Backend, Buf, CpuBackend, Dtype, GpuBackend};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// True when a missing GPU adapter must fail the GPU tests rather than skip them:
/// `QNN_REQUIRE_GPU=1` (CI sets it; CI installs mesa-vulkan-drivers for lavapipe).
pub fn gpu_required() -> bool {
    std::env::var("QNN_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The GPU backend on whatever adapter wgpu finds (lavapipe in CI), or `None` where there is
/// none: the test then prints that it skipped and why, and returns. With `QNN_REQUIRE_GPU=1` a
/// missing adapter fails the test instead. Use as `let Some(mut g) = gpu() else { return };`.
#[track_caller]
pub fn gpu() -> Option<GpuBackend> {
    match GpuBackend::new() {
        Ok(g) => Some(g),
        Err(e) if gpu_required() => panic!("QNN_REQUIRE_GPU=1, but the GPU backend failed: {e}"),
        Err(e) => {
            eprintln!(
                "skipped at {}: no GPU backend ({e}); install mesa-vulkan-drivers for lavapipe, \
                 or set QNN_REQUIRE_GPU=1 to make this a failure",
                std::panic::Location::caller()
            );
            None
        }
    }
}

pub fn cpu() -> CpuBackend {
    CpuBackend::new()
}

/// Fresh random inputs: the seed mixes in the test's name so cases differ.
pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15)
}

pub fn uniform(r: &mut SmallRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

pub fn upload<B: Backend>(b: &mut B, data: &[f32]) -> Buf {
    let buf = b.alloc(data.len(), Dtype::F32);
    b.write_f32(buf, data);
    buf
}

pub fn upload_u32<B: Backend>(b: &mut B, data: &[u32]) -> Buf {
    let buf = b.alloc(data.len(), Dtype::U32);
    b.write_u32(buf, data);
    buf
}

pub fn zeros<B: Backend>(b: &mut B, n: usize) -> Buf {
    b.alloc(n, Dtype::F32)
}

pub fn read<B: Backend>(b: &mut B, buf: Buf) -> Vec<f32> {
    pollster::block_on(b.read_f32(buf)).expect("read back")
}

pub fn read_u32<B: Backend>(b: &mut B, buf: Buf) -> Vec<u32> {
    pollster::block_on(b.read_u32(buf)).expect("read back")
}

/// max|got − want| / max(max|want|, floor): the error relative to the tensor's scale.
pub fn rel_err(got: &[f32], want: &[f32], floor: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f32, |m, (g, w)| m.max((g - w).abs()));
    assert!(got.iter().all(|v| v.is_finite()), "non-finite output");
    diff / scale
}

#[track_caller]
pub fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    let e = rel_err(got, want, 1e-6);
    assert!(e <= tol, "{name}: relative error {e:.3e} > {tol:.0e}");
}

/// A small MNIST-shaped data set: digit k is a bar at row 2k + 4.
pub fn bars(train: usize, test: usize) -> Dataset {
    let make = |n: usize, offset: usize| {
        let mut s = Split::default();
        for i in 0..n {
            let k = (i * 7 + offset) % 10;
            let mut img = [0u8; 784];
            for x in 4..24 {
                img[(2 * k + 4) * 28 + x] = 255;
                img[(2 * k + 5) * 28 + x] = ((i * 37) % 200) as u8;
            }
            s.pixels.extend(img);
            s.labels.push(k as u16);
        }
        s
    };
    Dataset {
        kind: DatasetKind::Mnist,
        chw: (1, 28, 28),
        class_names: DatasetKind::Mnist.class_names(),
        train: make(train, 0),
        test: make(test, 3),
    }
}

// ---- one op on a backend, its outputs read back (the reference and the GPU-vs-CPU tests)

/// Every activation the trainer accepts, quantized and float.
pub fn all_activations() -> Vec<ActQuant> {
    use Nonlinearity::*;
    let mut v = vec![
        ActQuant::Float(Relu),
        ActQuant::Float(Hardtanh),
        ActQuant::Quantized {
            nl: Hardtanh,
            bits: 0,
            sym: true,
        },
    ];
    for bits in [1, 2, 4, 8] {
        for sym in [true, false] {
            v.push(ActQuant::Quantized {
                nl: Hardtanh,
                bits,
                sym,
            });
        }
    }
    for bits in [2, 3, 4, 8] {
        v.push(ActQuant::Quantized {
            nl: Relu,
            bits,
            sym: false,
        });
    }
    v
}

/// [y, dx] of the activation over all of x.
pub fn run_act<B: Backend>(b: &mut B, a: ActQuant, x: &[f32], dy: &[f32]) -> [Vec<f32>; 2] {
    let (xb, dyb) = (upload(b, x), upload(b, dy));
    let (y, dx) = (zeros(b, x.len()), zeros(b, x.len()));
    b.act_forward(a, x.len(), xb, y);
    b.act_backward(a, x.len(), xb, dyb, dx);
    [read(b, y), read(b, dx)]
}

/// [y, dx, dw, dbias] of the dense layer; dbias = channel_sum(dy) over [batch, outputs, 1].
pub fn run_dense<B: Backend>(
    b: &mut B,
    s: DenseShape,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    dy: &[f32],
) -> [Vec<f32>; 4] {
    let (xb, wb, bb, dyb) = (upload(b, x), upload(b, w), upload(b, bias), upload(b, dy));
    let (y, dx, dw, db) = (
        zeros(b, s.batch * s.outputs),
        zeros(b, s.batch * s.inputs),
        zeros(b, s.outputs * s.inputs),
        zeros(b, s.outputs),
    );
    b.dense_forward(s, xb, wb, bb, y);
    b.dense_grad_input(s, dyb, wb, dx);
    b.dense_grad_weight(s, dyb, xb, dw);
    let cs = ChannelShape {
        batch: s.batch,
        channels: s.outputs,
        hw: 1,
    };
    b.channel_sum(cs, dyb, db);
    [read(b, y), read(b, dx), read(b, dw), read(b, db)]
}

/// [pooled, dx]; a shape with nothing to pool gets a 1-element output buffer (no empty ones).
pub fn run_pool<B: Backend>(b: &mut B, p: PoolShape, x: &[f32], dy: &[f32]) -> [Vec<f32>; 2] {
    let (xb, dyb) = (upload(b, x), upload(b, &pad1(dy)));
    let (y, dx) = (zeros(b, p.y_len().max(1)), zeros(b, p.x_len()));
    b.pool_forward(p, xb, y);
    b.pool_backward(p, xb, dyb, dx);
    let mut y = read(b, y);
    y.truncate(p.y_len());
    [y, read(b, dx)]
}

/// `v`, or one 0 where it is empty (buffers are never empty).
pub fn pad1(v: &[f32]) -> Vec<f32> {
    if v.is_empty() {
        vec![0.0]
    } else {
        v.to_vec()
    }
}

// ---- one whole training step, everything it leaves read back (GPU-vs-CPU step tests)

/// What one training step leaves, read back: per parameter (network order) its name, gradient,
/// updated value and Adam moments `[m; v]`, each running-statistics buffer, and the loss
/// accumulator.
pub struct StepResult {
    pub names: Vec<String>,
    pub grads: Vec<Vec<f32>>,
    pub updated: Vec<Vec<f32>>,
    pub moments: Vec<Vec<f32>>,
    pub running: Vec<Vec<f32>>,
    pub acc: Vec<f32>,
}

/// A fresh model of `cfg` (parameters seeded with 42) and one Adam step (t = 1, `lr`) on a
/// batch of `batch` random images of the configuration's input shape with random labels (of
/// its classes), some of them flipped; everything read back.
pub fn one_train_step<B: Backend>(
    b: &mut B,
    cfg: &qnn::model::NetConfig,
    batch: usize,
    lr: f32,
) -> StepResult {
    use qnn::model::{Model, Update};
    let model = Model::new(b, cfg.clone(), batch, 42).unwrap();
    let mut r = rng(77);
    let [c, h, w] = cfg.input;
    let n = 2 * batch + 8;
    let pixels: Vec<u8> = (0..n * c * h * w).map(|_| r.random()).collect();
    let labels: Vec<u16> = (0..n)
        .map(|_| r.random_range(0..cfg.classes as u16))
        .collect();
    let set = b.upload_images(&pixels, &labels, (c, h, w)).unwrap();
    let idx: Vec<u32> = (0..batch as u32).map(|i| i * 5 % (2 * n as u32)).collect();
    model
        .train_step(b, &set, &idx, Update::Adam { lr, t: 1 })
        .unwrap();
    let mut res = StepResult {
        names: vec![],
        grads: vec![],
        updated: vec![],
        moments: vec![],
        running: vec![],
        acc: read(b, model.acc),
    };
    for p in &model.params {
        res.names.push(p.name.clone());
        res.grads.push(read(b, p.tensors.grad));
        res.updated.push(read(b, p.tensors.value));
        let mut mv = read(b, p.tensors.m);
        mv.extend(read(b, p.tensors.v));
        res.moments.push(mv);
    }
    for (_, buf) in &model.running {
        res.running.push(read(b, *buf));
    }
    res
}

/// The largest |v|.
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// Holds one training step of `cfg` on the GPU (`got`) to the same step on the CPU (`want`),
/// with the tolerances of tests/train_step_gpu_vs_cpu.rs: loss sums 1e-4; gradients 1e-3 of
/// the tensor's largest element, except the biases of layers with a batch norm (true gradient
/// 0), which must be rounding noise on both sides (≤ 1e-4 of the first weight gradient's
/// scale); updated values within 1e-5, or within Adam's first-step move (2·lr·the rule's scale)
/// where the gradient is noise-sized; moments 2e-3; running statistics 1e-4; weights under the
/// quantized-weight rule left in [−1, 1].
pub fn assert_steps_match(
    cfg: &qnn::model::NetConfig,
    got: &StepResult,
    want: &StepResult,
    lr: f32,
) {
    use qnn::backend::UpdateRule;
    let layers = cfg.layers();
    // the biases feeding a batch norm, whose true gradient is 0
    let bn_fed = |name: &str| {
        layers
            .iter()
            .any(|l| l.bn_name.is_some() && name == format!("{}.bias", l.name))
    };
    // each parameter's update rule, from a CPU model of the same configuration
    let rules: Vec<UpdateRule> = {
        let mut b = cpu();
        let m = qnn::model::Model::new(&mut b, cfg.clone(), 1, 42).unwrap();
        m.params.iter().map(|p| p.rule).collect()
    };
    assert_eq!(got.names, want.names);
    assert_close("loss and error count", &got.acc, &want.acc, 1e-4);
    let weight_scale = max_abs(&want.grads[0]);
    assert!(
        weight_scale > 0.0,
        "the first layer's weight gradient is zero: nothing flows back"
    );
    for (i, name) in want.names.iter().enumerate() {
        let (gg, wg) = (&got.grads[i], &want.grads[i]);
        if bn_fed(name) {
            for (side, v) in [("gpu", gg), ("cpu", wg)] {
                let m = max_abs(v);
                assert!(
                    m <= 1e-4 * weight_scale.max(1e-3),
                    "{name} gradient on {side} is {m:e}, not rounding noise"
                );
            }
        } else {
            assert_close(&format!("{name} gradient"), gg, wg, 1e-3);
        }
        let scale = match rules[i] {
            UpdateRule::Plain => 1.0,
            UpdateRule::ScaledClip { scale } => scale,
        };
        let gscale = max_abs(wg);
        for (j, (a, b)) in got.updated[i].iter().zip(&want.updated[i]).enumerate() {
            let noise = wg[j].abs() <= 1e-3 * gscale || bn_fed(name);
            let bound = if noise { 2.0 * lr * scale + 1e-5 } else { 1e-5 };
            assert!(
                (a - b).abs() <= bound,
                "{name}[{j}] updated: gpu {a} cpu {b} (grad {})",
                wg[j]
            );
        }
        if !bn_fed(name) {
            assert_close(
                &format!("{name} Adam moments"),
                &got.moments[i],
                &want.moments[i],
                2e-3,
            );
        }
        if matches!(rules[i], UpdateRule::ScaledClip { .. }) {
            assert!(
                got.updated[i].iter().all(|v| (-1.0..=1.0).contains(v)),
                "{name} left [−1, 1]"
            );
        }
    }
    assert_eq!(got.running.len(), want.running.len());
    for (k, (a, b)) in got.running.iter().zip(&want.running).enumerate() {
        assert_close(&format!("running statistics {k}"), a, b, 1e-4);
    }
}

/// The same step twice on one device gives the same bits: loss sums, gradients, updated values,
/// moments and running statistics.
pub fn assert_repeats(got: &StepResult, again: &StepResult) {
    assert_eq!(again.acc, got.acc, "the loss differs between two runs");
    assert_eq!(again.grads, got.grads, "gradients differ between two runs");
    assert_eq!(
        again.updated, got.updated,
        "updates differ between two runs"
    );
    assert_eq!(
        again.moments, got.moments,
        "moments differ between two runs"
    );
    assert_eq!(
        again.running, got.running,
        "running statistics differ between two runs"
    );
}

/// A conv layer of a layer list built in code (`qnn::model::Layer::Conv`, every field named).
pub fn conv(
    filters: usize,
    kernel: usize,
    stride: usize,
    padding: qnn::model::Padding,
    batch_norm: bool,
    quant: qnn::model::LayerQuant,
) -> qnn::model::Layer {
    qnn::model::Layer::Conv {
        filters,
        kernel,
        stride,
        padding,
        batch_norm,
        quant,
    }
}
