//! One full training step of a small A/B/C network (one conv of 8 filters per block, MNIST
//! shape, batch 16): forward, loss, backward, Adam with the quantized-weight rule, batch-norm
//! running statistics — GPU against CPU, every gradient and every updated tensor; then the
//! same step twice on the GPU, bit for bit.
//!
//! Tolerances. Gradients: 1e-3 relative to the tensor's largest element (the backends sum in
//! different orders, and a quantized activation lying within rounding noise of a level boundary
//! may land on the other level on one side). Conv and dense biases feed straight into a batch
//! norm, so their true gradient is 0 and what is computed is rounding noise (docs/spec.md): both
//! sides must show it as noise, at most 1e-4 of the weight gradient's scale. Updated tensors:
//! Adam's first step moves each element by ±lr·scale depending on the gradient's sign, so an
//! element whose gradient is noise may move either way; all others must agree within 1e-5.

mod common;
use common::*;
use qnn::model::{Model, NetConfig, Update};
use qnn::quant::Nonlinearity;
use qnn::Backend;
use rand::Rng;

const BATCH: usize = 16;
const LR: f32 = 0.01;

struct StepResult {
    names: Vec<String>,
    grads: Vec<Vec<f32>>,
    updated: Vec<Vec<f32>>,
    moments: Vec<Vec<f32>>,
    running: Vec<Vec<f32>>,
    acc: Vec<f32>,
}

fn config(nl: Nonlinearity, bits: u32, sym: bool) -> NetConfig {
    NetConfig {
        input: [1, 28, 28],
        blocks: [(1, 8), (1, 8), (1, 8)],
        quantized: true,
        bits,
        nonlinearity: nl,
        sym,
        net: None,
    }
}

fn one_step<B: Backend>(b: &mut B, cfg: &NetConfig) -> StepResult {
    let model = Model::new(b, cfg.clone(), BATCH, 42).unwrap();
    let mut r = rng(77);
    let n = 40;
    let pixels: Vec<u8> = (0..n * 784).map(|_| r.random()).collect();
    let labels: Vec<u8> = (0..n).map(|_| r.random_range(0..10)).collect();
    let set = b.upload_images(&pixels, &labels, (1, 28, 28)).unwrap();
    let idx: Vec<u32> = (0..BATCH as u32).map(|i| i * 5 % (2 * n as u32)).collect();
    model
        .train_step(b, &set, &idx, Update::Adam { lr: LR, t: 1 })
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

fn compare(cfg: &NetConfig) {
    let Some(mut g) = gpu() else { return };
    let got = one_step(&mut g, cfg);
    let want = one_step(&mut cpu(), cfg);
    assert_close("loss and error count", &got.acc, &want.acc, 1e-4);
    let weight_scale = want.grads[0].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        weight_scale > 0.0,
        "the first conv's weight gradient is zero: nothing flows back"
    );
    for (i, name) in want.names.iter().enumerate() {
        let (gg, wg) = (&got.grads[i], &want.grads[i]);
        if name.ends_with(".bias") {
            for (side, v) in [("gpu", gg), ("cpu", wg)] {
                let m = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                assert!(
                    m <= 1e-4 * weight_scale.max(1e-3),
                    "{name} gradient on {side} is {m:e}, not rounding noise"
                );
            }
        } else {
            assert_close(&format!("{name} gradient"), gg, wg, 1e-3);
        }
        // updated values: exact up to 1e-5 unless the gradient is noise-sized
        let gscale = wg.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (j, (a, b)) in got.updated[i].iter().zip(&want.updated[i]).enumerate() {
            let noise = wg[j].abs() <= 1e-3 * gscale || name.ends_with(".bias");
            let bound = if noise { 2.0 * LR * 30.0 + 1e-5 } else { 1e-5 };
            assert!(
                (a - b).abs() <= bound,
                "{name}[{j}] updated: gpu {a} cpu {b} (grad {})",
                wg[j]
            );
        }
        if !name.ends_with(".bias") {
            assert_close(
                &format!("{name} Adam moments"),
                &got.moments[i],
                &want.moments[i],
                2e-3,
            );
        }
    }
    for (k, (a, b)) in got.running.iter().zip(&want.running).enumerate() {
        assert_close(&format!("running statistics {k}"), a, b, 1e-4);
    }
    // the quantized-weight rule kept conv weights in [−1, 1]
    for (i, name) in want.names.iter().enumerate() {
        if name.starts_with("conv") && name.ends_with(".weight") {
            assert!(
                got.updated[i].iter().all(|v| (-1.0..=1.0).contains(v)),
                "{name} left [−1, 1]"
            );
        }
    }
    // deterministic: the same step again on the same device gives the same bits
    let again = one_step(&mut g, cfg);
    assert_eq!(
        again.grads, got.grads,
        "GPU gradients differ between two runs"
    );
    assert_eq!(
        again.updated, got.updated,
        "GPU updates differ between two runs"
    );
    assert_eq!(
        again.running, got.running,
        "GPU running statistics differ between two runs"
    );
    assert_eq!(again.acc, got.acc);
}

#[test]
fn four_bit_relu_step_matches_cpu() {
    compare(&config(Nonlinearity::Relu, 4, false));
}

#[test]
fn binary_hardtanh_step_matches_cpu() {
    compare(&config(Nonlinearity::Hardtanh, 0, true));
}
