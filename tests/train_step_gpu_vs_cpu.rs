//! One full training step of a small A/B/C network (one conv of 8 filters per block, MNIST
//! shape, batch 16): forward, loss, backward, Adam with the quantized-weight rule, batch-norm
//! running statistics — GPU against CPU, every gradient and every updated tensor; then the
//! same step twice on the GPU, bit for bit.
//!
//! Tolerances (`common::assert_steps_match`). Gradients: 1e-3 relative to the tensor's largest
//! element (the backends sum in different orders, and a quantized activation lying within
//! rounding noise of a level boundary may land on the other level on one side). Conv and dense
//! biases feed straight into a batch norm, so their true gradient is 0 and what is computed is
//! rounding noise (docs/spec.md): both sides must show it as noise, at most 1e-4 of the weight
//! gradient's scale. Updated tensors: Adam's first step moves each element by ±lr·scale
//! depending on the gradient's sign, so an element whose gradient is noise may move either way;
//! all others must agree within 1e-5.

mod common;
use common::*;
use qnn::model::NetConfig;
use qnn::quant::Nonlinearity;

const BATCH: usize = 16;
const LR: f32 = 0.01;

fn config(nl: Nonlinearity, bits: u32, sym: bool) -> NetConfig {
    NetConfig {
        input: [1, 28, 28],
        classes: 10,
        blocks: [(1, 8), (1, 8), (1, 8)],
        quantized: true,
        bits,
        nonlinearity: nl,
        sym,
        net: None,
    }
}

fn compare(cfg: &NetConfig) {
    let Some(mut g) = gpu() else { return };
    let got = one_train_step(&mut g, cfg, BATCH, LR);
    let want = one_train_step(&mut cpu(), cfg, BATCH, LR);
    assert_steps_match(cfg, &got, &want, LR);
    // deterministic: the same step again on the same device gives the same bits
    assert_repeats(&got, &one_train_step(&mut g, cfg, BATCH, LR));
}

#[test]
fn four_bit_relu_step_matches_cpu() {
    compare(&config(Nonlinearity::Relu, 4, false));
}

#[test]
fn binary_hardtanh_step_matches_cpu() {
    compare(&config(Nonlinearity::Hardtanh, 0, true));
}
