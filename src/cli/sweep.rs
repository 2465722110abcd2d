//! `qnn sweep`: train a grid of bit widths × network sizes, each point a normal `qnn train` run
//! (the library's training run, its usual files, its lock, resume and refusals) in its own folder;
//! then the results (`sweep.csv`, `sweep.jsonl`), the plot of test error against energy per
//! inference with the Pareto front (`sweep.png`, `sweep.svg`), and the minimum-energy table
//! (`sweep.md`). `--emit slurm` writes the same grid as a Slurm job array; `--collect DIR`
//! builds the results from finished point folders wherever they ran.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::Parser;
use plotters::prelude::*;
use qnn::checkpoint;
use qnn::files;
use qnn::model::energy::{self, EnergyProfile};
use qnn::run_folder::{self, RunFolder};
use serde::Serialize;

use super::args::{seed_args, Cli, Command as CliCommand, EmitChoice, SweepArgs};
use super::energy::load_profile;
use super::train_cmd::run_settings;
use super::Interrupted;

/// One grid point: a folder name and the `qnn train` flags that make it.
#[derive(Clone, Debug)]
struct Point {
    name: String,
    flags: Vec<String>,
}

/// The grid of --bits × --layers × --filters, or of a grid file.
fn grid(args: &SweepArgs) -> Result<Vec<Point>> {
    let mut points = Vec::new();
    if let Some(file) = &args.grid {
        let text = files::read_text(file, files::TEXT_MAX_BYTES, "a grid file")
            .with_context(|| format!("--grid {}", file.display()))?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let flags: Vec<String> = line.split_whitespace().map(String::from).collect();
            let name = flags
                .iter()
                .map(|f| f.trim_start_matches('-'))
                .collect::<Vec<_>>()
                .join("_")
                .replace(
                    |c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'),
                    "-",
                );
            points.push(Point { name, flags });
        }
    } else {
        for bits in &args.bits {
            for &layers in &args.layers {
                for &filters in &args.filters {
                    let (tag, bit_flags): (String, &[&str]) = match bits.as_str() {
                        "float" => ("float".into(), &["-q", "0"]),
                        // BinaryNet: ±1 activations need hardtanh with symmetric clipping
                        "0" => ("0b".into(), &["-nb", "0", "-nl", "hardtanh", "-sym", "1"]),
                        b => (format!("{b}b"), &["-nb"]),
                    };
                    let mut flags: Vec<String> = bit_flags.iter().map(|f| f.to_string()).collect();
                    if !matches!(bits.as_str(), "float" | "0") {
                        flags.push(bits.clone());
                    }
                    for block in ["a", "b", "c"] {
                        flags.extend([
                            format!("-nl{block}"),
                            layers.to_string(),
                            format!("-nf{block}"),
                            filters.to_string(),
                        ]);
                    }
                    points.push(Point {
                        name: format!("{tag}_{layers}x{filters}"),
                        flags,
                    });
                }
            }
        }
    }
    // each --first-last-bits value repeats the grid with those ends
    let points: Vec<Point> = args
        .first_last_bits
        .iter()
        .flat_map(|ends| {
            points.iter().map(move |p| match ends.as_str() {
                "same" => p.clone(),
                b => Point {
                    name: format!("{}_ends{b}", p.name),
                    flags: [
                        p.flags.clone(),
                        vec![
                            "--first-bits".into(),
                            b.into(),
                            "--last-bits".into(),
                            b.into(),
                        ],
                    ]
                    .concat(),
                },
            })
        })
        .collect();
    let mut points = points;
    if points.is_empty() {
        bail!("the grid is empty: give --bits, --layers and --filters values, or a --grid file with one point per line");
    }
    unique_names(&mut points);
    Ok(points)
}

/// Makes every point's folder name a plain name of its own under `points/`: never empty or made
/// of dots (`..` would be the sweep's own folder), and a name two lines share (`--data-dir mn/ok`
/// and `--data-dir mn-ok` both give `data-dir_mn-ok`) gets `_2`, `_3`, … on its later lines.
fn unique_names(points: &mut [Point]) {
    let mut taken = std::collections::HashSet::new();
    for p in points.iter_mut() {
        let base = p.name.trim_start_matches('.');
        let base = if base.is_empty() { "point" } else { base }.to_string();
        let mut name = base.clone();
        let mut n = 1;
        while !taken.insert(name.clone()) {
            n += 1;
            name = format!("{base}_{n}");
        }
        p.name = name;
    }
}

