//! `qnn train`, `qnn eval`, `qnn info`: the seed's job and its files.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use qnn::backend::Backend;
use qnn::checkpoint::{self, percent};
use qnn::data::{self, Dataset, DatasetKind};
use qnn::image_folder::{self, FolderOptions, Resize};
use qnn::model::{Model, NetConfig};
use qnn::quant::Nonlinearity;
use qnn::run::{EpochOutcome, Run, RunSettings, Start};
use qnn::run_folder::{RunFolder, StartFiles};
use qnn::train::{EpochReport, Optimizer, TrainOptions};

use super::args::{EvalArgs, NetArgs, OptimizerChoice, TrainArgs};
use super::{dataset_kind, open_device, with_flag, Interrupted};
use crate::with_backend;

/// The network configuration the flags describe, for a data set of shape `chw` and `classes`
/// classes.
pub fn net_config(net: &NetArgs, chw: (usize, usize, usize), classes: usize) -> Result<NetConfig> {
    let config = flags_net_config(net, chw, classes)?;
    let config = config.with_end_bits(net.first_bits, net.last_bits);
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("--first-bits / --last-bits: {e}"))?;
    Ok(config)
}

/// The network of the seed's flags or of `--net`, before `--first-bits` / `--last-bits`.
fn flags_net_config(
    net: &NetArgs,
    chw: (usize, usize, usize),
    classes: usize,
) -> Result<NetConfig> {
    let nonlinearity: Nonlinearity = net.nl.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    if let Some(path) = &net.net {
        let text = qnn::files::read_text(path, qnn::files::TEXT_MAX_BYTES, "a net file")?;
        let input = [chw.0, chw.1, chw.2];
        return Ok(NetConfig::from_net_text(
            input,
            classes,
            &text,
            &path.display().to_string(),
        )?);
    }
    let config = NetConfig {
        input: [chw.0, chw.1, chw.2],
        classes,
        blocks: [(net.nla, net.nfa), (net.nlb, net.nfb), (net.nlc, net.nfc)],
        quantized: net.quantized == 1,
        bits: net.bits,
        nonlinearity,
        sym: net.sym == 1,
        net: None,
    };
    config.validate().map_err(|e| {
        // the library names settings; a person at the terminal wants the flags
        let msg = e
            .to_string()
            .replace("symmetric clipping for", "symmetric clipping (-sym 1) for")
            .replace("2 bits or more", "-nb 2 or more");
        anyhow::anyhow!(
            "-nl {} -nb {} -sym {} -q {}: {msg}",
            net.nl,
            net.bits,
            net.sym,
            net.quantized
        )
    })?;
    Ok(config)
}

/// What the data set tells the settings: its image shape, class count and, for a folder of
/// pictures, how many of its training images validate.
pub struct DataShape {
    pub chw: (usize, usize, usize),
    pub classes: usize,
    pub valid: Option<usize>,
    /// A set of pictures' name (model files start with it).
    pub name: Option<String>,
}

impl DataShape {
    fn of_kind(kind: DatasetKind) -> Self {
        DataShape {
            chw: kind.chw(),
            classes: kind.classes(),
            valid: None,
            name: None,
        }
    }
    fn of_folder((d, valid, name): &(Dataset, usize, String)) -> Self {
        DataShape {
            chw: d.chw,
            classes: d.classes(),
            valid: Some(*valid),
            name: Some(name.clone()),
        }
    }
}

/// The run the flags describe, checked (messages name the flags). A folder of pictures is read
/// (from its cache when it has one) to learn its shape and classes.
pub fn run_settings(args: &TrainArgs) -> Result<RunSettings> {
    let kind = dataset_kind(&args.net.dataset)?;
    if kind == DatasetKind::Folder {
        return settings_for(args, kind, &DataShape::of_folder(&load_folder(args)?));
    }
    settings_for(args, kind, &DataShape::of_kind(kind))
}

