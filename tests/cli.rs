//! The `qnn` program as a user meets it: refused flags, bad files (each a clear message and a
//! non-zero exit, never a panic), and the saved-model round trips (-ft, --init, --resume, eval).

mod common;

use std::path::Path;

use common::cli::*;

#[test]
fn seed_combinations_and_impossible_flags_are_refused() {
    refused(&["train", "-nl", "relu", "-nb", "1"], &["relu", "-nb 1"]);
    refused(&["train", "-nl", "relu", "-nb", "0"], &["relu"]);
    refused(
        &["train", "-nl", "hardtanh", "-nb", "0", "-sym", "0"],
        &["-sym 1"],
    );
    refused(&["train", "-nb", "17"], &["16"]);
    refused(&["train", "-nfa", "0"], &["0 filters"]);
    refused(&["train", "-ne", "0"], &["epoch"]);
    refused(&["train", "--batch-size", "100000"], &["--batch-size"]);
    refused(&["train", "--valid", "9000"], &["no training data"]);
    refused(
        &["train", "-ds", "imagenet"],
        &["MNIST, CIFAR-10, mnist-mini or folder"],
    );
    refused(&["train", "-nl", "sigmoid"], &["relu or hardtanh"]);
    refused(&["train", "-lr", "0"], &["learning rate"]);
}