/// Each point `qnn train` would refuse, with why: its flags (with the sweep's own `qnn train`
/// flags) parsed and checked as `qnn train` does, before anything is made or trained.
fn refused_points(args: &SweepArgs, points: &[Point]) -> Vec<(String, String)> {
    points
        .iter()
        .filter_map(|p| {
            let argv = ["qnn", "train"]
                .map(String::from)
                .into_iter()
                .chain(args.train.iter().cloned())
                .chain(p.flags.iter().cloned());
            let why = match Cli::try_parse_from(seed_args(argv)) {
                Err(e) => Some(
                    e.to_string()
                        .lines()
                        .next()
                        .unwrap_or("not `qnn train` flags")
                        .trim_start_matches("error: ")
                        .to_string(),
                ),
                Ok(Cli {
                    command: CliCommand::Train(t),
                }) => run_settings(&t).err().map(|e| format!("{e:#}")),
                Ok(_) => Some("not `qnn train` flags".into()),
            };
            why.map(|w| (p.name.clone(), w))
        })
        .collect()
}

fn point_dir(out: &Path, p: &Point) -> PathBuf {
    out.join("points").join(&p.name)
}

/// The point's run is finished: its model is saved and its state has all the epochs.
fn finished(dir: &Path) -> bool {
    RunFolder::find(dir).is_some_and(|run| {
        run.model_path().is_file()
            && run.state_path().is_file()
            && run
                .saved_progress()
                .is_ok_and(|(done, all)| all > 0 && done >= all)
    })
}

/// Trains one point as a child `qnn train` (finishing an interrupted one with --resume).
/// Returns None when done, Some(message) when the run failed or was refused.
fn train_point(args: &SweepArgs, p: &Point, threads: usize) -> Result<Option<String>> {
    let dir = point_dir(&args.out, p);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let _ = std::fs::remove_file(dir.join("error.txt"));
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("train").args(&args.train).args(&p.flags);
    cmd.arg("--out").arg(&dir).arg("--json");
    if let Some(run) = RunFolder::find(&dir) {
        if run.state_path().is_file() {
            cmd.arg("--resume");
        } else if run.model_path().is_file() {
            // a model without a state: left by an earlier sweep that did not finish its first epoch
            cmd.arg("--overwrite");
        }
    }
    cmd.env("RAYON_NUM_THREADS", threads.to_string());
    let o = cmd.output().context("running qnn train")?;
    std::fs::write(
        dir.join("train.log"),
        [&o.stdout[..], &o.stderr[..]].concat(),
    )?;
    if o.status.success() {
        return Ok(None);
    }
    if o.status.code() == Some(130) {
        return Ok(Some("interrupted".into()));
    }
    if o.status.code().is_none() {
        #[cfg(unix)]
        let how = std::os::unix::process::ExitStatusExt::signal(&o.status)
            .map_or("killed".to_string(), |s| format!("killed by signal {s}"));
        #[cfg(not(unix))]
        let how = "killed".to_string();
        files::write_atomic(&dir.join("error.txt"), how.as_bytes())?;
        return Ok(Some(how));
    }
    let msg = String::from_utf8_lossy(&o.stderr)
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("qnn train failed")
        .trim_start_matches("error: ")
        .to_string();
    files::write_atomic(&dir.join("error.txt"), msg.as_bytes())?;
    Ok(Some(msg))
}

