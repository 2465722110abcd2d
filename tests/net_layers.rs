//! Whole networks built from layer lists (`NetConfig::net`): every layer kind wired into one
//! network and checked end to end.
//!
//! - The loss gradient of every parameter tensor of a float network holding every layer kind
//!   (conv 5×5 valid, conv 3×3 stride 2, conv 1×1 without batch norm, a max pool after a conv
//!   without batch norm and one after a conv with it — the fused path —, global average pool,
//!   a hidden dense layer, the output layer) against central differences of the training-mode
//!   loss: proves forward, backward and which gradient goes where.
//! - One training step of a mixed-precision quantized network on the GPU against the CPU (the
//!   tolerances of tests/train_step_gpu_vs_cpu.rs, see `common::assert_steps_match`), and twice
//!   on the GPU, bit for bit.
//! - Evaluation mode with running statistics equal to a batch's statistics gives the training
//!   mode's results on that batch; `predict` gives what `eval_step` counts.
//! - Every net file of examples/nets/ builds, trains a step and exports the tensors its
//!   configuration promises; examples/nets/seed.toml trains bit for bit as the seed's flags.
//! - A model file whose tensors do not match its network is refused, the tensor named.

mod common;
use common::*;
use qnn::backend::LossAcc;
use qnn::checkpoint::{self, ModelMeta};
use qnn::model::{
    Bits, Layer, LayerQuant, Mode, Model, NetConfig, NetDef, Padding, Tensor, Update,
};
use qnn::quant::Nonlinearity;
use qnn::{Backend, CpuBackend};
use rand::Rng;

// ---- building networks

/// A layer's widths and nonlinearity (sym only where hardtanh has it).
fn q(w_bits: Bits, a_bits: Bits, nonlinearity: Nonlinearity, sym: bool) -> LayerQuant {
    LayerQuant {
        w_bits,
        a_bits,
        nonlinearity,
        sym: sym && nonlinearity == Nonlinearity::Hardtanh,
    }
}

fn dense(units: Option<usize>, quant: LayerQuant) -> Layer {
    Layer::Dense { units, quant }
}

/// A configuration of `layers` on `input`; the seed's fields (unused with a layer list) as the
/// other tests fill them.
fn net_config(name: &str, input: [usize; 3], layers: Vec<Layer>) -> NetConfig {
    NetConfig {
        input,
        classes: 10,
        blocks: [(1, 8), (1, 8), (1, 8)],
        quantized: true,
        bits: 4,
        nonlinearity: Nonlinearity::Relu,
        sym: false,
        net: Some(NetDef {
            name: name.into(),
            layers,
            origin: None,
        }),
    }
}

/// A float hardtanh network (differentiable almost everywhere) on 1×16×16 with every layer
/// kind: conv 5×5 valid (bn) → 4×12×12, conv 1×1 without bn → 5×12×12, max pool (plain) →
/// 5×6×6, conv 3×3 (bn) → 6×6×6, max pool (fused with the bn) → 6×3×3, conv 3×3 stride 2 same
/// (bn) → 6×2×2, global average pool → 6, dense 8 (bn) → the scores.
fn float_every_kind() -> NetConfig {
    let f = q(Bits::Float, Bits::Float, Nonlinearity::Hardtanh, false);
    net_config(
        "float-every-kind",
        [1, 16, 16],
        vec![
            conv(4, 5, 1, Padding::Valid, true, f),
            conv(5, 1, 1, Padding::Same, false, f),
            Layer::MaxPool,
            conv(6, 3, 1, Padding::Same, true, f),
            Layer::MaxPool,
            conv(6, 3, 2, Padding::Same, true, f),
            Layer::GlobalAvgPool,
            dense(Some(8), f),
            dense(None, f),
        ],
    )
}

