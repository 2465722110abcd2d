//! The PyTorch twin of the benchmark (`benches/torch_qnn.py`) against the CPU backend: one
//! training step from the same weights on the same batch must give the same parameters, so the
//! GPU comparison of `benches/gpu.sh` races two implementations of one computation.
//!
//! Needs Python with torch (`QNN_TORCH_PYTHON`, default `python3`). Where torch is missing the
//! test says so and passes: CI does not install torch (a ~1 GB CPU download per run for one
//! test); the comparison runs wherever torch is, e.g. on the GPU machine and on developers'
//! machines (`QNN_TORCH_PYTHON=/path/to/venv/bin/python cargo test --test torch_twin`).

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::cpu;
use qnn::model::Tensor;
use qnn::model::{Model, NetConfig, Update};
use qnn::quant::Nonlinearity;
use qnn::Backend;

/// Exit code of torch_qnn.py when torch cannot be imported.
const SKIP: i32 = 77;

fn one_step_files(dir: &std::path::Path, cfg: &NetConfig, batch: usize, lr: f32) {
    let mut b = cpu();
    let model = Model::new(&mut b, cfg.clone(), batch, 11).unwrap();
    let before = pollster::block_on(model.export(&mut b)).unwrap();
    // a batch of generated images with every label present
    let [c, h, w] = cfg.input;
    let n = 2 * batch;
    let pixels: Vec<u8> = (0..(n * c * h * w) as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let labels: Vec<u16> = (0..n).map(|i| ((i * 3) % 10) as u16).collect();
    let set = b.upload_images(&pixels, &labels, (c, h, w)).unwrap();
    let idx: Vec<u32> = (0..batch as u32)
        .map(|i| (i * 5 + 1) % (2 * n as u32))
        .collect();
    // the batch as the step sees it, for PyTorch
    model.load_batch(&mut b, &set, &idx).unwrap();
    let x = pollster::block_on(b.read_f32(model.input())).unwrap();
    let y = pollster::block_on(b.read_u32(model.labels)).unwrap();
    model
        .train_step(&mut b, &set, &idx, Update::Adam { lr, t: 1 })
        .unwrap();
    let after = pollster::block_on(model.export(&mut b)).unwrap();

    let write = |name: &str, tensors: &[Tensor]| {
        let bytes = qnn::checkpoint::to_bytes(tensors, HashMap::new()).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    write("before.safetensors", &before);
    write("after.safetensors", &after);
    write(
        "batch.safetensors",
        &[
            Tensor::new("x", vec![batch, c, h, w], x[..batch * c * h * w].to_vec()),
            Tensor::new(
                "labels",
                vec![batch],
                y[..batch].iter().map(|&l| l as f32).collect(),
            ),
        ],
    );
    let config = serde_json::json!({
        "input": cfg.input, "blocks": cfg.blocks, "quantized": cfg.quantized,
        "bits": cfg.bits, "nonlinearity": cfg.nonlinearity.name(), "sym": cfg.sym,
        "lr": lr, "t": 1,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

#[test]
fn pytorch_twin_takes_the_same_training_step() {
    let python = std::env::var("QNN_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/torch_qnn.py");
    let cases = [
        (Nonlinearity::Relu, 4, false, [(1, 8), (1, 8), (1, 16)]),
        (Nonlinearity::Hardtanh, 0, true, [(1, 8), (1, 8), (1, 16)]),
        // an empty block still pools
        (Nonlinearity::Relu, 4, false, [(2, 8), (0, 8), (1, 8)]),
        (Nonlinearity::Hardtanh, 2, false, [(1, 8), (1, 8), (1, 8)]),
        // 16 channels: the CPU's convolutions after the first by Winograd's F(2×2, 3×3)
        (Nonlinearity::Relu, 4, false, [(2, 16), (1, 16), (1, 16)]),
    ];
    for (k, (nl, bits, sym, blocks)) in cases.into_iter().enumerate() {
        let cfg = NetConfig {
            input: [3, 32, 32],
            classes: 10,
            blocks,
            quantized: true,
            bits,
            nonlinearity: nl,
            sym,
            net: None,
        };
        let dir = std::env::temp_dir().join(format!("qnn-twin-{k}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        one_step_files(&dir, &cfg, 16, 0.01);
        let o = match Command::new(&python)
            .args([script, "check-step", dir.to_str().unwrap()])
            .env("OMP_NUM_THREADS", "1")
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                eprintln!("skipped: cannot run {python} ({e}); set QNN_TORCH_PYTHON");
                return;
            }
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        if o.status.code() == Some(SKIP) {
            eprintln!("skipped: torch is not installed for {python}; set QNN_TORCH_PYTHON to a Python with torch to run the comparison");
            return;
        }
        assert!(
            o.status.success(),
            "{}: the twins differ:\n{text}",
            cfg.model_name("twin")
        );
        eprintln!("{}:\n{text}", cfg.model_name("twin"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
