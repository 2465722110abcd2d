//! One training run, owned by the library, so that every front end (the command line, the
//! desktop window, the web page) drives the same thing and only draws and reacts: the
//! configuration checked once, the start (fresh, fine-tune, another model's weights, or a saved
//! state), the epochs, the best model as bytes, the metrics history and the resume state as
//! bytes. Files are the caller's business: everything here goes in and out as bytes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), qnn::Error> {
//! use std::sync::atomic::AtomicBool;
//! use qnn::run::{EpochOutcome, Run, RunSettings, Start};
//! let mut b = qnn::CpuBackend::new();
//! let data = qnn::data::mnist_mini()?;
//! let settings = RunSettings::new(qnn::data::DatasetKind::MnistMini);
//! let mut run = Run::new(&mut b, settings, &data, Start::Fresh).await?;
//! let stop = AtomicBool::new(false);
//! while !run.is_finished() {
//!     if let EpochOutcome::Finished(r) = run.next_epoch(&mut b, &stop, |_| false).await? {
//!         println!("epoch {}: validation error {:.2}%", r.epoch, r.val_error);
//!     }
//! }
//! let model: &[u8] = run.best_model().expect("a best epoch"); // a .safetensors file
//! # let _ = model; Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use crate::backend::Backend;
use crate::checkpoint::{self, ModelMeta};
use crate::data::{Dataset, DatasetKind};
use crate::model::{Model, NetConfig, Summary, Tensor};
use crate::quant::Nonlinearity;
use crate::train::{
    EpochReport, HeldOut, Optimizer, RunIdentity, StepInfo, StepWants, TrainOptions, TrainState,
    Trainer,
};
use crate::Error;

/// Everything a run is configured with. Defaults: the seed's command line with the default
/// network of `qnn train` (4-bit relu, blocks 1×32 / 1×64 / 1×64, 10 epochs, LR 0.03 → 3e-7,
/// batch 64, flips, no crops, Adam).
#[derive(Clone, Debug, PartialEq)]
pub struct RunSettings {
    /// The data set to train on.
    pub dataset: DatasetKind,
    /// The network.
    pub net: NetConfig,
    /// How it trains.
    pub options: TrainOptions,
    /// Validation images taken from the end of the training file (`None`: the data set's
    /// default, [`DatasetKind::default_valid`]).
    pub valid: Option<usize>,
    /// The name of your own set of pictures (`pets`), which the model's file names start with
    /// instead of `folder`; `None` for the built-in data sets.
    pub data_name: Option<String>,
}

impl RunSettings {
    /// The defaults (see [`RunSettings`]) for `dataset`, with its input shape and classes.
    pub fn new(dataset: DatasetKind) -> Self {
        let (c, h, w) = dataset.chw();
        RunSettings {
            dataset,
            net: NetConfig {
                input: [c, h, w],
                classes: dataset.classes(),
                blocks: [(1, 32), (1, 64), (1, 64)],
                quantized: true,
                bits: 4,
                nonlinearity: Nonlinearity::Relu,
                sym: false,
                net: None,
            },
            options: TrainOptions {
                epochs: 10,
                lr_start: 0.03,
                lr_final: 3e-7,
                batch: 64,
                flip: true,
                crop_pad: 0,
                shuffle: true,
                seed: 1234,
                optimizer: Optimizer::Adam,
            },
            valid: None,
            data_name: None,
        }
    }

    /// Refuses settings that cannot be right, naming the setting (not a command-line flag).
    pub fn validate(&self) -> Result<(), Error> {
        self.net.validate()?;
        self.options.validate()?;
        let [c, h, w] = self.net.input;
        self.options.check_crop((c, h, w))?;
        let (c, h, w) = self.dataset.chw();
        // a folder's shape is its pictures', checked against the data by Run::new
        if self.dataset != DatasetKind::Folder && self.net.input != [c, h, w] {
            return Err(Error::Config(format!(
                "the network's input is {:?}, {} images are {c}×{h}×{w}",
                self.net.input,
                self.dataset.name()
            )));
        }
        if self.valid == Some(0) {
            return Err(Error::Config(
                "validation images: 0; the best epoch is chosen on the validation split, so give it at least 1 image".into(),
            ));
        }
        Ok(())
    }

