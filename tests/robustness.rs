//! Trust under bad input and faults, one test per class of defect: non-finite values stop a run
//! (on both backends) and are never saved or loaded; a run never replaces a model it did not
//! produce; interrupted or empty runs do not report success; sizes are refused with numbers
//! instead of aborting; imported models read back; --resume refuses a changed run; small things
//! (a bad --out, gzip bounds, messages without debug text or doubled OS errors).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use common::cli::*;
use common::{cpu, gpu};
use qnn::backend::LossShape;
use qnn::checkpoint::{self, ModelMeta};
use qnn::data::Split;
use qnn::model::{Model, NetConfig, Tensor};
use qnn::quant::Nonlinearity;
use qnn::train::{HeldOut, Optimizer, TrainOptions, Trainer};
use qnn::{Backend, Error};

const NAME: &str = "MNIST_relu_0_quantized_1_4_1_4_1_8_4bits";

fn small_config(nl: Nonlinearity, bits: u32, sym: bool) -> NetConfig {
    NetConfig {
        input: [1, 28, 28],
        classes: 10,
        blocks: [(1, 4), (1, 4), (1, 8)],
        quantized: true,
        bits,
        nonlinearity: nl,
        sym,
        net: None,
    }
}

fn split(n: usize, seed: usize) -> Split {
    let mut s = Split::default();
    for i in 0..n {
        let k = (i + seed) % 10;
        let mut img = [0u8; 784];
        for x in 4..24 {
            img[(2 * k + 4) * 28 + x] = 255;
        }
        s.pixels.extend(img);
        s.labels.push(k as u16);
    }
    s
}

fn trainer<B: Backend>(b: &mut B, cfg: NetConfig) -> Trainer {
    let opts = TrainOptions {
        epochs: 2,
        lr_start: 0.01,
        lr_final: 0.001,
        batch: 10,
        flip: false,
        crop_pad: 0,
        shuffle: true,
        seed: 3,
        optimizer: Optimizer::Adam,
    };
    let model = Model::new(b, cfg, opts.batch, 1).unwrap();
    Trainer::new(
        b,
        model,
        opts,
        (1, 28, 28),
        &split(40, 0),
        &split(20, 1),
        &split(20, 2),
    )
    .unwrap()
}

/// Puts a NaN into element 0 of the named parameter.
fn poison<B: Backend>(b: &mut B, t: &Trainer, name: &str, value: f32) {
    let p = t.model.params.iter().find(|p| p.name == name).unwrap();
    let mut v = pollster::block_on(b.read_f32(p.tensors.value)).unwrap();
    v[0] = value;
    b.write_f32(p.tensors.value, &v);
}

fn epoch_error<B: Backend>(b: &mut B, t: &mut Trainer) -> String {
    let stop = AtomicBool::new(false);
    match pollster::block_on(t.run_epoch(b, &stop, |_| false)) {
        Err(Error::NonFinite(m)) => m,
        Err(e) => panic!("expected a non-finite stop, got: {e}"),
        Ok(r) => panic!("the epoch passed as a success: {r:?}"),
    }
}

/// A NaN in a middle layer's weights (behind a quantized activation, which used to round a NaN
/// to a finite level on the CPU), in a batch-norm scale, or an infinity in the dense layer:
/// the run stops in epoch 1 at step 1 and names the tensor, on both backends.
fn non_finite_values_stop_the_run<B: Backend>(b: &mut B) {
    for (nl, bits, sym) in [
        (Nonlinearity::Relu, 4, false),
        (Nonlinearity::Hardtanh, 0, true),
    ] {
        for (tensor, value) in [
            ("conv1.weight", f32::NAN),
            ("bn0.gamma", f32::NAN),
            ("dense.weight", f32::INFINITY),
        ] {
            let mut t = trainer(b, small_config(nl, bits, sym));
            poison(b, &t, tensor, value);
            let m = epoch_error(b, &mut t);
            assert!(
                m.contains("epoch 1, step 1 of 4") && m.contains("not finite"),
                "{} {tensor}: {m}",
                b.describe()
            );
        }
    }
    // evaluation of a model with a non-finite running statistic is refused, not "loss 0"
    let t = trainer(b, small_config(Nonlinearity::Relu, 4, false));
    let (name, buf) = t.model.running[1].clone();
    let mut v = pollster::block_on(b.read_f32(buf)).unwrap();
    v[0] = f32::NAN;
    b.write_f32(buf, &v);
    match pollster::block_on(t.evaluate(b, HeldOut::Valid)) {
        Err(Error::NonFinite(m)) => assert!(m.contains(&name), "{m}"),
        other => panic!("evaluation with NaN statistics: {other:?}"),
    }
}

