//! ONNX and QONNX export (`qnn export`, `qnn::export`), checked by independent code: small
//! models of every kind are trained on a slice of the embedded mnist-mini, their scores on its
//! 1,000 test images computed by qnn (the CPU backend in evaluation mode, `qnn eval`'s path),
//! and the exported files run by onnxruntime (onnx) and by qonnx's executor after its cleanup
//! and shape inference (qonnx), through `scripts/onnx_check.py`: every class must agree and every
//! score within 1e-5 relative (the script states the measure).
//!
//! The Python side lives in the venv that `scripts/onnx-venv.sh` makes (pinned onnx,
//! onnxruntime, qonnx): its python is `QNN_ONNX_PYTHON`, else
//! /opt/qnn-tools/onnx-venv/bin/python where that exists. Without it these tests say so and
//! pass, unless `QNN_REQUIRE_ONNX=1` (CI), which makes them fail. The structural tests and the
//! command's refusals need no Python.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use common::cli::{qnn, text};
use common::{conv, cpu};
use prost::Message;
use qnn::checkpoint::{self, ModelMeta};
use qnn::data::{self, DatasetKind};
use qnn::export::onnx_proto::{data_type, ModelProto};
use qnn::export::{self as export, Format, IntLevels};
use qnn::model::{Bits, Layer, LayerQuant, Model, NetConfig, NetDef, Padding, Tensor};
use qnn::quant::{Nonlinearity, WeightQuant};
use qnn::run::{EpochOutcome, Run, RunSettings, Start};

/// The venv's python, or why there is none (then the Python checks skip, or fail under
/// `QNN_REQUIRE_ONNX=1`).
fn python() -> Option<PathBuf> {
    let p = std::env::var_os("QNN_ONNX_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let d = PathBuf::from("/opt/qnn-tools/onnx-venv/bin/python");
            d.exists().then_some(d)
        });
    match p {
        Some(p) => Some(p),
        None if std::env::var("QNN_REQUIRE_ONNX").is_ok_and(|v| v == "1") => panic!(
            "QNN_REQUIRE_ONNX=1, but there is no onnx venv: run scripts/onnx-venv.sh or set QNN_ONNX_PYTHON"
        ),
        None => {
            eprintln!(
                "skipped: no onnx venv (run scripts/onnx-venv.sh, or set QNN_ONNX_PYTHON); QNN_REQUIRE_ONNX=1 makes this fail"
            );
            None
        }
    }
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qnn-export-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A little-endian f32 .npy file of `shape`.
fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    assert_eq!(shape.iter().product::<usize>(), values.len());
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    // magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, then \n
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

/// mnist-mini with its training file cut to 600 images (500 train, 100 validation), so that a
/// model trains in a second or two; the 1,000 test images stay.
fn small_mnist() -> data::Dataset {
    let mut d = data::mnist_mini().unwrap();
    let keep = 600;
    d.train.pixels.truncate(keep * d.image_len());
    d.train.labels.truncate(keep);
    d
}

/// One epoch of `net` on [`small_mnist`]: the saved model's tensors and metadata.
fn train(net: NetConfig) -> (Vec<Tensor>, ModelMeta) {
    let data = small_mnist();
    let mut s = RunSettings::new(DatasetKind::MnistMini);
    s.net = net;
    s.options.epochs = 1;
    s.options.batch = 25;
    s.options.flip = false;
    s.valid = Some(100);
    let mut b = cpu();
    let mut run = pollster::block_on(Run::new(&mut b, s, &data, Start::Fresh)).unwrap();
    let stop = AtomicBool::new(false);
    while !run.is_finished() {
        match pollster::block_on(run.next_epoch(&mut b, &stop, |_| false)).unwrap() {
            EpochOutcome::Finished(_) => {}
            other => panic!("{other:?}"),
        }
    }
    checkpoint::model_from_bytes(run.best_model().unwrap(), "trained").unwrap()
}

/// qnn's scores [n, classes] for the test images, as `qnn eval` computes them (CPU backend,
/// evaluation mode, batches of 64), and the images as the network reads them.
fn qnn_scores(tensors: &[Tensor], meta: &ModelMeta, test: &data::Split) -> (Vec<f32>, Vec<f32>) {
    let mut b = cpu();
    let model = Model::new(&mut b, meta.config.clone(), 64, 0).unwrap();
    model.import(&mut b, tensors).unwrap();
    let scores = pollster::block_on(model.predict_pixels(&mut b, &test.pixels)).unwrap();
    let x = test
        .pixels
        .iter()
        .map(|&p| qnn::ops::data::scale_pixel(p))
        .collect();
    (x, scores)
}

