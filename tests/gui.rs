//! The desktop window, run for real: under Xvfb (Debian's `xvfb`, lavapipe draws), a short
//! training run started from the command line must advance, save its files, remember its
//! settings, leave a screenshot and close cleanly; without a display `qnn gui` must say so.
//!
//! Without `xvfb-run` the window test says it skipped, unless QNN_REQUIRE_GUI_TEST is set (CI
//! sets it, so there a missing Xvfb fails the run); likewise without a wgpu adapter, unless
//! QNN_REQUIRE_GPU=1.
#![cfg(feature = "gui")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{text, tmp};

/// `qnn gui ARGS` under a fresh Xvfb display, its remembered settings in `data_home`.
fn gui(args: &[&str], data_home: &std::path::Path) -> Command {
    let mut c = Command::new("xvfb-run");
    c.args(["-a", "-s", "-screen 0 1280x900x24 -nolisten tcp"])
        .arg(env!("CARGO_BIN_EXE_qnn"))
        .arg("gui")
        .args(args)
        // the window's remembered settings go here, not into the user's own
        .env("XDG_DATA_HOME", data_home)
        .env_remove("WAYLAND_DISPLAY");
    c
}

fn have_xvfb() -> bool {
    Command::new("xvfb-run")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether the window can be opened here: Xvfb (else skipped, or a failure with
/// QNN_REQUIRE_GUI_TEST) and a wgpu adapter to draw with (else skipped, or a failure with
/// QNN_REQUIRE_GPU=1).
fn can_open_window() -> bool {
    if !have_xvfb() {
        assert!(
            std::env::var_os("QNN_REQUIRE_GUI_TEST").is_none(),
            "QNN_REQUIRE_GUI_TEST is set but xvfb-run is missing (apt-get install xvfb xauth)"
        );
        eprintln!("skipped: xvfb-run not found (apt-get install xvfb xauth)");
        return false;
    }
    common::gpu().is_some()
}

/// A short run started from the command line advances, saves its files, remembers its settings,
/// leaves a screenshot and closes cleanly; the saved model opens again with `--model`, a corrupt
/// one is refused with exit 1.
#[test]
fn the_window_trains_a_short_run_and_closes() {
    if !can_open_window() {
        return;
    }
    let dir = tmp("gui");
    let out = dir.join("run");
    let shot = dir.join("window.png");
    let data_home = dir.join("data-home");
    let mut cmd = gui(
        &[
            "--start",
            "--exit-when-done",
            "-ds",
            "mnist-mini",
            "-ne",
            "1",
            "--valid",
            "500",
            "-nfa",
            "8",
            "-nfb",
            "16",
            "-nfc",
            "16",
            "--device",
            "cpu",
        ],
        &data_home,
    );
    let mut child = cmd
        .arg("--out")
        .arg(&out)
        .arg("--screenshot")
        .arg(&shot)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xvfb-run");
    let t0 = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if t0.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("qnn gui did not close within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = child.wait_with_output().expect("output");
    let t = text(&o);
    assert!(o.status.success(), "qnn gui failed:\n{t}");
    assert!(!t.contains("panicked"), "{t}");
    // training advanced: the epoch's line and the closing line
    assert!(t.contains("epoch 1 of 1: training loss"), "{t}");
    assert!(t.contains("done: best epoch 1"), "{t}");
    assert!(t.contains("frames while training"), "{t}");
    // the same files as qnn train
    let name = "mnist-mini_relu_0_quantized_1_8_1_16_1_16_4bits";
    for f in [
        format!("{name}.safetensors"),
        format!("{name}.state.safetensors"),
        format!("{name}.metrics.jsonl"),
    ] {
        assert!(
            out.join(&f).is_file(),
            "{f} missing in {}:\n{t}",
            out.display()
        );
    }
    // the saved model is a model qnn eval reads
    let eval = common::cli::qnn(&[
        "eval",
        "--model",
        out.join(format!("{name}.safetensors")).to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(eval.status.success(), "{}", text(&eval));
    // the screenshot is the window: its size, and not one flat colour
    let img = image::open(&shot)
        .unwrap_or_else(|e| panic!("{}: {e}\n{t}", shot.display()))
        .to_rgb8();
    assert!(
        img.width() >= 800 && img.height() >= 560,
        "{:?}",
        img.dimensions()
    );
    let first = img.get_pixel(0, 0);
    let differing = img.pixels().filter(|p| *p != first).count();
    assert!(
        differing > (img.width() * img.height() / 10) as usize,
        "the screenshot is nearly blank"
    );
    // settings are remembered between launches (eframe's storage)
    let stored = std::fs::read_to_string(data_home.join("qnn").join("app.ron"))
        .unwrap_or_else(|e| panic!("no remembered settings in {}: {e}", data_home.display()));
    assert!(stored.contains("settings"), "{stored}");
    let _ = std::fs::copy(&shot, std::env::temp_dir().join("qnn-gui-test-window.png"));

    // the saved model opened to explore: its filters, histograms and test grid are drawn from it
    let explore_shot = dir.join("explore.png");
    let o = gui(&["--exit-when-done", "--model"], &data_home)
        .arg(out.join(format!("{name}.safetensors")))
        .arg("--screenshot")
        .arg(&explore_shot)
        .output()
        .expect("run xvfb-run");
    let t = text(&o);
    assert!(o.status.success(), "qnn gui --model failed:\n{t}");
    assert!(
        t.contains(&format!("loaded {}", out.join(name).display())),
        "{t}"
    );
    assert!(explore_shot.is_file(), "{t}");
    // a model file that is not one: a message and exit 1, no panic
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"not a model").unwrap();
    let o = gui(&["--exit-when-done", "--model"], &data_home)
        .arg(&bad)
        .output()
        .expect("run xvfb-run");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("bad.safetensors") && !t.contains("panicked"),
        "{t}"
    );
}

/// `dir/shapes.zip`: a zip of the folder `shapes/` with 3 classes of 12 RGB pictures (16×16),
/// each class its own colour and pattern.
fn rgb_zip(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("shapes.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (k, class) in ["circle", "square", "stripes"].iter().enumerate() {
        for i in 0..12u32 {
            let img = image::RgbImage::from_fn(16, 16, |x, y| {
                let on = match k {
                    0 => (x as i32 - 8).pow(2) + (y as i32 - 8).pow(2) < 30,
                    1 => (4..12).contains(&x) && (4..12).contains(&y),
                    _ => (x + i) / 3 % 2 == 0,
                };
                let v = if on { 220 } else { 30 } as u8;
                image::Rgb([v, (k as u8) * 100, 255 - v])
            });
            let mut png = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .unwrap();
            z.start_file(format!("shapes/{class}/{i:02}.png"), opts)
                .unwrap();
            z.write_all(&png).unwrap();
        }
    }
    z.finish().unwrap();
    path
}

/// A zip of a folder of RGB pictures trains in the window: from the command line (`-ds folder
/// --data-dir X.zip`) the network follows its shape and classes and the model is named after
/// the set; launched again with the settings remembered, the window decodes the zip itself
/// (its cache removed) on its reading thread, starts the run once it is read, and closes.
/// A zip that is no zip is refused, named, without a panic.
#[test]
fn the_window_trains_on_a_zip_of_rgb_pictures() {
    if !can_open_window() {
        return;
    }
    let dir = tmp("gui-zip");
    let zip = rgb_zip(&dir);
    let out = dir.join("run");
    let data_home = dir.join("data-home");
    let shot = dir.join("window.png");
    let run = |args: &[&str]| {
        let o = gui(args, &data_home).output().expect("run xvfb-run");
        let t = text(&o);
        assert!(o.status.success(), "qnn gui {args:?} failed:\n{t}");
        assert!(!t.contains("panicked"), "{t}");
        t
    };
    let t = run(&[
        "--start",
        "--exit-when-done",
        "-ds",
        "folder",
        "--data-dir",
        zip.to_str().unwrap(),
        "-ne",
        "1",
        "--batch-size",
        "16",
        "-nfa",
        "8",
        "-nfb",
        "8",
        "-nfc",
        "8",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
        "--screenshot",
        shot.to_str().unwrap(),
    ]);
    assert!(
        t.contains(&format!(
            "data: 36 pictures of 3 classes (3×16×16) from {}",
            zip.display()
        )),
        "{t}"
    );
    assert!(t.contains("epoch 1 of 1: training loss"), "{t}");
    let name = "shapes_relu_0_quantized_1_8_1_8_1_8_4bits";
    assert!(
        out.join(format!("{name}.safetensors")).is_file(),
        "{name}.safetensors missing:\n{t}"
    );
    let img = image::open(&shot)
        .unwrap_or_else(|e| panic!("{}: {e}\n{t}", shot.display()))
        .to_rgb8();
    assert!(img.width() >= 800 && img.height() >= 560);
    let _ = std::fs::copy(&shot, std::env::temp_dir().join("qnn-gui-test-zip.png"));

    // the remembered settings name the zip: the window reads it again, decoding every picture
    std::fs::remove_dir_all(dir.join(".qnn-cache")).expect("the zip's cache beside it");
    std::fs::remove_dir_all(&out).unwrap();
    let t = run(&["--start", "--exit-when-done"]);
    let read = t
        .find(&format!(
            "data: 36 pictures of 3 classes (3×16×16) from {}\n",
            zip.display()
        ))
        .unwrap_or_else(|| panic!("not decoded by the window:\n{t}"));
    let trained = t
        .find("epoch 1 of 1: training loss")
        .unwrap_or_else(|| panic!("no run:\n{t}"));
    assert!(
        read < trained,
        "the run started before the pictures were read:\n{t}"
    );
    assert!(out.join(format!("{name}.safetensors")).is_file(), "{t}");

    // a file named .zip that is no zip: the message names it, exit 1
    let bad = dir.join("holiday.zip");
    std::fs::write(&bad, b"not a zip").unwrap();
    let o = gui(
        &[
            "--start",
            "--exit-when-done",
            "-ds",
            "folder",
            "--data-dir",
            bad.to_str().unwrap(),
        ],
        &data_home,
    )
    .output()
    .expect("run xvfb-run");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("holiday.zip") && !t.contains("panicked"), "{t}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_display_it_says_so_and_points_to_train() {
    let o = Command::new(env!("CARGO_BIN_EXE_qnn"))
        .args(["gui", "--start"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run qnn");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("needs a display"), "{t}");
    assert!(t.contains("qnn train"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
}
