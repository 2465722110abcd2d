//! A model file's tensors must be exactly those of the network its metadata describes: a file
//! whose metadata was changed (a block of 0 layers over a 3-block model, 10^8 filters over 4),
//! or that carries an extra tensor, is refused by `info`, `eval` and `--init` with the
//! difference named — never half-loaded, never summarized as the network it is not.

mod common;

use std::path::Path;

use common::cli::{qnn, text, tmp};
use qnn::checkpoint::{self, ModelMeta};
use qnn::model::{Model, NetConfig, Tensor};
use qnn::quant::Nonlinearity;

fn config(blocks: [(usize, usize); 3], bits: u32, nl: Nonlinearity, sym: bool) -> NetConfig {
    NetConfig {
        input: [1, 28, 28],
        classes: 10,
        blocks,
        quantized: true,
        bits,
        nonlinearity: nl,
        sym,
        net: None,
    }
}

fn exported(cfg: &NetConfig) -> Vec<Tensor> {
    let mut b = common::cpu();
    let model = Model::new(&mut b, cfg.clone(), 1, 0).unwrap();
    pollster::block_on(model.export(&mut b)).unwrap()
}

fn meta(cfg: NetConfig) -> ModelMeta {
    ModelMeta {
        dataset: "MNIST".into(),
        config: cfg,
        epoch: 1,
        val_error: Some(50.0),
        test_error: Some(50.0),
        class_names: vec![],
    }
}

/// `info`, `eval --model` and `train --init` of `file` are refused (exit 1) naming `needle`.
#[track_caller]
fn refused_everywhere(file: &Path, needle: &str, out: &Path) {
    let f = file.to_str().unwrap();
    for args in [
        vec!["info", f],
        vec!["eval", "--model", f, "--device", "cpu"],
        vec![
            "train",
            "--init",
            f,
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let o = qnn(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
        assert!(
            t.contains(needle),
            "{args:?}: the message should name '{needle}': {t}"
        );
        assert!(!t.contains("panicked"), "{args:?}: {t}");
        // info prints no summary of the network the metadata claims
        assert!(args[0] != "info" || !t.contains("MACs"), "{args:?}: {t}");
    }
}

/// The names and shapes a configuration promises are the ones the model saves, for networks of
/// every kind (an empty block, binary, float, wide).
#[test]
fn tensor_shapes_are_what_a_model_exports() {
    for cfg in [
        config([(1, 4), (1, 4), (1, 8)], 4, Nonlinearity::Relu, false),
        config([(2, 3), (0, 5), (1, 6)], 0, Nonlinearity::Hardtanh, true),
        config([(0, 1), (0, 1), (0, 1)], 2, Nonlinearity::Relu, false),
        NetConfig {
            quantized: false,
            ..config([(1, 7), (2, 9), (1, 5)], 8, Nonlinearity::Hardtanh, false)
        },
    ] {
        let got: Vec<(String, Vec<usize>)> = exported(&cfg)
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect();
        assert_eq!(got, cfg.tensor_shapes(), "{cfg:?}");
    }
}

#[test]
fn tensors_that_disagree_with_the_metadata_are_refused_with_the_difference_named() {
    let d = tmp("model-files");
    let out = d.join("out");
    let real = config([(1, 4), (1, 4), (1, 8)], 4, Nonlinearity::Relu, false);
    let tensors = exported(&real);

    // block C said to have 0 layers: conv2.* and bn2.* are not in that network
    let fewer = config([(1, 4), (1, 4), (0, 8)], 4, Nonlinearity::Relu, false);
    let f = d.join("fewer.safetensors");
    checkpoint::save_model(&f, &tensors, &meta(fewer)).unwrap();
    refused_everywhere(&f, "bn2.beta [8] is not in the network", &out);
    refused_everywhere(
        &f,
        "dense.weight is [10, 72] where the network has [10, 36]",
        &out,
    );

    // an extra tensor nothing uses
    let mut extra = tensors.clone();
    extra.push(Tensor::new("unused", vec![2], vec![0.0, 1.0]));
    let f = d.join("extra.safetensors");
    checkpoint::save_model(&f, &extra, &meta(real.clone())).unwrap();
    refused_everywhere(&f, "unused [2] is not in the network", &out);

    // 10^8 filters claimed over 4-filter tensors: refused from the shapes, nothing allocated
    let claimed = config(
        [(1, 100_000_000), (1, 4), (1, 8)],
        4,
        Nonlinearity::Relu,
        false,
    );
    let f = d.join("claimed.safetensors");
    checkpoint::save_model(&f, &tensors, &meta(claimed)).unwrap();
    refused_everywhere(
        &f,
        "conv0.weight is [4, 1, 3, 3] where the network has [100000000, 1, 3, 3]",
        &out,
    );

    // a missing tensor
    let f = d.join("missing.safetensors");
    checkpoint::save_model(&f, &tensors[1..], &meta(real.clone())).unwrap();
    refused_everywhere(&f, "no conv0.weight [4, 1, 3, 3]", &out);

    // the file as saved loads
    let f = d.join("good.safetensors");
    checkpoint::save_model(&f, &tensors, &meta(real)).unwrap();
    let o = qnn(&["info", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&d);
}
