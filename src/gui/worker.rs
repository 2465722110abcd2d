//! The training thread of the window: loads the data, opens the backend (the window's own
//! wgpu device when training on the GPU), drives [`Run`] epoch by epoch, writes the run's files
//! as `qnn train` does, and reports what happened as [`Event`]s. The window never waits on it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use qnn::backend::Backend;
use qnn::data::{Dataset, DatasetKind};
use qnn::inspect::{predicted_classes, ConfusionMatrix, Probe};
use qnn::run::{EpochOutcome, Run, RunSettings};
use qnn::run_folder::{FolderError, RunFolder, StartFiles};
use qnn::train::{EpochReport, StepWants};
use qnn::{CpuBackend, GpuBackend};

/// Test images shown in the window's grid.
pub const GRID_IMAGES: usize = 40;

/// The window's wgpu device, shared with the trainer.
#[derive(Clone)]
pub struct SharedGpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
}

/// Where the data come from.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSource {
    pub kind: DatasetKind,
    /// A folder or archive (ignored for mnist-mini).
    pub path: Option<PathBuf>,
}

impl DataSource {
    /// Reads the data set: mnist-mini from the binary, a folder as `qnn train --data-dir`, a
    /// file (CIFAR-10's .tar.gz, a batch, an MNIST file beside its three siblings) by content.
    pub fn load(&self) -> Result<Dataset, String> {
        let e = |e: qnn::Error| e.to_string();
        match (&self.path, self.kind) {
            (_, DatasetKind::MnistMini) => qnn::data::mnist_mini().map_err(e),
            (Some(p), DatasetKind::Folder) => load_pictures(p).map(|(d, _, _)| d),
            (None, k) => Err(format!(
                "{} needs its files: choose a folder or archive (Data… or drop it on the window)",
                k.name()
            )),
            (Some(p), k) if p.is_dir() => qnn::data::load(k, p).map_err(e),
            (Some(p), k) => {
                let dir = p.parent().unwrap_or(std::path::Path::new("."));
                let mut files = Vec::new();
                if k == DatasetKind::Mnist {
                    // one of the four files was chosen: its siblings are beside it
                    return qnn::data::load(k, dir).map_err(e);
                }
                let bytes =
                    qnn::files::read_regular(p, qnn::data::MAX_ARCHIVE_ENTRY, "a data file")
                        .map_err(e)?;
                files.push((p.display().to_string(), bytes));
                qnn::data::from_files(k, &files).map_err(e)
            }
        }
    }
}

/// A folder of your own pictures (or a `.zip` of one), as `qnn train -ds folder --data-dir`
/// reads it (through its cache): the data, how many of its training images validate, and the
/// set's name.
pub fn load_pictures(p: &Path) -> Result<(Dataset, usize, String), String> {
    load_pictures_with(p, &|_, _| {}).map(|p| (p.data, p.valid, p.name))
}

/// A set of pictures read into memory.
pub struct Pictures {
    pub data: Dataset,
    /// How many of its training images validate.
    pub valid: usize,
    /// The set's name (the folder's, or the zip's), which model files start with.
    pub name: String,
    /// They came from the cache, not from decoding the pictures.
    pub from_cache: bool,
}

/// [`load_pictures`], calling `progress(done, total)` while the pictures are decoded (not when
/// they come from the cache).
pub fn load_pictures_with(
    p: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Pictures, String> {
    let opts = qnn::image_folder::FolderOptions::default();
    let (d, report, _) =
        qnn::image_folder::load_cached(p, &opts, progress).map_err(|e| e.to_string())?;
    let name = d.name.clone();
    let (data, valid) = qnn::data::from_folder(d);
    Ok(Pictures {
        data,
        valid,
        name,
        from_cache: report.is_none(),
    })
}

/// A set of pictures being read on a thread of its own, so that the window keeps drawing (the
/// first read of 100,000 pictures takes a minute).
pub struct PictureLoad {
    /// The folder or `.zip` being read.
    pub path: PathBuf,
    /// Pictures decoded so far and in all (0 of 0 while the set is listed or read from its
    /// cache).
    counts: Arc<(AtomicUsize, AtomicUsize)>,
    result: Receiver<Result<Pictures, String>>,
}

impl PictureLoad {
    /// Starts reading `path`; `repaint` wakes the window as the pictures are decoded and when
    /// they are read. Fails only when the system cannot start a thread.
    pub fn spawn(
        path: PathBuf,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> Result<PictureLoad, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let (thread_counts, thread_path) = (counts.clone(), path.clone());
        // not joined: the library cannot stop a read half-way, and a window closing must not
        // wait for one; the process ending ends it
        std::thread::Builder::new()
            .name("qnn-pictures".into())
            .spawn(move || {
                let progress = |done: usize, total: usize| {
                    thread_counts.0.store(done, Ordering::Relaxed);
                    thread_counts.1.store(total, Ordering::Relaxed);
                    repaint();
                };
                let _ = tx.send(load_pictures_with(&thread_path, &progress));
                repaint();
            })
            .map_err(|e| format!("could not start a thread to read the pictures: {e}"))?;
        Ok(PictureLoad {
            path,
            counts,
            result: rx,
        })
    }

    /// (decoded, in all) so far.
    pub fn progress(&self) -> (usize, usize) {
        (
            self.counts.0.load(Ordering::Relaxed),
            self.counts.1.load(Ordering::Relaxed),
        )
    }

    /// The pictures or why not, once the read has ended; `None` while it goes on.
    pub fn try_finish(&self) -> Option<Result<Pictures, String>> {
        match self.result.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            // the thread ended without a word (it cannot, but the window must not wait forever)
            Err(TryRecvError::Disconnected) => Some(Err(format!(
                "{}: reading the pictures stopped unexpectedly",
                self.path.display()
            ))),
        }
    }
}

