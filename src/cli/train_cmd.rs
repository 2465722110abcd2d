//! `qnn train`, `qnn eval`, `qnn info`: the seed's job and its files.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use qnn::backend::Backend;
use qnn::checkpoint::{self, percent, ModelMeta, Tensor};
use qnn::data::{self, DatasetKind};
use qnn::model::{Model, NetConfig};
use qnn::quant::Nonlinearity;
use qnn::train::{EpochReport, Optimizer, RunIdentity, TrainOptions, TrainState, Trainer};

use super::{dataset_kind, open_device, plot, with_flag, Interrupted};
use crate::{with_backend, EvalArgs, NetArgs, OptimizerChoice, TrainArgs};

/// The network configuration the flags describe, for a data set of shape `chw`.
pub fn net_config(net: &NetArgs, chw: (usize, usize, usize)) -> Result<NetConfig> {
    let nonlinearity: Nonlinearity = net.nl.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let config = NetConfig {
        input: [chw.0, chw.1, chw.2],
        blocks: [(net.nla, net.nfa), (net.nlb, net.nfb), (net.nlc, net.nfc)],
        quantized: net.quantized == 1,
        bits: net.bits,
        nonlinearity,
        sym: net.sym == 1,
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

struct Paths {
    model: PathBuf,
    metrics: PathBuf,
    plot: PathBuf,
    state: PathBuf,
    lock: PathBuf,
}

impl Paths {
    fn new(out: &Path, name: &str) -> Self {
        Paths {
            model: out.join(format!("{name}.safetensors")),
            metrics: out.join(format!("{name}.metrics.jsonl")),
            plot: out.join(format!("{name}.png")),
            state: out.join(format!("{name}.state.safetensors")),
            lock: out.join(format!(".{name}.lock")),
        }
    }
}

/// Makes `out`, proves it writable and takes the run's lock file in it, held until the returned
/// file is dropped (the OS releases it if the process dies), so two runs never write into one
/// model's files at once.
fn lock_run(out: &Path, paths: &Paths) -> Result<std::fs::File> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the folder", out.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.lock)
        .with_context(|| format!("--out {}: cannot write there", out.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another qnn run is training into {} right now (it holds {}): wait for it, or use another --out",
            paths.model.display(),
            paths.lock.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            bail!("{}: cannot lock ({e})", paths.lock.display())
        }
    }
}

/// A run that neither resumes nor fine-tunes must not replace a model it did not produce.
fn refuse_overwrite(args: &TrainArgs, paths: &Paths) -> Result<()> {
    if args.resume || args.finetune == 1 || args.overwrite {
        return Ok(());
    }
    for f in [&paths.model, &paths.state] {
        if f.exists() {
            let what = match checkpoint::load_model(&paths.model) {
                Ok((_, m)) => format!(
                    " (epoch {}, validation error {})",
                    m.epoch,
                    percent(m.val_error)
                ),
                Err(_) => String::new(),
            };
            bail!(
                "{} already exists{what}: continue that run with --resume, fine-tune it with -ft 1, \
                 pass --overwrite to replace it, or choose another --out",
                f.display()
            );
        }
    }
    Ok(())
}

pub fn train(args: TrainArgs) -> Result<()> {
    let kind = dataset_kind(&args.net.dataset)?;
    let config = net_config(&args.net, kind.chw())?;
    let options = TrainOptions {
        epochs: args.epochs,
        lr_start: args.lr,
        lr_final: args.lr_final,
        batch: args.batch_size,
        flip: !args.no_flip,
        shuffle: !args.no_shuffle,
        seed: args.seed,
        optimizer: match args.optimizer {
            OptimizerChoice::Adam => Optimizer::Adam,
            OptimizerChoice::Sgd => Optimizer::Sgd {
                momentum: args.momentum,
            },
        },
    };
    options.validate().map_err(with_flag)?;
    if args.stop_after == Some(0) {
        bail!("--stop-after 0: nothing would be trained; give at least 1 epoch");
    }
    if args.resume && (args.init.is_some() || args.finetune == 1) {
        bail!(
            "--resume continues a run as it was saved: it cannot be combined with --init or -ft 1"
        );
    }
    let name = config.model_name(kind.name());
    let paths = Paths::new(&args.out, &name);
    // the output is checked, locked and protected before the (slow) data and device start
    let _lock = lock_run(&args.out, &paths)?;
    refuse_overwrite(&args, &paths)?;
    let dataset = data::load(kind, &args.data_dir)?;
    let valid = args.valid.unwrap_or_else(|| kind.default_valid());
    if valid == 0 {
        bail!("--valid 0: the seed's loop selects the best epoch on a validation split; give at least 1 image");
    }
    let (train_split, valid_split) = dataset.split(valid)?;
    let train_images = train_split.len() * if options.flip { 2 } else { 1 };
    if options.batch > train_images {
        bail!("--batch-size {} is larger than the training split ({train_images} images): use {train_images} or less", options.batch);
    }
    let identity = RunIdentity::new(kind.name(), &dataset, valid, &options);
    let mut dev = open_device(args.device)?;
    with_backend!(&mut dev, |b| run_training(
        b,
        &args,
        kind,
        config,
        options,
        &dataset,
        (&train_split, &valid_split),
        &paths,
        &identity
    ))
}

#[allow(clippy::too_many_arguments)]
fn run_training<B: Backend>(
    b: &mut B,
    args: &TrainArgs,
    kind: DatasetKind,
    config: NetConfig,
    options: TrainOptions,
    dataset: &data::Dataset,
    (train_split, valid_split): (&data::Split, &data::Split),
    paths: &Paths,
    identity: &RunIdentity,
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
    println!("device: {}", b.describe());
    println!(
        "data: {} — {} training images{}, {} validation, {} test",
        kind.name(),
        train_split.len(),
        if options.flip {
            " (doubled with flips)"
        } else {
            ""
        },
        valid_split.len(),
        dataset.test.len()
    );
    let model = Model::new(b, config.clone(), options.batch, options.seed).map_err(with_flag)?;
    if args.finetune == 1 {
        load_into(b, &model, &paths.model)
            .with_context(|| format!("-ft 1 loads {}", paths.model.display()))?;
        println!("fine-tuning from {}", paths.model.display());
    }
    if let Some(init) = &args.init {
        load_into(b, &model, init).with_context(|| format!("--init {}", init.display()))?;
        println!("initialised from {}", init.display());
    }
    println!("{}", model.summary());
    let mut trainer = Trainer::new(
        b,
        model,
        options.clone(),
        dataset.chw,
        train_split,
        valid_split,
        &dataset.test,
    )
    .map_err(with_flag)?;
    if args.finetune == 1 {
        let start = pollster::block_on(trainer.set_baseline(b))?;
        println!(
            "the starting model: validation error {:.2}%; an epoch replaces it only by doing at least as well",
            start.error
        );
    }
    let mut history: Vec<EpochReport> = Vec::new();
    if args.resume {
        history = resume(b, &mut trainer, paths, identity)?;
        println!(
            "resuming after epoch {} of {} (state in {})",
            trainer.state.epoch,
            options.epochs,
            paths.state.display()
        );
    }
    let terminal = std::io::stderr().is_terminal();
    let last_epoch = args.stop_after.map_or(options.epochs, |n| {
        (trainer.state.epoch + n).min(options.epochs)
    });
    // what this invocation saved, for the closing lines
    let mut saved_model = false;
    // (epoch, steps of it done), or (last finished epoch, None) when the signal came between epochs
    let mut interrupted_in: Option<(usize, Option<usize>)> = None;
    while trainer.state.epoch < last_epoch {
        let epoch = trainer.state.epoch + 1;
        let bar = terminal.then(|| {
            let pb = indicatif::ProgressBar::new(trainer.steps_per_epoch() as u64);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "epoch {prefix} {bar:30} {pos}/{len} steps {per_sec} {msg}",
                )
                .expect("valid template"),
            );
            pb.set_prefix(format!("{epoch}/{}", options.epochs));
            pb
        });
        let mut last_read = Instant::now();
        let mut steps_done = 0;
        let report = pollster::block_on(trainer.run_epoch(b, &stop, |info| {
            steps_done = info.step;
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
        let report = report?;
        if report.interrupted {
            interrupted_in = Some((epoch, Some(steps_done)));
            break;
        }
        print_report(&report, options.epochs);
        if report.improved {
            let tensors = pollster::block_on(trainer.model.export(b))?;
            let meta = ModelMeta {
                dataset: kind.name().into(),
                config: config.clone(),
                epoch: report.epoch,
                val_error: Some(report.val_error),
                test_error: Some(report.test_error),
            };
            checkpoint::save_model(&paths.model, &tensors, &meta)?;
            saved_model = true;
        }
        history.push(report);
        write_metrics(&paths.metrics, &history)?;
        if let Err(e) = plot::curves(&paths.plot, &history, &config.model_name(kind.name())) {
            eprintln!("warning: could not draw {}: {e}", paths.plot.display());
        }
        save_state(b, &trainer, &paths.state, identity)?;
        if stop.load(Ordering::Relaxed) {
            // the signal came during validation: the epoch is complete and saved
            interrupted_in = Some((epoch, None));
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let s = &trainer.state;
    let has_best = s.best_epoch > 0 || args.finetune == 1;
    if interrupted_in.is_none() && trainer.state.epoch < options.epochs {
        println!(
            "stopped after epoch {} of {} as asked; continue with --resume",
            trainer.state.epoch, options.epochs
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
    if saved_model || paths.model.is_file() && (args.resume || args.finetune == 1) {
        println!("model:   {}", paths.model.display());
    } else if args.finetune == 1 {
        println!(
            "no epoch did as well as the starting model: {} is unchanged",
            paths.model.display()
        );
    }
    if !history.is_empty() {
        println!("metrics: {}", paths.metrics.display());
        println!("plot:    {}", paths.plot.display());
    }
    if args.json {
        let j = serde_json::json!({
            "best_epoch": s.best_epoch,
            "best_val_error": has_best.then_some(s.best_val_error),
            "test_error": has_best.then_some(s.test_error),
            "epochs_done": s.epoch,
            "model": paths.model.is_file().then(|| paths.model.display().to_string()),
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
                paths.model.display()
            )
        } else if args.finetune == 1 || args.resume {
            format!("{} is unchanged", paths.model.display())
        } else {
            "no epoch finished, so no model was saved".to_string()
        };
        let during = match step {
            Some(step) => format!(
                "during epoch {epoch} (after {step} of {} steps); that epoch was not saved",
                trainer.steps_per_epoch()
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

fn write_metrics(path: &Path, history: &[EpochReport]) -> Result<()> {
    let mut text = String::new();
    for r in history {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    checkpoint::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Loads a saved model into `model`, refusing another architecture by its first mismatched tensor.
fn load_into<B: Backend>(b: &mut B, model: &Model, path: &Path) -> Result<()> {
    let (tensors, meta) = checkpoint::load_model(path)?;
    if meta.config.input != model.config.input {
        bail!(
            "{}: its input is {:?}, this run's is {:?}",
            path.display(),
            meta.config.input,
            model.config.input
        );
    }
    model.import(b, &tensors)?;
    Ok(())
}

fn save_state<B: Backend>(
    b: &mut B,
    trainer: &Trainer,
    path: &Path,
    identity: &RunIdentity,
) -> Result<()> {
    let mut tensors: Vec<Tensor> = pollster::block_on(trainer.model.export(b))?;
    for p in &trainer.model.params {
        tensors.push((
            format!("{}.adam_m", p.name),
            p.shape.clone(),
            pollster::block_on(b.read_f32(p.m))?,
        ));
        tensors.push((
            format!("{}.adam_v", p.name),
            p.shape.clone(),
            pollster::block_on(b.read_f32(p.v))?,
        ));
    }
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "qnn-train-state-v2".to_string());
    meta.insert(
        "config".to_string(),
        serde_json::to_string(&trainer.model.config)?,
    );
    meta.insert("run".to_string(), serde_json::to_string(identity)?);
    meta.insert("state".to_string(), serde_json::to_string(&trainer.state)?);
    checkpoint::write_atomic(path, &checkpoint::to_bytes(&tensors, meta)?)?;
    Ok(())
}

/// Flags that set each setting of [`RunIdentity`], for the refusal message.
fn identity_flag(setting: &str) -> &'static str {
    match setting {
        "dataset" => "-ds",
        "data" => "--data-dir",
        "validation images" | "training images" => "--valid",
        "epochs" => "-ne",
        "learning rate" => "-lr",
        "final learning rate" => "--lr-final",
        "batch size" => "--batch-size",
        "flips" => "--no-flip",
        "shuffle" => "--no-shuffle",
        "seed" => "--seed",
        _ => "--optimizer / --momentum",
    }
}

fn resume<B: Backend>(
    b: &mut B,
    trainer: &mut Trainer,
    paths: &Paths,
    identity: &RunIdentity,
) -> Result<Vec<EpochReport>> {
    let state_file = paths.state.display().to_string();
    let bytes = std::fs::read(&paths.state).with_context(|| {
        format!("--resume needs {state_file} (written after each finished epoch)")
    })?;
    let (tensors, meta) = checkpoint::from_bytes(&bytes, &state_file)?;
    let get = |k: &str| {
        meta.get(k).with_context(|| {
            format!("{state_file}: not a qnn training state of this version (no '{k}'); start the run again without --resume")
        })
    };
    let config: NetConfig = serde_json::from_str(get("config")?)
        .with_context(|| format!("{state_file}: unreadable network"))?;
    if config != trainer.model.config {
        bail!(
            "{state_file}: saved for another network ({}); resume with the flags of that run",
            config.model_name(&identity.dataset)
        );
    }
    let saved: RunIdentity = serde_json::from_str(get("run")?)
        .with_context(|| format!("{state_file}: unreadable run settings"))?;
    let diff = saved.differences(identity);
    if !diff.is_empty() {
        let lines: Vec<String> = diff
            .iter()
            .map(|(what, was, now)| {
                if *what == "data" {
                    format!(
                        "the data files differ from the ones the run trained on ({})",
                        identity_flag(what)
                    )
                } else {
                    format!("{what} ({}): saved {was}, now {now}", identity_flag(what))
                }
            })
            .collect();
        bail!(
            "{state_file}: this run's settings differ from the saved run's, so resuming would train another run: {}. Resume with the same settings, or start a new run (--overwrite)",
            lines.join("; ")
        );
    }
    let state: TrainState = serde_json::from_str(get("state")?)
        .with_context(|| format!("{state_file}: unreadable state"))?;
    trainer.model.import(b, &tensors)?;
    for p in &trainer.model.params {
        for (suffix, buf) in [("adam_m", p.m), ("adam_v", p.v)] {
            let name = format!("{}.{suffix}", p.name);
            let t = tensors
                .iter()
                .find(|t| t.0 == name)
                .with_context(|| format!("{state_file}: missing '{name}'"))?;
            b.write_f32(buf, &t.2);
        }
    }
    trainer.state = state;
    let mut history = Vec::new();
    if let Ok(text) = std::fs::read_to_string(&paths.metrics) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r: EpochReport = serde_json::from_str(line)
                .with_context(|| format!("{}: unreadable line", paths.metrics.display()))?;
            if r.epoch <= trainer.state.epoch {
                history.push(r);
            }
        }
    }
    Ok(history)
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let (tensors, meta) = checkpoint::load_model(&args.model)?;
    let kind = dataset_kind(args.dataset.as_deref().unwrap_or(&meta.dataset))?;
    let (c, h, w) = kind.chw();
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
    let dataset = data::load(kind, &args.data_dir)?;
    if dataset.test.is_empty() {
        bail!("{}: the test set holds no images", kind.name());
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
    let c = &meta.config;
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
