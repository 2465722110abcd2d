//! The seed's training loop, written once over any backend: the CLI, the desktop window and the
//! web page all drive this. Per epoch: shuffle (seeded by seed and epoch, so a resumed run sees
//! the same order), train on full batches, validate, and — when the validation error is at most
//! the best so far — evaluate the test set. Saving files is the caller's business.

use std::sync::atomic::{AtomicBool, Ordering};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, ImageSet, LossAcc, Shift};
use crate::data::Split;
use crate::inspect::Probe;
use crate::model::{Model, Update};
use crate::platform::now_seconds;
use crate::Error;

/// The rule that updates the parameters from their gradients.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// Adam (the seed's optimizer); its step count is [`TrainState::t`].
    Adam,
    /// Stochastic gradient descent with momentum.
    Sgd {
        /// Momentum, in [0, 1).
        momentum: f32,
    },
}

/// How a run trains: the schedule, the batch, flips, crops, shuffling and the optimizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Epochs to train.
    pub epochs: usize,
    /// Learning rate of the first epoch.
    pub lr_start: f32,
    /// Learning rate the schedule reaches after the last epoch (it decays geometrically).
    pub lr_final: f32,
    /// Images per training step.
    pub batch: usize,
    /// Double the training split with left-right flips.
    pub flip: bool,
    /// Random crops: each training image is shifted by (dy, dx) drawn uniformly from
    /// [−crop_pad, crop_pad]² per image and step ([`crop_shift`]), with zero padding; 0: off.
    /// At most [`MAX_CROP_PAD`] and less than the images' side. (Not written when 0, so states
    /// saved before crops existed read as 0.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub crop_pad: usize,
    /// Shuffle the training images every epoch (seeded by `seed` and the epoch).
    pub shuffle: bool,
    /// Seed of the parameter initialisation and of the shuffles.
    pub seed: u64,
    /// The optimizer.
    pub optimizer: Optimizer,
}

/// The largest crop padding a run takes ([`TrainOptions::crop_pad`]).
pub const MAX_CROP_PAD: usize = 15;

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl TrainOptions {
    /// Refuses settings that cannot be right, naming the setting. Every run checks this once,
    /// before anything is loaded or allocated.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        if self.epochs == 0 {
            return bad("the number of epochs must be at least 1".into());
        }
        if self.crop_pad > MAX_CROP_PAD {
            return bad(format!(
                "crop padding {}: must be at most {MAX_CROP_PAD} pixels, and less than the images' side (4 is CIFAR's for 32×32 images)",
                self.crop_pad
            ));
        }
        if self.batch == 0 {
            return bad("the batch size must be at least 1".into());
        }
        if !(self.lr_start.is_finite() && self.lr_start > 0.0) {
            return bad(format!(
                "learning rate {}: must be a positive number",
                self.lr_start
            ));
        }
        if !(self.lr_final.is_finite() && self.lr_final > 0.0) {
            return bad(format!(
                "final learning rate {}: must be a positive number",
                self.lr_final
            ));
        }
        if self.lr_final > self.lr_start {
            return bad(format!(
                "final learning rate {} is above the starting one {}: the schedule only decays",
                self.lr_final, self.lr_start
            ));
        }
        if let Optimizer::Sgd { momentum } = self.optimizer {
            if !(0.0..1.0).contains(&momentum) {
                return bad(format!(
                    "momentum {momentum}: must lie in [0, 1) (at 1 or above the steps never shrink)"
                ));
            }
        }
        Ok(())
    }

    /// Refuses a crop padding that would shift whole images out of view: it must be less than
    /// the side of the images (c, h, w).
    pub fn check_crop(&self, (_, h, w): (usize, usize, usize)) -> Result<(), Error> {
        let side = h.min(w);
        if self.crop_pad > 0 && self.crop_pad >= side {
            return Err(Error::Config(format!(
                "crop padding {}: must be less than the images' side ({side} pixels; {h}×{w} images)",
                self.crop_pad
            )));
        }
        Ok(())
    }

    /// LR *= (lr_final/lr_start)^(1/epochs) after each epoch.
    pub fn lr_decay(&self) -> f32 {
        (self.lr_final / self.lr_start).powf(1.0 / self.epochs.max(1) as f32)
    }
}

