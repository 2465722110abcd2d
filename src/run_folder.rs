//! A run's files in its folder (native only): what `qnn train`, the window and `qnn sweep` read
//! and write, named after the model, kept apart from the training loop ([`Run`] deals in bytes).
//!
//! A run named `NAME` (the seed's model name, [`RunSettings::model_name`]) in folder `DIR` owns:
//!
//! | file | role |
//! |---|---|
//! | `DIR/NAME.safetensors` | the best model so far ([`RunFolder::model_path`]) |
//! | `DIR/NAME.state.safetensors` | everything `--resume` needs ([`RunFolder::state_path`]) |
//! | `DIR/NAME.metrics.jsonl` | one JSON line per finished epoch ([`RunFolder::metrics_path`]) |
//! | `DIR/NAME.png` | loss and error curves ([`RunFolder::plot_path`]) |
//! | `DIR/.NAME.lock` | held while a run trains into the folder ([`RunFolder::lock_path`]) |
//!
//! Every file is written atomically ([`write_atomic`](crate::files::write_atomic)). A front end takes the lock
//! ([`RunFolder::lock`]), reads its start ([`RunFolder::start_bytes`]), builds the [`Run`] from
//! [`StartBytes::start`] and saves each finished epoch ([`RunFolder::save_epoch`]):
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::atomic::AtomicBool;
//! use qnn::run::{EpochOutcome, Run, RunSettings};
//! use qnn::run_folder::{RunFolder, StartFiles};
//! let mut b = qnn::CpuBackend::new();
//! let data = qnn::data::mnist_mini()?;
//! let settings = RunSettings::new(qnn::data::DatasetKind::MnistMini);
//! let folder = RunFolder::new("runs", settings.model_name());
//! let _lock = folder.lock()?; // held until dropped
//! let start = folder.start_bytes(StartFiles::Fresh { overwrite: false })?;
//! let mut run = pollster::block_on(Run::new(&mut b, settings, &data, start.start()))?;
//! let stop = AtomicBool::new(false);
//! while !run.is_finished() {
//!     if let EpochOutcome::Finished(r) = pollster::block_on(run.next_epoch(&mut b, &stop, |_| false))? {
//!         pollster::block_on(folder.save_epoch(&mut b, &run, &r))?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! [`RunSettings::model_name`]: crate::run::RunSettings::model_name

use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::checkpoint::{self, ModelMeta};
use crate::files;
use crate::run::{Run, Start};
use crate::train::EpochReport;

pub mod plot;

/// What follows the run's name in its best model's file name.
pub const MODEL_SUFFIX: &str = ".safetensors";
/// What follows the run's name in its training state's file name.
pub const STATE_SUFFIX: &str = ".state.safetensors";
/// What follows the run's name in its metrics' file name.
pub const METRICS_SUFFIX: &str = ".metrics.jsonl";
/// What follows the run's name in its plot's file name.
pub const PLOT_SUFFIX: &str = ".png";