/// The run the flags describe on data of `shape`, checked.
fn settings_for(args: &TrainArgs, kind: DatasetKind, shape: &DataShape) -> Result<RunSettings> {
    if kind != DatasetKind::Folder {
        let given = [
            ("--input", args.input.is_some()),
            ("--resize", args.resize.is_some()),
            ("--skip-bad-images", args.skip_bad_images),
            ("--split-seed", args.split_seed.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|g| g.1) {
            bail!(
                "{flag} applies to your own pictures (-ds folder --data-dir DIR), not to {}",
                kind.name()
            );
        }
    }
    let settings = RunSettings {
        dataset: kind,
        net: net_config(&args.net, shape.chw, shape.classes)?,
        options: TrainOptions {
            epochs: args.epochs,
            lr_start: args.lr,
            lr_final: args.lr_final,
            batch: args.batch_size,
            flip: !args.no_flip,
            crop_pad: args.crop_pad,
            shuffle: !args.no_shuffle,
            seed: args.seed,
            optimizer: match args.optimizer {
                OptimizerChoice::Adam => Optimizer::Adam,
                OptimizerChoice::Sgd => Optimizer::Sgd {
                    momentum: args.momentum,
                },
            },
        },
        valid: args.valid.or(shape.valid),
        data_name: shape.name.clone(),
    };
    settings.validate().map_err(with_flag)?;
    Ok(settings)
}

/// Reads `--data-dir` as a folder of pictures (or a `.zip` of one) with the folder flags,
/// through a cache in `.qnn-cache/` (made on the first read, used while no file or option
/// changes); prints what it found. Returns the data set, how many of its training images
/// validate, and the set's name.
pub fn load_folder(args: &TrainArgs) -> Result<(Dataset, usize, String)> {
    let dir = &args.data_dir;
    let input = match &args.input {
        Some(s) => Some(parse_input(s)?),
        None => None,
    };
    let opts = FolderOptions {
        input,
        resize: match &args.resize {
            Some(r) => r
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--resize {r}: {e}"))?,
            None => Resize::Stretch,
        },
        skip_bad: args.skip_bad_images,
        seed: args.split_seed.unwrap_or(FolderOptions::default().seed),
        ..FolderOptions::default()
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("decoding {pos}/{len} pictures {bar:30} {eta}")
            .expect("a valid template"),
    );
    let (d, report, unwritten) = image_folder::load_cached(dir, &opts, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let shape = format!(
        "{} classes, {}×{}×{}",
        d.class_names.len(),
        d.chw[0],
        d.chw[1],
        d.chw[2]
    );
    match report {
        None => println!(
            "data: {} — {} pictures, {shape}, from the cache in {}",
            dir.display(),
            d.train.labels.len() + d.test.labels.len(),
            image_folder::cache_path(dir, "")
                .parent()
                .unwrap_or(dir)
                .display()
        ),
        Some(report) => {
            println!("data: {} — {report}; {shape}", dir.display());
            for (path, why) in report.bad.iter().take(5) {
                println!("  skipped {}: {why}", path.display());
            }
            if report.bad.len() > 5 {
                println!("  … and {} more", report.bad.len() - 5);
            }
        }
    }
    if let Some(e) = unwritten {
        println!("  (no cache: {e})");
    }
    let name = d.name.clone();
    let (d, valid) = data::from_folder(d);
    Ok((d, valid, name))
}

/// `--input CxHxW`, e.g. `3x32x32` (also `×` or `,`).
fn parse_input(s: &str) -> Result<[usize; 3]> {
    let parts: Vec<&str> = s.split(['x', 'X', '×', ',']).map(str::trim).collect();
    let bad =
        || anyhow::anyhow!("--input {s}: give channels×height×width, e.g. 1x28x28 or 3x32x32");
    if parts.len() != 3 {
        return Err(bad());
    }
    let mut out = [0usize; 3];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p.parse().map_err(|_| bad())?;
    }
    if !(out[0] == 1 || out[0] == 3) || out[1] == 0 || out[2] == 0 {
        return Err(bad());
    }
    Ok(out)
}

pub fn train(args: TrainArgs) -> Result<()> {
    // a folder of pictures is read first: its shape and classes shape the network
    let kind = dataset_kind(&args.net.dataset)?;
    let pictures = if kind == DatasetKind::Folder {
        Some(load_folder(&args)?)
    } else {
        None
    };
    let settings = match &pictures {
        Some(p) => settings_for(&args, kind, &DataShape::of_folder(p))?,
        None => run_settings(&args)?,
    };
    if args.stop_after == Some(0) {
        bail!("--stop-after 0: nothing would be trained; give at least 1 epoch");
    }
    if args.resume && (args.init.is_some() || args.finetune == 1) {
        bail!(
            "--resume continues a run as it was saved: it cannot be combined with --init or -ft 1"
        );
    }
    let folder = RunFolder::new(&args.out, settings.model_name());
    // the output is checked, locked and protected before the (slow) data and device start
    let _lock = folder.lock()?;
    let from = if args.finetune == 1 {
        StartFiles::FineTune
    } else if let Some(init) = &args.init {
        StartFiles::Init {
            model: init.clone(),
            overwrite: args.overwrite,
        }
    } else if args.resume {
        StartFiles::Resume
    } else {
        StartFiles::Fresh {
            overwrite: args.overwrite,
        }
    };
    folder.refuse_overwrite(&from)?;
    let dataset = match pictures {
        Some((d, _, _)) => d,
        None => data::load(settings.dataset, &args.data_dir)?,
    };
    let start = folder.start_bytes(from)?;
    let mut dev = open_device(args.device)?;
    with_backend!(&mut dev, |b| run_training(
        b,
        &args,
        settings,
        &dataset,
        start.start(),
        &folder
    ))
}

/// What went wrong loading the start of a run, with the file and flag that gave it.
fn start_error(e: qnn::Error, args: &TrainArgs, folder: &RunFolder) -> anyhow::Error {
    match e {
        qnn::Error::ResumeMismatch(changes) => {
            let lines: Vec<String> = changes
                .iter()
                .map(|c| {
                    let flag = match c.setting {
                        "dataset" => "-ds",
                        "data" => "--data-dir",
                        "validation images" | "training images" => "--valid",
                        "epochs" => "-ne",
                        "learning rate" => "-lr",
                        "final learning rate" => "--lr-final",
                        "batch size" => "--batch-size",
                        "flips" => "--no-flip",
                        "crop padding" => "--crop-pad",
                        "shuffle" => "--no-shuffle",
                        "seed" => "--seed",
                        "network" => "the network flags",
                        _ => "--optimizer / --momentum",
                    };
                    if c.setting == "data" {
                        format!("the data files differ from the ones the run trained on ({flag})")
                    } else {
                        format!("{} ({flag}): saved {}, now {}", c.setting, c.saved, c.now)
                    }
                })
                .collect();
            anyhow::anyhow!(
                "{}: this run's settings differ from the saved run's, so resuming would train another run: {}. Resume with the same settings, or start a new run (--overwrite)",
                folder.state_path().display(),
                lines.join("; ")
            )
        }
        e => {
            let file = if args.finetune == 1 {
                format!("-ft 1 loads {}", folder.model_path().display())
            } else if let Some(init) = &args.init {
                format!("--init {}", init.display())
            } else if args.resume {
                format!("--resume loads {}", folder.state_path().display())
            } else {
                return with_flag(e);
            };
            anyhow::anyhow!("{file}: {}", with_flag(e))
        }
    }
}

fn run_training<B: Backend>(
    b: &mut B,
    args: &TrainArgs,
    settings: RunSettings,
    dataset: &data::Dataset,
    start: Start<'_>,
    folder: &RunFolder,
) -> Result<()> {
    let started = Instant::now();
    // first, so that a signal at any moment from here on ends the run with its report
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // a second Ctrl-C while the step finishes is ignored; the handler may already exist in tests
        let _ = ctrlc::set_handler(move || {
            if !stop.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted: stopping after the current step");
            }
        });
    }
    let kind = settings.dataset;
    let epochs = settings.options.epochs;
    let valid = settings.valid_images();
    println!("device: {}", b.describe());
    println!(
        "data: {} — {} training images{}, {} validation, {} test",
        kind.name(),
        dataset.train.len().saturating_sub(valid),
        match (settings.options.flip, settings.options.crop_pad) {
            (true, 0) => " (doubled with flips)".to_string(),
            (true, p) => format!(" (doubled with flips; random crops of ±{p} pixels)"),
            (false, 0) => String::new(),
            (false, p) => format!(" (random crops of ±{p} pixels)"),
        },
        valid.min(dataset.train.len()),
        dataset.test.len()
    );
    println!("{}", settings.net.summary());
    let resuming = matches!(start, Start::Resume { .. });
    let fine_tune = matches!(start, Start::FineTune(_));
    let mut run = pollster::block_on(Run::new(b, settings, dataset, start))
        .map_err(|e| start_error(e, args, folder))?;
    if fine_tune {
        println!(
            "fine-tuning from {}: its validation error is {:.2}%; an epoch replaces it only by doing at least as well",
            folder.model_path().display(),
            run.state().best_val_error
        );
    }
    if let Some(init) = &args.init {
        println!("initialised from {}", init.display());
    }
    if resuming {
        println!(
            "resuming after epoch {} of {epochs} (state in {})",
            run.state().epoch,
            folder.state_path().display()
        );
    }
    let terminal = std::io::stderr().is_terminal();
    let last_epoch = args
        .stop_after
        .map_or(epochs, |n| (run.state().epoch + n).min(epochs));
    // what this invocation saved, for the closing lines
    let mut saved_model = false;
    // (epoch, steps of it done), or (last finished epoch, None) when the signal came between epochs
    let mut interrupted_in: Option<(usize, Option<usize>)> = None;
    while run.state().epoch < last_epoch {
        let epoch = run.state().epoch + 1;
        let bar = terminal.then(|| {
            let pb = indicatif::ProgressBar::new(run.steps_per_epoch() as u64);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "epoch {prefix} {bar:30} {pos}/{len} steps {per_sec} {msg}",
                )
                .expect("valid template"),
            );
            pb.set_prefix(format!("{epoch}/{epochs}"));
            pb
        });
        let mut last_read = Instant::now();
        let outcome = pollster::block_on(run.next_epoch(b, &stop, |info| {
            if let Some(pb) = &bar {
                pb.set_position(info.step as u64);
                if let Some(l) = info.loss {
                    pb.set_message(format!("loss {l:.4}"));
                }
            }
            // read the running loss back at most 4 times a second, only for a visible bar
            let want = bar.is_some() && last_read.elapsed().as_secs_f64() > 0.25;
            if want {
                last_read = Instant::now();
            }
            want
        }));
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
        let report = match outcome? {
            EpochOutcome::Interrupted { epoch, steps_done } => {
                interrupted_in = Some((epoch, Some(steps_done)));
                break;
            }
            EpochOutcome::Finished(r) => r,
        };
        print_report(&report, epochs);
        let saved = pollster::block_on(folder.save_epoch(b, &run, &report))?;
        saved_model |= saved.best_model;
        if let Err(e) = saved.plot {
            eprintln!(
                "warning: could not draw {}: {e}",
                folder.plot_path().display()
            );
        }
        if stop.load(Ordering::Relaxed) {
            // the signal came during validation: the epoch is complete and saved
            interrupted_in = Some((epoch, None));
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let s = run.state();
    let has_best = s.best_epoch > 0 || fine_tune;
    if interrupted_in.is_none() && !run.is_finished() {
        println!(
            "stopped after epoch {} of {epochs} as asked; continue with --resume",
            s.epoch
        );
    }
    if has_best {
        println!(
            "best epoch {}: validation error {:.2}%, test error {:.2}% (test accuracy {:.2}%) in {:.1}s",
            s.best_epoch,
            s.best_val_error,
            s.test_error,
            100.0 - s.test_error,
            seconds
        );
    }
    if fine_tune && run.best_is_starting_model() {
        println!(
            "no epoch did as well as the starting model: {} is unchanged",
            folder.model_path().display()
        );
    } else if saved_model || folder.model_path().is_file() && resuming {
        println!("model:   {}", folder.model_path().display());
    }
    if !run.history().is_empty() {
        println!("metrics: {}", folder.metrics_path().display());
        println!("plot:    {}", folder.plot_path().display());
    }
    if args.json {
        let j = serde_json::json!({
            "best_epoch": s.best_epoch,
            "best_val_error": has_best.then_some(s.best_val_error),
            "test_error": has_best.then_some(s.test_error),
            "epochs_done": s.epoch,
            "model": folder.model_path().is_file().then(|| folder.model_path().display().to_string()),
            "interrupted": interrupted_in.is_some(),
            "seconds": seconds,
        });
        println!("{j}");
    }
    if let Some((epoch, step)) = interrupted_in {
        let kept = if s.epoch > 0 {
            format!(
                "epochs 1–{} are saved (continue with --resume); the best model, epoch {}, is {}",
                s.epoch,
                s.best_epoch,
                folder.model_path().display()
            )
        } else if fine_tune || resuming {
            format!("{} is unchanged", folder.model_path().display())
        } else {
            "no epoch finished, so no model was saved".to_string()
        };
        let during = match step {
            Some(step) => format!(
                "during epoch {epoch} (after {step} of {} steps); that epoch was not saved",
                run.steps_per_epoch()
            ),
            None => format!("after epoch {epoch}"),
        };
        return Err(Interrupted(format!("interrupted {during}; {kept}")).into());
    }
    Ok(())
}