/// Where a run stands: enough to resume it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs finished.
    pub epoch: usize,
    /// Learning rate of the next epoch.
    pub lr: f32,
    /// Optimizer steps taken (Adam's t).
    pub t: u64,
    /// Epoch with the lowest validation error so far (0: none yet, or the starting model when
    /// fine-tuning).
    pub best_epoch: usize,
    /// Validation error (%) of the best epoch (infinite before the first).
    pub best_val_error: f64,
    /// Mean test loss of the best epoch.
    pub test_loss: f64,
    /// Test error (%) of the best epoch.
    pub test_error: f64,
}

/// What the seed prints per epoch, plus throughput. Errors in percent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// The epoch (1-based).
    pub epoch: usize,
    /// Learning rate it trained at.
    pub lr: f32,
    /// Mean training loss over its steps.
    pub train_loss: f64,
    /// Mean validation loss.
    pub val_loss: f64,
    /// Validation error (%).
    pub val_error: f64,
    /// Mean test loss of the best epoch so far.
    pub test_loss: f64,
    /// Test error (%) of the best epoch so far.
    pub test_error: f64,
    /// Best epoch so far (this one when `improved`).
    pub best_epoch: usize,
    /// Validation error (%) of the best epoch so far.
    pub best_val_error: f64,
    /// Wall time of the whole epoch (training, validation and any test), seconds.
    pub seconds: f64,
    /// Training throughput, images per second (validation and test not counted).
    pub images_per_second: f64,
    /// This epoch is the new best (the caller saves the model).
    #[serde(default)]
    pub improved: bool,
    /// Stopped early by the stop flag.
    #[serde(skip)]
    pub interrupted: bool,
}

/// What a run depends on beyond the network: resuming with any of it changed would silently
/// train another run (validation images becoming training images, a schedule past its end), so
/// [`RunIdentity::differences`] names each change and the caller refuses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The data set's name.
    pub dataset: String,
    /// MD5 of the training file's and the test file's images and labels.
    pub data_md5: String,
    /// Training images, the validation split excluded (flips not counted).
    pub train_images: usize,
    /// Validation images, taken from the end of the training file.
    pub valid_images: usize,
    /// The training options.
    pub options: TrainOptions,
}

impl RunIdentity {
    /// The identity of a run on `data` (named `dataset`) that holds out the last `valid`
    /// training images for validation.
    pub fn new(
        dataset: &str,
        data: &crate::data::Dataset,
        valid: usize,
        options: &TrainOptions,
    ) -> Self {
        let mut h = md5::Md5::default();
        use md5::Digest;
        // labels as one byte each while they fit one (the hash of every data set of up to 256
        // classes, ten-class ones included, stays what it was when labels were bytes, so saved
        // states still resume), else two bytes each, little-endian
        let label_bytes = |labels: &[u16]| -> Vec<u8> {
            if data.classes() <= 256 {
                labels.iter().map(|&l| l as u8).collect()
            } else {
                labels.iter().flat_map(|l| l.to_le_bytes()).collect()
            }
        };
        for part in [
            &data.train.pixels,
            &label_bytes(&data.train.labels),
            &data.test.pixels,
            &label_bytes(&data.test.labels),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        Self {
            dataset: dataset.to_string(),
            data_md5: format!("{:x}", h.finalize()),
            train_images: data.train.len().saturating_sub(valid),
            valid_images: valid,
            options: options.clone(),
        }
    }

    /// (setting, saved value, value now) for every setting that differs.
    pub fn differences(&self, now: &RunIdentity) -> Vec<(&'static str, String, String)> {
        let mut d = Vec::new();
        let mut cmp = |what: &'static str, a: String, b: String| {
            if a != b {
                d.push((what, a, b));
            }
        };
        let (s, n) = (&self.options, &now.options);
        cmp("dataset", self.dataset.clone(), now.dataset.clone());
        cmp("data", self.data_md5.clone(), now.data_md5.clone());
        cmp(
            "validation images",
            self.valid_images.to_string(),
            now.valid_images.to_string(),
        );
        cmp(
            "training images",
            self.train_images.to_string(),
            now.train_images.to_string(),
        );
        cmp("epochs", s.epochs.to_string(), n.epochs.to_string());
        cmp(
            "learning rate",
            s.lr_start.to_string(),
            n.lr_start.to_string(),
        );
        cmp(
            "final learning rate",
            s.lr_final.to_string(),
            n.lr_final.to_string(),
        );
        cmp("batch size", s.batch.to_string(), n.batch.to_string());
        cmp("flips", s.flip.to_string(), n.flip.to_string());
        cmp(
            "crop padding",
            s.crop_pad.to_string(),
            n.crop_pad.to_string(),
        );
        cmp("shuffle", s.shuffle.to_string(), n.shuffle.to_string());
        cmp("seed", s.seed.to_string(), n.seed.to_string());
        cmp(
            "optimizer",
            format!("{:?}", s.optimizer),
            format!("{:?}", n.optimizer),
        );
        d
    }
}