/// n random images of `input`'s shape with random labels of `classes` classes: uploaded, their
/// pixels, their labels.
fn random_images<B: Backend>(
    b: &mut B,
    input: [usize; 3],
    classes: usize,
    n: usize,
    seed: u64,
) -> (qnn::backend::ImageSet, Vec<u8>, Vec<u16>) {
    let mut r = rng(seed);
    let [c, h, w] = input;
    let pixels: Vec<u8> = (0..n * c * h * w).map(|_| r.random()).collect();
    let labels: Vec<u16> = (0..n).map(|_| r.random_range(0..classes as u16)).collect();
    let set = b.upload_images(&pixels, &labels, (c, h, w)).unwrap();
    (set, pixels, labels)
}

/// No update: SGD at learning rate 0 without momentum leaves every parameter as it was, so a
/// `train_step` with it is the training forward, the loss and the backward alone.
const NO_UPDATE: Update = Update::Sgd {
    lr: 0.0,
    momentum: 0.0,
};

/// The training-mode (batch statistics) mean loss of the images `idx`, its gradients left in
/// the parameters' grad buffers; parameters unchanged.
fn train_loss(b: &mut CpuBackend, model: &Model, set: &qnn::backend::ImageSet, idx: &[u32]) -> f64 {
    b.fill_zero(model.acc);
    model.train_step(b, set, idx, NO_UPDATE).unwrap();
    let acc = LossAcc::from_slice(&read(b, model.acc));
    assert!(acc.is_finite(), "non-finite loss");
    acc.loss_sum / idx.len() as f64
}

fn values<B: Backend>(b: &mut B, model: &Model) -> Vec<Vec<f32>> {
    model
        .params
        .iter()
        .map(|p| read(b, p.tensors.value))
        .collect()
}

// ---- 1. the whole network's gradient

/// The analytic gradient of the training-mode loss (batch statistics, the mean squared hinge of
/// a batch of 6) with respect to every parameter tensor of [`float_every_kind`] — each conv's
/// and dense layer's weights, the batch norms' γ and β, the biases — at 7 elements per tensor
/// (its largest and 6 random), against central differences of the f32 forward pass. γ, β and
/// the biases are moved off their initial values first, so that nothing is checked at a
/// special point.
///
/// Tolerance: |fd − g| ≤ 2e-2·|g| + 1e-3·(largest |g| of the tensor) + 4e-7/step (the f32
/// loss's rounding, ~2e-7, over the step), at one of the steps 1e-3, 3e-4, 1e-4 tried in that
/// order. The loss of a small batch through batch norms, hardtanh corners and max pools has
/// kinks every few 1e-4 along a first-layer weight (a pre-activation crossing ±1, a pool's
/// maximum switching): a step of 1e-2 crosses several and can be off by half, while the slope
/// between kinks is the analytic gradient. A wrongly wired gradient is wrong at every step.
/// The biases of layers with a batch norm have true gradient 0 (the batch mean removes them):
/// there the analytic gradient and the difference at step 1e-2 must both be at most 1e-3 of the
/// first weight gradient's scale. The bias of the conv without batch norm has a real gradient
/// and is checked like the weights; no other tensor's gradient may be all zero.
#[test]
fn whole_network_gradient_matches_finite_differences() {
    check_whole_network_gradient(float_every_kind());
}

/// The same check on [`float_every_kind`] scoring 3 classes (its output layer 3 units): the
/// loss's mean over the classes and its gradient follow the class count.
#[test]
fn whole_network_gradient_at_three_classes_matches_finite_differences() {
    check_whole_network_gradient(NetConfig {
        classes: 3,
        ..float_every_kind()
    });
}