/// What can go wrong with a run's files. The messages name the file and the fix, in the
/// command line's words (its flags: `--out`, `--resume`, `-ft 1`, `--init`, `--overwrite`); a
/// front end with other words matches on the variant.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// The run folder cannot be made.
    #[error("--out {}: cannot create the folder: {error}", .dir.display())]
    CreateFolder {
        /// The run folder.
        dir: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The lock file cannot be made in the run folder.
    #[error("--out {}: cannot write there: {error}", .dir.display())]
    NotWritable {
        /// The run folder.
        dir: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// Another run (in this process or another) holds the run's lock.
    #[error("another qnn run is training into {} right now (it holds {}): wait for it, or use another --out", .model.display(), .lock.display())]
    Busy {
        /// The run's model file, which the other run writes.
        model: PathBuf,
        /// The lock file it holds.
        lock: PathBuf,
    },
    /// The OS refused the lock for another reason than another holder.
    #[error("{}: cannot lock ({error})", .lock.display())]
    Lock {
        /// The lock file.
        lock: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A fresh start would replace a model or state the run folder already holds.
    #[error("{} already exists{}: continue that run with --resume, fine-tune it with -ft 1, pass --overwrite to replace it, or choose another --out", .file.display(), saved_note(.saved.as_deref()))]
    Exists {
        /// The existing file: the model, else the state.
        file: PathBuf,
        /// What the run's model file says about itself, where it is readable.
        saved: Option<Box<ModelMeta>>,
    },
    /// A folder stands where the run's model or state file belongs.
    #[error("{} is a folder where the run's {what} file belongs: move it away, or choose another --out", .path.display())]
    FolderInTheWay {
        /// The folder.
        path: PathBuf,
        /// `model` or `training state`.
        what: &'static str,
    },
    /// A file the start needs cannot be read.
    #[error("{why} needs {}: {error}", .file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The command-line flag of the start that needs it (`-ft 1`, `--init`, `--resume`).
        why: &'static str,
        /// The OS error.
        error: std::io::Error,
    },
    /// The plot could not be drawn or encoded (plotters' or the PNG encoder's message).
    #[error("{0}")]
    Plot(String),
    /// Writing a file, or making the training state's bytes, failed.
    #[error(transparent)]
    Qnn(#[from] crate::Error),
}

fn saved_note(saved: Option<&ModelMeta>) -> String {
    saved.map_or(String::new(), |m| {
        format!(
            " (epoch {}, validation error {})",
            m.epoch,
            checkpoint::percent(m.val_error)
        )
    })
}

/// Where a run starts, as the files (or bytes) it needs; [`RunFolder::start_bytes`] reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFiles {
    /// Fresh parameters. Refused where the run's model or state exists, unless `overwrite`.
    Fresh {
        /// Replacing the run's existing model and state is wanted.
        overwrite: bool,
    },
    /// The parameters of another model file (`qnn train --init FILE`), then a fresh run.
    /// Refused like [`StartFiles::Fresh`] where the run's files exist, unless `overwrite`.
    Init {
        /// The model file whose parameters start the run.
        model: PathBuf,
        /// Replacing the run's existing model and state is wanted.
        overwrite: bool,
    },
    /// Fine-tuning the run's own model file (the seed's `-ft 1`).
    FineTune,
    /// Fine-tuning a model the caller holds as bytes (the window's model on show).
    FineTuneFrom(Vec<u8>),
    /// Continuing the run from its state file, with its model file as the best so far where
    /// there is one (`--resume`).
    Resume,
}

/// The bytes a run starts from, as read by [`RunFolder::start_bytes`]; [`StartBytes::start`]
/// lends them to [`Run::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartBytes {
    /// Fresh parameters.
    Fresh,
    /// A model to fine-tune.
    FineTune(Vec<u8>),
    /// A model whose parameters start a fresh run.
    Init(Vec<u8>),
    /// A saved training state and the run's best model where it has one.
    Resume {
        /// The state file's bytes.
        state: Vec<u8>,
        /// The model file's bytes, where the file exists.
        best_model: Option<Vec<u8>>,
    },
}

impl StartBytes {
    /// The start for [`Run::new`].
    pub fn start(&self) -> Start<'_> {
        match self {
            StartBytes::Fresh => Start::Fresh,
            StartBytes::FineTune(b) => Start::FineTune(b),
            StartBytes::Init(b) => Start::Init(b),
            StartBytes::Resume { state, best_model } => Start::Resume {
                state,
                best_model: best_model.as_deref(),
            },
        }
    }
}

/// The run's lock, held until dropped (the OS releases it when the process dies).
#[derive(Debug)]
#[must_use = "the lock is released when this is dropped"]
pub struct RunLock {
    _file: std::fs::File,
}

/// What [`RunFolder::save_epoch`] wrote.
#[derive(Debug)]
pub struct SavedEpoch {
    /// The epoch was the new best, so the model file was replaced.
    pub best_model: bool,
    /// Drawing the plot: it is a convenience, so a failure is reported here and the epoch is
    /// saved all the same.
    pub plot: Result<(), FolderError>,
}

/// One run's files: a folder and the run's name (the seed's model name), see the
/// [module](self) for the files and their roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFolder {
    dir: PathBuf,
    name: String,
}