/// Progress inside an epoch, for a progress bar and live views.
#[derive(Clone, Debug)]
pub struct StepInfo {
    /// Steps done in this epoch (1-based: the step just taken).
    pub step: usize,
    /// Steps in the epoch.
    pub steps: usize,
    /// Mean training loss so far, when it was read back at this step.
    pub loss: Option<f64>,
    /// Training error (%) so far in this epoch, read back with the loss.
    pub error: Option<f64>,
    /// A look inside the network after this step, when the previous call asked for one.
    pub probe: Option<Probe>,
}

/// What a progress callback asks of the next step. A plain `bool` means "read the loss".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepWants {
    /// Read the running loss and error back (a device read: a few times a second at most).
    pub loss: bool,
    /// Measure a [`Probe`] on the first validation images (a forward pass and a few reads:
    /// about once a second at most).
    pub probe: bool,
}

impl From<bool> for StepWants {
    fn from(loss: bool) -> Self {
        StepWants { loss, probe: false }
    }
}

/// The training loop over one model and its uploaded training, validation and test splits.
pub struct Trainer {
    /// The network being trained.
    pub model: Model,
    /// How it trains.
    pub options: TrainOptions,
    /// Where the run stands.
    pub state: TrainState,
    /// While set, the epoch waits between steps (a front end's pause button); the stop flag
    /// still ends it.
    pub pause: std::sync::Arc<AtomicBool>,
    train: ImageSet,
    valid: ImageSet,
    test: ImageSet,
}

/// Loss and error (%) over a set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    /// Mean loss per image.
    pub loss: f64,
    /// Error rate (%).
    pub error: f64,
}

impl Trainer {
    /// Uploads the splits and prepares a fresh run.
    pub fn new<B: Backend>(
        b: &mut B,
        model: Model,
        options: TrainOptions,
        chw: (usize, usize, usize),
        train: &Split,
        valid: &Split,
        test: &Split,
    ) -> Result<Self, Error> {
        options.validate()?;
        options.check_crop(chw)?;
        if valid.is_empty() {
            return Err(Error::Data(
                "the validation split is empty: the best epoch is chosen on it, so give it at least 1 image".into(),
            ));
        }
        if test.is_empty() {
            return Err(Error::Data(
                "the test set is empty: there is nothing to measure the model on".into(),
            ));
        }
        check_batch(&options, train.len())?;
        if options.batch > model.max_batch {
            return Err(Error::Model(format!(
                "batch {} is larger than the model's buffers ({})",
                options.batch, model.max_batch
            )));
        }
        let state = TrainState {
            lr: options.lr_start,
            best_val_error: f64::INFINITY,
            ..Default::default()
        };
        Ok(Self {
            train: b.upload_images(&train.pixels, &train.labels, chw)?,
            valid: b.upload_images(&valid.pixels, &valid.labels, chw)?,
            test: b.upload_images(&test.pixels, &test.labels, chw)?,
            model,
            options,
            state,
            pause: Default::default(),
        })
    }

    /// Full batches per epoch, flipped images included (a partial last batch is left out).
    pub fn steps_per_epoch(&self) -> usize {
        self.train_count() / self.options.batch
    }

    fn train_count(&self) -> usize {
        self.train.count * if self.options.flip { 2 } else { 1 }
    }

