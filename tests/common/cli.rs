//! Running the `qnn` program from tests: its output, refusals, small MNIST-format folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs qnn. A `train` without `--out` gets a fresh folder of its own, so that tests running in
/// parallel neither write into the repository's models/ nor wait on each other's run lock.
pub fn qnn(args: &[&str]) -> Output {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qnn"));
    cmd.args(args);
    if args.first() == Some(&"train") && !args.contains(&"--out") {
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = std::env::temp_dir().join(format!("qnn-out-{}-{n}", std::process::id()));
        cmd.arg("--out").arg(out);
    }
    cmd.output().expect("run qnn")
}

/// `qnn ARGS`, failing the test if it has not ended within 60 s (an endless read or a wait).
pub fn qnn_bounded(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qnn"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qnn starts");
    let t0 = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("qnn {args:?} did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs qnn expecting a refusal whose message contains every one of `needles`.
#[track_caller]
pub fn refused(args: &[&str], needles: &[&str]) {
    let o = qnn(args);
    let t = text(&o);
    assert!(!o.status.success(), "qnn {args:?} succeeded:\n{t}");
    assert_eq!(
        o.status.code(),
        Some(1),
        "qnn {args:?}: exit {:?}\n{t}",
        o.status.code()
    );
    assert!(!t.contains("panicked"), "qnn {args:?} panicked:\n{t}");
    for n in needles {
        assert!(t.contains(n), "qnn {args:?}: message lacks '{n}':\n{t}");
    }
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qnn-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn idx_images(n: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, 28, 28] {
        v.extend(d.to_be_bytes());
    }
    v.extend(pixels);
    v
}

pub fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend((labels.len() as u32).to_be_bytes());
    v.extend(labels);
    v
}

/// A small MNIST-format folder: `n` training and `n/4` test images, digit k drawn as a bar at
/// row 2k + 4, so a network can learn it.
pub fn write_mnist(dir: &Path, n: usize) {
    let make = |count: usize, offset: usize| {
        let mut pix = Vec::new();
        let mut lab = Vec::new();
        for i in 0..count {
            let k = (i + offset) % 10;
            let mut img = [0u8; 784];
            for x in 4..24 {
                img[(2 * k + 4) * 28 + x] = 255;
                img[(2 * k + 5) * 28 + x] = ((i * 37) % 200) as u8;
            }
            pix.extend(img);
            lab.push(k as u8);
        }
        (pix, lab)
    };
    let (p, l) = make(n, 0);
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx_images(n as u32, &p),
    )
    .unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx_labels(&l)).unwrap();
    let (p, l) = make(n / 4, 3);
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        idx_images((n / 4) as u32, &p),
    )
    .unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx_labels(&l)).unwrap();
}

/// Small-network flags for quick runs on the CPU.
pub const SMALL: [&str; 12] = [
    "-nla", "1", "-nfa", "4", "-nlb", "1", "-nfb", "4", "-nlc", "1", "-nfc", "8",
];

pub fn train_small(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "-ds",
        "MNIST",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
        "--valid",
        "100",
        "-ne",
        "2",
        "-lr",
        "0.01",
        "--lr-final",
        "0.001",
        "--batch-size",
        "32",
        "--json",
    ];
    args.extend(SMALL);
    args.extend(extra);
    qnn(&args)
}

pub fn json_line(o: &Output) -> serde_json::Value {
    let s = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(s.lines().last().expect("output"))
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}):\n{}", text(o)))
}