    /// The seed's model name, `{ds}_{nl}_{sym}_quantized_…_{nb}bits`.
    pub fn model_name(&self) -> String {
        self.net.model_name(&self.data_label())
    }

    /// What the data set is called in file names: its own name for a set of pictures (letters,
    /// digits, `-`, `_` and `.` kept, anything else a `-`), else the data set's.
    pub fn data_label(&self) -> String {
        match &self.data_name {
            Some(n) if self.dataset == DatasetKind::Folder && !n.is_empty() => n
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect(),
            _ => self.dataset.name().to_string(),
        }
    }

    /// Validation images the run takes: `valid`, else the data set's default.
    pub fn valid_images(&self) -> usize {
        self.valid.unwrap_or_else(|| self.dataset.default_valid())
    }
}

/// Where a run starts from. Model and state files are given as their bytes.
pub enum Start<'a> {
    /// Fresh parameters (the seed's initialisation, seeded).
    Fresh,
    /// The seed's `-ft 1`: a model of the same network, a fresh schedule and optimizer. The
    /// loaded model is measured first and stays the best until an epoch does at least as well
    /// on the validation split, so fine-tuning never makes the best model worse.
    FineTune(&'a [u8]),
    /// The parameters of any model of the same shapes, then a fresh run.
    Init(&'a [u8]),
    /// A state saved by [`Run::state_bytes`]: the run continues exactly where it was, or is
    /// refused ([`Error::ResumeMismatch`]) if its settings or data differ. `best_model` is the
    /// run's best model file where the caller has it, so [`Run::best_model`] hands it out
    /// until a later epoch does better.
    Resume {
        /// The saved state's bytes.
        state: &'a [u8],
        /// The run's best model file, where the caller has it.
        best_model: Option<&'a [u8]>,
    },
}

/// How an epoch ended.
#[derive(Clone, Debug, PartialEq)]
pub enum EpochOutcome {
    /// Trained, validated (and tested when it is the new best).
    Finished(EpochReport),
    /// The stop flag was raised: nothing of this epoch counts, the run is as before it.
    Interrupted {
        /// The epoch that was stopped (1-based).
        epoch: usize,
        /// Steps it had done when stopped.
        steps_done: usize,
    },
}

/// One setting that differs between a saved run and the one asked to resume it.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingChange {
    /// The setting, as [`RunIdentity::differences`] names it ("validation images", "data", …).
    pub setting: &'static str,
    /// Its value in the saved run.
    pub saved: String,
    /// Its value now.
    pub now: String,
}