fn check_whole_network_gradient(cfg: NetConfig) {
    const BATCH: usize = 6;
    let mut b = cpu();
    let model = Model::new(&mut b, cfg.clone(), BATCH, 3).unwrap();
    let (set, _, _) = random_images(&mut b, cfg.input, cfg.classes, BATCH, 11);
    let idx: Vec<u32> = (0..BATCH as u32).collect();
    let mut r = rng(12);
    for p in &model.params {
        let n = p.tensors.value.len;
        let v = if p.name.ends_with(".gamma") {
            uniform(&mut r, n, 0.6, 1.4)
        } else if p.name.ends_with(".beta") || p.name.ends_with(".bias") {
            uniform(&mut r, n, -0.3, 0.3)
        } else {
            continue;
        };
        b.write_f32(p.tensors.value, &v);
    }
    let layers = cfg.layers();
    let bn_fed = |name: &str| {
        layers
            .iter()
            .any(|l| l.bn_name.is_some() && name == format!("{}.bias", l.name))
    };

    let before = values(&mut b, &model);
    let base = train_loss(&mut b, &model, &set, &idx);
    assert_eq!(
        values(&mut b, &model),
        before,
        "SGD at lr 0 changed a parameter"
    );
    let grads: Vec<Vec<f32>> = model
        .params
        .iter()
        .map(|p| read(&mut b, p.tensors.grad))
        .collect();
    assert!(base > 0.0);
    let weight_scale = max_abs(&grads[0]);
    assert!(weight_scale > 0.0, "conv0.weight has no gradient");
    let mut checked_real_bias = false;
    for (i, p) in model.params.iter().enumerate() {
        let g = &grads[i];
        let scale = max_abs(g);
        let noise = bn_fed(&p.name);
        if !noise {
            assert!(scale > 0.0, "{}: the gradient is all zero", p.name);
            checked_real_bias |= p.name.ends_with(".bias");
        }
        let mut picks: Vec<usize> = (0..6).map(|_| r.random_range(0..g.len())).collect();
        picks.push(
            (0..g.len())
                .max_by(|&a, &c| g[a].abs().total_cmp(&g[c].abs()))
                .unwrap(),
        );
        for j in picks {
            let mut fd_at = |eps: f32| {
                let mut v = before[i].clone();
                v[j] = before[i][j] + eps;
                b.write_f32(p.tensors.value, &v);
                let up = train_loss(&mut b, &model, &set, &idx);
                v[j] = before[i][j] - eps;
                b.write_f32(p.tensors.value, &v);
                let down = train_loss(&mut b, &model, &set, &idx);
                b.write_f32(p.tensors.value, &before[i]);
                ((up - down) / (2.0 * eps as f64)) as f32
            };
            if noise {
                let fd = fd_at(1e-2);
                let bound = 1e-3 * weight_scale;
                assert!(
                    g[j].abs() <= bound && fd.abs() <= bound,
                    "{}[{j}] feeds a batch norm: analytic {} and finite difference {fd} should both be ~0",
                    p.name,
                    g[j]
                );
                continue;
            }
            let mut tried = Vec::new();
            let ok = [1e-3f32, 3e-4, 1e-4].into_iter().any(|eps| {
                let fd = fd_at(eps);
                tried.push((eps, fd));
                (fd - g[j]).abs() <= 2e-2 * g[j].abs() + 1e-3 * scale + 4e-7 / eps
            });
            assert!(
                ok,
                "{}[{j}]: analytic {} vs finite differences (step, value) {tried:?} (tensor scale {scale:e})",
                p.name,
                g[j]
            );
        }
    }
    assert!(
        checked_real_bias,
        "the conv without batch norm's bias was not checked"
    );
}

// ---- 2. a quantized mixed-precision network, GPU against CPU

/// A mixed-precision network on MNIST's shape: conv 3×3 ×8 with 8-bit weights and 4-bit relu
/// activations; conv 5×5 ×8, 4-bit; max pool (fused with the bn) → 14×14; conv 3×3 stride 2
/// ×16 → 7×7; conv 1×1 ×8 without batch norm; two binary hardtanh (sym) convs ×16, the second
/// reading the first's ±1 (XNOR); max pool → 3×3; a third binary conv reading the pooled ±1
/// (XNOR); global average pool; dense 32 at 2 bits (relu); the output with 8-bit weights.
fn mixed_precision() -> NetConfig {
    use Nonlinearity::*;
    let four = q(Bits::Nb(4), Bits::Nb(4), Relu, false);
    let bin = q(Bits::Nb(0), Bits::Nb(0), Hardtanh, true);
    net_config(
        "mixed",
        [1, 28, 28],
        vec![
            conv(
                8,
                3,
                1,
                Padding::Same,
                true,
                q(Bits::Nb(8), Bits::Nb(4), Relu, false),
            ),
            conv(8, 5, 1, Padding::Same, true, four),
            Layer::MaxPool,
            conv(16, 3, 2, Padding::Same, true, four),
            conv(8, 1, 1, Padding::Same, false, four),
            conv(16, 3, 1, Padding::Same, true, bin),
            conv(16, 3, 1, Padding::Same, true, bin),
            Layer::MaxPool,
            conv(16, 3, 1, Padding::Same, true, bin),
            Layer::GlobalAvgPool,
            dense(Some(32), q(Bits::Nb(2), Bits::Nb(2), Relu, false)),
            dense(None, q(Bits::Nb(8), Bits::Float, Relu, false)),
        ],
    )
}

