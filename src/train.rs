//! The seed's training loop, written once over any backend: the CLI, the desktop window and the
//! web page all drive this. Per epoch: shuffle (seeded by seed and epoch, so a resumed run sees
//! the same order), train on full batches, validate, and — when the validation error is at most
//! the best so far — evaluate the test set. Saving files is the caller's business.

use std::sync::atomic::{AtomicBool, Ordering};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, ImageSet, StepScalars};
use crate::data::Split;
use crate::model::Model;
use crate::Error;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    Adam,
    Sgd { momentum: f32 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub epochs: usize,
    pub lr_start: f32,
    pub lr_final: f32,
    pub batch: usize,
    /// Double the training split with left-right flips.
    pub flip: bool,
    pub shuffle: bool,
    pub seed: u64,
    pub optimizer: Optimizer,
}

impl TrainOptions {
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
    pub best_epoch: usize,
    pub best_val_error: f64,
    pub test_loss: f64,
    pub test_error: f64,
}

/// What the seed prints per epoch, plus throughput. Errors in percent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub lr: f32,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_error: f64,
    pub test_loss: f64,
    pub test_error: f64,
    pub best_epoch: usize,
    pub best_val_error: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    /// This epoch is the new best (the caller saves the model).
    #[serde(skip)]
    pub improved: bool,
    /// Stopped early by the stop flag.
    #[serde(skip)]
    pub interrupted: bool,
}

/// Progress inside an epoch, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo {
    pub step: usize,
    pub steps: usize,
    /// Mean training loss so far, when it was read back at this step.
    pub loss: Option<f64>,
}

pub struct Trainer {
    pub model: Model,
    pub options: TrainOptions,
    pub state: TrainState,
    train: ImageSet,
    valid: ImageSet,
    test: ImageSet,
}

/// Loss and error (%) over a set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    pub loss: f64,
    pub error: f64,
}

/// A monotonic clock that also exists in the browser build (there, durations read as 0).
fn now_seconds() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    {
        0.0
    }
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
        if options.epochs == 0 {
            return Err(Error::Model(
                "the number of epochs must be at least 1".into(),
            ));
        }
        if !(options.lr_start > 0.0 && options.lr_final > 0.0) {
            return Err(Error::Model("learning rates must be positive".into()));
        }
        let train_n = train.len() * if options.flip { 2 } else { 1 };
        if options.batch == 0 || options.batch > train_n {
            return Err(Error::Model(format!(
                "a batch of {} does not fit a training split of {train_n} images{}: use --batch-size {} or less",
                options.batch,
                if options.flip { " (with flips)" } else { "" },
                train_n
            )));
        }
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
        })
    }

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

    /// Trains one epoch; `progress` sees each step and returns whether it wants the running loss
    /// read back at the next step (a device read: ask a few times a second at most).
    pub async fn train_epoch<B: Backend>(
        &mut self,
        b: &mut B,
        stop: &AtomicBool,
        mut progress: impl FnMut(StepInfo) -> bool,
    ) -> Result<(f64, usize), Error> {
        let epoch = self.state.epoch + 1;
        let order = self.epoch_order(epoch);
        let steps = self.steps_per_epoch();
        let batch = self.options.batch;
        b.fill_zero(self.model.acc);
        let sgd = matches!(self.options.optimizer, Optimizer::Sgd { .. });
        let mut want_loss = false;
        let mut last_checked = 0;
        let mut done = 0;
        for step in 0..steps {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            self.state.t += 1;
            let scalars = match self.options.optimizer {
                Optimizer::Adam => StepScalars::adam(self.state.lr, self.state.t, self.model.adam),
                Optimizer::Sgd { momentum } => StepScalars::sgd(self.state.lr, momentum),
            };
            b.write_u32(self.model.indices, &order[step * batch..(step + 1) * batch]);
            b.write_f32(self.model.step_scalars, &scalars.to_vec());
            b.gather_batch(
                &self.train,
                self.model.indices,
                batch,
                self.model.input(),
                self.model.labels,
            );
            self.model.train_step(b, batch, sgd);
            done = step + 1;
            let mut loss = None;
            if want_loss {
                let acc = b.read_f32(self.model.acc).await?;
                let mean = acc[0] as f64 / (done * batch) as f64;
                if !mean.is_finite() {
                    let at = if last_checked + 1 == done {
                        format!("step {done}")
                    } else {
                        format!("a step between {} and {done}", last_checked + 1)
                    };
                    return Err(Error::Model(format!(
                        "the training loss became {mean} in epoch {epoch} at {at} of {steps}: lower the learning rate (-lr)"
                    )));
                }
                last_checked = done;
                loss = Some(mean);
            }
            want_loss = progress(StepInfo {
                step: step + 1,
                steps,
                loss,
            });
        }
        b.flush();
        let acc = b.read_f32(self.model.acc).await?;
        let mean = if done == 0 {
            0.0
        } else {
            acc[0] as f64 / (done * batch) as f64
        };
        if !mean.is_finite() {
            return Err(Error::Model(format!("the training loss became {mean} in epoch {epoch} (by step {done}): lower the learning rate (-lr)")));
        }
        Ok((mean, done))
    }

    /// Loss and error of every image of a set (the last batch may be partial), evaluation mode.
    pub async fn evaluate<B: Backend>(&self, b: &mut B, which: Which) -> Result<Eval, Error> {
        let set = match which {
            Which::Valid => &self.valid,
            Which::Test => &self.test,
        };
        evaluate_set(b, &self.model, set, self.options.batch).await
    }

    /// One whole epoch as the seed runs it: train, validate, test when the validation error is
    /// at most the best so far; LR decays after it.
    pub async fn run_epoch<B: Backend>(
        &mut self,
        b: &mut B,
        stop: &AtomicBool,
        progress: impl FnMut(StepInfo) -> bool,
    ) -> Result<EpochReport, Error> {
        let t0 = now_seconds();
        let lr = self.state.lr;
        let (train_loss, steps_done) = self.train_epoch(b, stop, progress).await?;
        let interrupted = steps_done < self.steps_per_epoch();
        let train_seconds = now_seconds() - t0;
        let val = self.evaluate(b, Which::Valid).await?;
        let epoch = self.state.epoch + 1;
        let improved = !interrupted && val.error <= self.state.best_val_error;
        if improved {
            let test = self.evaluate(b, Which::Test).await?;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Valid,
    Test,
}

/// Loss and error (%) of a model over every image of an uploaded set.
pub async fn evaluate_set<B: Backend>(
    b: &mut B,
    model: &Model,
    set: &ImageSet,
    batch: usize,
) -> Result<Eval, Error> {
    b.fill_zero(model.acc);
    let batch = batch.min(model.max_batch);
    for start in (0..set.count).step_by(batch) {
        let n = batch.min(set.count - start);
        let idx: Vec<u32> = (start as u32..(start + n) as u32).collect();
        b.write_u32(model.indices, &idx);
        b.gather_batch(set, model.indices, n, model.input(), model.labels);
        model.eval_step(b, n);
    }
    let acc = b.read_f32(model.acc).await?;
    let n = set.count.max(1) as f64;
    Ok(Eval {
        loss: acc[0] as f64 / n,
        error: 100.0 * acc[1] as f64 / n,
    })
}