    /// The order of epoch `epoch` (1-based): indices ≥ count are flipped images.
    pub fn epoch_order(&self, epoch: usize) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.train_count() as u32).collect();
        if self.options.shuffle {
            let mut rng = SmallRng::seed_from_u64(
                self.options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch as u64,
            );
            order.shuffle(&mut rng);
        }
        order
    }

    /// The crop shifts of step `step` (0-based) of epoch `epoch` (1-based), one per image of
    /// the batch ([`crop_shift`] at the image's place in the epoch's order); empty without
    /// crops.
    pub fn step_shifts(&self, epoch: usize, step: usize) -> Vec<Shift> {
        let (pad, batch) = (self.options.crop_pad, self.options.batch);
        if pad == 0 {
            return Vec::new();
        }
        (step * batch..(step + 1) * batch)
            .map(|place| crop_shift(self.options.seed, epoch, place, pad))
            .collect()
    }

    /// Trains one epoch; `progress` sees each step and returns what it wants of the next step
    /// (`bool`: the running loss; or a [`StepWants`]) — device reads: a few times a second at most.
    pub async fn train_epoch<B: Backend, W: Into<StepWants>>(
        &mut self,
        b: &mut B,
        stop: &AtomicBool,
        mut progress: impl FnMut(StepInfo) -> W,
    ) -> Result<(f64, usize), Error> {
        let epoch = self.state.epoch + 1;
        let order = self.epoch_order(epoch);
        let steps = self.steps_per_epoch();
        let batch = self.options.batch;
        b.fill_zero(self.model.acc);
        let mut wants = StepWants::default();
        let mut last_checked = 0;
        let mut done = 0;
        for step in 0..steps {
            while self.pause.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                crate::platform::sleep_ms(50).await;
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            crate::platform::yield_if_due().await;
            self.state.t += 1;
            let (lr, t) = (self.state.lr, self.state.t);
            let update = match self.options.optimizer {
                Optimizer::Adam => Update::Adam { lr, t },
                Optimizer::Sgd { momentum } => Update::Sgd { lr, momentum },
            };
            let indices = &order[step * batch..(step + 1) * batch];
            let shifts = self.step_shifts(epoch, step);
            self.model
                .train_step_shifted(b, &self.train, indices, &shifts, update)?;
            done = step + 1;
            let (mut loss, mut error, mut probe) = (None, None, None);
            if wants.loss {
                let acc = LossAcc::from_slice(&b.read_f32(self.model.acc).await?);
                self.check_loss(b, &acc, epoch, last_checked, done).await?;
                last_checked = done;
                loss = Some(acc.loss_sum / (done * batch) as f64);
                error = Some(100.0 * acc.wrong / (done * batch) as f64);
            }
            if wants.probe {
                probe = Some(self.probe(b).await?);
            }
            wants = progress(StepInfo {
                step: step + 1,
                steps,
                loss,
                error,
                probe,
            })
            .into();
        }
        b.flush();
        let acc = LossAcc::from_slice(&b.read_f32(self.model.acc).await?);
        self.check_loss(b, &acc, epoch, last_checked, done).await?;
        let bad = non_finite_tensors(b, &self.model).await?;
        if !bad.is_empty() {
            return Err(Error::NonFinite(format!(
                "epoch {epoch}, by step {done}: {} not finite; the learning rate may be too high",
                bad.join(", ")
            )));
        }
        let mean = if done == 0 {
            0.0
        } else {
            acc.loss_sum / (done * batch) as f64
        };
        Ok((mean, done))
    }

    /// Stops the run when the loss kernel saw a non-finite score or loss, naming the step
    /// (exact: the kernel records the first bad call) and any non-finite tensor.
    async fn check_loss<B: Backend>(
        &self,
        b: &mut B,
        acc: &LossAcc,
        epoch: usize,
        last_checked: usize,
        done: usize,
    ) -> Result<(), Error> {
        if acc.is_finite() {
            return Ok(());
        }
        let step = if acc.first_bad_call > 0 {
            format!("step {}", acc.first_bad_call)
        } else {
            format!("a step between {} and {done}", last_checked + 1)
        };
        let mut what = if acc.bad_rows > 0 {
            format!("the scores of {} images were not finite", acc.bad_rows)
        } else {
            format!("the summed training loss became {}", acc.loss_sum)
        };
        let bad = non_finite_tensors(b, &self.model).await?;
        if !bad.is_empty() {
            what.push_str(&format!("; not finite now: {}", bad.join(", ")));
        }
        Err(Error::NonFinite(format!(
            "epoch {epoch}, {step} of {}: {what}; the learning rate may be too high",
            self.steps_per_epoch()
        )))
    }

    /// A [`Probe`] of the model as it is now, on the first (up to 64) validation images.
    pub async fn probe<B: Backend>(&self, b: &mut B) -> Result<Probe, Error> {
        let n = self.valid.count.min(self.model.max_batch).min(64);
        self.model.load_batch(b, &self.valid, &range(0, n))?;
        Probe::measure(b, &self.model, n).await
    }

    /// Scores `[n, classes]` of every image of a set (evaluation mode), in order.
    pub async fn scores<B: Backend>(&self, b: &mut B, which: HeldOut) -> Result<Vec<f32>, Error> {
        let set = self.set(which);
        let batch = self.options.batch.min(self.model.max_batch);
        let mut out = Vec::with_capacity(set.count * self.model.classes());
        for start in (0..set.count).step_by(batch) {
            let n = batch.min(set.count - start);
            self.model.load_batch(b, set, &range(start, n))?;
            out.extend(self.model.eval_scores(b, n).await?);
        }
        Ok(out)
    }

    fn set(&self, which: HeldOut) -> &ImageSet {
        match which {
            HeldOut::Valid => &self.valid,
            HeldOut::Test => &self.test,
        }
    }

    /// Makes a fine-tuning run start from the loaded model's own validation result: an epoch
    /// becomes the best (and is saved) only when it does at least as well, so a run that ends
    /// worse never replaces the model it started from.
    pub async fn set_baseline<B: Backend>(&mut self, b: &mut B) -> Result<Eval, Error> {
        let val = self.evaluate(b, HeldOut::Valid).await?;
        let test = self.evaluate(b, HeldOut::Test).await?;
        self.state.best_epoch = 0;
        self.state.best_val_error = val.error;
        self.state.test_loss = test.loss;
        self.state.test_error = test.error;
        Ok(val)
    }

    /// Loss and error of every image of a set (the last batch may be partial), evaluation mode.
    pub async fn evaluate<B: Backend>(&self, b: &mut B, which: HeldOut) -> Result<Eval, Error> {
        evaluate_set(b, &self.model, self.set(which), self.options.batch).await
    }

    /// One whole epoch as the seed runs it: train, validate, test when the validation error is
    /// at most the best so far; LR decays after it.
    pub async fn run_epoch<B: Backend, W: Into<StepWants>>(
        &mut self,
        b: &mut B,
        stop: &AtomicBool,
        progress: impl FnMut(StepInfo) -> W,
    ) -> Result<EpochReport, Error> {
        let t0 = now_seconds();
        let lr = self.state.lr;
        let (train_loss, steps_done) = self.train_epoch(b, stop, progress).await?;
        let interrupted = steps_done < self.steps_per_epoch();
        let train_seconds = now_seconds() - t0;
        let val = self.evaluate(b, HeldOut::Valid).await?;
        let epoch = self.state.epoch + 1;
        let improved = !interrupted && val.error <= self.state.best_val_error;
        if improved {
            let test = self.evaluate(b, HeldOut::Test).await?;
            self.state.best_epoch = epoch;
            self.state.best_val_error = val.error;
            self.state.test_loss = test.loss;
            self.state.test_error = test.error;
        }
        if !interrupted {
            self.state.epoch = epoch;
            self.state.lr *= self.options.lr_decay();
        }
        let seconds = now_seconds() - t0;
        Ok(EpochReport {
            epoch,
            lr,
            train_loss,
            val_loss: val.loss,
            val_error: val.error,
            test_loss: self.state.test_loss,
            test_error: self.state.test_error,
            best_epoch: self.state.best_epoch,
            best_val_error: self.state.best_val_error,
            seconds,
            images_per_second: (steps_done * self.options.batch) as f64 / train_seconds.max(1e-9),
            improved,
            interrupted,
        })
    }
}

