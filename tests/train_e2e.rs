//! End-to-end training on a small generated data set: the loss falls and the error beats chance,
//! on both backends (the GPU run kept small for lavapipe).

use std::sync::atomic::AtomicBool;

use qnn::data::Split;
use qnn::model::{Model, NetConfig};
use qnn::quant::Nonlinearity;
use qnn::train::{Optimizer, TrainOptions, Trainer};
use qnn::Backend;

mod common;

/// Ten classes: class k is a bright bar at rows 2k+4..2k+6 with noise elsewhere.
fn bars(n: usize, seed: u32) -> Split {
    let mut s = Split::default();
    for i in 0..n {
        let k = (i * 7 + seed as usize) % 10;
        let mut img = [0u8; 784];
        for (p, v) in img.iter_mut().enumerate() {
            *v = (((p as u32).wrapping_mul(2654435761) ^ (i as u32 + seed).wrapping_mul(40503))
                >> 26) as u8; // noise 0..63
                              // noise 0..63
        }
        for x in 3..25 {
            img[(2 * k + 4) * 28 + x] = 255;
            img[(2 * k + 5) * 28 + x] = 200;
        }
        s.pixels.extend(img);
        s.labels.push(k as u16);
    }
    s
}

fn run<B: Backend>(
    b: &mut B,
    nl: Nonlinearity,
    bits: u32,
    sym: bool,
    n_train: usize,
    epochs: usize,
) -> Vec<(f64, f64)> {
    let cfg = NetConfig {
        input: [1, 28, 28],
        classes: 10,
        blocks: [(1, 4), (1, 8), (1, 8)],
        quantized: true,
        bits,
        nonlinearity: nl,
        sym,
        net: None,
    };
    let opts = TrainOptions {
        epochs,
        lr_start: 0.01,
        lr_final: 1e-3,
        batch: 20,
        flip: false,
        crop_pad: 0,
        shuffle: true,
        seed: 5,
        optimizer: Optimizer::Adam,
    };
    let model = Model::new(b, cfg, opts.batch, 3).unwrap();
    let (train, valid, test) = (bars(n_train, 0), bars(60, 1), bars(60, 2));
    let mut t = Trainer::new(b, model, opts, (1, 28, 28), &train, &valid, &test).unwrap();
    let stop = AtomicBool::new(false);
    (0..epochs)
        .map(|_| {
            let r = pollster::block_on(t.run_epoch(b, &stop, |_| false)).unwrap();
            (r.train_loss, r.val_error)
        })
        .collect()
}

fn assert_learns(name: &str, hist: &[(f64, f64)]) {
    let (first, last) = (hist[0], hist[hist.len() - 1]);
    assert!(
        last.0 < first.0,
        "{name}: training loss did not fall: {hist:?}"
    );
    // the best epoch, as the trainer keeps it: a tiny binary net's validation error on 60
    // images swings by tens of points from epoch to epoch with the summation order
    let best = hist.iter().map(|h| h.1).fold(f64::INFINITY, f64::min);
    assert!(
        best < 60.0,
        "{name}: best validation error {best}% does not beat chance (90%) clearly: {hist:?}"
    );
}

#[test]
fn cpu_training_lowers_loss_and_beats_chance() {
    let mut b = qnn::CpuBackend::new();
    assert_learns(
        "cpu 4-bit relu",
        &run(&mut b, Nonlinearity::Relu, 4, false, 400, 4),
    );
    assert_learns(
        "cpu binary",
        &run(&mut b, Nonlinearity::Hardtanh, 0, true, 400, 4),
    );
}

#[test]
fn gpu_training_lowers_loss_and_beats_chance() {
    let Some(mut b) = common::gpu() else { return };
    assert_learns(
        "gpu 4-bit relu",
        &run(&mut b, Nonlinearity::Relu, 4, false, 200, 3),
    );
}