/// The seed's network at a small size with these widths.
fn seed(quantized: bool, bits: u32, nl: Nonlinearity, sym: bool) -> NetConfig {
    let mut n = RunSettings::new(DatasetKind::MnistMini).net;
    n.blocks = [(1, 8), (1, 16), (1, 16)];
    n.quantized = quantized;
    n.bits = bits;
    n.nonlinearity = nl;
    n.sym = sym;
    n
}

/// A net file of examples/nets/ on mnist-mini's 1×28×28 input.
fn example(name: &str) -> NetConfig {
    let path = format!("{}/examples/nets/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    NetConfig::from_net_text([1, 28, 28], 10, &text, &path).unwrap()
}

fn q(w_bits: Bits, a_bits: Bits, nonlinearity: Nonlinearity, sym: bool) -> LayerQuant {
    LayerQuant {
        w_bits,
        a_bits,
        nonlinearity,
        sym,
    }
}

/// A network with every layer kind and option a net file has: kernels 1, 3 and 5, stride 2,
/// valid padding, a conv without batch norm, max and global average pools, a hidden dense layer
/// followed by a 1×1 conv (a dense output read as an image), 8-bit symmetric and 16-bit weights
/// (beyond int8), ternary weights and activations, float and 2-bit layers, relu and hardtanh,
/// 8-bit output weights.
fn every_layer() -> NetConfig {
    use Bits::*;
    use Nonlinearity::*;
    let layers = vec![
        conv(
            6,
            5,
            1,
            Padding::Same,
            true,
            q(Nb(8), Nb(4), Hardtanh, true),
        ),
        Layer::MaxPool,
        conv(
            8,
            3,
            2,
            Padding::Valid,
            false,
            q(Nb(1), Nb(1), Hardtanh, true),
        ),
        conv(8, 1, 1, Padding::Same, true, q(Nb(16), Nb(2), Relu, false)),
        conv(
            8,
            3,
            1,
            Padding::Same,
            true,
            q(Float, Float, Hardtanh, false),
        ),
        Layer::GlobalAvgPool,
        Layer::Dense {
            units: Some(12),
            quant: q(Nb(3), Nb(3), Hardtanh, false),
        },
        conv(
            10,
            1,
            1,
            Padding::Same,
            true,
            q(Nb(0), Nb(0), Hardtanh, true),
        ),
        Layer::Dense {
            units: None,
            quant: q(Nb(8), Float, Relu, false),
        },
    ];
    let mut n = RunSettings::new(DatasetKind::MnistMini).net;
    n.net = Some(NetDef {
        name: "every-layer".into(),
        layers,
        origin: None,
    });
    n.validate().unwrap();
    n
}

/// Where a float network's scores may differ under onnxruntime's default optimization level
/// ("all"): its layout transformation runs convolutions whose weights are constants (float
/// weights; quantized ones come out of DequantizeLinear) as NCHWc kernels, which sum the
/// products in another order (measured: 4.8e-6 absolute on a score of −0.0053, rel 2.9e-4).
/// Every other check holds at 1e-5 (and comes out bit-exact).
const FLOAT_REORDER_TOL: f64 = 1e-3;

/// Trains `net`, exports it in both formats and has the Python checker run each: the onnx file
/// through onnxruntime at its default optimization level ("all") and at "extended" (without the
/// layout transformation), the qonnx file through qonnx. Every class must agree and every score
/// within 1e-5 relative (the checker's measure), except a float network's under "all", within
/// [`FLOAT_REORDER_TOL`]. Prints the figures (`-- --nocapture`).
fn check_kind(name: &str, net: NetConfig) {
    let Some(py) = python() else { return };
    let float = net
        .layers()
        .iter()
        .any(|l| l.quant().is_some_and(|q| !q.w_bits.is_quantized()) && l.activation().is_some());
    let (tensors, meta) = train(net);
    let data = data::mnist_mini().unwrap();
    let (x, scores) = qnn_scores(&tensors, &meta, &data.test);
    let n = data.test.len();
    let [c, h, w] = meta.config.input;
    let dir = scratch(name);
    write_npy(&dir.join("x.npy"), &[n, c, h, w], &x);
    write_npy(&dir.join("scores.npy"), &[n, meta.config.classes], &scores);
    let model_len = checkpoint::model_to_bytes(&tensors, &meta).unwrap().len();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/onnx_check.py");
    let mut failures = Vec::new();
    let runs = [
        (Format::Onnx, "all"),
        (Format::Onnx, "extended"),
        (Format::Qonnx, "-"),
    ];
    for (format, level) in runs {
        let bytes = export::export(&tensors, &meta, format).unwrap();
        let file = dir.join(format!("{name}.{}", format.extension()));
        std::fs::write(&file, &bytes).unwrap();
        let tol = if float && level == "all" {
            FLOAT_REORDER_TOL
        } else {
            1e-5
        };
        let mut cmd = Command::new(&py);
        cmd.arg(script)
            .arg(&file)
            .args([
                "--format",
                format.name(),
                "--json",
                "--tol",
                &tol.to_string(),
            ])
            .arg("--input")
            .arg(dir.join("x.npy"))
            .arg("--scores")
            .arg(dir.join("scores.npy"));
        if format == Format::Onnx {
            cmd.args(["--ort-level", level]);
        }
        let out = cmd.output().expect("python runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or("").to_string();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            failures.push(format!(
                "{name} {} {level}: the checker gave no result (exit {:?}):\n{}{}",
                format.name(),
                out.status.code(),
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        };
        let equal = v["classes_equal"].as_u64().unwrap_or(0);
        let worst = v["worst_rel"].as_f64().unwrap_or(f64::INFINITY);
        eprintln!(
            "AGREEMENT {name} {} {level}: classes {equal}/{}, worst rel {worst:.3e}, \
             {}/{} rows bit-equal; {} bytes (model {model_len} bytes)",
            format.name(),
            v["images"],
            v["exact_rows"],
            v["images"],
            bytes.len(),
        );
        let ok = v["ok"].as_bool() == Some(true) && out.status.success();
        if !ok || equal != n as u64 {
            failures.push(format!("{name} {} {level}: {line}", format.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // kept when the test fails, for a look at the files
    let _ = std::fs::remove_dir_all(&dir);
}

/// Binary weights and activations (the seed's -nb 0 -nl hardtanh -sym 1): onnxruntime and
/// qonnx give qnn's classes and scores.
#[test]
fn binary_agrees() {
    check_kind("binary", seed(true, 0, Nonlinearity::Hardtanh, true));
}

/// 4-bit relu (the seed's defaults): onnxruntime and qonnx agree with qnn.
#[test]
fn relu_4bit_agrees() {
    check_kind("relu4", seed(true, 4, Nonlinearity::Relu, false));
}

/// 2-bit relu (levels {0, ½}): onnxruntime and qonnx agree with qnn.
#[test]
fn relu_2bit_agrees() {
    check_kind("relu2", seed(true, 2, Nonlinearity::Relu, false));
}

/// 3-bit hardtanh, asymmetric, and 2-bit hardtanh, symmetric (S + 1 levels): onnxruntime and
/// qonnx agree with qnn.
#[test]
fn hardtanh_agrees() {
    check_kind("hardtanh3", seed(true, 3, Nonlinearity::Hardtanh, false));
    check_kind("hardtanh2sym", seed(true, 2, Nonlinearity::Hardtanh, true));
}

/// Float networks (-q 0), relu and hardtanh: onnxruntime and qonnx agree with qnn.
#[test]
fn float_agrees() {
    check_kind("float-relu", seed(false, 4, Nonlinearity::Relu, false));
    check_kind(
        "float-hardtanh",
        seed(false, 4, Nonlinearity::Hardtanh, false),
    );
}

/// The net files of examples/nets/ that fit 28×28×1 (LeNet-5 at 4 bits, the 2-bit MLP, the
/// binary all-conv net) and the seed's network with 8-bit first and last layers (the
/// minimum-energy design of seed-cifar10-8bit-ends, at MNIST's size): both runtimes agree.
#[test]
fn example_nets_agree() {
    check_kind("lenet5-4bit", example("lenet5-4bit"));
    check_kind("mlp-2bit", example("mlp-2bit"));
    check_kind("allconv-binary", example("allconv-binary"));
    let ends = seed(true, 4, Nonlinearity::Relu, false)
        .with_end_bits(Some(Bits::Nb(8)), Some(Bits::Nb(8)));
    check_kind("seed-8bit-ends", ends);
}

/// Every layer kind and option of a net file in one network ([`every_layer`]): both runtimes
/// agree.
#[test]
fn every_layer_kind_agrees() {
    check_kind("every-layer", every_layer());
}

/// A network that applies one activation to its input and shows every activation in its
/// scores: a 1×1 conv of one float filter (weight 1, bias 0) with an identity batch norm, so
/// u = x exactly, then the activation, then the float output layer (10 scores from the 64
/// activations of an 8×8 input, weights spread so that any one activation's level shows).
fn probe(a_bits: Bits, nl: Nonlinearity, sym: bool) -> (Vec<Tensor>, ModelMeta) {
    let layers = vec![
        conv(
            1,
            1,
            1,
            Padding::Same,
            true,
            q(Bits::Float, a_bits, nl, sym),
        ),
        Layer::Dense {
            units: None,
            quant: q(Bits::Float, Bits::Float, nl, sym),
        },
    ];
    let mut n = RunSettings::new(DatasetKind::MnistMini).net;
    n.input = [1, 8, 8];
    n.net = Some(NetDef {
        name: format!("probe-{}-{}-{sym}", a_bits.label(), nl.name()),
        layers,
        origin: None,
    });
    n.validate().unwrap();
    let (mut tensors, meta) = fresh(n);
    for t in &mut tensors {
        let fill = match t.name.as_str() {
            "conv0.weight" | "bn0.gamma" | "bn0.inv_std" | "bn_out.gamma" | "bn_out.inv_std" => 1.0,
            "conv0.bias" | "bn0.beta" | "bn0.mean" | "bn_out.beta" | "bn_out.mean"
            | "dense.bias" => 0.0,
            "dense.weight" => {
                // 1 + j/64 + i/7: every input with its own weight in every score
                for (e, v) in t.values.iter_mut().enumerate() {
                    let (i, j) = (e / 64, e % 64);
                    *v = 1.0 + j as f32 / 64.0 + i as f32 / 7.0;
                }
                continue;
            }
            other => panic!("unexpected tensor {other}"),
        };
        t.values.iter_mut().for_each(|v| *v = fill);
    }
    (tensors, meta)
}

/// Inputs where a quantized activation of `a_bits` is hardest to get right: every tie of its
/// rounding (hs·2^nb = k + ½ exactly) and the floats either side of it, the edges of the clips
/// (−1, 1, relu's 0), the binary threshold (u = −2^−25 and its neighbours), values past ±1 and
/// a sweep of the range; in images of 8×8.
fn probe_inputs(a_bits: Bits) -> Vec<f32> {
    let s = match a_bits {
        Bits::Nb(nb) => (1u64 << nb) as f32,
        Bits::Float => 16.0,
    };
    let mut v = Vec::new();
    let mut around = |x: f32| {
        v.extend([
            x,
            f32::from_bits(x.to_bits().wrapping_add(1)),
            f32::from_bits(x.to_bits().wrapping_sub(1)),
        ]);
    };
    let ties = (s as usize).min(4096);
    for k in 0..=ties {
        let hs = (k as f32 + 0.5) / s;
        around(2.0 * hs - 1.0);
    }
    for x in [-1.0f32, 1.0, 0.0, -2.0, 2.0, 0.5, -0.5] {
        around(x);
    }
    for x in [
        -1.0f32 / 33_554_432.0,
        -1.0 / 16_777_216.0,
        -1.5 / 16_777_216.0,
        1e-30,
        -1e-30,
    ] {
        around(x);
    }
    v.push(-0.0);
    for i in 0..=400 {
        v.push(-1.2 + 2.4 * i as f32 / 400.0);
    }
    v.retain(|x| x.is_finite() && x.abs() < 10.0);
    v.resize(v.len().div_ceil(64) * 64, 0.0);
    v
}

/// Every quantized activation kind, applied to inputs at its rounding ties and clip edges
/// ([`probe_inputs`]): onnxruntime and qonnx give exactly qnn's activations (the scores of
/// [`probe`] show each one), so the export's rounding (half away from zero, not ONNX's half to
/// even) and clips are qnn's, not merely close on typical data.
#[test]
fn quantizer_edges_agree() {
    let Some(py) = python() else { return };
    use Bits::Nb;
    use Nonlinearity::*;
    let kinds = [
        (Nb(0), Hardtanh, true),
        (Nb(1), Hardtanh, true),
        (Nb(1), Hardtanh, false),
        (Nb(2), Hardtanh, false),
        (Nb(2), Hardtanh, true),
        (Nb(2), Relu, false),
        (Nb(3), Relu, false),
        (Nb(4), Relu, false),
        (Nb(4), Hardtanh, true),
        (Nb(8), Relu, false),
        (Nb(8), Hardtanh, true),
        (Nb(16), Hardtanh, false),
    ];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/onnx_check.py");
    let (mut failures, mut dirs) = (Vec::new(), Vec::new());
    for (a_bits, nl, sym) in kinds {
        let (tensors, meta) = probe(a_bits, nl, sym);
        let x = probe_inputs(a_bits);
        let n = x.len() / 64;
        let mut b = cpu();
        let model = Model::new(&mut b, meta.config.clone(), n, 0).unwrap();
        model.import(&mut b, &tensors).unwrap();
        let scores = pollster::block_on(model.predict(&mut b, &x)).unwrap();
        let name = format!("probe-{}-{}-{sym}", a_bits.label(), nl.name());
        let dir = scratch(&name);
        dirs.push(dir.clone());
        write_npy(&dir.join("x.npy"), &[n, 1, 8, 8], &x);
        write_npy(&dir.join("scores.npy"), &[n, 10], &scores);
        for format in [Format::Onnx, Format::Qonnx] {
            let file = dir.join(format!("probe.{}", format.extension()));
            std::fs::write(&file, export::export(&tensors, &meta, format).unwrap()).unwrap();
            // exact: the same activations give the same float sums in the output layer
            let out = Command::new(&py)
                .arg(script)
                .arg(&file)
                .args(["--format", format.name(), "--json", "--tol", "0"])
                .arg("--input")
                .arg(dir.join("x.npy"))
                .arg("--scores")
                .arg(dir.join("scores.npy"))
                .output()
                .expect("python runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            eprintln!("PROBE {name} {}: {}", format.name(), stdout.trim());
            if !out.status.success() {
                failures.push(format!(
                    "{name} {}: {stdout}{}",
                    format.name(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// An untrained model of `net`: its tensors (as a saved model holds them) and metadata.
fn fresh(net: NetConfig) -> (Vec<Tensor>, ModelMeta) {
    let mut b = cpu();
    let model = Model::new(&mut b, net.clone(), 1, 7).unwrap();
    let tensors = pollster::block_on(model.export(&mut b)).unwrap();
    let meta = ModelMeta {
        dataset: "mnist-mini".into(),
        config: net,
        epoch: 0,
        val_error: None,
        test_error: None,
        class_names: Vec::new(),
    };
    (tensors, meta)
}

/// The graph is well formed without any runtime: opset 13 (and QONNX's domain only in the
/// QONNX file), input [N, 1, 28, 28] and output [N, 10] (batch 1 in QONNX), every node reading
/// only the input, initializers or earlier nodes' outputs, every value written once; the onnx
/// file has no custom operator, stores quantized weights as integers (int8, int32 for 16 bits)
/// whose DequantizeLinear step times the integer is qnn's quantized weight, and float weights
/// as f32; the qonnx file has a Quant or BipolarQuant per quantized weight and activation.
#[test]
fn the_graph_is_well_formed() {
    let (tensors, meta) = fresh(every_layer());
    for format in [Format::Onnx, Format::Qonnx] {
        let bytes = export::export(&tensors, &meta, format).unwrap();
        let m = ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(m.ir_version, 7);
        let domains: Vec<(&str, i64)> = m
            .opset_import
            .iter()
            .map(|o| (o.domain.as_str(), o.version))
            .collect();
        let g = m.graph.as_ref().unwrap();
        let dims = |v: &qnn::export::onnx_proto::ValueInfoProto| -> Vec<String> {
            let t = v.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
            assert_eq!(t.elem_type, data_type::FLOAT);
            t.shape
                .as_ref()
                .unwrap()
                .dim
                .iter()
                .map(|d| match (&d.dim_value, &d.dim_param) {
                    (Some(v), _) => v.to_string(),
                    (_, Some(p)) => p.clone(),
                    _ => "?".into(),
                })
                .collect()
        };
        let batch = if format == Format::Onnx { "N" } else { "1" };
        assert_eq!(dims(&g.input[0]), [batch, "1", "28", "28"]);
        assert_eq!(dims(&g.output[0]), [batch, "10"]);
        assert_eq!(g.output[0].name, "scores");
        // topological order, each value written once
        let mut known: std::collections::HashSet<String> =
            g.initializer.iter().map(|t| t.name.clone()).collect();
        assert_eq!(known.len(), g.initializer.len(), "initializer names repeat");
        known.insert("input".into());
        for n in &g.node {
            for i in &n.input {
                assert!(
                    known.contains(i),
                    "{} reads {i} before it is written",
                    n.name
                );
            }
            for o in &n.output {
                assert!(known.insert(o.clone()), "{o} is written twice");
            }
        }
        assert!(known.contains("scores"));
        let ops = |op: &str| g.node.iter().filter(|n| n.op_type == op).count();
        assert_eq!(ops("Conv"), 5);
        assert_eq!(ops("MatMul"), 2);
        assert_eq!(ops("MaxPool"), 1);
        assert_eq!(ops("ReduceSum"), 1);
        assert_eq!(ops("Reshape"), 1, "the conv after the hidden dense layer");
        // quantized weights: every layer but the float conv (6 of 7); quantized activations:
        // every conv and the hidden dense layer but the float conv (5)
        match format {
            Format::Onnx => {
                assert_eq!(domains, [("", 13)]);
                assert!(g.node.iter().all(|n| n.domain.is_empty()));
                assert_eq!(ops("DequantizeLinear"), 6);
                assert_eq!(ops("Floor"), 5);
                // the 16-bit layer's integers need int32
                assert!(g
                    .initializer
                    .iter()
                    .any(|i| i.data_type == data_type::INT32));
                for t in tensors.iter().filter(|t| t.name.ends_with(".weight")) {
                    let layer = t.name.trim_end_matches(".weight");
                    let init = g
                        .initializer
                        .iter()
                        .find(|i| i.name.starts_with(&format!("{layer}.weight")))
                        .unwrap();
                    let wq = weight_quant(&meta.config, layer);
                    match IntLevels::of(&t.values, wq) {
                        None => assert_eq!(init.data_type, data_type::FLOAT, "{layer}"),
                        Some(levels) => {
                            // int8 where the integers fit (they may, short of the range)
                            let fits = levels.ints.iter().all(|k| i8::try_from(*k).is_ok());
                            let want_type = if !fits {
                                data_type::INT32
                            } else {
                                data_type::INT8
                            };
                            assert_eq!(init.data_type, want_type, "{layer}");
                            let absmax = t.values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                            for (v, k) in t.values.iter().zip(&levels.ints) {
                                assert_eq!(*k as f32 * levels.step, wq.apply(*v, absmax));
                            }
                        }
                    }
                }
            }
            Format::Qonnx => {
                assert_eq!(domains, [("", 13), (export::QONNX_DOMAIN, 1)]);
                let custom: Vec<&str> = g
                    .node
                    .iter()
                    .filter(|n| !n.domain.is_empty())
                    .map(|n| {
                        assert_eq!(n.domain, export::QONNX_DOMAIN);
                        n.op_type.as_str()
                    })
                    .collect();
                let count = |op: &str| custom.iter().filter(|o| **o == op).count();
                // binary: the 1×1 conv's weights and activations
                assert_eq!(count("BipolarQuant"), 2);
                assert_eq!(count("Quant"), 6 - 1 + 5 - 1);
                assert_eq!(custom.len(), 11);
            }
        }
    }
}

/// The weight quantizer of layer `name` of `config`.
fn weight_quant(config: &NetConfig, name: &str) -> WeightQuant {
    let l = config
        .layers()
        .into_iter()
        .find(|l| l.name == name)
        .unwrap();
    l.quant().unwrap().weight_quant()
}

/// `qnn export` writes the file (onnx by default, beside the model) and refuses, with exit 1,
/// a message naming the problem and no file left behind: an existing output without
/// --overwrite (which then replaces it), a corrupt model, a file that is not a qnn model, an
/// unknown format, and an output that is the model itself.
#[test]
fn the_command_writes_and_refuses() {
    let dir = scratch("cli");
    let (tensors, meta) = fresh(seed(true, 2, Nonlinearity::Relu, false));
    let model = dir.join("m.safetensors");
    checkpoint::save_model(&model, &tensors, &meta).unwrap();
    let m = model.to_str().unwrap();

    let o = qnn(&["export", m]);
    assert!(o.status.success(), "{}", text(&o));
    let onnx = dir.join("m.onnx");
    let first = std::fs::read(&onnx).unwrap();
    assert_eq!(
        first,
        export::export(&tensors, &meta, Format::Onnx).unwrap()
    );

    let refused = |args: &[&str], needles: &[&str]| {
        let o = qnn(args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "qnn {args:?}:\n{t}");
        for n in needles {
            assert!(t.contains(n), "qnn {args:?}: no {n:?} in\n{t}");
        }
        assert!(!t.contains("panicked"), "{t}");
    };
    let o_path = onnx.to_str().unwrap();
    refused(&["export", m], &[o_path, "already exists", "--overwrite"]);
    let o = qnn(&["export", m, "--overwrite"]);
    assert!(o.status.success(), "{}", text(&o));

    let q_out = dir.join("q.onnx");
    let q = q_out.to_str().unwrap();
    let o = qnn(&["export", m, "--format", "qonnx", "--out", q]);
    assert!(o.status.success(), "{}", text(&o));
    let qbytes = std::fs::read(&q_out).unwrap();
    let qm = ModelProto::decode(qbytes.as_slice()).unwrap();
    assert!(qm.graph.unwrap().node.iter().any(|n| n.op_type == "Quant"));

    let out = dir.join("never.onnx");
    let never = out.to_str().unwrap();
    // a model cut short
    let cut = dir.join("cut.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &["export", cut.to_str().unwrap(), "--out", never],
        &["cut.safetensors", "truncated"],
    );
    // not a model at all
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"this is not a model").unwrap();
    refused(
        &["export", junk.to_str().unwrap(), "--out", never],
        &["junk.safetensors", "not a safetensors file"],
    );
    // safetensors, but not qnn's
    let plain = dir.join("plain.safetensors");
    let t = [Tensor::new("x", vec![2], vec![1.0, 2.0])];
    std::fs::write(
        &plain,
        checkpoint::to_bytes(&t, Default::default()).unwrap(),
    )
    .unwrap();
    refused(
        &["export", plain.to_str().unwrap(), "--out", never],
        &["plain.safetensors", "not a qnn model"],
    );
    refused(
        &["export", m, "--format", "tflite", "--out", never],
        &["tflite", "onnx or qonnx"],
    );
    refused(&["export", m, "--out", m], &["that is the model itself"]);
    assert!(!out.exists(), "a refused export left {never}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("never") || n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "partial files: {leftovers:?}");
    assert_eq!(
        std::fs::read(&model).unwrap(),
        bytes,
        "the model was changed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The library refuses a model whose tensors do not fit its network (one missing, one of the
/// wrong shape), naming the tensor, rather than writing a graph that reads a missing weight.
#[test]
fn a_model_missing_a_tensor_is_refused() {
    let (mut tensors, meta) = fresh(seed(true, 4, Nonlinearity::Relu, false));
    tensors.retain(|t| t.name != "bn1.mean");
    let e = export::export(&tensors, &meta, Format::Onnx)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bn1.mean"), "{e}");
    let bytes = checkpoint::model_to_bytes(&tensors, &meta).unwrap();
    let e = export::export_model_bytes(&bytes, "m.safetensors", Format::Qonnx)
        .unwrap_err()
        .to_string();
    assert!(e.contains("m.safetensors") && e.contains("bn1.mean"), "{e}");
    // a weight of the wrong shape
    let (mut tensors, meta) = fresh(seed(true, 4, Nonlinearity::Relu, false));
    let w = tensors
        .iter_mut()
        .find(|t| t.name == "dense.weight")
        .unwrap();
    w.shape.reverse();
    let e = export::export(&tensors, &meta, Format::Onnx)
        .unwrap_err()
        .to_string();
    assert!(e.contains("dense.weight"), "{e}");
}
