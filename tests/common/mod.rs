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
            s.labels.push(k as u8);
        }
        s
    };
    Dataset {
        kind: DatasetKind::Mnist,
        chw: (1, 28, 28),
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