/// A held-out set to evaluate on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldOut {
    /// The validation split.
    Valid,
    /// The test set.
    Test,
}

/// Refuses a batch larger than a training split of `train_images` (doubled with flips).
pub fn check_batch(options: &TrainOptions, train_images: usize) -> Result<(), Error> {
    let train_n = train_images * if options.flip { 2 } else { 1 };
    if options.batch > train_n {
        return Err(Error::Config(format!(
            "a batch of {} does not fit a training split of {train_n} images{}: use a batch of {} or less",
            options.batch,
            if options.flip { " (with flips)" } else { "" },
            train_n
        )));
    }
    Ok(())
}

/// SplitMix64's output for state `z` (add the golden gamma, then its finalizer): a fixed
/// bijective mix of 64 bits (Steele, Lea and Flood 2014).
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The crop shift of the image at place `place` (0-based: step·batch + slot) of epoch `epoch`'s
/// order (1-based) in a run seeded `seed`, with padding `pad`: dy and dx uniform in [−pad, pad],
/// from a fixed integer hash of (seed, epoch, place) — nothing carried from step to step, so a
/// resumed run draws the shifts the uninterrupted one did (docs/spec.md §7).
pub fn crop_shift(seed: u64, epoch: usize, place: usize, pad: usize) -> Shift {
    let h = splitmix64(splitmix64(splitmix64(seed ^ CROP_SALT) ^ epoch as u64) ^ place as u64);
    let n = 2 * pad as u64 + 1;
    // ⌊u·n / 2³²⌋ of a 32-bit u: uniform in 0..n up to n/2³²
    let draw = |u: u64| (((u & 0xFFFF_FFFF) * n) >> 32) as i32 - pad as i32;
    Shift {
        dy: draw(h >> 32),
        dx: draw(h),
    }
}