pub fn sweep(args: SweepArgs) -> Result<()> {
    let profile = load_profile(args.profile.as_deref())?;
    if let Some(dir) = &args.collect {
        return collect(dir, &args.targets, &profile);
    }
    if args.jobs == 0 {
        bail!("--jobs 0: give at least 1");
    }
    let points = grid(&args)?;
    let refused = refused_points(&args, &points);
    if !refused.is_empty() {
        let list: Vec<String> = refused
            .iter()
            .map(|(p, why)| format!("{p}: {why}"))
            .collect();
        bail!(
            "{} of the grid's {} points would be refused by `qnn train`, so nothing was trained; fix or drop them:\n  {}",
            refused.len(),
            points.len(),
            list.join("\n  ")
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create the folder", args.out.display()))?;
    // one sweep at a time in a folder: two would train the same points and overwrite each
    // other's logs and results
    let lock = args.out.join(".sweep.lock");
    let _lock = files::try_lock(&lock)
        .with_context(|| format!("--out {}: cannot lock", args.out.display()))?
        .with_context(|| {
            format!(
                "another qnn sweep is running in {} (it holds {}): wait for it to end, or use another --out",
                args.out.display(),
                lock.display()
            )
        })?;
    if args.emit == Some(EmitChoice::Slurm) {
        return emit_slurm(&args, &points);
    }
    let todo: Vec<&Point> = points
        .iter()
        .filter(|p| !finished(&point_dir(&args.out, p)))
        .collect();
    println!(
        "sweep: {} points, {} finished already, {} to train{}",
        points.len(),
        points.len() - todo.len(),
        todo.len(),
        if args.jobs > 1 {
            format!(", {} at once", args.jobs)
        } else {
            String::new()
        }
    );
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // the children get the signal too and save what they have
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / args.jobs).max(1);
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(todo.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "sweep {bar:30} {pos}/{len} points {elapsed} {msg}",
            )
            .expect("valid template"),
        );
        pb
    });
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(todo.len()) {
            s.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(p) = todo.get(i) else { break };
                if let Some(pb) = &bar {
                    pb.set_message(p.name.clone());
                }
                let line = match train_point(&args, p, threads) {
                    Ok(None) => format!("{}: done", p.name),
                    Ok(Some(m)) => {
                        failures
                            .lock()
                            .expect("lock")
                            .push((p.name.clone(), m.clone()));
                        format!("{}: {m}", p.name)
                    }
                    Err(e) => {
                        let m = format!("{e:#}");
                        failures
                            .lock()
                            .expect("lock")
                            .push((p.name.clone(), m.clone()));
                        format!("{}: {m}", p.name)
                    }
                };
                match &bar {
                    Some(pb) => {
                        pb.println(line);
                        pb.inc(1);
                    }
                    None => println!("{line}"),
                }
            });
        }
    });
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    collect(&args.out, &args.targets, &profile)?;
    if stop.load(Ordering::SeqCst) {
        return Err(Interrupted(
            "sweep interrupted: finished points are kept, `qnn sweep` with the same flags resumes the rest"
                .into(),
        )
        .into());
    }
    let failures = failures.into_inner().expect("lock");
    if !failures.is_empty() {
        let list: Vec<String> = failures.iter().map(|(p, m)| format!("{p}: {m}")).collect();
        bail!(
            "{} of the {} points trained here failed (the results of the others are in {}; each point's train.log says more):\n  {}",
            failures.len(),
            todo.len(),
            args.out.join("sweep.md").display(),
            list.join("\n  ")
        );
    }
    Ok(())
}

/// Quotes a word for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn emit_slurm(args: &SweepArgs, points: &[Point]) -> Result<()> {
    let out = std::fs::canonicalize(&args.out)?;
    let qnn = std::env::current_exe()?;
    let global: Vec<String> = args.train.iter().map(|f| shell_quote(f)).collect();
    // one case arm per task: the point's name and flags, each word quoted once for the shell
    // (`set --` makes them the arguments: no word splitting, no eval)
    let mut arms = String::new();
    for (i, p) in points.iter().enumerate() {
        let flags: Vec<String> = p.flags.iter().map(|f| shell_quote(f)).collect();
        arms.push_str(&format!(
            "  {i}) name={}; set -- {} ;;\n",
            shell_quote(&p.name),
            flags.join(" ")
        ));
    }
    let o = shell_quote(&out.display().to_string());
    let array = format!(
        "#!/bin/bash
# qnn sweep as a Slurm job array: one task per grid point, each a `qnn train` run into its own
# folder under {o}/points (an interrupted or requeued task resumes). Submit with submit.sh,
# which also queues collect.slurm to build the results once every task has ended.
#SBATCH --job-name=qnn-sweep
#SBATCH --array=0-{last}
#SBATCH --output={o}/points/slurm-%A_%a.log
set -euo pipefail
QNN=\"${{QNN:-{qnn}}}\"
case \"$SLURM_ARRAY_TASK_ID\" in
{arms}  *) echo \"no grid point $SLURM_ARRAY_TASK_ID\" >&2; exit 1 ;;
esac
dir={o}/points/\"$name\"
mkdir -p \"$dir\"
if ls \"$dir\"/*{state_suffix} >/dev/null 2>&1; then set -- \"$@\" --resume; fi
exec \"$QNN\" train {global} \"$@\" --out \"$dir\" --json
",
        last = points.len() - 1,
        qnn = shell_quote(&qnn.display().to_string()),
        global = global.join(" "),
        state_suffix = run_folder::STATE_SUFFIX,
    );
    let targets: Vec<String> = args.targets.iter().map(|t| t.to_string()).collect();
    let collect = format!(
        "#!/bin/bash
# Builds the sweep's results, plot and table from the finished point folders.
#SBATCH --job-name=qnn-sweep-collect
#SBATCH --output={o}/collect-%j.log
set -euo pipefail
QNN=\"${{QNN:-{qnn}}}\"
exec \"$QNN\" sweep --collect {o} --targets {t}
",
        qnn = shell_quote(&qnn.display().to_string()),
        t = targets.join(","),
    );
    let submit = format!(
        "#!/bin/bash
# Queues the grid, then the collection once every task has ended (whatever their outcome).
set -euo pipefail
cd {o}
jid=$(sbatch --parsable sweep.slurm)
sbatch --dependency=afterany:\"$jid\" collect.slurm
"
    );
    std::fs::create_dir_all(out.join("points"))?;
    for (name, text) in [
        ("sweep.slurm", array),
        ("collect.slurm", collect),
        ("submit.sh", submit),
    ] {
        files::write_atomic(&out.join(name), text.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(out.join(name), std::fs::Permissions::from_mode(0o755))?;
        }
    }
    println!(
        "wrote {0}/sweep.slurm ({1} array tasks), {0}/collect.slurm and {0}/submit.sh: run {0}/submit.sh on the cluster",
        out.display(),
        points.len()
    );
    Ok(())
}

