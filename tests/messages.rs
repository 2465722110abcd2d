//! Messages that say what is wrong: each case once misled (a wrong message, a suggestion that
//! then fails, a path into the build machine's crate registry) and now names the real problem.

mod common;

use std::io::Write;

use common::cli::{qnn, refused, text, tmp, write_mnist};

/// `qnn train -ds MNIST` on `data`, with a fresh --out.
fn train_mnist<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "-ds",
        "MNIST",
        "--data-dir",
        data,
        "--device",
        "cpu",
        "--out",
        out,
    ]
}

#[test]
fn data_problems_are_named_as_they_are() {
    let d = tmp("messages-data");
    let out = d.join("out");
    let o = out.to_str().unwrap();

    // a gzipped label file holding something else: not "truncated (6 bytes)" but "not an IDX"
    let wrong = d.join("wrong-magic");
    std::fs::create_dir_all(&wrong).unwrap();
    write_mnist(&wrong, 40);
    std::fs::remove_file(wrong.join("train-labels-idx1-ubyte")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(wrong.join("train-labels-idx1-ubyte.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&[0, 0, 9, 0x99]).unwrap();
    gz.write_all(&[0; 1504]).unwrap();
    gz.finish().unwrap();
    refused(
        &train_mnist(wrong.to_str().unwrap(), o),
        &["train-labels-idx1-ubyte.gz: not an IDX label file (magic 0x00000999"],
    );

    // trailing bytes after the labels: how many
    let trailing = d.join("trailing");
    std::fs::create_dir_all(&trailing).unwrap();
    write_mnist(&trailing, 40);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(trailing.join("t10k-labels-idx1-ubyte"))
        .unwrap();
    f.write_all(&[0, 0, 0]).unwrap();
    refused(
        &train_mnist(trailing.to_str().unwrap(), o),
        &["the header says 10 labels but the file holds 13 (3 bytes after them)"],
    );

    // a label path that is a folder: not "missing"
    let folder = d.join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    write_mnist(&folder, 40);
    std::fs::remove_file(folder.join("train-labels-idx1-ubyte")).unwrap();
    std::fs::create_dir(folder.join("train-labels-idx1-ubyte")).unwrap();
    refused(
        &train_mnist(folder.to_str().unwrap(), o),
        &["train-labels-idx1-ubyte: a folder, not a file"],
    );

    // --data-dir naming a file: not "does not exist"
    let file = trailing.join("train-images-idx3-ubyte");
    refused(
        &train_mnist(file.to_str().unwrap(), o),
        &["is a file, not a folder"],
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn model_problems_are_named_as_they_are() {
    let d = tmp("messages-model");
    // a folder where the run's model file belongs: not a suggestion to --resume
    let out = d.join("out");
    let name = "mnist-mini_relu_0_quantized_1_4_1_4_1_8_4bits";
    std::fs::create_dir_all(out.join(format!("{name}.safetensors"))).unwrap();
    let args = [
        "train", "-nfa", "4", "-nfb", "4", "-nfc", "8", "--device", "cpu", "--out",
    ];
    let mut a = args.to_vec();
    a.push(out.to_str().unwrap());
    refused(&a, &["is a folder where the run's model file belongs"]);
    let t = text(&qnn(&a));
    assert!(!t.contains("--resume"), "{t}");

    // `info` of a training state: not a suggestion to import an .npz
    let run = d.join("run");
    let r = run.to_str().unwrap();
    let o = qnn(&[
        "train", "-nfa", "4", "-nfb", "4", "-nfc", "8", "--device", "cpu", "-ne", "1", "--valid",
        "100", "--out", r,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let state = run.join(format!("{name}.state.safetensors"));
    refused(
        &["info", state.to_str().unwrap()],
        &["a qnn training state", "not a model"],
    );
    let t = text(&qnn(&["info", state.to_str().unwrap()]));
    assert!(!t.contains("import-npz"), "{t}");
    let _ = std::fs::remove_dir_all(&d);
}

/// `qnn gui` on a display that cannot be opened says so without a path into the crate registry.
#[cfg(feature = "gui")]
#[test]
fn a_display_that_cannot_be_opened_is_named_without_source_paths() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_qnn"))
        .arg("gui")
        .env("DISPLAY", ":9876")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("could not open the window"), "{t}");
    assert!(!t.contains(".cargo") && !t.contains(".rs:"), "{t}");
}
