//! `qnn energy` and `qnn sweep` as a user meets them: a small grid trained end to end (a second
//! call skips finished points), a grid with points `qnn train` refuses (refused before anything
//! is trained), a point that fails while training (the others' results come, the sweep exits 1),
//! an empty grid, a half-written point folder, the Slurm scripts (valid shell), and collecting
//! folders produced by separate runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::cli::*;

/// `-- ` flags every point gets: the small MNIST folder, one epoch, a small batch.
fn point_flags(data: &Path) -> Vec<String> {
    [
        "-ds",
        "MNIST",
        "--data-dir",
        data.to_str().unwrap(),
        "--valid",
        "100",
        "-ne",
        "1",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "-lr",
        "0.01",
        "--lr-final",
        "0.001",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn sweep(args: &[&str], train: &[String]) -> std::process::Output {
    let mut a: Vec<&str> = vec!["sweep"];
    a.extend(args);
    a.push("--");
    a.extend(train.iter().map(String::as_str));
    qnn(&a)
}

/// The rows of a sweep.csv (its header left out), read as a CSV reader reads them.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

/// sweep.csv has the point with that status.
fn has_row(text: &str, point: &str, status: &str) -> bool {
    csv_rows(text)
        .iter()
        .any(|r| r[0] == point && r[1] == status)
}

#[test]
fn a_small_sweep_trains_resumes_and_reports() {
    let data = tmp("sw-data");
    write_mnist(&data, 300);
    let out = tmp("sw-out");
    let o = out.to_str().unwrap();
    let flags = point_flags(&data);
    let args = [
        "--bits",
        "0,4",
        "--filters",
        "4",
        "--out",
        o,
        "--jobs",
        "2",
        "--targets",
        "50,95",
    ];
    let r = sweep(&args, &flags);
    assert!(r.status.success(), "{}", text(&r));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(has_row(&csv, "4b_1x4", "done"), "{csv}");
    for f in ["sweep.jsonl", "sweep.md", "sweep.png", "sweep.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(md.contains("Pareto front") && md.contains("≤ 95%"), "{md}");
    // the same call again: finished points are skipped
    let again = sweep(&args, &flags);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("2 finished already"),
        "{}",
        text(&again)
    );

    // a failure note left by an earlier attempt does not hide the finished run beside it
    std::fs::write(
        out.join("points").join("4b_1x4").join("error.txt"),
        "another run is training",
    )
    .unwrap();
    let c = qnn(&["sweep", "--collect", o]);
    assert!(c.status.success(), "{}", text(&c));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(has_row(&csv, "4b_1x4", "done"), "{csv}");

    // a point folder whose name holds a comma and a quote keeps its row in the CSV
    std::fs::create_dir_all(out.join("points").join("odd,name\"q")).unwrap();
    let c = qnn(&["sweep", "--collect", o]);
    assert!(c.status.success(), "{}", text(&c));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let rows = csv_rows(&csv);
    assert!(rows.iter().all(|r| r.len() == 15), "{csv}");
    assert!(
        rows.iter()
            .any(|r| r[0] == "odd,name\"q" && r[1] == "not trained yet"),
        "{csv}"
    );
    std::fs::remove_dir_all(out.join("points").join("odd,name\"q")).unwrap();

    // a half-written point folder: the rest of the results still come
    let broken = out.join("points").join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("MNIST_x.safetensors"), b"\x08\x00\x00").unwrap();
    let c = qnn(&["sweep", "--collect", o]);
    assert!(c.status.success(), "{}", text(&c));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(
        csv_rows(&csv)
            .iter()
            .any(|r| r[0] == "broken" && r[1].starts_with("unreadable model")),
        "{csv}"
    );
    assert!(has_row(&csv, "4b_1x4", "done"), "{csv}");
    for d in [data, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A grid whose points `qnn train` would refuse (1 bit with relu, 99 bits, a width that is no
/// number) is refused whole before anything is made, each point named with why.
#[test]
fn a_grid_with_refused_points_trains_nothing_and_names_them() {
    let out = tmp("sw-refused");
    let _ = std::fs::remove_dir_all(&out);
    let o = out.to_str().unwrap();
    let r = sweep(
        &["--bits", "1,99,abc,4", "--filters", "4", "--out", o],
        &["-ds".into(), "mnist-mini".into(), "-ne".into(), "1".into()],
    );
    let t = text(&r);
    assert_eq!(r.status.code(), Some(1), "{t}");
    for needle in [
        "3 of the grid's 4 points",
        "1b_1x4: ",
        "relu with 1 bits",
        "99b_1x4: ",
        "abcb_1x4: ",
        "nothing was trained",
    ] {
        assert!(t.contains(needle), "message lacks '{needle}': {t}");
    }
    assert!(!out.exists(), "the sweep made {o}");
    let _ = std::fs::remove_dir_all(&out);
}

/// A point that fails while training (its data is missing) does not stop the others' results,
/// but the sweep says how many failed and exits 1.
#[test]
fn a_point_that_fails_makes_the_sweep_fail_after_reporting_the_rest() {
    let data = tmp("sw-fail-data");
    write_mnist(&data, 300);
    let out = tmp("sw-fail-out");
    let o = out.to_str().unwrap();
    let flags = point_flags(&data);
    let grid = out.join("grid.txt");
    let missing = out.join("no-such-data");
    std::fs::write(
        &grid,
        format!(
            "-nb 4 -nfa 4 -nfb 4 -nfc 4\n-nb 4 -nfa 4 -nfb 4 -nfc 8 --data-dir {}\n",
            missing.display()
        ),
    )
    .unwrap();
    let r = sweep(&["--grid", grid.to_str().unwrap(), "--out", o], &flags);
    let t = text(&r);
    assert_eq!(r.status.code(), Some(1), "{t}");
    assert!(t.contains("1 of the 2 points trained here failed"), "{t}");
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(csv_rows(&csv).iter().any(|r| r[1] == "done"), "{csv}");
    for d in [data, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// One sweep at a time in a folder: a second is refused while the first holds its lock.
#[test]
fn a_second_sweep_into_one_folder_is_refused_while_the_first_runs() {
    let out = tmp("sw-lock");
    let lock = qnn::files::try_lock(&out.join(".sweep.lock"))
        .unwrap()
        .expect("the lock is free");
    let o = out.to_str().unwrap();
    let r = sweep(
        &["--bits", "4", "--filters", "4", "--out", o],
        &["-ne".into(), "1".into()],
    );
    let t = text(&r);
    assert_eq!(r.status.code(), Some(1), "{t}");
    assert!(t.contains("another qnn sweep is running in"), "{t}");
    assert!(!out.join("points").exists(), "{t}");
    drop(lock);
    let _ = std::fs::remove_dir_all(&out);
}

/// Every point gets a folder of its own under points/: lines that map to one name get `_2`, and
/// lines that are no `qnn train` flags (`..`, `-`) are refused before anything is made.
#[test]
fn point_folders_are_unique_and_stay_under_points() {
    let d = tmp("sw-names");
    let grid = d.join("grid.txt");
    std::fs::write(&grid, "-nb 4 --data-dir mn/ok\n-nb 4 --data-dir mn-ok\n").unwrap();
    let out = d.join("sweep");
    let r = qnn(&[
        "sweep",
        "--grid",
        grid.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--emit",
        "slurm",
    ]);
    assert!(r.status.success(), "{}", text(&r));
    let script = std::fs::read_to_string(out.join("sweep.slurm")).unwrap();
    assert!(
        script.contains("name=nb_4_data-dir_mn-ok;")
            && script.contains("name=nb_4_data-dir_mn-ok_2;"),
        "{script}"
    );
    for line in ["..", "-"] {
        std::fs::write(&grid, format!("-nb 4\n{line}\n")).unwrap();
        let out = d.join(format!("sweep-{}", line.len()));
        let r = qnn(&[
            "sweep",
            "--grid",
            grid.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(1), "{line}: {}", text(&r));
        assert!(text(&r).contains("nothing was trained"), "{}", text(&r));
        assert!(!out.exists(), "{line}: the sweep made its folder");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_empty_grid_is_refused() {
    let d = tmp("sw-empty");
    let grid = d.join("grid.txt");
    std::fs::write(&grid, "# nothing but a comment\n\n").unwrap();
    refused(
        &[
            "sweep",
            "--grid",
            grid.to_str().unwrap(),
            "--out",
            d.to_str().unwrap(),
        ],
        &["grid is empty"],
    );
}

/// A task of the Slurm array passes each grid flag to `qnn train` as written, quoted once:
/// `--data-dir /tmp/a~b` arrives as `/tmp/a~b`, a quote inside a value stays a quote, and no
/// word of a flag is run as a command.
#[test]
fn slurm_tasks_pass_grid_flags_exactly_as_written() {
    let d = tmp("sw-slurm-quote");
    let grid = d.join("grid.txt");
    std::fs::write(
        &grid,
        "-nb 4 --data-dir /tmp/a~b\n-nb 2 --data-dir /tmp/it's$(touch${IFS}pwned)\n",
    )
    .unwrap();
    let out = d.join("sweep");
    let o = qnn(&[
        "sweep",
        "--grid",
        grid.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--emit",
        "slurm",
        "--",
        "-ne",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // a stand-in for qnn that writes the arguments it gets, one per line
    let record = d.join("record.sh");
    std::fs::write(
        &record,
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$RECORD\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (task, want) in [("0", "/tmp/a~b"), ("1", "/tmp/it's$(touch${IFS}pwned)")] {
        let got = d.join(format!("args-{task}.txt"));
        let r = Command::new("bash")
            .arg(out.join("sweep.slurm"))
            .current_dir(&d)
            .env("QNN", &record)
            .env("SLURM_ARRAY_TASK_ID", task)
            .env("RECORD", &got)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let args = std::fs::read_to_string(&got).unwrap();
        let args: Vec<&str> = args.lines().collect();
        let at = args.iter().position(|a| *a == "--data-dir").unwrap();
        assert_eq!(args[at + 1], want, "task {task}: {args:?}");
    }
    assert!(!d.join("pwned").exists(), "a grid flag ran as a command");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn slurm_scripts_are_valid_shell_and_collect_gathers_separate_runs() {
    let d = tmp("sw-slurm");
    let grid = d.join("grid.txt");
    std::fs::write(
        &grid,
        "-nb 4 -nfa 4 -nfb 4 -nfc 8\n-nb 2 -nfa 4 -nfb 4 -nfc 8  # 2-bit\n",
    )
    .unwrap();
    let out = d.join("sweep");
    let o = qnn(&[
        "sweep",
        "--grid",
        grid.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--emit",
        "slurm",
        "--",
        "-ds",
        "mnist-mini",
        "-ne",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["sweep.slurm", "collect.slurm", "submit.sh"] {
        let p = out.join(f);
        let check = Command::new("bash").arg("-n").arg(&p).output().unwrap();
        assert!(
            check.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let script = std::fs::read_to_string(out.join("sweep.slurm")).unwrap();
    assert!(script.contains("#SBATCH --array=0-1"), "{script}");
    assert!(script.contains("name=nb_4_nfa_4_nfb_4_nfc_8;"), "{script}");

    // two points trained by separate `qnn train` runs (as array tasks would), then collected
    let data = tmp("sw-slurm-data");
    write_mnist(&data, 300);
    for (name, bits) in [("a", "4"), ("b", "2")] {
        let dir = out.join("points").join(name);
        let mut args: Vec<String> = vec!["train".into()];
        args.extend(point_flags(&data));
        args.extend(SMALL.iter().map(|s| s.to_string()));
        args.extend([
            "-nb".into(),
            bits.into(),
            "--out".into(),
            dir.display().to_string(),
        ]);
        let r = qnn(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(r.status.success(), "{}", text(&r));
    }
    let c = qnn(&["sweep", "--collect", out.to_str().unwrap()]);
    assert!(c.status.success(), "{}", text(&c));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(
        csv_rows(&csv)
            .iter()
            .any(|r| r[..4] == ["a", "done", "MNIST", "4"]),
        "{csv}"
    );
    assert!(
        csv_rows(&csv)
            .iter()
            .any(|r| r[..4] == ["b", "done", "MNIST", "2"]),
        "{csv}"
    );
    let _ = std::fs::remove_dir_all(d);
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn energy_command_matches_the_library_and_summaries_show_it() {
    let o = qnn(&[
        "energy", "-ds", "CIFAR-10", "-nfa", "64", "-nfb", "64", "-nfc", "64", "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let j: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let config = qnn::model::NetConfig {
        input: [3, 32, 32],
        classes: 10,
        blocks: [(1, 64), (1, 64), (1, 64)],
        quantized: true,
        bits: 4,
        nonlinearity: qnn::quant::Nonlinearity::Relu,
        sym: false,
        net: None,
    };
    let want = qnn::model::energy::estimate(&config, &qnn::model::energy::EnergyProfile::default());
    let got = j["total_uj"].as_f64().unwrap();
    assert!(
        (got - want.total_uj()).abs() < 1e-9,
        "{got} vs {}",
        want.total_uj()
    );
    assert_eq!(j["layers"].as_array().unwrap().len(), 4);
    assert!(j["assumptions"].as_array().unwrap().len() >= 5);
    // the text form has the per-layer table and the shares
    let t = qnn(&["energy", "-ds", "CIFAR-10"]);
    assert!(
        text(&t).contains("µJ per inference — compute"),
        "{}",
        text(&t)
    );
    // a bad profile is refused by name
    let d = tmp("energy-profile");
    let p = d.join("p.json");
    std::fs::write(&p, "{\"name\": 3}").unwrap();
    refused(
        &["energy", "--profile", p.to_str().unwrap()],
        &["p.json", "energy profile"],
    );
}

/// Mixed precision in a sweep: `--first-last-bits same,8` repeats the grid with the first and
/// output layers' weights at 8 bits (rows labelled `4 first 8 last 8`, energies lower than the
/// float output layer's), and a grid line can name a net file (its row names the network).
#[test]
fn a_sweep_varies_the_ends_and_takes_net_files() {
    let data = tmp("sw-ends-data");
    write_mnist(&data, 300);
    let out = tmp("sw-ends-out");
    let o = out.to_str().unwrap();
    let flags = point_flags(&data);
    let r = sweep(
        &[
            "--bits",
            "4",
            "--filters",
            "4",
            "--first-last-bits",
            "same,8",
            "--out",
            o,
        ],
        &flags,
    );
    assert!(r.status.success(), "{}", text(&r));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let rows = csv_rows(&csv);
    let row = |point: &str| {
        rows.iter()
            .find(|r| r[0] == point)
            .unwrap_or_else(|| panic!("no {point} in {csv}"))
            .clone()
    };
    let (uniform, ends) = (row("4b_1x4"), row("4b_1x4_ends8"));
    assert_eq!(uniform[1], "done", "{csv}");
    assert_eq!(ends[1], "done", "{csv}");
    let header = csv.lines().next().unwrap().split(',').collect::<Vec<_>>();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(uniform[col("bits")], "4", "{csv}");
    assert_eq!(ends[col("bits")], "4 first 8 last 8", "{csv}");
    let energy = |r: &[String]| r[col("energy_uj")].parse::<f64>().unwrap();
    assert!(energy(&ends) < energy(&uniform), "{csv}");

    let net = out.join("tiny.toml");
    std::fs::write(
        &net,
        "name = \"tiny\"\nbits = 2\nnonlinearity = \"relu\"\n[[layer]]\ntype = \"dense\"\nunits = 8\n[[layer]]\ntype = \"dense\"\n",
    )
    .unwrap();
    let grid = out.join("grid.txt");
    std::fs::write(&grid, format!("--net {}\n", net.display())).unwrap();
    let out2 = tmp("sw-ends-grid");
    let r = sweep(
        &[
            "--grid",
            grid.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
        ],
        &flags,
    );
    assert!(r.status.success(), "{}", text(&r));
    let csv = std::fs::read_to_string(out2.join("sweep.csv")).unwrap();
    let rows = csv_rows(&csv);
    assert!(
        rows.iter()
            .any(|r| r[1] == "done" && r[4] == "tiny" && r[3] == "2"),
        "{csv}"
    );
    for d in [data, out, out2] {
        let _ = std::fs::remove_dir_all(d);
    }
}