/// How the run starts.
pub enum StartFrom {
    Fresh {
        overwrite: bool,
    },
    /// The seed's -ft 1: a saved model's bytes.
    FineTune(Vec<u8>),
    /// The run folder's state file.
    Resume,
}

/// One run to train.
pub struct Job {
    pub settings: RunSettings,
    pub source: DataSource,
    /// The data already in memory for this source.
    pub data: Option<Arc<Dataset>>,
    pub start: StartFrom,
    /// The window's GPU, when the trainer is to use it.
    pub gpu: Option<SharedGpu>,
    /// Why the CPU trains, when it does.
    pub cpu_reason: Option<String>,

    pub out: PathBuf,
}

/// What the worker reports.
pub enum Event {
    /// The data are in memory (the window keeps them for its views).
    Data(Arc<Dataset>),
    /// The run is built.
    Started {
        device: String,
        steps: usize,
        epochs: usize,
        history: Vec<EpochReport>,
        folder: PathBuf,
        pause: Arc<AtomicBool>,
        note: Option<String>,
    },
    /// A training step.
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        loss: Option<f64>,
        error: Option<f64>,
        images_per_second: f64,
    },
    /// A look inside the network.
    Probe(Box<Probe>),
    /// Predictions for the first test images.
    Grid(Vec<u16>),
    /// An epoch finished (files written).
    Epoch {
        report: EpochReport,
        confusion: ConfusionMatrix,
        best_model: Option<Vec<u8>>,
    },
    /// The run ended: `finished` when all epochs are done, else stopped; `message` says what
    /// was saved.
    Done { finished: bool, message: String },
    /// The run could not go on.
    Failed(String),
}

