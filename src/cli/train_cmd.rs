//! `qnn train`, `qnn eval`, `qnn info`: the seed's job and its files.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use qnn::backend::Backend;
use qnn::checkpoint::{self, ModelMeta, Tensor};
use qnn::data::{self, DatasetKind};
use qnn::model::{Model, NetConfig};
use qnn::quant::Nonlinearity;
use qnn::train::{EpochReport, Optimizer, TrainOptions, TrainState, Trainer};

use super::{dataset_kind, open_device, plot};
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
    config.validate()?;
    Ok(config)
}

struct Paths {
    model: PathBuf,
    metrics: PathBuf,
    plot: PathBuf,
    state: PathBuf,
}

impl Paths {
    fn new(out: &Path, name: &str) -> Self {
        Paths {
            model: out.join(format!("{name}.safetensors")),
            metrics: out.join(format!("{name}.metrics.jsonl")),
            plot: out.join(format!("{name}.png")),
            state: out.join(format!("{name}.state.safetensors")),
        }
    }
}

pub fn train(args: TrainArgs) -> Result<()> {
    let kind = dataset_kind(&args.net.dataset)?;
    let config = net_config(&args.net, kind.chw())?;
    if args.epochs == 0 {
        bail!("-ne 0: train for at least 1 epoch");
    }
    if args.batch_size == 0 {
        bail!("--batch-size 0: use at least 1");
    }
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        bail!(
            "-lr {}: the learning rate must be a positive number",
            args.lr
        );
    }
    if !(args.lr_final > 0.0 && args.lr_final.is_finite()) {
        bail!("--lr-final {}: must be a positive number", args.lr_final);
    }
    if args.resume && (args.init.is_some() || args.finetune == 1) {
        bail!(
            "--resume continues a run as it was saved: it cannot be combined with --init or -ft 1"
        );
    }
    let dataset = data::load(kind, &args.data_dir)?;
    let valid = args.valid.unwrap_or_else(|| kind.default_valid());
    let (train_split, valid_split) = dataset.split(valid)?;
    if valid_split.is_empty() {
        bail!("--valid 0: the seed's loop selects the best epoch on a validation split; give at least 1 image");
    }
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
    let train_images = train_split.len() * if options.flip { 2 } else { 1 };
    if options.batch > train_images {
        bail!("--batch-size {} is larger than the training split ({train_images} images): use {train_images} or less", options.batch);
    }
    let name = config.model_name(kind.name());
    let paths = Paths::new(&args.out, &name);
    let mut dev = open_device(args.device)?;
    with_backend!(&mut dev, |b| run_training(
        b,
        &args,
        kind,
        config,
        options,
        &dataset,
        (&train_split, &valid_split),
        &paths
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
) -> Result<()> {
    let started = Instant::now();
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
    let model = Model::new(b, config.clone(), options.batch, options.seed)?;
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
    )?;
    let mut history: Vec<EpochReport> = Vec::new();
    if args.resume {
        history = resume(b, &mut trainer, paths, &options)?;
        println!(
            "resuming after epoch {} of {} (state in {})",
            trainer.state.epoch,
            options.epochs,
            paths.state.display()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // a second Ctrl-C while the step finishes is ignored; the handler may already exist in tests
        let _ = ctrlc::set_handler(move || {
            if !stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nCtrl-C: stopping after the current step (the best model is kept)");
            }
        });
    }
    let terminal = std::io::stderr().is_terminal();
    let last_epoch = args.stop_after.map_or(options.epochs, |n| {
        (trainer.state.epoch + n).min(options.epochs)
    });
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
        let report = pollster::block_on(trainer.run_epoch(b, &stop, |info| {
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
        }))?;
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
        if report.interrupted {
            println!(
                "stopped during epoch {epoch}; the model of the best epoch ({}) is kept",
                trainer.state.best_epoch
            );
            break;
        }
        print_report(&report, options.epochs);
        if report.improved {
            let tensors = pollster::block_on(trainer.model.export(b))?;
            let meta = ModelMeta {
                dataset: kind.name().into(),
                config: config.clone(),
                epoch: report.epoch,
                val_error: report.val_error,
                test_error: report.test_error,
            };
            checkpoint::save_model(&paths.model, &tensors, &meta)?;
        }
        history.push(report);
        write_metrics(&paths.metrics, &history)?;
        if let Err(e) = plot::curves(&paths.plot, &history, &config.model_name(kind.name())) {
            eprintln!("warning: could not draw {}: {e}", paths.plot.display());
        }
        save_state(b, &trainer, &paths.state, &options, kind)?;
    }
    if trainer.state.epoch < options.epochs && !stop.load(Ordering::Relaxed) {
        println!(
            "stopped after epoch {} of {} as asked; continue with --resume",
            trainer.state.epoch, options.epochs
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let s = &trainer.state;
    println!(
        "best epoch {}: validation error {:.2}%, test error {:.2}% (test accuracy {:.2}%) in {:.1}s",
        s.best_epoch,
        s.best_val_error,
        s.test_error,
        100.0 - s.test_error,
        seconds
    );
    if s.best_epoch > 0 {
        println!("model:   {}", paths.model.display());
    }
    println!("metrics: {}", paths.metrics.display());
    println!("plot:    {}", paths.plot.display());
    if args.json {
        let j = serde_json::json!({
            "best_epoch": s.best_epoch,
            "best_val_error": s.best_val_error,
            "test_error": s.test_error,
            "model": paths.model.display().to_string(),
            "seconds": seconds,
        });
        println!("{j}");
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
    options: &TrainOptions,
    kind: DatasetKind,
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
    meta.insert("format".to_string(), "qnn-train-state-v1".to_string());
    meta.insert("dataset".to_string(), kind.name().to_string());
    meta.insert(
        "config".to_string(),
        serde_json::to_string(&trainer.model.config)?,
    );
    meta.insert("options".to_string(), serde_json::to_string(options)?);
    meta.insert("state".to_string(), serde_json::to_string(&trainer.state)?);
    checkpoint::write_atomic(path, &checkpoint::to_bytes(&tensors, meta)?)?;
    Ok(())
}

fn resume<B: Backend>(
    b: &mut B,
    trainer: &mut Trainer,
    paths: &Paths,
    options: &TrainOptions,
) -> Result<Vec<EpochReport>> {
    let bytes = std::fs::read(&paths.state).with_context(|| {
        format!(
            "--resume needs {} (written after each epoch)",
            paths.state.display()
        )
    })?;
    let (tensors, meta) = checkpoint::from_bytes(&bytes, &paths.state.display().to_string())?;
    let get = |k: &str| {
        meta.get(k).with_context(|| {
            format!(
                "{}: not a qnn training state (no '{k}')",
                paths.state.display()
            )
        })
    };
    let config: NetConfig = serde_json::from_str(get("config")?)?;
    if config != trainer.model.config {
        bail!(
            "{}: saved for another network ({config:?}); resume with the same flags",
            paths.state.display()
        );
    }
    let saved: TrainOptions = serde_json::from_str(get("options")?)?;
    if saved.batch != options.batch
        || saved.flip != options.flip
        || saved.optimizer != options.optimizer
    {
        bail!(
            "{}: saved with other training options ({saved:?}); resume with the same flags",
            paths.state.display()
        );
    }
    let state: TrainState = serde_json::from_str(get("state")?)?;
    trainer.model.import(b, &tensors)?;
    for p in &trainer.model.params {
        for (suffix, buf) in [("adam_m", p.m), ("adam_v", p.v)] {
            let name = format!("{}.{suffix}", p.name);
            let t = tensors
                .iter()
                .find(|t| t.0 == name)
                .with_context(|| format!("{}: missing '{name}'", paths.state.display()))?;
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
    let mut dev = open_device(args.device)?;
    let result = with_backend!(&mut dev, |b| {
        let model = Model::new(b, meta.config.clone(), args.batch_size, 0)?;
        model.import(b, &tensors)?;
        let set = b.upload_images(&dataset.test.pixels, &dataset.test.labels, dataset.chw)?;
        pollster::block_on(qnn::train::evaluate_set(b, &model, &set, args.batch_size))?
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
        "  trained on {} (epoch {}), validation error {:.2}%, test error {:.2}%",
        meta.dataset, meta.epoch, meta.val_error, meta.test_error
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
    let mut cpu = qnn::CpuBackend::new();
    let model = Model::new(&mut cpu, meta.config.clone(), 1, 0)?;
    println!("{}", model.summary());
    Ok(())
}