/// One line of the results.
#[derive(Clone, Debug, Serialize)]
struct Row {
    point: String,
    status: String,
    dataset: String,
    bits: String,
    blocks: String,
    test_error: Option<f64>,
    val_error: Option<f64>,
    energy_uj: Option<f64>,
    compute_uj: Option<f64>,
    weights_uj: Option<f64>,
    activations_uj: Option<f64>,
    model_kib: Option<f64>,
    macs: Option<usize>,
    train_seconds: Option<f64>,
    images_per_second: Option<f64>,
}

/// Reads one point folder; a half-written or failed one becomes a row that says so.
fn read_point(dir: &Path, profile: &EnergyProfile) -> Row {
    let point = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut row = Row {
        point,
        status: String::new(),
        dataset: String::new(),
        bits: String::new(),
        blocks: String::new(),
        test_error: None,
        val_error: None,
        energy_uj: None,
        compute_uj: None,
        weights_uj: None,
        activations_uj: None,
        model_kib: None,
        macs: None,
        train_seconds: None,
        images_per_second: None,
    };
    // what the point's files prove comes first; a failure note counts only where no finished
    // run is there (a note left by an earlier attempt does not hide a later success)
    let note = || files::read_text(&dir.join("error.txt"), files::TEXT_MAX_BYTES, "a note");
    if !finished(dir) {
        if let Ok(e) = note() {
            row.status = format!("refused: {}", e.trim());
            return row;
        }
    }
    let Some(run) = RunFolder::find(dir).filter(|run| run.model_path().is_file()) else {
        row.status = "not trained yet".into();
        return row;
    };
    let model = run.model_path();
    let (_, meta) = match checkpoint::load_model(&model) {
        Ok(m) => m,
        Err(e) => {
            row.status = format!("unreadable model: {e}");
            return row;
        }
    };
    let c = &meta.config;
    let e = energy::estimate(c, profile);
    let summary = c.summary();
    row.dataset = meta.dataset.clone();
    row.bits = c.bits_label();
    row.blocks = match &c.net {
        Some(net) => net.name.clone(),
        None => c
            .blocks
            .iter()
            .map(|(l, f)| format!("{l}-{f}"))
            .collect::<Vec<_>>()
            .join("/"),
    };
    row.test_error = meta.test_error;
    row.val_error = meta.val_error;
    row.energy_uj = Some(e.total_uj());
    row.compute_uj = Some(e.compute_pj() * 1e-6);
    row.weights_uj = Some(e.weights_pj() * 1e-6);
    row.activations_uj = Some(e.activations_pj() * 1e-6);
    row.model_kib = Some(summary.weight_bytes as f64 / 1024.0);
    row.macs = Some(summary.macs);
    if let Ok(reports) = run.read_metrics() {
        if !reports.is_empty() {
            row.train_seconds = Some(reports.iter().map(|r| r.seconds).sum());
            row.images_per_second = Some(
                reports.iter().map(|r| r.images_per_second).sum::<f64>() / reports.len() as f64,
            );
        }
    }
    let state = run.state_path().is_file().then(|| run.saved_progress());
    row.status = match state {
        Some(Ok((done, all))) if done >= all => "done".into(),
        Some(Ok((done, all))) => format!("unfinished (epoch {done} of {all})"),
        Some(Err(e)) => format!("unreadable state: {e}"),
        None => "no training state".into(),
    };
    row
}