#[test]
fn non_finite_values_stop_the_run_on_cpu() {
    non_finite_values_stop_the_run(&mut cpu());
}

#[test]
fn non_finite_values_stop_the_run_on_gpu() {
    let Some(mut g) = gpu() else { return };
    non_finite_values_stop_the_run(&mut g);
}

#[test]
fn settings_that_cannot_be_right_are_refused_up_front() {
    for (args, needle) in [
        (
            vec!["--optimizer", "sgd", "--momentum", "nan"],
            "--momentum",
        ),
        (vec!["--optimizer", "sgd", "--momentum", "1"], "[0, 1)"),
        (vec!["--optimizer", "sgd", "--momentum=-0.5"], "[0, 1)"),
        (vec!["-lr", "0.01", "--lr-final", "0.1"], "--lr-final"),
        (vec!["-lr", "nan"], "-lr"),
        (vec!["-lr", "inf"], "-lr"),
        (vec!["--lr-final", "nan"], "--lr-final"),
        (vec!["--stop-after", "0"], "--stop-after 0"),
    ] {
        let mut a = vec!["train", "--device", "cpu", "--out", "/nonexistent/never"];
        a.extend(args);
        refused(&a, &[needle]);
    }
}

/// A model file holding a NaN is refused by every command that reads models.
#[test]
fn models_with_non_finite_values_are_refused() {
    let d = tmp("nanmodel");
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_mnist(&data, 200);
    let cfg = small_config(Nonlinearity::Relu, 4, false);
    let mut b = cpu();
    let model = Model::new(&mut b, cfg.clone(), 1, 0).unwrap();
    let mut tensors = pollster::block_on(model.export(&mut b)).unwrap();
    tensors[0].values[3] = f32::NAN;
    let f = d.join(format!("{NAME}.safetensors"));
    let meta = ModelMeta {
        dataset: "MNIST".into(),
        config: cfg,
        epoch: 1,
        val_error: Some(50.0),
        test_error: Some(50.0),
        class_names: vec![],
    };
    checkpoint::save_model(&f, &tensors, &meta).unwrap();
    let fs = f.to_str().unwrap();
    let ds = data.to_str().unwrap();
    refused(&["info", fs], &["NaN or infinite", "conv0.weight"]);
    refused(
        &["eval", "--model", fs, "--data-dir", ds, "--device", "cpu"],
        &["NaN or infinite"],
    );
    let o = train_small(&data, &d.join("o"), &["--init", fs]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("NaN or infinite"), "{}", text(&o));
}

