//! `qnn train -ds folder`: a folder of PNG digits written from mnist-mini by
//! `examples/image_sets.rs` trains exactly as the embedded IDX files do (same test error, same
//! tensors), the second run starts from the cache, a 12-class RGB set trains and its model
//! names its classes, and bad folders and flags are refused with exit 1.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{qnn, refused, text, tmp};

/// Runs `examples/image_sets` (built by `cargo test` beside the qnn binary) with `args`.
fn image_sets(args: &[&str]) {
    let exe = Path::new(env!("CARGO_BIN_EXE_qnn"))
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("image_sets{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.is_file(),
        "{} is not built (cargo test builds the examples)",
        exe.display()
    );
    let o = std::process::Command::new(&exe)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `qnn train` for one epoch on the CPU on the folder set (or zip) `data`, then `more`.
fn train_on<'a>(data: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "-ds",
        "folder",
        "--data-dir",
        data.to_str().unwrap(),
        "-ne",
        "1",
        "--device",
        "cpu",
    ];
    args.extend(more);
    args
}

/// The last stdout line of a `--json` run: its test error.
fn test_error(out: &std::process::Output) -> f64 {
    let t = String::from_utf8_lossy(&out.stdout);
    let last = t.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|_| panic!("{t}"));
    v["test_error"].as_f64().unwrap()
}

fn model_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().ends_with(".safetensors")
                && !p.to_string_lossy().contains(".state.")
        })
        .unwrap()
}

/// mnist-mini as a folder of PNG files trains to the IDX version's test error with the same
/// seed (and the same tensors); the second read comes from the cache.
#[test]
fn mnist_mini_as_pictures_trains_as_the_idx_files() {
    let d = tmp("imgf-mm");
    let set = d.join("set");
    image_sets(&["mnist-mini", set.to_str().unwrap()]);
    let common = ["-ne", "1", "--device", "cpu", "--json"];
    let out_f = d.join("f");
    let f = qnn(&train_on(
        &set,
        &["--out", out_f.to_str().unwrap(), "--json"],
    ));
    assert!(f.status.success(), "{}", text(&f));
    let out_i = d.join("i");
    let mut args_i = vec!["train", "--out", out_i.to_str().unwrap()];
    args_i.extend(common);
    let i = qnn(&args_i);
    assert!(i.status.success(), "{}", text(&i));
    assert_eq!(test_error(&f), test_error(&i), "{}\n{}", text(&f), text(&i));
    let tensors = |p: &Path| qnn::checkpoint::load_model(p).unwrap().0;
    assert_eq!(tensors(&model_in(&out_f)), tensors(&model_in(&out_i)));
    // the second run reads the cache
    let out_g = d.join("g");
    let again = qnn(&train_on(&set, &["--out", out_g.to_str().unwrap()]));
    assert!(text(&again).contains("from the cache"), "{}", text(&again));
    let _ = std::fs::remove_dir_all(&d);
}

/// A 12-class set of 32×32 RGB pictures trains; the model holds 12 classes and their names;
/// bad pictures and flags are refused (exit 1) or skipped as asked.
#[test]
fn a_twelve_class_rgb_set_trains_and_bad_input_is_refused() {
    let d = tmp("imgf-rgb");
    let set = d.join("set");
    image_sets(&["rgb12", set.to_str().unwrap(), "20"]);
    let out = d.join("out");
    let base = train_on(&set, &["--batch-size", "16"]);
    let mut first = base.clone();
    first.extend(["--out", out.to_str().unwrap()]);
    let o = qnn(&first);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("12 classes, 3×32×32"), "{}", text(&o));
    let info = qnn(&["info", model_in(&out).to_str().unwrap()]);
    assert!(
        text(&info).contains("12 classes: class00"),
        "{}",
        text(&info)
    );

    // a truncated picture stops the run, naming it; --skip-bad-images goes on without it
    let bad = set.join("class03/00004.png");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    refused(&base, &["class03/00004.png", "--skip-bad-images"]);
    let mut skip = base.clone();
    skip.extend([
        "--skip-bad-images",
        "--out",
        out.to_str().unwrap(),
        "--overwrite",
    ]);
    let o = qnn(&skip);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 unreadable images skipped"),
        "{}",
        text(&o)
    );

    // the folder flags belong to -ds folder; --input must be a shape
    refused(
        &["train", "--input", "1x28x28"],
        &["--input applies to your own pictures"],
    );
    let mut wrong = base.clone();
    wrong.extend(["--input", "2x8x8"]);
    refused(&wrong, &["--input 2x8x8"]);
    // a single class
    let one = d.join("one");
    std::fs::create_dir_all(one.join("only")).unwrap();
    std::fs::copy(set.join("class00/00000.png"), one.join("only/a.png")).unwrap();
    refused(
        &[
            "train",
            "-ds",
            "folder",
            "--data-dir",
            one.to_str().unwrap(),
        ],
        &["a single class ('only')"],
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A `.zip` of a folder set trains as `--data-dir set.zip`, its model's files start with the
/// set's name (not `folder`), its second read comes from the cache beside the zip, and `qnn
/// eval` reads the zip at the model's input.
#[test]
fn a_zipped_set_trains_and_names_its_model() {
    let d = tmp("imgf-zip");
    let set = d.join("pets");
    image_sets(&["rgb12", set.to_str().unwrap(), "10"]);
    let zip = d.join("pets.zip");
    image_sets(&["zip", set.to_str().unwrap(), zip.to_str().unwrap()]);
    std::fs::remove_dir_all(&set).unwrap();
    let out = d.join("out");
    let args = train_on(
        &zip,
        &["--batch-size", "16", "--out", out.to_str().unwrap()],
    );
    let o = qnn(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("12 classes, 3×32×32"), "{}", text(&o));
    let model = model_in(&out);
    let name = model.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("pets_"), "{name}");
    assert!(
        d.join(".qnn-cache").is_dir(),
        "the cache lies beside the zip"
    );
    let mut again = args.clone();
    again.push("--overwrite");
    let o = qnn(&again);
    assert!(text(&o).contains("from the cache"), "{}", text(&o));
    let e = qnn(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        "folder",
        "--data-dir",
        zip.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(e.status.success(), "{}", text(&e));
    let _ = std::fs::remove_dir_all(&d);
}
