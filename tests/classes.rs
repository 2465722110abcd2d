//! Networks and data of any class count, 2 to 1,000: the configuration's range and its saved
//! form (10 classes written as before), model files naming their classes, a 3-class data set
//! trained through `Run` (and refused against a network of another count), the run identity's
//! data hash unchanged for byte-sized labels, a 1,000-class step on the GPU against the CPU, and
//! `qnn info` / `qnn eval` on a model of 3 classes.

mod common;

use std::sync::atomic::AtomicBool;

use common::cli::{qnn, refused, text, tmp};
use common::{assert_repeats, assert_steps_match, cpu, gpu, one_train_step};
use qnn::backend::{DEFAULT_CLASSES, MAX_CLASSES, MIN_CLASSES};
use qnn::checkpoint::{self, ModelMeta};
use qnn::data::{Dataset, DatasetKind, Split};
use qnn::model::{Layer, LayerQuant, Model, NetConfig, NetDef};
use qnn::run::{EpochOutcome, Run, RunSettings, Start};
use qnn::train::RunIdentity;
use qnn::{Backend, Error};

/// The default network on MNIST's shape scoring `classes` classes, small.
fn net(classes: usize) -> NetConfig {
    let mut n = RunSettings::new(DatasetKind::Mnist).net;
    n.blocks = [(1, 4), (1, 4), (1, 8)];
    n.classes = classes;
    n
}

/// `classes` classes of MNIST-shaped images: class k is a bright bar at row 2k + 4 (k < 10) or
/// a column (k ≥ 10); the last image of the training file has label `last` where given.
fn bars(classes: usize, train: usize, test: usize, names: &[&str]) -> Dataset {
    let make = |n: usize, offset: usize| {
        let mut s = Split::default();
        for i in 0..n {
            let k = (i * 7 + offset) % classes;
            let mut img = [0u8; 784];
            for x in 4..24 {
                let at = if k < 10 {
                    (2 * k + 4) * 28 + x
                } else {
                    x * 28 + (k - 10) % 24 + 2
                };
                img[at] = 255;
            }
            s.pixels.extend(img);
            s.labels.push(k as u16);
        }
        s
    };
    Dataset {
        kind: DatasetKind::Mnist,
        chw: (1, 28, 28),
        class_names: names.iter().map(|s| s.to_string()).collect(),
        train: make(train, 0),
        test: make(test, 3),
    }
}

fn settings(classes: usize) -> RunSettings {
    let mut s = RunSettings::new(DatasetKind::Mnist);
    s.net = net(classes);
    s.options.epochs = 3;
    s.options.batch = 20;
    s.options.lr_start = 0.01;
    s.options.lr_final = 0.003;
    s.valid = Some(30);
    s
}

#[test]
fn the_class_count_is_2_to_1000() {
    assert_eq!((MIN_CLASSES, DEFAULT_CLASSES, MAX_CLASSES), (2, 10, 1000));
    for bad in [0, 1, 1001, 5000] {
        let e = net(bad).validate().unwrap_err().to_string();
        assert!(
            e.contains(&format!("{bad} classes")) && e.contains("2 to 1000"),
            "{bad}: {e}"
        );
    }
    for good in [2, 3, 12, 1000] {
        net(good).validate().unwrap();
        let shapes = net(good).tensor_shapes();
        assert!(
            shapes.contains(&("dense.weight".into(), vec![good, 8 * 3 * 3])),
            "{shapes:?}"
        );
        assert!(shapes.contains(&("bn_out.mean".into(), vec![good])));
    }
    // a layer list follows the data's classes; an output layer that names another count is refused
    let text =
        "name = \"mlp\"\n[[layer]]\ntype = \"dense\"\nunits = 16\n[[layer]]\ntype = \"dense\"\n";
    let cfg = NetConfig::from_net_text([1, 28, 28], 37, text, "mlp.toml").unwrap();
    assert_eq!(cfg.layers().last().unwrap().output, [37, 1, 1]);
    let fixed = format!("{text}units = 10\n");
    let e = NetConfig::from_net_text([1, 28, 28], 12, &fixed, "mlp.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("10 units") && e.contains("12 classes") && e.contains("mlp.toml"),
        "{e}"
    );
    assert!(NetConfig::from_net_text([1, 28, 28], 1, text, "mlp.toml").is_err());
}