impl RunFolder {
    /// The run `name` in folder `dir` (nothing is read or made yet).
    pub fn new(dir: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        RunFolder {
            dir: dir.into(),
            name: name.into(),
        }
    }

    /// The run whose model or state file is in `dir` (a folder holding one run, as a sweep's
    /// point folder does), named after its state file, else its model file; `None` where the
    /// folder holds neither or cannot be read. Hidden files (a lock, a temporary file) do not
    /// count.
    pub fn find(dir: impl Into<PathBuf>) -> Option<Self> {
        let dir = dir.into();
        let (mut model, mut state) = (None, None);
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with('.') {
                continue;
            }
            if let Some(name) = file.strip_suffix(STATE_SUFFIX) {
                state = Some(name.to_string());
            } else if let Some(name) = file.strip_suffix(MODEL_SUFFIX) {
                model = Some(name.to_string());
            }
        }
        state.or(model).map(|name| RunFolder { dir, name })
    }

    /// The folder (`qnn train --out`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run's name, which its files carry (and the plot's title).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `NAME.safetensors`: the best model so far (what `qnn eval` reads and `-ft 1` starts
    /// from), replaced only by an epoch that does better.
    pub fn model_path(&self) -> PathBuf {
        self.file(MODEL_SUFFIX)
    }

    /// `NAME.state.safetensors`: the whole training state after the last finished epoch, what
    /// `--resume` continues from ([`Run::state_bytes`]).
    pub fn state_path(&self) -> PathBuf {
        self.file(STATE_SUFFIX)
    }

    /// `NAME.metrics.jsonl`: one [`EpochReport`] per line, every finished epoch.
    pub fn metrics_path(&self) -> PathBuf {
        self.file(METRICS_SUFFIX)
    }

    /// `NAME.png`: the loss and error curves of the finished epochs ([`plot::curves`]).
    pub fn plot_path(&self) -> PathBuf {
        self.file(PLOT_SUFFIX)
    }

    /// `.NAME.lock`: the file a training run holds locked ([`RunFolder::lock`]).
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(format!(".{}.lock", self.name))
    }

    fn file(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", self.name))
    }

    /// Makes the folder, proves it writable and takes the run's lock, held until the returned
    /// [`RunLock`] is dropped, so two runs never write into one model's files at once.
    pub fn lock(&self) -> Result<RunLock, FolderError> {
        std::fs::create_dir_all(&self.dir).map_err(|error| FolderError::CreateFolder {
            dir: self.dir.clone(),
            error,
        })?;
        let lock = self.lock_path();
        if !lock.exists() {
            // make it first, so that a folder we cannot write is told apart from a lock refused
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock)
                .map_err(|error| FolderError::NotWritable {
                    dir: self.dir.clone(),
                    error,
                })?;
        }
        match files::try_lock(&lock) {
            Ok(Some(file)) => Ok(RunLock { _file: file }),
            Ok(None) => Err(FolderError::Busy {
                model: self.model_path(),
                lock,
            }),
            Err(error) => Err(FolderError::Lock { lock, error }),
        }
    }

    /// The run's model file, else its state file, where one exists already: a fresh run must
    /// not replace it without being told to.
    pub fn existing(&self) -> Option<PathBuf> {
        [self.model_path(), self.state_path()]
            .into_iter()
            .find(|f| f.exists())
    }

    /// Refuses a fresh start ([`StartFiles::Fresh`] or [`StartFiles::Init`] without
    /// `overwrite`) where the run's model or state exists ([`FolderError::Exists`]); the other
    /// starts continue from those files and are never refused here. Reads no file unless it
    /// refuses.
    pub fn refuse_overwrite(&self, from: &StartFiles) -> Result<(), FolderError> {
        for (path, what) in [
            (self.model_path(), "model"),
            (self.state_path(), "training state"),
        ] {
            if path.is_dir() {
                return Err(FolderError::FolderInTheWay { path, what });
            }
        }
        let fresh = matches!(
            from,
            StartFiles::Fresh { overwrite: false }
                | StartFiles::Init {
                    overwrite: false,
                    ..
                }
        );
        match self.existing().filter(|_| fresh) {
            None => Ok(()),
            Some(file) => Err(FolderError::Exists {
                file,
                saved: checkpoint::load_model(&self.model_path())
                    .ok()
                    .map(|(_, meta)| Box::new(meta)),
            }),
        }
    }

    /// Reads what `from` starts from, after [`RunFolder::refuse_overwrite`]: nothing for a
    /// fresh start, the run's model for [`StartFiles::FineTune`], the given model for
    /// [`StartFiles::Init`], the run's state and (where it exists) its model for
    /// [`StartFiles::Resume`]. A file that cannot be read is a [`FolderError::Read`].
    pub fn start_bytes(&self, from: StartFiles) -> Result<StartBytes, FolderError> {
        self.refuse_overwrite(&from)?;
        // model and state files, read no further than their headers declare
        let read = |file: &Path, why: &'static str| {
            checkpoint::read_file(file).map_err(|e| match e {
                crate::Error::Io { error, .. } => FolderError::Read {
                    file: file.to_path_buf(),
                    why,
                    error,
                },
                e => FolderError::Qnn(e),
            })
        };
        Ok(match from {
            StartFiles::Fresh { .. } => StartBytes::Fresh,
            StartFiles::FineTune => StartBytes::FineTune(read(&self.model_path(), "-ft 1")?),
            StartFiles::FineTuneFrom(bytes) => StartBytes::FineTune(bytes),
            StartFiles::Init { model, .. } => StartBytes::Init(read(&model, "--init")?),
            StartFiles::Resume => {
                let state = read(&self.state_path(), "--resume")?;
                let model = self.model_path();
                let best_model = if model.is_file() {
                    Some(read(&model, "--resume")?)
                } else {
                    None
                };
                StartBytes::Resume { state, best_model }
            }
        })
    }

    /// Saves the epoch `report` that `run` just finished, in this order: the model where the
    /// epoch is the new best, the metrics, the plot (a failure to draw it is returned in
    /// [`SavedEpoch::plot`], not as an error), then the training state (from `b`). Each file is
    /// written atomically, so a crash leaves the previous epoch's file or this one's.
    pub async fn save_epoch<B: Backend>(
        &self,
        b: &mut B,
        run: &Run,
        report: &EpochReport,
    ) -> Result<SavedEpoch, FolderError> {
        if report.improved {
            let bytes = run
                .best_model()
                .expect("an improved epoch is the best model");
            files::write_atomic(&self.model_path(), bytes)?;
        }
        self.write_metrics(run.history())?;
        let plot = self.plot(run.history());
        let state = run.state_bytes(b).await?;
        files::write_atomic(&self.state_path(), &state)?;
        Ok(SavedEpoch {
            best_model: report.improved,
            plot,
        })
    }

    /// Writes the metrics file: one JSON line per epoch of `history` (the whole file, atomically).
    pub fn write_metrics(&self, history: &[EpochReport]) -> Result<(), FolderError> {
        let mut text = String::new();
        for r in history {
            text.push_str(&serde_json::to_string(r).expect("an epoch report is serializable"));
            text.push('\n');
        }
        files::write_atomic(&self.metrics_path(), text.as_bytes())?;
        Ok(())
    }

    /// The epochs in the metrics file (lines that are not an epoch's report are skipped).
    pub fn read_metrics(&self) -> Result<Vec<EpochReport>, FolderError> {
        let path = self.metrics_path();
        let text = files::read_text(&path, files::TEXT_MAX_BYTES, "a metrics file")?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// Draws the curves of `history` into the plot file, titled with the run's name.
    pub fn plot(&self, history: &[EpochReport]) -> Result<(), FolderError> {
        plot::curves(&self.plot_path(), history, &self.name)
    }

    /// (epochs finished, epochs planned) according to the run's state file
    /// ([`crate::run::saved_progress`]): the run is done when they are equal.
    pub fn saved_progress(&self) -> Result<(usize, usize), FolderError> {
        let path = self.state_path();
        let bytes = checkpoint::read_file(&path)?;
        Ok(crate::run::saved_progress(
            &bytes,
            &path.display().to_string(),
        )?)
    }
}