/// The points with a test error that no cheaper point beats, by energy.
fn pareto(rows: &[&Row]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.sort_by(|&a, &b| {
        rows[a]
            .energy_uj
            .partial_cmp(&rows[b].energy_uj)
            .expect("finite")
    });
    let mut best = f64::INFINITY;
    let mut front = Vec::new();
    for i in idx {
        let e = rows[i].test_error.unwrap_or(f64::INFINITY);
        if e < best {
            best = e;
            front.push(i);
        }
    }
    front
}

fn collect(dir: &Path, targets: &[f64], profile: &EnergyProfile) -> Result<()> {
    let points = dir.join("points");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&points)
        .with_context(|| {
            format!(
                "{}: no point folders (is this a sweep folder?)",
                points.display()
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let rows: Vec<Row> = dirs.iter().map(|d| read_point(d, profile)).collect();
    // results: JSON lines and CSV
    let mut jsonl = String::new();
    for r in &rows {
        jsonl.push_str(&serde_json::to_string(r)?);
        jsonl.push('\n');
    }
    files::write_atomic(&dir.join("sweep.jsonl"), jsonl.as_bytes())?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record([
        "point",
        "status",
        "dataset",
        "bits",
        "blocks",
        "test_error",
        "val_error",
        "energy_uj",
        "compute_uj",
        "weights_uj",
        "activations_uj",
        "model_kib",
        "macs",
        "train_seconds",
        "images_per_second",
    ])?;
    let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    for r in &rows {
        csv.write_record([
            r.point.clone(),
            r.status.clone(),
            r.dataset.clone(),
            r.bits.clone(),
            r.blocks.clone(),
            f(r.test_error),
            f(r.val_error),
            f(r.energy_uj),
            f(r.compute_uj),
            f(r.weights_uj),
            f(r.activations_uj),
            f(r.model_kib),
            r.macs.map_or(String::new(), |m| m.to_string()),
            f(r.train_seconds),
            f(r.images_per_second),
        ])?;
    }
    let csv = csv.into_inner().context("sweep.csv")?;
    files::write_atomic(&dir.join("sweep.csv"), &csv)?;

    let done: Vec<&Row> = rows
        .iter()
        .filter(|r| r.test_error.is_some() && r.energy_uj.is_some())
        .collect();
    let front = pareto(&done);
    let mut md = String::new();
    md.push_str("| point | bits | blocks | test error | energy / inference | status |\n|---|---|---|---|---|---|\n");
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.point,
            r.bits,
            r.blocks,
            r.test_error.map_or("–".into(), |e| format!("{e:.2}%")),
            r.energy_uj.map_or("–".into(), |e| format!("{e:.3} µJ")),
            r.status
        ));
    }
    md.push_str(&format!(
        "\nPareto front (no cheaper network has a lower test error): {}\n\n",
        front
            .iter()
            .map(|&i| done[i].point.as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    ));
    md.push_str("| target test error | minimum-energy network | its energy | best 8-bit network | its energy | 8-bit / minimum |\n|---|---|---|---|---|---|\n");
    for &t in targets {
        let reach: Vec<&&Row> = done
            .iter()
            .filter(|r| r.test_error.unwrap_or(f64::INFINITY) <= t)
            .collect();
        let cheapest = |rs: &[&&Row]| -> Option<Row> {
            rs.iter()
                .min_by(|a, b| a.energy_uj.partial_cmp(&b.energy_uj).expect("finite"))
                .map(|r| (**r).clone())
        };
        let best = cheapest(&reach);
        let eight = cheapest(
            &reach
                .iter()
                .copied()
                .filter(|r| r.bits == "8")
                .collect::<Vec<_>>(),
        );
        let name = |r: &Option<Row>| {
            r.as_ref().map_or("none reaches it".into(), |r| {
                format!("{} ({:.2}%)", r.point, r.test_error.unwrap_or(0.0))
            })
        };
        let energy = |r: &Option<Row>| {
            r.as_ref()
                .and_then(|r| r.energy_uj)
                .map_or("–".into(), |e| format!("{e:.3} µJ"))
        };
        let ratio = match (&best, &eight) {
            (Some(b), Some(e)) => format!(
                "{:.1}×",
                e.energy_uj.unwrap_or(0.0) / b.energy_uj.unwrap_or(1.0)
            ),
            _ => "–".into(),
        };
        md.push_str(&format!(
            "| ≤ {t}% | {} | {} | {} | {} | {ratio} |\n",
            name(&best),
            energy(&best),
            name(&eight),
            energy(&eight)
        ));
    }
    files::write_atomic(&dir.join("sweep.md"), md.as_bytes())?;
    print!("{md}");
    if done.is_empty() {
        println!("no finished point yet: no plot");
    } else {
        plot(dir, &done, &front)?;
        println!(
            "results: {0}/sweep.csv, {0}/sweep.jsonl, {0}/sweep.md; plot: {0}/sweep.png, {0}/sweep.svg",
            dir.display()
        );
    }
    Ok(())
}