fn print_report(r: &EpochReport, epochs: usize) {
    println!(
        "Epoch {} of {} took {:.2}s ({:.0} images/s)",
        r.epoch, epochs, r.seconds, r.images_per_second
    );
    println!("  LR:                            {:.6e}", r.lr);
    println!("  training loss:                 {:.6}", r.train_loss);
    println!("  validation loss:               {:.6}", r.val_loss);
    println!("  validation error rate:         {:.2}%", r.val_error);
    println!("  best epoch:                    {}", r.best_epoch);
    println!("  best validation error rate:    {:.2}%", r.best_val_error);
    println!("  test loss:                     {:.6}", r.test_loss);
    println!("  test error rate:               {:.2}%", r.test_error);
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let (tensors, meta) = checkpoint::load_model(&args.model)?;
    let kind = dataset_kind(args.dataset.as_deref().unwrap_or(&meta.dataset))?;
    let (c, h, w) = if kind == DatasetKind::Folder {
        let [c, h, w] = meta.config.input;
        (c, h, w) // the pictures are read at the model's input
    } else {
        kind.chw()
    };
    if meta.config.input != [c, h, w] {
        bail!(
            "{} was trained on {:?} inputs; {} has {c}×{h}×{w}",
            args.model.display(),
            meta.config.input,
            kind.name()
        );
    }
    if args.batch_size == 0 {
        bail!("--batch-size 0: use at least 1");
    }
    let dataset = if kind == DatasetKind::Folder {
        // the model's test split: its input, the default split seed, every picture decodable
        let opts = FolderOptions {
            input: Some(meta.config.input),
            ..FolderOptions::default()
        };
        // through the folder's cache, as `qnn train -ds folder` reads it
        let (d, report, _) = image_folder::load_cached(&args.data_dir, &opts, &|_, _| {})?;
        if let Some(report) = report {
            println!("data: {} — {report}", args.data_dir.display());
        }
        data::from_folder(d).0
    } else {
        data::load(kind, &args.data_dir)?
    };
    if dataset.test.is_empty() {
        bail!("{}: the test set holds no images", kind.name());
    }
    dataset.validate()?;
    if meta.config.classes != dataset.classes() {
        bail!(
            "{} scores {} classes; {} has {}: evaluate a model on data of its classes",
            args.model.display(),
            meta.config.classes,
            kind.name(),
            dataset.classes()
        );
    }
    let mut dev = open_device(args.device)?;
    let result = with_backend!(&mut dev, |b| {
        // evaluation splits freely: no larger batch than the set, and one the device holds
        let want = args.batch_size.min(dataset.test.len());
        let batch = meta.config.largest_batch(&b.limits(), want).max(1);
        let model = Model::new(b, meta.config.clone(), batch, 0)?;
        model.import(b, &tensors)?;
        let set = b.upload_images(&dataset.test.pixels, &dataset.test.labels, dataset.chw)?;
        pollster::block_on(qnn::train::evaluate_set(b, &model, &set, batch))?
    });
    println!(
        "{}: {} test images, loss {:.6}, error {:.2}%",
        args.model.display(),
        dataset.test.len(),
        result.loss,
        result.error
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({"test_loss": result.loss, "test_error": result.error, "images": dataset.test.len()})
        );
    }
    Ok(())
}