/// Keeps the crops' hash apart from other uses of the seed ("crop" in ASCII).
const CROP_SALT: u64 = 0x6372_6F70;

/// The indices of images start .. start + n of a set, in order and unflipped.
fn range(start: usize, n: usize) -> Vec<u32> {
    (start as u32..(start + n) as u32).collect()
}

/// Loss and error (%) of a model over every image of an uploaded set.
pub async fn evaluate_set<B: Backend>(
    b: &mut B,
    model: &Model,
    set: &ImageSet,
    batch: usize,
) -> Result<Eval, Error> {
    if set.count == 0 {
        return Err(Error::Data("the set to evaluate holds no images".into()));
    }
    b.fill_zero(model.acc);
    let batch = batch.min(model.max_batch);
    for start in (0..set.count).step_by(batch) {
        let n = batch.min(set.count - start);
        model.eval_step(b, set, &range(start, n))?;
    }
    let acc = LossAcc::from_slice(&b.read_f32(model.acc).await?);
    if !acc.is_finite() {
        let bad = non_finite_tensors(b, model).await?;
        return Err(Error::NonFinite(format!(
            "evaluation: the scores of {} of {} images are not finite{}",
            acc.bad_rows,
            set.count,
            if bad.is_empty() {
                String::new()
            } else {
                format!(" ({} not finite)", bad.join(", "))
            }
        )));
    }
    let n = set.count as f64;
    Ok(Eval {
        loss: acc.loss_sum / n,
        error: 100.0 * acc.wrong / n,
    })
}

/// Names of the model's parameters and batch-norm statistics holding a NaN or an infinity, with
/// how many of their values are (one read-back of each; small next to an epoch).
pub async fn non_finite_tensors<B: Backend>(
    b: &mut B,
    model: &Model,
) -> Result<Vec<String>, Error> {
    let mut bad = Vec::new();
    let tensors = model
        .params
        .iter()
        .map(|p| (p.name.clone(), p.tensors.value))
        .chain(
            model
                .running
                .iter()
                .map(|(n, buf)| (format!("{n} running statistics"), *buf)),
        );
    for (name, buf) in tensors.collect::<Vec<_>>() {
        let v = b.read_f32(buf).await?;
        let n = v.iter().filter(|x| !x.is_finite()).count();
        if n > 0 {
            bad.push(format!("{name} ({n} of {} values)", v.len()));
        }
    }
    Ok(bad)
}