/// `--crop-pad 4` trains on mnist-mini (and says so); a padding the images cannot take — their
/// side or more, or above 15 — is refused naming the flag, exit 1, before anything trains.
#[test]
fn crop_pad_trains_and_impossible_pads_are_refused() {
    let out = tmp("crop-pad");
    let o = qnn(&[
        "train",
        "--crop-pad",
        "4",
        "-nfa",
        "4",
        "-nfb",
        "4",
        "-nfc",
        "8",
        "--device",
        "cpu",
        "-ne",
        "1",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("random crops of ±4 pixels"), "{t}");
    let j = json_line(&o);
    // ten classes: chance is 90 % wrong; one epoch of a tiny network learns far better
    let err = j["test_error"].as_f64().unwrap();
    assert!(err < 60.0, "test error {err}%\n{t}");
    refused(
        &["train", "--crop-pad", "16"],
        &["--crop-pad", "crop padding 16", "at most 15"],
    );
    refused(
        &["train", "--crop-pad", "28"],
        &["--crop-pad", "at most 15"],
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn missing_data_folder_is_a_clear_error() {
    refused(
        &["train", "-ds", "MNIST", "--data-dir", "/nonexistent/qnn"],
        &["does not exist", "qnn download mnist"],
    );
    refused(
        &["train", "-ds", "CIFAR-10", "--data-dir", "/nonexistent/qnn"],
        &["does not exist"],
    );
}

#[test]
fn malformed_mnist_files_are_refused() {
    let d = tmp("badidx");
    write_mnist(&d, 40);
    let args = [
        "train",
        "-ds",
        "MNIST",
        "--data-dir",
        d.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    let img = d.join("train-images-idx3-ubyte");
    let good = std::fs::read(&img).unwrap();
    std::fs::write(&img, &good[..good.len() - 100]).unwrap();
    refused(&args, &["truncated"]);
    let mut wrong = good.clone();
    wrong[3] = 0x01;
    std::fs::write(&img, &wrong).unwrap();
    refused(&args, &["magic"]);
    std::fs::write(&img, &good[..10]).unwrap();
    refused(&args, &["truncated IDX image file"]);
    std::fs::write(&img, &good).unwrap();
    // counts that disagree
    let lab = d.join("train-labels-idx1-ubyte");
    std::fs::write(&lab, idx_labels(&[1, 2, 3])).unwrap();
    refused(&args, &["40 images", "3 labels"]);
    // a label of 10
    let mut labels = vec![1u8; 40];
    labels[7] = 10;
    std::fs::write(&lab, idx_labels(&labels)).unwrap();
    refused(&args, &["label 7 is 10"]);
    // a corrupt .gz in place of a raw file
    std::fs::remove_file(&lab).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte.gz"), b"not gzip at all").unwrap();
    refused(&args, &["gzip"]);
}

#[test]
fn malformed_cifar_files_are_refused() {
    let d = tmp("badcifar");
    let rec = |label: u8| {
        let mut r = vec![label];
        r.extend(vec![7u8; 3072]);
        r
    };
    for i in 1..=5 {
        std::fs::write(
            d.join(format!("data_batch_{i}.bin")),
            [rec(1), rec(2)].concat(),
        )
        .unwrap();
    }
    let mut test = [rec(3), rec(4)].concat();
    test.pop();
    std::fs::write(d.join("test_batch.bin"), &test).unwrap();
    refused(
        &["train", "-ds", "cifar10", "--data-dir", d.to_str().unwrap()],
        &["test_batch.bin", "3073"],
    );
    std::fs::write(d.join("test_batch.bin"), [rec(3), rec(12)].concat()).unwrap();
    refused(
        &[
            "train",
            "-ds",
            "CIFAR-10",
            "--data-dir",
            d.to_str().unwrap(),
        ],
        &["label 12"],
    );
}

#[test]
fn bad_model_files_are_refused() {
    let d = tmp("badmodel");
    let f = d.join("m.safetensors");
    std::fs::write(&f, b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap();
    refused(
        &["eval", "--model", f.to_str().unwrap(), "--device", "cpu"],
        &["safetensors"],
    );
    refused(&["info", f.to_str().unwrap()], &["safetensors"]);
    // a valid safetensors file that is not ours
    let foreign = qnn::checkpoint::to_bytes(
        &[qnn::model::Tensor::new("w", vec![2], vec![1.0, 2.0])],
        Default::default(),
    )
    .unwrap();
    std::fs::write(&f, foreign).unwrap();
    refused(&["info", f.to_str().unwrap()], &["not a qnn model"]);
    refused(
        &["eval", "--model", "/nonexistent.safetensors"],
        &["/nonexistent.safetensors"],
    );
    // broken .npz
    let npz = d.join("MNIST_relu_0_quantized_1_4_1_4_1_8_4bits.npz");
    std::fs::write(&npz, b"PK\x03\x04 broken").unwrap();
    refused(&["import-npz", npz.to_str().unwrap()], &["npz"]);
    let odd = d.join("whatever.npz");
    std::fs::write(&odd, b"").unwrap();
    refused(
        &["import-npz", odd.to_str().unwrap()],
        &["not a seed model name"],
    );
}

#[test]
fn save_load_eval_finetune_init_resume() {
    let data = tmp("rt-data");
    write_mnist(&data, 600);
    let out = tmp("rt-out");
    let o = train_small(&data, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let j = json_line(&o);
    let model = j["model"].as_str().unwrap().to_string();
    assert!(
        model.ends_with("MNIST_relu_0_quantized_1_4_1_4_1_8_4bits.safetensors"),
        "{model}"
    );
    let name = model.trim_end_matches(".safetensors");
    for ext in [".metrics.jsonl", ".png", ".state.safetensors"] {
        assert!(
            Path::new(&format!("{name}{ext}")).is_file(),
            "{name}{ext} missing"
        );
    }
    let metrics = std::fs::read_to_string(format!("{name}.metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
    let first: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    for key in [
        "epoch",
        "lr",
        "train_loss",
        "val_loss",
        "val_error",
        "test_loss",
        "test_error",
        "best_epoch",
        "seconds",
        "images_per_second",
    ] {
        assert!(first.get(key).is_some(), "metrics lack {key}");
    }

    // save → load → eval: the saved test error is what eval measures, on both backends
    let test_error = j["test_error"].as_f64().unwrap();
    for dev in ["cpu", "gpu"] {
        if dev == "gpu" && common::gpu().is_none() {
            continue;
        }
        let o = qnn(&[
            "eval",
            "--model",
            &model,
            "--data-dir",
            data.to_str().unwrap(),
            "--device",
            dev,
            "--json",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let e = json_line(&o)["test_error"].as_f64().unwrap();
        assert!(
            (e - test_error).abs() < 1e-9 || dev == "gpu" && (e - test_error).abs() <= 2.0,
            "{dev}: eval {e} vs saved {test_error}"
        );
    }
    let o = qnn(&["info", &model]);
    assert!(
        o.status.success() && text(&o).contains("MACs"),
        "{}",
        text(&o)
    );

    // -ft 1 starts from the saved model: its first epoch starts where the model was
    let o = train_small(&data, &out, &["-ft", "1", "-ne", "1"]);
    assert!(
        o.status.success() && text(&o).contains("fine-tuning from"),
        "{}",
        text(&o)
    );
    // --init with another architecture names the first mismatched tensor
    let o = train_small(&data, &tmp("rt-init"), &["--init", &model, "-nfa", "6"]);
    assert!(
        !o.status.success() && text(&o).contains("conv0.weight") && !text(&o).contains("panicked"),
        "{}",
        text(&o)
    );
    let o = train_small(&data, &tmp("rt-init2"), &["--init", &model, "-ne", "1"]);
    assert!(
        o.status.success() && text(&o).contains("initialised from"),
        "{}",
        text(&o)
    );

    // --resume: a 3-epoch run continued from the state of a 2-epoch run equals a straight 3-epoch run
    let straight = tmp("rt-straight");
    let o = train_small(&data, &straight, &["-ne", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    let want = std::fs::read_to_string(
        straight.join("MNIST_relu_0_quantized_1_4_1_4_1_8_4bits.metrics.jsonl"),
    )
    .unwrap();
    let resumed = tmp("rt-resumed");
    let o = train_small(&data, &resumed, &["-ne", "3", "--stop-after", "2"]);
    assert!(
        o.status.success() && text(&o).contains("stopped after epoch 2 of 3"),
        "{}",
        text(&o)
    );
    let o = train_small(&data, &resumed, &["-ne", "3", "--resume"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("resuming after epoch 2 of 3"),
        "{}",
        text(&o)
    );
    let got = std::fs::read_to_string(
        resumed.join("MNIST_relu_0_quantized_1_4_1_4_1_8_4bits.metrics.jsonl"),
    )
    .unwrap();
    let strip = |s: &str| {
        s.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("seconds");
                v.as_object_mut().unwrap().remove("images_per_second");
                v
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip(&got),
        strip(&want),
        "resumed run differs from the straight one"
    );
    let model = |d: &Path| {
        qnn::checkpoint::load_model(&d.join("MNIST_relu_0_quantized_1_4_1_4_1_8_4bits.safetensors"))
            .unwrap()
    };
    assert_eq!(model(&resumed), model(&straight), "resumed model differs");
    for d in [data, out, straight, resumed] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The benchmarks run to the end on the CPU backend: every op of `bench ops` (its buffers sized
/// as the ops need) and `bench train` with the per-op profile.
#[test]
fn benchmarks_run_on_the_cpu() {
    let o = qnn(&["bench", "ops", "--device", "cpu", "--reps", "1"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("squared hinge loss") && !t.contains("panicked"),
        "{t}"
    );
    let o = qnn(&[
        "bench",
        "train",
        "--device",
        "cpu",
        "--seconds",
        "0",
        "--batch-size",
        "4",
        "-nb",
        "0",
        "-nl",
        "hardtanh",
        "-sym",
        "1",
        "-nfa",
        "8",
        "-nfb",
        "8",
        "-nfc",
        "8",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("wall time of each op") && t.contains("conv forward"),
        "{t}"
    );
}