/// The window's handle on a running worker.
pub struct Handle {
    pub events: Receiver<Event>,
    pub stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    /// Asks the run to stop after the current step.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // a closing window stops the run and lets it write what it has
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the worker; `repaint` wakes the window after each event. Fails only when the system
/// cannot start a thread.
pub fn spawn(job: Job, repaint: impl Fn() + Send + Sync + 'static) -> Result<Handle, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("qnn-train".into())
        .spawn(move || {
            let send = |e: Event| {
                let _ = tx.send(e);
                repaint();
            };
            if let Err(msg) = work(job, &thread_stop, &send) {
                send(Event::Failed(msg));
            }
        })
        .map_err(|e| format!("could not start the training thread: {e}"))?;
    Ok(Handle {
        events: rx,
        stop,
        thread: Some(thread),
    })
}

fn work(job: Job, stop: &AtomicBool, send: &(dyn Fn(Event) + Sync)) -> Result<(), String> {
    let data = match &job.data {
        Some(d) => d.clone(),
        None => {
            let d = Arc::new(job.source.load()?);
            send(Event::Data(d.clone()));
            d
        }
    };
    match &job.gpu {
        Some(g) => {
            let mut b = GpuBackend::from_device(g.device.clone(), g.queue.clone(), g.info.clone());
            drive(&mut b, &job, &data, stop, send)
        }
        None => {
            let mut b = CpuBackend::new();
            drive(&mut b, &job, &data, stop, send)
        }
    }
}

fn drive<B: Backend>(
    b: &mut B,
    job: &Job,
    data: &Dataset,
    stop: &AtomicBool,
    send: &(dyn Fn(Event) + Sync),
) -> Result<(), String> {
    let settings = job.settings.clone();
    let folder = RunFolder::new(&job.out, settings.model_name());
    let _lock = folder.lock().map_err(|e| e.to_string())?;
    let from = match &job.start {
        StartFrom::Fresh { overwrite } => StartFiles::Fresh {
            overwrite: *overwrite,
        },
        StartFrom::FineTune(bytes) => StartFiles::FineTuneFrom(bytes.clone()),
        StartFrom::Resume => StartFiles::Resume,
    };
    // the window's words for a start it cannot make (the library's messages name the flags)
    let start = folder.start_bytes(from).map_err(|e| match e {
        FolderError::Exists { file, .. } => format!(
            "{} already exists: resume that run, or start over (replacing it)",
            file.display()
        ),
        FolderError::Read { file, error, .. } => format!("{}: {error}", file.display()),
        e => e.to_string(),
    })?;
    let fine_tune = matches!(job.start, StartFrom::FineTune(_));
    let mut run =
        pollster::block_on(Run::new(b, settings, data, start.start())).map_err(|e| match e {
            qnn::Error::ResumeMismatch(_) => format!(
                "{}: {e}. Resume with the settings of that run, or start over",
                folder.state_path().display()
            ),
            e => e.to_string(),
        })?;
    let pause = Arc::new(AtomicBool::new(false));
    run.share_pause_flag(pause.clone());
    let epochs = run.settings.options.epochs;
    send(Event::Started {
        device: b.describe(),
        steps: run.steps_per_epoch(),
        epochs,
        history: run.history().to_vec(),
        folder: job.out.clone(),
        pause,
        note: job.cpu_reason.clone(),
    });
    let e = |e: qnn::Error| e.to_string();
    let image_len = data.image_len();
    let grid_pixels = &data.test.pixels[..GRID_IMAGES.min(data.test.len()) * image_len];
    let grid = |run: &Run, b: &mut B| -> Result<Vec<u16>, String> {
        let scores = pollster::block_on(run.predict(b, grid_pixels)).map_err(e)?;
        Ok(predicted_classes(run.settings.net.classes, &scores))
    };
    send(Event::Grid(grid(&run, b)?));
    // a look inside shows the first conv layer's filters: a network without one (a layer
    // list of dense layers) has none to show
    let probes = !run.settings.net.conv_layers().is_empty();
    if probes {
        send(Event::Probe(Box::new(
            pollster::block_on(run.probe(b)).map_err(e)?,
        )));
    }
    let batch = run.settings.options.batch;
    while !run.is_finished() {
        let epoch = run.state().epoch + 1;
        let t0 = Instant::now();
        let (mut last_loss, mut last_probe) = (Instant::now(), Instant::now());
        let outcome = pollster::block_on(run.next_epoch(b, stop, |info| {
            if let Some(p) = info.probe {
                send(Event::Probe(Box::new(p)));
            }
            send(Event::Step {
                epoch,
                step: info.step,
                steps: info.steps,
                loss: info.loss,
                error: info.error,
                images_per_second: (info.step * batch) as f64 / t0.elapsed().as_secs_f64(),
            });
            // a device read for the curves 4 times a second, a look inside about once a second
            let loss = last_loss.elapsed().as_secs_f64() > 0.25;
            let probe = last_probe.elapsed().as_secs_f64() > 1.0;
            if loss {
                last_loss = Instant::now();
            }
            if probe {
                last_probe = Instant::now();
            }
            StepWants {
                loss,
                probe: probe && probes,
            }
        }))
        .map_err(e)?;
        let report = match outcome {
            EpochOutcome::Interrupted { epoch, steps_done } => {
                let kept = if run.state().epoch > 0 {
                    format!(
                        "epochs 1–{} are saved in {} (Resume continues)",
                        run.state().epoch,
                        job.out.display()
                    )
                } else if fine_tune {
                    "the starting model is unchanged".to_string()
                } else {
                    "no epoch finished, so nothing was saved".to_string()
                };
                send(Event::Done {
                    finished: false,
                    message: format!(
                        "stopped during epoch {epoch} (after {steps_done} steps, not saved); {kept}"
                    ),
                });
                return Ok(());
            }
            EpochOutcome::Finished(r) => r,
        };
        // a failure to draw the PNG is not a failure of the run: the window ignores it
        let saved =
            pollster::block_on(folder.save_epoch(b, &run, &report)).map_err(|e| e.to_string())?;
        let best_model = saved.best_model.then(|| {
            run.best_model()
                .expect("an improved epoch is the best model")
                .to_vec()
        });
        let confusion = pollster::block_on(run.validation_confusion(b, data)).map_err(e)?;
        send(Event::Grid(grid(&run, b)?));
        send(Event::Epoch {
            report,
            confusion,
            best_model,
        });
        if stop.load(Ordering::Relaxed) {
            send(Event::Done {
                finished: false,
                message: format!(
                    "stopped after epoch {epoch}; it is saved in {} (Resume continues)",
                    job.out.display()
                ),
            });
            return Ok(());
        }
    }
    let s = run.state();
    send(Event::Done {
        finished: true,
        message: format!(
            "done: best epoch {}, validation error {:.2}%, test error {:.2}%; model in {}",
            s.best_epoch,
            s.best_val_error,
            s.test_error,
            folder.model_path().display()
        ),
    });
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{PictureLoad, Pictures};

    /// A fresh empty folder under the system's temporary folder.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("qnn-gui-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// `set/<class>/<i>.png`: `per_class` 8×6 RGB pictures in each of `classes`, each class
    /// its own colour. Returns `set`.
    pub(crate) fn write_set(dir: &Path, classes: &[&str], per_class: usize) -> PathBuf {
        let set = dir.join("set");
        for (k, class) in classes.iter().enumerate() {
            let d = set.join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..per_class {
                let img = image::RgbImage::from_fn(8, 6, |x, y| {
                    image::Rgb([(k * 90) as u8, (x * 20 + i as u32) as u8, (y * 30) as u8])
                });
                img.save(d.join(format!("{i:03}.png"))).unwrap();
            }
        }
        set
    }

    /// The folder `set` zipped as a person zips it: its own name first in every entry.
    pub(crate) fn write_zip(set: &Path, zip_path: &Path) {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::fs::File::create(zip_path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let base = set.parent().unwrap();
        let mut stack = vec![set.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    z.start_file(rel, opts).unwrap();
                    z.write_all(&std::fs::read(&p).unwrap()).unwrap();
                }
            }
        }
        z.finish().unwrap();
    }