/// "10 classes: 0, 1, …" with the first few names (the rest counted).
fn classes_line(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut line = format!(
        "{} classes: {}",
        names.len(),
        names[..names.len().min(SHOWN)].join(", ")
    );
    if names.len() > SHOWN {
        line.push_str(&format!(", … and {} more", names.len() - SHOWN));
    }
    line
}

pub fn info(file: &Path) -> Result<()> {
    let (_, meta) = checkpoint::load_model(file)?;
    println!("{}", file.display());
    println!(
        "  trained on {} (epoch {}), validation error {}, test error {}",
        meta.dataset,
        meta.epoch,
        percent(meta.val_error),
        percent(meta.test_error)
    );
    println!("  {}", classes_line(&meta.class_names_or_numbers()));
    let c = &meta.config;
    if let Some(net) = &c.net {
        println!(
            "  network '{}': {} layers from a net file, input {:?}",
            net.name,
            net.layers.len(),
            c.input
        );
        println!("{}", c.summary());
        return Ok(());
    }
    println!(
        "  {} {} bits, {}, sym {}, blocks A {}×{} B {}×{} C {}×{}, input {:?}",
        if c.quantized { "quantized" } else { "float" },
        c.bits,
        c.nonlinearity.name(),
        c.sym as u8,
        c.blocks[0].0,
        c.blocks[0].1,
        c.blocks[1].0,
        c.blocks[1].1,
        c.blocks[2].0,
        c.blocks[2].1,
        c.input
    );
    println!("{}", c.summary());
    Ok(())
}