/// One whole training step (batch 16, Adam at lr 0.01) of [`mixed_precision`] on the GPU
/// against the CPU: every gradient, updated tensor, Adam moment and running statistic, with
/// the tolerances of tests/train_step_gpu_vs_cpu.rs (`common::assert_steps_match`: gradients
/// 1e-3 of the tensor's scale; the biases of layers with a batch norm rounding noise, while the
/// bias of the conv without one is compared as a real gradient). Then the same step again on
/// the GPU gives the same bits.
#[test]
fn mixed_precision_step_matches_cpu_and_repeats_bit_for_bit() {
    const BATCH: usize = 16;
    const LR: f32 = 0.01;
    let cfg = mixed_precision();
    let Some(mut g) = gpu() else { return };
    let got = one_train_step(&mut g, &cfg, BATCH, LR);
    let want = one_train_step(&mut cpu(), &cfg, BATCH, LR);
    // the conv without batch norm (conv3): its bias has a real gradient, compared as one
    let plain: Vec<String> = cfg
        .layers()
        .iter()
        .filter(|l| matches!(l.op, qnn::model::Op::Conv(_)) && !l.has_batch_norm())
        .map(|l| format!("{}.bias", l.name))
        .collect();
    assert_eq!(plain, ["conv3.bias"]);
    let k = want.names.iter().position(|n| *n == plain[0]).unwrap();
    assert!(
        max_abs(&want.grads[k]) > 1e-3 * max_abs(&want.grads[0]),
        "conv3.bias should have a real gradient"
    );
    assert_steps_match(&cfg, &got, &want, LR);
    assert_repeats(&got, &one_train_step(&mut g, &cfg, BATCH, LR));
}

/// [`mixed_precision`] scoring 12 classes: its output layer has 12 units, and one training
/// step (batch 16, labels of all 12 classes) on the GPU matches the CPU within the same
/// tolerances, and repeats bit for bit.
#[test]
fn twelve_classes_step_matches_cpu_and_repeats_bit_for_bit() {
    const BATCH: usize = 16;
    const LR: f32 = 0.01;
    let cfg = NetConfig {
        classes: 12,
        ..mixed_precision()
    };
    let shapes = cfg.tensor_shapes();
    assert!(
        shapes.contains(&("dense.weight".to_string(), vec![12, 32])),
        "{shapes:?}"
    );
    let Some(mut g) = gpu() else { return };
    let got = one_train_step(&mut g, &cfg, BATCH, LR);
    let want = one_train_step(&mut cpu(), &cfg, BATCH, LR);
    assert_eq!(want.acc[2], 1.0, "one loss call");
    assert!(want.acc[0] > 0.0 && want.acc[1] <= BATCH as f32);
    assert_steps_match(&cfg, &got, &want, LR);
    assert_repeats(&got, &one_train_step(&mut g, &cfg, BATCH, LR));
}

// ---- 3. evaluation mode against training mode