fn color(bits: &str) -> RGBColor {
    match bits {
        "0" => RGBColor(214, 39, 40),
        "1" | "2" => RGBColor(255, 127, 14),
        "3" | "4" => RGBColor(44, 160, 44),
        "8" => RGBColor(31, 119, 180),
        "16" => RGBColor(148, 103, 189),
        _ => RGBColor(90, 90, 90),
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    rows: &[&Row],
    front: &[usize],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let e: Vec<f64> = rows.iter().map(|r| r.energy_uj.unwrap_or(1.0)).collect();
    let t: Vec<f64> = rows.iter().map(|r| r.test_error.unwrap_or(0.0)).collect();
    let (lo, hi) = e
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let top = t.iter().fold(1.0f64, |a, &v| a.max(v)) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "test error against energy per inference",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((lo / 1.5..hi * 1.5).log_scale(), 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("energy per inference (µJ, log scale)")
        .y_desc("test error (%)")
        .label_style(("sans-serif", 13))
        .draw()?;
    let line: Vec<(f64, f64)> = front.iter().map(|&i| (e[i], t[i])).collect();
    chart
        .draw_series(LineSeries::new(line, BLACK.stroke_width(2)))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
    let mut seen = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        // the body's width picks the colour; a network whose first or output layer has other
        // widths ("4 first 8 last 8") is a triangle
        let (body, ends) = r.bits.split_once(' ').unwrap_or((r.bits.as_str(), ""));
        let c = color(body);
        let mixed = !ends.is_empty();
        let s = if mixed {
            chart.draw_series(std::iter::once(TriangleMarker::new(
                (e[i], t[i]),
                7,
                c.filled(),
            )))?
        } else {
            chart.draw_series(std::iter::once(Circle::new((e[i], t[i]), 5, c.filled())))?
        };
        if !seen.contains(&r.bits) {
            seen.push(r.bits.clone());
            let mut label = match body {
                "0" => "binary".to_string(),
                "float" => "float".into(),
                b => format!("{b}-bit"),
            };
            if mixed {
                label.push_str(&format!(", {ends}"));
                s.label(label)
                    .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 7, c.filled()));
            } else {
                s.label(label)
                    .legend(move |(x, y)| Circle::new((x + 9, y), 5, c.filled()));
            }
        }
        chart.draw_series(std::iter::once(Text::new(
            r.point.clone(),
            (e[i] * 1.04, t[i] + top * 0.015),
            ("sans-serif", 12),
        )))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}

fn plot(dir: &Path, rows: &[&Row], front: &[usize]) -> Result<()> {
    run_folder::plot::register_font();
    let (w, h) = (960u32, 640u32);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area(),
        rows,
        front,
    )
    .map_err(|e| anyhow::anyhow!("drawing the sweep: {e}"))?;
    files::write_atomic(&dir.join("sweep.png"), &run_folder::plot::png(&rgb, w, h)?)?;
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(),
        rows,
        front,
    )
    .map_err(|e| anyhow::anyhow!("drawing the sweep: {e}"))?;
    files::write_atomic(&dir.join("sweep.svg"), svg.as_bytes())?;
    Ok(())
}
