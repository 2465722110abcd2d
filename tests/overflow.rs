//! Infinities and overflow are refused, never reported as numbers: energy constants whose
//! results are not finite numbers (1e308 pJ, a parallelism of 1e-320), networks whose counts
//! overflow 64 bits (on the command line and in a model file's metadata), and a sweep collected
//! with such a profile — refused at once with the constant or the layer named.

mod common;

use common::cli::{qnn_bounded, text, tmp};
use qnn::checkpoint::{self, ModelMeta};
use qnn::model::NetConfig;
use qnn::quant::Nonlinearity;

/// Exit code 1, each of `needles` in the message, no infinity or NaN printed as a result.
#[track_caller]
fn refused(args: &[&str], needles: &[&str]) {
    let o = qnn_bounded(args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
    for n in needles {
        assert!(t.contains(n), "{args:?}: the message should say '{n}': {t}");
    }
    for bad in ["inf µJ", "NaN", "\"total_uj\": null", "panicked"] {
        assert!(!t.contains(bad), "{args:?}: {t}");
    }
}

/// The built-in profile with one constant changed.
fn profile(dir: &std::path::Path, field: &str, value: f64) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/energy/horowitz-45nm.json"
    ))
    .unwrap();
    let mut p: serde_json::Value = serde_json::from_str(&text).unwrap();
    p[field]["value"] = serde_json::json!(value);
    let f = dir.join(format!("{field}-{value:e}.json"));
    std::fs::write(&f, p.to_string()).unwrap();
    f.to_str().unwrap().to_string()
}

#[test]
fn energy_constants_whose_results_are_not_finite_are_refused() {
    let d = tmp("overflow-profile");
    let big = profile(&d, "e_main16_pj", 1e308);
    refused(&["energy", "--profile", &big], &["e_main16_pj is 1e308"]);
    refused(
        &["energy", "--profile", &big, "--json"],
        &["e_main16_pj is 1e308"],
    );
    let tiny = profile(&d, "parallelism16", 1e-320);
    refused(
        &["energy", "--profile", &tiny],
        &["parallelism16 is 1e-320"],
    );
    let half = profile(&d, "parallelism16", 0.5);
    refused(&["energy", "--profile", &half], &["parallelism16 is 0.5"]);
    for field in ["e_mac16_pj", "e_local16_pj", "float_bits", "input_bits"] {
        let f = profile(&d, field, 1e300);
        refused(&["energy", "--profile", &f], &[field]);
    }
    // a sweep collected with such a profile ends at once (it used to spin on the infinity)
    let sweep = d.join("sweep");
    std::fs::create_dir_all(sweep.join("points")).unwrap();
    refused(
        &[
            "sweep",
            "--collect",
            sweep.to_str().unwrap(),
            "--profile",
            &big,
        ],
        &["e_main16_pj"],
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn networks_whose_counts_overflow_are_refused_on_the_command_line_and_in_a_model_file() {
    let huge = "4294967296";
    refused(
        &["energy", "-nfa", huge, "-nfb", huge],
        &["conv1 (B)", "too large to count"],
    );
    let d = tmp("overflow-model");
    let out = d.join("out");
    refused(
        &[
            "train",
            "-nfa",
            huge,
            "-nfb",
            huge,
            "--out",
            out.to_str().unwrap(),
        ],
        &["too large to count"],
    );
    // a model file whose metadata claims such blocks: info refuses it, naming the layer
    let config = NetConfig {
        input: [1, 28, 28],
        classes: 10,
        blocks: [(1, 1 << 32), (1, 1 << 32), (1, 8)],
        quantized: true,
        bits: 4,
        nonlinearity: Nonlinearity::Relu,
        sym: false,
        net: None,
    };
    let f = d.join("claims.safetensors");
    let meta = ModelMeta {
        dataset: "MNIST".into(),
        config,
        epoch: 1,
        val_error: None,
        test_error: None,
        class_names: vec![],
    };
    let t = qnn::model::Tensor::new("x", vec![1], vec![0.0]);
    checkpoint::save_model(&f, &[t], &meta).unwrap();
    refused(&["info", f.to_str().unwrap()], &["too large to count"]);
    let _ = std::fs::remove_dir_all(&d);
}