/// "validation images: saved 100, now 50; …" for a message.
pub fn describe_changes(changes: &[SettingChange]) -> String {
    changes
        .iter()
        .map(|c| {
            if c.setting == "data" {
                "the data differ from the data the run trained on".to_string()
            } else {
                format!("{}: saved {}, now {}", c.setting, c.saved, c.now)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The state format this version writes and reads.
const STATE_FORMAT: &str = "qnn-train-state-v3";

/// (epochs finished, epochs planned) of a training state written by [`Run::state_bytes`]
/// (`what` names it in messages), from its metadata alone: the run is done when they are equal.
pub fn saved_progress(state: &[u8], what: &str) -> Result<(usize, usize), Error> {
    let (_, meta) = checkpoint::from_bytes(state, what)?;
    let get = |k: &str| {
        meta.get(k)
            .ok_or_else(|| Error::Model(format!("{what}: not a qnn training state (no '{k}')")))
    };
    let bad = |e: serde_json::Error| Error::Model(format!("{what}: unreadable ({e})"));
    let run: RunIdentity = serde_json::from_str(get("run")?).map_err(bad)?;
    let state: TrainState = serde_json::from_str(get("state")?).map_err(bad)?;
    Ok((state.epoch, run.options.epochs))
}

/// One training run: its settings, the model and schedule, the best model and the history.
pub struct Run {
    /// What the run is configured with.
    pub settings: RunSettings,
    trainer: Trainer,
    identity: RunIdentity,
    history: Vec<EpochReport>,
    /// The best model so far as a .safetensors file (the starting model when fine-tuning).
    best_model: Option<Vec<u8>>,
    fine_tune: bool,
    /// The data set's class names, saved with the best model.
    class_names: Vec<String>,
}

impl Run {
    /// Checks the settings, builds the model on `b` (refusing one too large for it), loads what
    /// `start` gives and uploads the data.
    pub async fn new<B: Backend>(
        b: &mut B,
        settings: RunSettings,
        data: &Dataset,
        start: Start<'_>,
    ) -> Result<Self, Error> {
        settings.validate()?;
        let (c, h, w) = data.chw;
        if [c, h, w] != settings.net.input {
            return Err(Error::Data(format!(
                "the data's images are {c}×{h}×{w}, the network's input is {:?}",
                settings.net.input
            )));
        }
        data.validate()?;
        if data.classes() != settings.net.classes {
            return Err(Error::Data(format!(
                "the data have {} classes, the network scores {}: a network's output layer has one unit per class",
                data.classes(),
                settings.net.classes
            )));
        }
        let valid = settings.valid_images();
        let (train, val) = data.split(valid)?;
        let o = &settings.options;
        // before the model is built: a batch the split cannot fill is refused as such
        crate::train::check_batch(o, train.len())?;
        let model = Model::new(b, settings.net.clone(), o.batch, o.seed)?;
        if let Start::FineTune(bytes) | Start::Init(bytes) = start {
            load_into(b, &model, bytes, "the starting model")?;
        }
        let trainer = Trainer::new(b, model, o.clone(), data.chw, &train, &val, &data.test)?;
        let identity = RunIdentity::new(settings.dataset.name(), data, valid, o);
        let mut run = Run {
            settings,
            trainer,
            identity,
            history: Vec::new(),
            best_model: None,
            fine_tune: false,
            class_names: data.class_names.clone(),
        };
        match start {
            Start::FineTune(bytes) => {
                run.trainer.set_baseline(b).await?;
                run.best_model = Some(bytes.to_vec());
                run.fine_tune = true;
            }
            Start::Resume { state, best_model } => {
                run.restore(b, state).await?;
                run.best_model = best_model.map(<[u8]>::to_vec);
            }
            Start::Fresh | Start::Init(_) => {}
        }
        Ok(run)
    }

    /// Trains one epoch, validates it, tests it when it is the new best (then
    /// [`Run::best_model`] holds it). `progress` sees every step and returns what it wants of
    /// the next one: `true` for the running loss and error (a device read: a few times a second
    /// at most), or a [`StepWants`] that can also ask for a [`Probe`](crate::inspect::Probe)
    /// (it arrives in the next step's [`StepInfo`]).
    /// A non-finite value anywhere stops the run with [`Error::NonFinite`].
    pub async fn next_epoch<B: Backend, W: Into<StepWants>>(
        &mut self,
        b: &mut B,
        stop: &AtomicBool,
        mut progress: impl FnMut(StepInfo) -> W,
    ) -> Result<EpochOutcome, Error> {
        let epoch = self.trainer.state.epoch + 1;
        let mut steps_done = 0;
        let report = self
            .trainer
            .run_epoch(b, stop, |info| {
                steps_done = info.step;
                progress(info)
            })
            .await?;
        if report.interrupted {
            return Ok(EpochOutcome::Interrupted { epoch, steps_done });
        }
        if report.improved {
            let tensors = self.trainer.model.export(b).await?;
            let meta = ModelMeta {
                dataset: self.settings.dataset.name().into(),
                config: self.settings.net.clone(),
                epoch: report.epoch,
                val_error: Some(report.val_error),
                test_error: Some(report.test_error),
                class_names: ModelMeta::saved_class_names(&self.class_names),
            };
            self.best_model = Some(checkpoint::model_to_bytes(&tensors, &meta)?);
        }
        self.history.push(report.clone());
        Ok(EpochOutcome::Finished(report))
    }

    /// All epochs of the schedule are done.
    pub fn is_finished(&self) -> bool {
        self.trainer.state.epoch >= self.settings.options.epochs
    }

    /// The best model so far as a .safetensors file (what `qnn eval` reads); `None` before the
    /// first epoch of a fresh run.
    pub fn best_model(&self) -> Option<&[u8]> {
        self.best_model.as_deref()
    }

    /// The run started from a model (fine-tuning) that is still its best.
    pub fn best_is_starting_model(&self) -> bool {
        self.fine_tune && self.trainer.state.best_epoch == 0
    }

    /// The report of every finished epoch, the resumed ones included.
    pub fn history(&self) -> &[EpochReport] {
        &self.history
    }

    /// Where the run stands: epochs done, LR, best epoch, its test error.
    pub fn state(&self) -> &TrainState {
        &self.trainer.state
    }

    /// Training steps (full batches) per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.trainer.steps_per_epoch()
    }

    /// The network's summary: layers, parameters, memory at the bit width, MACs, energy (µJ).
    pub fn summary(&self) -> Summary {
        self.settings.net.summary()
    }

    /// Loss and error (%) of the current model on the test set (evaluation mode).
    pub async fn evaluate_test<B: Backend>(&self, b: &mut B) -> Result<crate::train::Eval, Error> {
        self.trainer.evaluate(b, HeldOut::Test).await
    }

    /// Scores [n, classes] of the current model (evaluation mode) for n images of u8 pixels
    /// [n, c, h, w], as the data sets store them.
    pub async fn predict<B: Backend>(&self, b: &mut B, pixels: &[u8]) -> Result<Vec<f32>, Error> {
        self.trainer.model.predict_pixels(b, pixels).await
    }

    /// A [`Probe`](crate::inspect::Probe) of the current model on the first validation images.
    pub async fn probe<B: Backend>(&self, b: &mut B) -> Result<crate::inspect::Probe, Error> {
        self.trainer.probe(b).await
    }

    /// The confusion matrix of the current model on the validation split.
    pub async fn validation_confusion<B: Backend>(
        &self,
        b: &mut B,
        data: &Dataset,
    ) -> Result<crate::inspect::ConfusionMatrix, Error> {
        let scores = self.trainer.scores(b, HeldOut::Valid).await?;
        // the validation split is the end of the training file (Dataset::split)
        let labels = &data.train.labels;
        let classes = self.settings.net.classes;
        let valid = scores.len() / classes;
        if valid > labels.len() {
            return Err(Error::Data(
                "these data are not the ones the run was built with".into(),
            ));
        }
        Ok(crate::inspect::ConfusionMatrix::new(
            classes,
            &scores,
            &labels[labels.len() - valid..],
        ))
    }

    /// The flag that pauses the epoch in progress between two steps while set (a front end
    /// keeps a clone: it can set it while an epoch runs).
    pub fn pause_flag(&self) -> std::sync::Arc<AtomicBool> {
        self.trainer.pause.clone()
    }

    /// Makes `flag` the run's pause flag (a front end that made its flag before the run).
    pub fn share_pause_flag(&mut self, flag: std::sync::Arc<AtomicBool>) {
        self.trainer.pause = flag;
    }

    /// Everything needed to continue the run exactly (parameters, running statistics, optimizer
    /// moments, where the schedule stands, the history and what the run depends on), as one
    /// safetensors file. The best model is not in it: keep [`Run::best_model`] beside it.
    pub async fn state_bytes<B: Backend>(&self, b: &mut B) -> Result<Vec<u8>, Error> {
        let model = &self.trainer.model;
        let mut tensors: Vec<Tensor> = model.export(b).await?;
        for p in &model.params {
            for (suffix, buf) in [("adam_m", p.tensors.m), ("adam_v", p.tensors.v)] {
                let v = b.read_f32(buf).await?;
                tensors.push(Tensor::new(
                    format!("{}.{suffix}", p.name),
                    p.shape.clone(),
                    v,
                ));
            }
        }
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), STATE_FORMAT.to_string());
        meta.insert("config".to_string(), json(&model.config));
        meta.insert("run".to_string(), json(&self.identity));
        meta.insert("state".to_string(), json(&self.trainer.state));
        meta.insert("history".to_string(), json(&self.history));
        checkpoint::to_bytes(&tensors, meta)
    }

    async fn restore<B: Backend>(&mut self, b: &mut B, bytes: &[u8]) -> Result<(), Error> {
        let what = "the training state";
        let (tensors, meta) = checkpoint::from_bytes(bytes, what)?;
        let get = |k: &str| {
            meta.get(k).ok_or_else(|| {
                Error::Model(format!(
                    "{what} is not a qnn training state of this version (no '{k}'); start the run again"
                ))
            })
        };
        if get("format")? != STATE_FORMAT {
            return Err(Error::Model(format!(
                "{what} was written by another version of qnn ({}); start the run again",
                get("format")?
            )));
        }
        let bad = |e: serde_json::Error| Error::Model(format!("{what}: unreadable ({e})"));
        let config: NetConfig = serde_json::from_str(get("config")?).map_err(bad)?;
        if config != self.settings.net {
            return Err(Error::ResumeMismatch(vec![SettingChange {
                setting: "network",
                saved: config.model_name(&self.settings.data_label()),
                now: self.settings.model_name(),
            }]));
        }
        let saved: RunIdentity = serde_json::from_str(get("run")?).map_err(bad)?;
        let diff = saved.differences(&self.identity);
        if !diff.is_empty() {
            return Err(Error::ResumeMismatch(
                diff.into_iter()
                    .map(|(setting, saved, now)| SettingChange {
                        setting,
                        saved,
                        now,
                    })
                    .collect(),
            ));
        }
        let state: TrainState = serde_json::from_str(get("state")?).map_err(bad)?;
        let history: Vec<EpochReport> = serde_json::from_str(get("history")?).map_err(bad)?;
        let model = &self.trainer.model;
        model.import(b, &tensors)?;
        for p in &model.params {
            for (suffix, buf) in [("adam_m", p.tensors.m), ("adam_v", p.tensors.v)] {
                let name = format!("{}.{suffix}", p.name);
                let t = tensors
                    .iter()
                    .find(|t| t.name == name)
                    .ok_or_else(|| Error::Model(format!("{what}: missing '{name}'")))?;
                b.write_f32(buf, &t.values);
            }
        }
        self.trainer.state = state;
        self.history = history;
        Ok(())
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

/// Loads a model file's parameters into `model`, refusing another network by its input shape
/// or its first missing or mis-shaped tensor.
fn load_into<B: Backend>(b: &mut B, model: &Model, bytes: &[u8], what: &str) -> Result<(), Error> {
    let (tensors, meta) = checkpoint::model_from_bytes(bytes, what)?;
    if meta.config.input != model.config.input {
        return Err(Error::Model(format!(
            "{what}: its input is {:?}, this run's is {:?}",
            meta.config.input, model.config.input
        )));
    }
    if meta.config.classes != model.classes() {
        return Err(Error::Model(format!(
            "{what}: its network scores {} classes, this run's {}",
            meta.config.classes,
            model.classes()
        )));
    }
    model.import(b, &tensors)
}