/// Host squared hinge of scores [n, classes]: (Σ rows' mean loss, rows whose first argmax is
/// not the label).
fn hinge(classes: usize, scores: &[f32], labels: &[u16]) -> (f64, usize) {
    let (mut loss, mut wrong) = (0.0, 0);
    for (row, &label) in scores.chunks(classes).zip(labels) {
        let mut l = 0.0;
        for (k, &y) in row.iter().enumerate() {
            let t = if k == label as usize { 1.0 } else { -1.0 };
            l += (1.0 - t * y as f64).max(0.0).powi(2);
        }
        loss += l / classes as f64;
        let arg = (0..classes).fold(0, |m, k| if row[k] > row[m] { k } else { m });
        wrong += (arg != label as usize) as usize;
    }
    (loss, wrong)
}

/// With every batch norm's running statistics set to a batch's own statistics (running buffers
/// zeroed, one training forward, which moves them by α = 0.1 from 0, then scaled by 10),
/// evaluation mode on that batch computes what training mode does: for [`float_every_kind`] on
/// 16 images the loss sums agree within 1e-4 relative, the error counts exactly, and every conv
/// layer's activations within 1e-4 (those a training forward writes: not a conv pooled with its
/// batch norm). And `predict` on the same images gives scores whose loss and error are what
/// `eval_step` counted (1e-5 relative).
#[test]
fn eval_with_batch_statistics_equals_training_mode() {
    const BATCH: usize = 16;
    let cfg = float_every_kind();
    let mut b = cpu();
    let model = Model::new(&mut b, cfg.clone(), BATCH, 5).unwrap();
    let (set, pixels, labels) = random_images(&mut b, cfg.input, cfg.classes, BATCH, 21);
    let idx: Vec<u32> = (0..BATCH as u32).collect();
    // a first step, so that γ, β and the weights are not at their initial values
    model
        .train_step(&mut b, &set, &idx, Update::Adam { lr: 0.01, t: 1 })
        .unwrap();

    for (_, r) in &model.running {
        b.fill_zero(*r);
    }
    let n = model.load_batch(&mut b, &set, &idx).unwrap();
    model.forward(&mut b, n, Mode::Train);
    for (_, r) in &model.running {
        let v: Vec<f32> = read(&mut b, *r).iter().map(|x| x * 10.0).collect();
        b.write_f32(*r, &v);
    }

    b.fill_zero(model.acc);
    model.eval_step(&mut b, &set, &idx).unwrap();
    let eval = LossAcc::from_slice(&read(&mut b, model.acc));
    let eval_acts = pollster::block_on(model.activations(&mut b, BATCH)).unwrap();
    let scores = pollster::block_on(model.predict_pixels(&mut b, &pixels)).unwrap();

    b.fill_zero(model.acc);
    model.train_step(&mut b, &set, &idx, NO_UPDATE).unwrap();
    let train = LossAcc::from_slice(&read(&mut b, model.acc));
    let train_acts = pollster::block_on(model.activations(&mut b, BATCH)).unwrap();

    assert!(
        (eval.loss_sum - train.loss_sum).abs() <= 1e-4 * train.loss_sum,
        "loss: eval mode {} vs training mode {}",
        eval.loss_sum,
        train.loss_sum
    );
    assert_eq!(
        eval.wrong, train.wrong,
        "error count: eval vs training mode"
    );
    // conv layers followed by a max pool with a batch norm: the training forward pools them
    // without writing their activations
    let layers = cfg.layers();
    let fused: Vec<bool> = layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l.op, qnn::model::Op::Conv(_)))
        .map(|(i, l)| l.has_batch_norm() && matches!(layers[i + 1].op, qnn::model::Op::MaxPool))
        .collect();
    assert_eq!(fused.len(), eval_acts.len());
    for (((name, e), (_, t)), fused) in eval_acts.iter().zip(&train_acts).zip(fused) {
        if !fused {
            let d = e
                .iter()
                .zip(t)
                .fold(0.0f32, |m, (a, c)| m.max((a - c).abs()));
            assert!(
                d <= 1e-4,
                "{name}: eval and training activations differ by {d:e}"
            );
        }
    }

    let (loss, wrong) = hinge(cfg.classes, &scores, &labels);
    assert!(
        (loss - eval.loss_sum).abs() <= 1e-5 * loss,
        "predict's loss {loss} vs eval_step's {}",
        eval.loss_sum
    );
    assert_eq!(wrong as f64, eval.wrong, "predict's errors vs eval_step's");
}

