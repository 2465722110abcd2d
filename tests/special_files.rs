//! Files that never end or never open: `/dev/zero` (reading it never ends) and a FIFO without a
//! writer (opening it blocks), given wherever qnn reads a file — a model, an `--init` model, a
//! sweep's grid, an energy profile, an `.npz`, an MNIST or CIFAR-10 file, a sweep point's state —
//! are refused at once, naming the file, or (where qnn only looks for files it recognizes)
//! passed over; never read without a limit, never waited on. Also: a regular file longer than its
//! safetensors header declares is refused before its tensors are read.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{qnn_bounded, text, tmp};
use qnn::checkpoint::{self, ModelMeta};
use qnn::model::{Model, NetConfig};
use qnn::quant::Nonlinearity;

/// The command failed with exit code 1, naming `file` and saying it is no regular file.
#[track_caller]
fn refused_as_special(args: &[&str], file: &Path) {
    let o = qnn_bounded(args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
    assert!(
        t.contains(&file.display().to_string()) && t.contains("not a regular file"),
        "{args:?}: the message should name {} as no regular file: {t}",
        file.display()
    );
    assert!(!t.contains("panicked"), "{args:?}: {t}");
}

/// A FIFO that nobody writes to, in a fresh folder.
fn fifo(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let f = dir.join("fifo");
    let _ = std::fs::remove_file(&f);
    let ok = Command::new("mkfifo").arg(&f).status().unwrap().success();
    assert!(ok, "mkfifo {}", f.display());
    f
}

fn small_config() -> NetConfig {
    NetConfig {
        input: [1, 28, 28],
        classes: 10,
        blocks: [(1, 4), (1, 4), (1, 8)],
        quantized: true,
        bits: 4,
        nonlinearity: Nonlinearity::Relu,
        sym: false,
        net: None,
    }
}

/// A valid model file of the small network at `path`.
fn write_model(path: &Path) {
    let mut b = common::cpu();
    let model = Model::new(&mut b, small_config(), 1, 0).unwrap();
    let tensors = pollster::block_on(model.export(&mut b)).unwrap();
    let meta = ModelMeta {
        dataset: "MNIST".into(),
        config: small_config(),
        epoch: 1,
        val_error: Some(50.0),
        test_error: Some(50.0),
        class_names: vec![],
    };
    checkpoint::save_model(path, &tensors, &meta).unwrap();
}

/// Every command that takes a file refuses /dev/zero and a FIFO at once, naming it.
#[test]
fn devices_and_fifos_given_as_files_are_refused_at_once() {
    let d = tmp("special-files");
    let out = d.join("out");
    let (out, fifo) = (out.to_str().unwrap().to_string(), fifo(&d));
    for f in [Path::new("/dev/zero"), fifo.as_path()] {
        let s = f.to_str().unwrap();
        refused_as_special(&["info", s], f);
        refused_as_special(&["eval", "--model", s, "--device", "cpu"], f);
        refused_as_special(&["train", "--init", s, "--device", "cpu", "--out", &out], f);
        refused_as_special(&["energy", "--profile", s], f);
        refused_as_special(&["sweep", "--grid", s, "--out", &out], f);
        let npz_out = format!("{out}/m.safetensors");
        refused_as_special(&["import-npz", s, "--from-flags", "--out", &npz_out], f);
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A data file linked to /dev/zero is refused by name (MNIST raw and CIFAR-10 batches).
#[test]
fn data_files_linked_to_a_device_are_refused_by_name() {
    let d = tmp("special-data");
    let mnist = d.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    let images = mnist.join("train-images-idx3-ubyte");
    std::os::unix::fs::symlink("/dev/zero", &images).unwrap();
    let out = d.join("out");
    let args = [
        "train",
        "-ds",
        "MNIST",
        "--data-dir",
        mnist.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    refused_as_special(&args, &images);

    let cifar = d.join("cifar");
    std::fs::create_dir_all(&cifar).unwrap();
    std::fs::write(cifar.join("test_batch.bin"), b"").unwrap();
    let batch = cifar.join("data_batch_1.bin");
    std::os::unix::fs::symlink("/dev/zero", &batch).unwrap();
    let args = [
        "train",
        "-ds",
        "CIFAR-10",
        "--data-dir",
        cifar.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    refused_as_special(&args, &batch);
    let _ = std::fs::remove_dir_all(&d);
}

/// `sweep --collect` over a point whose state file links to /dev/zero ends, and reports the
/// point without reading the device.
#[test]
fn collecting_a_point_whose_state_is_a_device_ends() {
    let d = tmp("special-collect");
    let point = d.join("points").join("p1");
    std::fs::create_dir_all(&point).unwrap();
    let name = "MNIST_relu_0_quantized_1_4_1_4_1_8_4bits";
    write_model(&point.join(format!("{name}.safetensors")));
    std::os::unix::fs::symlink("/dev/zero", point.join(format!("{name}.state.safetensors")))
        .unwrap();
    let o = qnn_bounded(&["sweep", "--collect", d.to_str().unwrap()]);
    assert!(!text(&o).contains("panicked"), "{}", text(&o));
    let table = std::fs::read_to_string(d.join("sweep.md")).unwrap_or_default();
    assert!(
        table.contains("p1"),
        "the point is reported: {table}\n{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A model file with bytes after the tensors its header declares (or fewer) is refused before
/// the tensors are read, with both sizes named.
#[test]
fn a_model_file_of_another_size_than_its_header_declares_is_refused() {
    let d = tmp("special-size");
    std::fs::create_dir_all(&d).unwrap();
    let model = d.join("m.safetensors");
    write_model(&model);
    let bytes = std::fs::read(&model).unwrap();
    let len = bytes.len();
    for (name, changed) in [
        (
            "long.safetensors",
            [bytes.clone(), vec![0u8; 4096]].concat(),
        ),
        ("short.safetensors", bytes[..len - 100].to_vec()),
    ] {
        let f = d.join(name);
        std::fs::write(&f, &changed).unwrap();
        let e = checkpoint::load_model(&f).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{} bytes", changed.len()))
                && e.contains(&format!("declares {len}")),
            "{name}: {e}"
        );
    }
    // the file as written reads back
    assert!(checkpoint::load_model(&model).is_ok());
    let _ = std::fs::remove_dir_all(&d);
}