/// Ten classes are not written (a file of before reads and is written unchanged); another count
/// is, and reads back; a configuration without `classes` reads as 10.
#[test]
fn ten_classes_are_the_unwritten_default() {
    let ten = serde_json::to_string(&net(10)).unwrap();
    assert!(!ten.contains("classes"), "{ten}");
    let back: NetConfig = serde_json::from_str(&ten).unwrap();
    assert_eq!(back.classes, 10);
    assert_eq!(back, net(10));
    let twelve = serde_json::to_string(&net(12)).unwrap();
    assert!(twelve.contains("\"classes\":12"), "{twelve}");
    assert_eq!(serde_json::from_str::<NetConfig>(&twelve).unwrap(), net(12));
    // a model's metadata as qnn wrote it before there were class counts
    let old = r#"{"dataset":"MNIST","config":{"input":[1,28,28],"blocks":[[1,4],[1,4],[1,8]],
        "quantized":true,"bits":4,"nonlinearity":"Relu","sym":false},"epoch":1,
        "val_error":null,"test_error":null}"#;
    let meta: ModelMeta = serde_json::from_str(old).unwrap();
    assert_eq!((meta.config.classes, meta.class_names.len()), (10, 0));
    assert_eq!(meta.class_names_or_numbers()[9], "9");
}

fn model_bytes(config: NetConfig, names: &[&str]) -> Result<Vec<u8>, Error> {
    let mut b = cpu();
    let model = Model::new(&mut b, config.clone(), 2, 1).unwrap();
    let tensors = pollster::block_on(model.export(&mut b)).unwrap();
    let meta = ModelMeta {
        dataset: "shapes".into(),
        config,
        epoch: 1,
        val_error: None,
        test_error: None,
        class_names: names.iter().map(|s| s.to_string()).collect(),
    };
    checkpoint::model_to_bytes(&tensors, &meta)
}

#[test]
fn a_model_file_names_its_classes_or_is_refused() {
    let bytes = model_bytes(net(3), &["cat", "dog", "bird"]).unwrap();
    let (tensors, meta) = checkpoint::model_from_bytes(&bytes, "m.safetensors").unwrap();
    assert_eq!(meta.config.classes, 3);
    assert_eq!(meta.class_names, ["cat", "dog", "bird"]);
    let dense = tensors.iter().find(|t| t.name == "dense.weight").unwrap();
    assert_eq!(dense.shape[0], 3);
    // names of another count than the network's classes
    let bad = model_bytes(net(3), &["cat", "dog"]).unwrap();
    let e = checkpoint::model_from_bytes(&bad, "m.safetensors")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.safetensors") && e.contains("names 2 classes") && e.contains("scores 3"),
        "{e}"
    );
    // no names: numbered
    let bytes = model_bytes(net(3), &[]).unwrap();
    let (_, meta) = checkpoint::model_from_bytes(&bytes, "m").unwrap();
    assert_eq!(meta.class_names_or_numbers(), ["0", "1", "2"]);
    // what a file keeps: nothing of MNIST's digits, CIFAR-10's names
    assert!(ModelMeta::saved_class_names(&DatasetKind::Mnist.class_names()).is_empty());
    assert_eq!(
        ModelMeta::saved_class_names(&DatasetKind::Cifar10.class_names())[0],
        "airplane"
    );
}

fn train_three_classes<B: Backend>(b: &mut B) {
    let names = ["bar", "line", "stripe"];
    let data = bars(3, 300, 30, &names);
    let mut run = pollster::block_on(Run::new(b, settings(3), &data, Start::Fresh)).unwrap();
    let stop = AtomicBool::new(false);
    let mut last = None;
    while !run.is_finished() {
        match pollster::block_on(run.next_epoch(b, &stop, |_| true)).unwrap() {
            EpochOutcome::Finished(r) => last = Some(r),
            other => panic!("{other:?}"),
        }
    }
    let r = last.unwrap();
    // three easy classes: far below chance (66.7% error) after three epochs
    assert!(
        r.train_loss.is_finite() && r.val_error < 30.0 && r.test_error < 30.0,
        "{r:?}"
    );
    let (tensors, meta) = checkpoint::model_from_bytes(run.best_model().unwrap(), "best").unwrap();
    assert_eq!(meta.config.classes, 3);
    assert_eq!(meta.class_names, names);
    assert!(tensors
        .iter()
        .any(|t| t.name == "bn_out.gamma" && t.shape == [3]));
    let scores = pollster::block_on(run.predict(b, &data.test.pixels[..5 * 784])).unwrap();
    assert_eq!(scores.len(), 5 * 3);
    let m = pollster::block_on(run.validation_confusion(b, &data)).unwrap();
    assert_eq!((m.classes, m.total()), (3, 30));
    // the state resumes, and the best model starts another 3-class run
    let state = pollster::block_on(run.state_bytes(b)).unwrap();
    let start = Start::Resume {
        state: &state,
        best_model: run.best_model(),
    };
    let resumed = pollster::block_on(Run::new(b, settings(3), &data, start)).unwrap();
    assert!(resumed.is_finished());
    let best = run.best_model().unwrap().to_vec();
    pollster::block_on(Run::new(b, settings(3), &data, Start::Init(&best))).unwrap();
    // … but not a run of another count
    let ten = bars(
        10,
        150,
        30,
        &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    );
    let e = pollster::block_on(Run::new(b, settings(10), &ten, Start::Init(&best)))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("scores 3 classes, this run's 10"), "{e}");
}