// ---- 4. the example net files

/// Every net file of examples/nets/ reads, builds on the CPU (1×28×28 input; 3×32×32 for the
/// CIFAR-10 one), trains one step with a finite, positive loss and finite parameters, and
/// exports exactly the tensors `NetConfig::tensor_shapes` promises (names, shapes, order).
#[test]
fn every_example_net_file_builds_trains_and_exports_its_tensors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/nets");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "examples/nets/ holds {} net files",
        files.len()
    );
    for path in files {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let def = NetDef::from_toml(&text, &file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let input = if file == "seed-cifar10-8bit-ends.toml" {
            [3, 32, 32]
        } else {
            [1, 28, 28]
        };
        let cfg = NetConfig {
            input,
            net: Some(def),
            ..net_config("unused", input, vec![])
        };
        let mut b = cpu();
        let model = Model::new(&mut b, cfg.clone(), 4, 1).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (set, _, _) = random_images(&mut b, input, cfg.classes, 8, 31);
        b.fill_zero(model.acc);
        model
            .train_step(
                &mut b,
                &set,
                &[0, 3, 9, 14],
                Update::Adam { lr: 0.01, t: 1 },
            )
            .unwrap();
        let acc = LossAcc::from_slice(&read(&mut b, model.acc));
        assert!(
            acc.is_finite() && acc.loss_sum > 0.0 && acc.calls == 1,
            "{file}: loss {acc:?}"
        );
        let tensors = pollster::block_on(model.export(&mut b)).unwrap();
        for t in &tensors {
            assert!(
                t.values.iter().all(|v| v.is_finite()),
                "{file}: {} not finite",
                t.name
            );
        }
        let got: Vec<(String, Vec<usize>)> =
            tensors.into_iter().map(|t| (t.name, t.shape)).collect();
        assert_eq!(got, cfg.tensor_shapes(), "{file}");
    }
}

/// examples/nets/seed.toml is the seed's default network (blocks (1, 32), (1, 64), (1, 64),
/// 4-bit relu, sym off) as a layer list: the same layers, and from the same seed, after two
/// training steps on the same batches, the same parameters, running statistics and loss, bit
/// for bit.
#[test]
fn seed_net_file_trains_bit_for_bit_as_the_seed_flags() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/nets/seed.toml"
    ))
    .unwrap();
    let flags = NetConfig {
        input: [1, 28, 28],
        classes: 10,
        blocks: [(1, 32), (1, 64), (1, 64)],
        quantized: true,
        bits: 4,
        nonlinearity: Nonlinearity::Relu,
        sym: false,
        net: None,
    };
    let file = NetConfig {
        net: Some(NetDef::from_toml(&text, "seed.toml").unwrap()),
        ..flags.clone()
    };
    assert_eq!(
        file.layer_list(),
        flags.layer_list(),
        "seed.toml is not the seed's network"
    );
    let run = |cfg: &NetConfig| {
        let mut b = cpu();
        let model = Model::new(&mut b, cfg.clone(), 8, 1234).unwrap();
        let (set, _, _) = random_images(&mut b, cfg.input, cfg.classes, 20, 41);
        b.fill_zero(model.acc);
        for (t, idx) in [[0u32, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 21, 23, 25, 27]]
            .iter()
            .enumerate()
        {
            model
                .train_step(
                    &mut b,
                    &set,
                    idx,
                    Update::Adam {
                        lr: 0.03,
                        t: t as u64 + 1,
                    },
                )
                .unwrap();
        }
        let acc = read(&mut b, model.acc);
        (pollster::block_on(model.export(&mut b)).unwrap(), acc)
    };
    let (from_file, acc_file) = run(&file);
    let (from_flags, acc_flags) = run(&flags);
    assert_eq!(acc_file, acc_flags, "losses differ");
    assert_eq!(from_file.len(), from_flags.len());
    for (a, c) in from_file.iter().zip(&from_flags) {
        assert_eq!((&a.name, &a.shape), (&c.name, &c.shape));
        assert!(a.values == c.values, "{} differs after two steps", a.name);
    }
}