    /// Reads `path` with [`PictureLoad`] as the window does: the result, the last progress
    /// seen, and how often the window was woken.
    fn read_in_background(path: &Path) -> (Result<Pictures, String>, (usize, usize), usize) {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let load = PictureLoad::spawn(path.to_path_buf(), move || {
            w.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        let t0 = Instant::now();
        loop {
            if let Some(r) = load.try_finish() {
                return (r, load.progress(), wakes.load(Ordering::Relaxed));
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "reading {} did not end",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A folder and a zip of it, read on the background thread, deliver the same pictures
    /// (their shape, classes by name, every picture), report the decoding's progress up to
    /// the last picture, and wake the window; a second read comes from the cache, and the zip's
    /// set has the folder's name.
    #[test]
    fn a_folder_and_its_zip_are_read_in_the_background() {
        let dir = temp_dir("load");
        let set = write_set(&dir, &["cat", "dog", "owl"], 10);
        let zipped = dir.join("zipped");
        std::fs::create_dir_all(&zipped).unwrap();
        let zip_path = zipped.join("pets.zip");
        write_zip(&set, &zip_path);
        for path in [&set, &zip_path] {
            let (r, progress, wakes) = read_in_background(path);
            let p = r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(p.data.chw, (3, 6, 8), "{}", path.display());
            assert_eq!(p.data.class_names, ["cat", "dog", "owl"]);
            assert_eq!(p.data.train.len() + p.data.test.len(), 30);
            assert!(p.valid > 0 && !p.from_cache, "{}", path.display());
            assert_eq!(progress, (30, 30), "{}: decoded of all", path.display());
            assert!(wakes >= 2, "{}: woken {wakes} times", path.display());
            let (again, _, _) = read_in_background(path);
            let again = again.unwrap();
            assert!(again.from_cache, "{}: not from its cache", path.display());
            assert_eq!(again.data.train.pixels, p.data.train.pixels);
        }
        assert_eq!(
            read_in_background(&zip_path).0.unwrap().name,
            "set",
            "a zip of one folder is named after that folder, as the folder is"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file that is no zip, and a folder without class folders, end the read with a message
    /// naming them (no panic, no hang).
    #[test]
    fn a_set_that_cannot_be_read_is_named() {
        let dir = temp_dir("bad");
        let not_zip = dir.join("holiday.zip");
        std::fs::write(&not_zip, b"not a zip at all").unwrap();
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        for path in [&not_zip, &empty] {
            let (r, _, _) = read_in_background(path);
            let e = r
                .err()
                .unwrap_or_else(|| panic!("{} was read", path.display()));
            let file = path.file_name().unwrap().to_string_lossy();
            assert!(e.contains(file.as_ref()), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