#[test]
fn three_classes_train_through_a_run_on_cpu() {
    train_three_classes(&mut cpu());
}

#[test]
fn three_classes_train_through_a_run_on_gpu() {
    let Some(mut g) = gpu() else { return };
    train_three_classes(&mut g);
}

#[test]
fn a_run_refuses_data_of_another_class_count_or_labels_of_no_class() {
    let mut b = cpu();
    let data = bars(3, 150, 30, &["a", "b", "c"]);
    let e = pollster::block_on(Run::new(&mut b, settings(10), &data, Start::Fresh))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("3 classes") && e.contains("scores 10"), "{e}");
    let mut bad = data.clone();
    bad.test.labels[7] = 3;
    let e = pollster::block_on(Run::new(&mut b, settings(3), &bad, Start::Fresh))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("test image 7") && e.contains("label 3") && e.contains("3 classes"),
        "{e}"
    );
    let mut one = data.clone();
    one.class_names.truncate(1);
    one.train.labels.iter_mut().for_each(|l| *l = 0);
    one.test.labels.iter_mut().for_each(|l| *l = 0);
    assert!(one
        .validate()
        .unwrap_err()
        .to_string()
        .contains("1 classes"));
}

/// The MD5 of the old formula (labels a byte each) for data of up to 256 classes, so that the
/// states saved before labels were u16 still resume; two bytes each beyond.
#[test]
fn the_data_hash_of_byte_sized_labels_is_unchanged() {
    use md5::{Digest, Md5};
    let old = |d: &Dataset| {
        let mut h = Md5::default();
        let bytes = |l: &[u16]| l.iter().map(|&v| v as u8).collect::<Vec<u8>>();
        for part in [
            d.train.pixels.clone(),
            bytes(&d.train.labels),
            d.test.pixels.clone(),
            bytes(&d.test.labels),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(&part);
        }
        format!("{:x}", h.finalize())
    };
    let opts = RunSettings::new(DatasetKind::Mnist).options;
    let names: Vec<String> = (0..300).map(|k| k.to_string()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for classes in [10, 256] {
        let d = bars(classes, 300, 20, &refs[..classes]);
        assert_eq!(RunIdentity::new("x", &d, 10, &opts).data_md5, old(&d));
    }
    let d = bars(300, 300, 20, &refs);
    assert_ne!(RunIdentity::new("x", &d, 10, &opts).data_md5, old(&d));
}

/// The most classes: a small network of 1,000 scores takes one training step on the GPU as on
/// the CPU (labels of every range), with the tolerances of the other steps, and repeats.
#[test]
fn a_thousand_classes_step_matches_cpu() {
    let q = LayerQuant {
        w_bits: qnn::model::Bits::Nb(4),
        a_bits: qnn::model::Bits::Nb(4),
        nonlinearity: qnn::quant::Nonlinearity::Relu,
        sym: false,
    };
    let cfg = NetConfig {
        input: [1, 8, 8],
        classes: 1000,
        net: Some(NetDef {
            name: "k1000".into(),
            layers: vec![
                Layer::Conv {
                    filters: 4,
                    kernel: 3,
                    stride: 1,
                    padding: qnn::model::Padding::Same,
                    batch_norm: true,
                    quant: q,
                },
                Layer::MaxPool,
                Layer::Dense {
                    units: None,
                    quant: LayerQuant {
                        w_bits: qnn::model::Bits::Float,
                        ..q
                    },
                },
            ],
            origin: None,
        }),
        ..net(1000)
    };
    cfg.validate().unwrap();
    let want = one_train_step(&mut cpu(), &cfg, 24, 0.01);
    assert!(want.acc[0] > 0.0 && want.acc[0].is_finite());
    let Some(mut g) = gpu() else { return };
    let got = one_train_step(&mut g, &cfg, 24, 0.01);
    assert_steps_match(&cfg, &got, &want, 0.01);
    assert_repeats(&got, &one_train_step(&mut g, &cfg, 24, 0.01));
}

/// `qnn info` names a model's classes; `qnn eval` refuses data of another class count.
#[test]
fn info_names_the_classes_and_eval_refuses_another_count() {
    let d = tmp("classes");
    let file = d.join("three.safetensors");
    std::fs::write(&file, model_bytes(net(3), &["cat", "dog", "bird"]).unwrap()).unwrap();
    let f = file.to_str().unwrap();
    let o = qnn(&["info", f]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("3 classes: cat, dog, bird"),
        "{}",
        text(&o)
    );
    refused(
        &["eval", "--model", f, "-ds", "mnist-mini"],
        &["three.safetensors", "scores 3 classes", "mnist-mini has 10"],
    );
    // a ten-class MNIST model: its digits
    let file = d.join("ten.safetensors");
    std::fs::write(&file, model_bytes(net(10), &[]).unwrap()).unwrap();
    let o = qnn(&["info", file.to_str().unwrap()]);
    assert!(
        text(&o).contains("10 classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
}