// ---- 5. messages

fn example(name: &str) -> NetDef {
    let path = format!("{}/examples/nets/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    NetDef::from_toml(
        &std::fs::read_to_string(path).unwrap(),
        &format!("{name}.toml"),
    )
    .unwrap()
}

fn meta(config: NetConfig) -> ModelMeta {
    ModelMeta {
        dataset: "MNIST".into(),
        config,
        epoch: 1,
        val_error: Some(50.0),
        test_error: Some(50.0),
        class_names: vec![],
    }
}

/// The model file's refusal of `tensors` under `config`'s metadata.
fn refusal(tensors: &[Tensor], config: &NetConfig) -> String {
    let bytes = checkpoint::model_to_bytes(tensors, &meta(config.clone())).unwrap();
    match checkpoint::model_from_bytes(&bytes, "m.safetensors") {
        Ok(_) => panic!(
            "tensors {:?} were accepted",
            tensors.iter().map(|t| &t.name).collect::<Vec<_>>()
        ),
        Err(e) => e.to_string(),
    }
}

/// A model file of a net-file network whose tensors are not those of the network its metadata
/// describes — one missing, one of another shape, one extra, or another network's tensors
/// altogether — is refused with the tensor named (and its shapes); loading another network's
/// tensors into a model names the tensor too. The file as saved reads back, net description
/// and all.
#[test]
fn model_files_that_disagree_with_their_net_are_refused_naming_the_tensor() {
    let lenet = NetConfig {
        net: Some(example("lenet5-4bit")),
        ..net_config("unused", [1, 28, 28], vec![])
    };
    let mlp = NetConfig {
        net: Some(example("mlp-2bit")),
        ..lenet.clone()
    };
    let mut b = cpu();
    let model = Model::new(&mut b, lenet.clone(), 1, 0).unwrap();
    let tensors = pollster::block_on(model.export(&mut b)).unwrap();

    let bytes = checkpoint::model_to_bytes(&tensors, &meta(lenet.clone())).unwrap();
    let (back, m) = checkpoint::model_from_bytes(&bytes, "m.safetensors").unwrap();
    assert_eq!(m.config, lenet);
    model.import(&mut b, &back).unwrap();

    let missing: Vec<Tensor> = tensors
        .iter()
        .filter(|t| t.name != "conv1.weight")
        .cloned()
        .collect();
    let e = refusal(&missing, &lenet);
    assert!(
        e.contains("m.safetensors") && e.contains("no conv1.weight [16, 6, 5, 5]"),
        "{e}"
    );

    let mut reshaped = tensors.clone();
    let t = reshaped
        .iter_mut()
        .find(|t| t.name == "conv1.weight")
        .unwrap();
    t.shape = vec![16, 6, 3, 3];
    t.values.truncate(16 * 6 * 9);
    let e = refusal(&reshaped, &lenet);
    assert!(
        e.contains("conv1.weight is [16, 6, 3, 3] where the network has [16, 6, 5, 5]"),
        "{e}"
    );

    let mut extra = tensors.clone();
    extra.push(Tensor::new("conv9.weight", vec![2], vec![0.0, 1.0]));
    let e = refusal(&extra, &lenet);
    assert!(e.contains("conv9.weight [2] is not in the network"), "{e}");

    let e = refusal(&tensors, &mlp);
    assert!(
        e.contains("dense0.weight is [120, 400] where the network has [256, 784]"),
        "{e}"
    );
    assert!(
        e.contains("MNIST_mlp-2bit"),
        "the message should name the network: {e}"
    );

    let other = Model::new(&mut b, mlp, 1, 0).unwrap();
    let e = other.import(&mut b, &tensors).unwrap_err().to_string();
    assert!(
        e.contains("'dense0.weight' has shape [120, 400], this network needs [256, 784]"),
        "{e}"
    );
}