#[test]
fn a_new_run_never_replaces_a_model_it_did_not_produce() {
    let data = tmp("ow-data");
    write_mnist(&data, 300);
    let out = tmp("ow-out");
    let model = out.join(format!("{NAME}.safetensors"));
    let o = train_small(&data, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(&model).unwrap();

    // the same command again: refused, naming the ways forward; the model is untouched
    let o = train_small(&data, &out, &["-ne", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    for n in ["already exists", "--resume", "--overwrite", "-ft 1"] {
        assert!(text(&o).contains(n), "lacks {n}: {}", text(&o));
    }
    // --init into the same folder is a new run too
    let o = train_small(&data, &out, &["--init", model.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read(&model).unwrap(), before);

    // a fine-tuning run that ends worse (a learning rate that wrecks the net) keeps the model
    let o = train_small(
        &data,
        &out,
        &[
            "-ft",
            "1",
            "-ne",
            "1",
            "-lr",
            "50",
            "--lr-final",
            "50",
            "--optimizer",
            "sgd",
            "--momentum",
            "0",
        ],
    );
    assert!(
        !text(&o).contains("panicked") && matches!(o.status.code(), Some(0 | 1)),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "a worse fine-tune replaced the model: {}",
        text(&o)
    );

    // a second run into the same files while one holds them is refused
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(out.join(format!(".{NAME}.lock")))
        .unwrap();
    lock.try_lock().unwrap();
    let o = train_small(&data, &out, &["--overwrite"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("another qnn run"), "{}", text(&o));
    drop(lock);

    // --overwrite replaces it on purpose
    let o = train_small(&data, &out, &["--overwrite", "-ne", "1", "--seed", "9"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(std::fs::read(&model).unwrap(), before);
    for d in [data, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Sends SIGINT to a training run once it has printed a line containing `after`; returns the
/// exit code and the whole output.
fn interrupt_after(args: &[&str], after: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qnn"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains(after) {
            break;
        }
    }
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    for line in lines {
        out.push_str(&line.unwrap());
        out.push('\n');
    }
    let o = child.wait_with_output().unwrap();
    out.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.code(), out)
}

#[test]
fn interrupted_and_empty_runs_do_not_report_success() {
    let out = tmp("int-out");
    let o = out.to_str().unwrap();
    // mnist-mini on the CPU: an epoch takes seconds, so the signal lands inside epoch 1
    let args = [
        "train", "--device", "cpu", "--out", o, "-ne", "3", "--json", "-nfa", "8", "-nfb", "8",
        "-nfc", "8",
    ];
    let (code, text) = interrupt_after(&args, "total:");
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("no epoch finished"), "{text}");
    assert!(!text.contains("test accuracy"), "{text}");
    let json: serde_json::Value = serde_json::from_str(
        text.lines()
            .find(|l| l.starts_with('{'))
            .expect("a JSON line"),
    )
    .unwrap();
    assert_eq!(json["interrupted"], true);
    assert!(json["model"].is_null(), "{json}");
    assert!(!out
        .join("mnist-mini_relu_0_quantized_1_8_1_8_1_8_4bits.safetensors")
        .exists());

    // interrupted after an epoch: the message says what is saved, and it is there
    let (code, text) = interrupt_after(&[&args[..], &["--overwrite"]].concat(), "Epoch 1 of 3");
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("epochs 1–1 are saved"), "{text}");
    assert!(out
        .join("mnist-mini_relu_0_quantized_1_8_1_8_1_8_4bits.safetensors")
        .exists());

    // an empty test set is refused
    let data = tmp("int-empty");
    write_mnist(&data, 40);
    std::fs::write(data.join("t10k-images-idx3-ubyte"), idx_images(0, &[])).unwrap();
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), idx_labels(&[])).unwrap();
    let o = train_small(&data, &tmp("int-empty-out"), &["--valid", "10"]);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    assert!(text_of(&o).contains("test set is empty"), "{}", text_of(&o));
    for d in [out, data] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn text_of(o: &std::process::Output) -> String {
    text(o)
}

#[test]
fn sizes_are_refused_with_numbers_not_aborts() {
    // 100,000 filters: terabytes of activations on the CPU
    refused(
        &[
            "train",
            "-nfa",
            "100000",
            "--device",
            "cpu",
            "--out",
            &tmp("sz").display().to_string(),
        ],
        &["needs", "available", "fewer filters"],
    );
    // one activation buffer larger than lavapipe's 128 MiB binding limit: refused, no panic,
    // with the batch that fits
    if gpu().is_some() {
        let o = qnn(&[
            "train",
            "-nfa",
            "200",
            "--batch-size",
            "256",
            "--device",
            "gpu",
            "--out",
            &tmp("sz2").display().to_string(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            text(&o).contains("per buffer") && text(&o).contains("a batch of at most"),
            "{}",
            text(&o)
        );
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }

    // the library agrees with what it allocates: the plan of a small net fits, a huge one not
    let cfg = small_config(Nonlinearity::Relu, 4, false);
    let limits = qnn::backend::DeviceLimits {
        max_binding_bytes: Some(1 << 20),
        max_buffer_bytes: Some(1 << 30),
        memory_bytes: None,
    };
    let fit = cfg.largest_batch(&limits, 10_000);
    assert!(fit > 0 && limits.fits(&cfg.memory_plan(fit)));
    assert!(!limits.fits(&cfg.memory_plan(fit + 1)));
    // conv0 activations: batch × 4 × 28 × 28 floats is the largest buffer
    assert_eq!(cfg.memory_plan(7).largest_bytes, 7 * 4 * 28 * 28 * 4);

    // evaluation splits: a batch larger than the data, and info builds no model
    let d = tmp("sz-eval");
    write_mnist(&d, 120);
    let out = d.join("o");
    let o = train_small(&d, &out, &["-ne", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let model = out.join(format!("{NAME}.safetensors"));
    let o = qnn(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data-dir",
        d.to_str().unwrap(),
        "--batch-size",
        "100000000",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // a model file that claims a gigantic network over one small tensor: refused from the names
    // and shapes alone, nothing of that size allocated
    let mut huge = small_config(Nonlinearity::Relu, 4, false);
    huge.blocks = [(8, 100_000), (8, 100_000), (8, 100_000)];
    let f = d.join("huge.safetensors");
    let meta = ModelMeta {
        dataset: "MNIST".into(),
        config: huge,
        epoch: 1,
        val_error: None,
        test_error: None,
        class_names: vec![],
    };
    checkpoint::save_model(&f, &[Tensor::new("x", vec![1], vec![0.0])], &meta).unwrap();
    let o = qnn(&["info", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no conv0.weight [100000, 1, 3, 3]") && !text(&o).contains("MACs"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(d);
}

/// Writes an .npz of `arrays` (float32), as numpy's savez does.
fn write_npz(path: &Path, arrays: &[(Vec<usize>, Vec<f32>)]) {
    use npyz::WriterBuilder;
    let mut npz = npyz::npz::NpzWriter::create(path).unwrap();
    for (i, (shape, data)) in arrays.iter().enumerate() {
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut w = npz
            .array::<f32>(&format!("arr_{i}"), Default::default())
            .unwrap()
            .default_dtype()
            .shape(&shape)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
    }
}

#[test]
fn imported_models_read_back_and_the_source_is_safe() {
    let d = tmp("npz");
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_mnist(&data, 200);
    let cfg = small_config(Nonlinearity::Relu, 4, false);
    // the seed's order per conv layer: W (flipped), b, beta, gamma, mean, inv_std; then dense
    let mut arrays = Vec::new();
    for l in cfg.conv_layers() {
        arrays.push((vec![l.cout, l.cin, 3, 3], vec![0.25; l.cout * l.cin * 9]));
        for v in [0.0, 0.0, 1.0, 0.0, 1.0] {
            arrays.push((vec![l.cout], vec![v; l.cout]));
        }
    }
    arrays.push((vec![cfg.features(), 10], vec![0.01; cfg.features() * 10]));
    for v in [0.0, 0.0, 1.0, 0.0, 1.0] {
        arrays.push((vec![10], vec![v; 10]));
    }
    let npz = d.join(format!("{NAME}.npz"));
    write_npz(&npz, &arrays);
    let npz_bytes = std::fs::read(&npz).unwrap();
    let n = npz.to_str().unwrap();

    // --out equal to the input is refused and the .npz survives
    refused(&["import-npz", n, "--out", n], &["that is the input"]);
    assert_eq!(std::fs::read(&npz).unwrap(), npz_bytes);
    // import → info → eval → --init
    let o = qnn(&["import-npz", n]);
    assert!(o.status.success(), "{}", text(&o));
    let st = d.join(format!("{NAME}.safetensors"));
    let s = st.to_str().unwrap();
    let o = qnn(&["info", s]);
    assert!(
        o.status.success() && text(&o).contains("unknown"),
        "{}",
        text(&o)
    );
    let o = qnn(&[
        "eval",
        "--model",
        s,
        "--data-dir",
        data.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = train_small(&data, &d.join("o"), &["--init", s, "-ne", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    // importing again does not overwrite silently
    refused(&["import-npz", n], &["already exists", "--overwrite"]);
    // a .npz handed to info says what to do with it
    refused(&["info", n], &["import-npz"]);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn resume_refuses_a_changed_run() {
    let data = tmp("rs-data");
    write_mnist(&data, 300);
    let out = tmp("rs-out");
    let o = train_small(&data, &out, &["-ne", "3", "--stop-after", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    for (extra, needles) in [
        (
            vec!["--valid", "50"],
            vec!["validation images", "--valid", "saved 100, now 50"],
        ),
        (vec!["-ne", "5"], vec!["epochs", "-ne"]),
        (vec!["--seed", "7"], vec!["seed", "--seed"]),
        (vec!["--batch-size", "16"], vec!["batch size"]),
    ] {
        let mut a = vec!["--resume"];
        a.extend(extra.iter());
        // train_small's own -ne 2 comes first; later flags win
        let o = train_small(&data, &out, &a);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        for n in needles {
            assert!(text(&o).contains(n), "lacks {n}: {}", text(&o));
        }
        assert!(
            !text(&o).contains("TrainOptions"),
            "debug text: {}",
            text(&o)
        );
    }
    // other data files
    let other = tmp("rs-data2");
    write_mnist(&other, 310);
    let o = train_small(&other, &out, &["-ne", "3", "--resume"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("data files differ"), "{}", text(&o));
    // the same settings resume
    let o = train_small(&data, &out, &["-ne", "3", "--resume"]);
    assert!(o.status.success(), "{}", text(&o));
    for d in [data, out, other] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn small_things_bad_out_gzip_bounds_and_messages() {
    // an --out that cannot be written is found before any training
    let file = tmp("small").join("a-file");
    std::fs::write(&file, b"x").unwrap();
    refused(
        &["train", "--out", file.to_str().unwrap(), "--device", "cpu"],
        &["--out", "cannot"],
    );

    // multi-member gzip (as `cat a.gz b.gz` makes) is accepted
    let d = tmp("gz");
    write_mnist(&d, 40);
    let raw = std::fs::read(d.join("train-images-idx3-ubyte")).unwrap();
    std::fs::remove_file(d.join("train-images-idx3-ubyte")).unwrap();
    let half = raw.len() / 2;
    std::fs::write(
        d.join("train-images-idx3-ubyte.gz"),
        [gz(&raw[..half]), gz(&raw[half..])].concat(),
    )
    .unwrap();
    let o = train_small(
        &d,
        &d.join("o"),
        &["--valid", "10", "-ne", "1", "--batch-size", "10"],
    );
    assert!(o.status.success(), "{}", text(&o));
    // a stream longer than its header declares (here by 200 MB of zeros) is refused without
    // inflating it whole
    let mut long = raw.clone();
    long.extend(vec![0u8; 200 << 20]);
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), gz(&long)).unwrap();
    refused(
        &[
            "train",
            "-ds",
            "MNIST",
            "--data-dir",
            d.to_str().unwrap(),
            "--device",
            "cpu",
            "--out",
            d.join("o2").to_str().unwrap(),
        ],
        &["the header says 40 images"],
    );

    // no Mesa warning about XDG_RUNTIME_DIR before our output when the variable is unset
    if gpu().is_some() {
        let o = Command::new(env!("CARGO_BIN_EXE_qnn"))
            .args([
                "bench",
                "train",
                "--device",
                "gpu",
                "--seconds",
                "0",
                "--batch-size",
                "2",
            ])
            .args(["-nfa", "2", "-nfb", "2", "-nfc", "2"])
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(!text(&o).contains("XDG_RUNTIME_DIR"), "{}", text(&o));
    }

    // an OS error is said once
    let o = qnn(&["eval", "--model", "/nonexistent/m.safetensors"]);
    assert_eq!(text(&o).matches("No such file").count(), 1, "{}", text(&o));
    // an empty training file is not "use --valid below 0"
    let e = tmp("empty-train");
    write_mnist(&e, 40);
    std::fs::write(e.join("train-images-idx3-ubyte"), idx_images(0, &[])).unwrap();
    std::fs::write(e.join("train-labels-idx1-ubyte"), idx_labels(&[])).unwrap();
    let o = train_small(&e, &e.join("o"), &[]);
    assert!(
        text(&o).contains("holds no images") && !text(&o).contains("below 0"),
        "{}",
        text(&o)
    );
    // a model file whose configuration is impossible: no flag the person never typed
    let mut bad = small_config(Nonlinearity::Relu, 4, false);
    bad.bits = 99;
    let f = e.join("bad.safetensors");
    let meta = ModelMeta {
        dataset: "MNIST".into(),
        config: bad,
        epoch: 1,
        val_error: None,
        test_error: None,
        class_names: vec![],
    };
    checkpoint::save_model(&f, &[Tensor::new("x", vec![1], vec![0.0])], &meta).unwrap();
    let o = qnn(&["info", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("99 bits") && !text(&o).contains("-nb"),
        "{}",
        text(&o)
    );
    for x in [d, e] {
        let _ = std::fs::remove_dir_all(x);
    }
}

/// The element ops where a NaN used to become a finite value: quantized activations (rounded to
/// a level), weight quantizers, and the loss (max(0, NaN) = 0). On both backends a non-finite
/// input now gives NaN out, and the loss counts the bad rows and the first bad call.
fn non_finite_element_ops<B: Backend>(b: &mut B) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    use common::{read, upload, upload_u32, zeros};
    use qnn::quant::{ActQuant, WeightQuant};
    let x = [0.3, f32::NAN, -0.7, f32::INFINITY, f32::NEG_INFINITY, 2.0];
    let xb = upload(b, &x);
    let mut acts = Vec::new();
    for a in [
        ActQuant::Quantized {
            nl: Nonlinearity::Relu,
            bits: 4,
            sym: false,
        },
        ActQuant::Quantized {
            nl: Nonlinearity::Hardtanh,
            bits: 0,
            sym: true,
        },
        ActQuant::Float(Nonlinearity::Relu),
        ActQuant::Float(Nonlinearity::Hardtanh),
    ] {
        let y = zeros(b, x.len());
        b.act_forward(a, x.len(), xb, y);
        acts.extend(read(b, y));
    }
    let mut wq = Vec::new();
    for q in [
        WeightQuant::Binary,
        WeightQuant::Bits {
            bits: 2,
            sym: false,
        },
    ] {
        let (m, out) = (zeros(b, 1), zeros(b, x.len()));
        b.weight_quantize(q, xb, m, out);
        wq.extend(read(b, out));
    }
    // 3 rows of scores; the second call has a NaN in row 1
    let mut y = vec![0.1f32; 30];
    let (yb, lb, acc) = (upload(b, &y), upload_u32(b, &[1, 2, 3]), zeros(b, 5));
    let s = LossShape {
        batch: 3,
        classes: 10,
    };
    b.loss(s, yb, lb, None, acc);
    y[13] = f32::NAN;
    let yb2 = upload(b, &y);
    b.loss(s, yb2, lb, None, acc);
    b.loss(s, yb, lb, None, acc);
    (acts, wq, read(b, acc))
}

#[test]
fn non_finite_inputs_stay_non_finite_through_element_ops() {
    let Some(mut g) = gpu() else { return };
    let (ca, cw, cl) = non_finite_element_ops(&mut cpu());
    let (ga, gw, gl) = non_finite_element_ops(&mut g);
    for (name, c, g) in [("activations", &ca, &ga), ("weights", &cw, &gw)] {
        for (i, (cv, gv)) in c.iter().zip(g.iter()).enumerate() {
            let input_finite = [true, false, true, false, false, true][i % 6];
            assert_eq!(cv.is_finite(), input_finite, "cpu {name} {i}: {cv}");
            assert_eq!(gv.is_finite(), input_finite, "gpu {name} {i}: {gv}");
            // (weights: the scale comes from max|W|, itself not finite here, so only the
            // pattern is compared)
            if input_finite && name == "activations" {
                assert_eq!(cv, gv, "{name} {i}");
            }
        }
    }
    for acc in [&cl, &gl] {
        // [loss, wrong, calls, first bad call, bad rows]
        assert_eq!(&acc[2..], &[3.0, 2.0, 1.0], "{acc:?}");
        let s = qnn::backend::LossAcc::from_slice(acc);
        assert!(!s.is_finite());
    }
}
