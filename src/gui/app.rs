//! The window's state and how it reacts: buttons, dropped files, the worker's events.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use eframe::egui;
use qnn::data::{Dataset, DatasetKind};
use qnn::inspect::{ConfusionMatrix, Explorer, Probe};
use qnn::run_folder::RunFolder;
use qnn::train::EpochReport;

use super::settings::{Device, Settings};
use super::worker::{self, DataSource, Event, Handle, Job, PictureLoad, SharedGpu, StartFrom};
use super::{views, Launch};

const SETTINGS_KEY: &str = "settings";

/// What the window tells the process when it closes (for `--exit-when-done` runs and scripts).
#[derive(Clone, Default)]
pub struct ExitReport(Arc<Mutex<ExitState>>);

#[derive(Default)]
struct ExitState {
    lines: Vec<String>,
    failed: Option<String>,
    screenshot_error: Option<String>,
}

impl ExitReport {
    fn line(&self, s: String) {
        if let Ok(mut st) = self.0.lock() {
            st.lines.push(s);
        }
    }
    fn fail(&self, s: String) {
        if let Ok(mut st) = self.0.lock() {
            st.failed = Some(s);
        }
    }
    /// Prints what the window did; an error when its run failed.
    pub fn finish(&self) -> Result<()> {
        let st = self
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("window state lost"))?;
        for l in &st.lines {
            println!("{l}");
        }
        if let Some(e) = &st.screenshot_error {
            anyhow::bail!("{e}");
        }
        if let Some(e) = &st.failed {
            anyhow::bail!("{e}");
        }
        Ok(())
    }
}

/// Frame intervals while a run trains: how smooth the window stays.
#[derive(Default)]
pub struct FrameStats {
    last: Option<Instant>,
    /// Milliseconds between consecutive frames drawn while training.
    pub intervals_ms: Vec<f64>,
}

impl FrameStats {
    fn tick(&mut self, training: bool) {
        let now = Instant::now();
        if let (Some(last), true) = (self.last, training) {
            self.intervals_ms
                .push(now.duration_since(last).as_secs_f64() * 1e3);
        }
        self.last = Some(now);
    }
    /// (median, 95th percentile, worst) in ms.
    pub fn summary(&self) -> Option<(f64, f64, f64)> {
        if self.intervals_ms.is_empty() {
            return None;
        }
        let mut v = self.intervals_ms.clone();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some((at(0.5), at(0.95), v[v.len() - 1]))
    }
}

/// A point of the curves within an epoch: (epoch as a fraction, value).
pub type Curve = Vec<[f64; 2]>;

/// What the views show of the current run or model.
#[derive(Default)]
pub struct Shown {
    pub history: Vec<EpochReport>,
    pub step_loss: Curve,
    pub step_error: Curve,
    /// (epoch, step, steps) of the last step.
    pub progress: Option<(usize, usize, usize)>,
    pub epochs: usize,
    pub images_per_second: f64,
    pub seconds_left: Option<f64>,
    pub probe: Option<Probe>,
    /// Which images the probe saw ("validation" during a run, "test" for a loaded model).
    pub probe_images: &'static str,
    pub confusion: Option<ConfusionMatrix>,
    /// Predicted classes of the grid's test images.
    pub grid: Vec<u16>,
    /// The best model so far (or the loaded one), as its file's bytes.
    pub best_model: Option<Vec<u8>>,
    /// A title for what is shown ("run …" or "model file …").
    pub title: String,
}

/// The draw pad: 28×28 intensities and the scores of the model for them.
pub struct Pad {
    pub pixels: Vec<f32>,
    pub scores: Option<Vec<f32>>,
    pub dirty: bool,
}

impl Default for Pad {
    fn default() -> Self {
        Pad {
            pixels: vec![0.0; PAD_SIDE * PAD_SIDE],
            scores: None,
            dirty: false,
        }
    }
}

/// Pixels a side of the draw pad (MNIST's).
pub const PAD_SIDE: usize = 28;

impl Pad {
    /// Whether drawing makes sense for a network of this input [c, h, w]: grey pictures only
    /// (a digit drawn in grey says nothing to a network of RGB photos).
    pub fn fits(input: [usize; 3]) -> bool {
        input[0] == 1
    }

    /// The drawing as an image of the network's input: centred as MNIST centres its digits,
    /// then resized (bilinear) to the input's height and width. `None` for an input the pad
    /// does not fit, and for a blank pad.
    pub fn image_for(&self, input: [usize; 3]) -> Option<Vec<u8>> {
        let [c, h, w] = input;
        if !Pad::fits(input) || h == 0 || w == 0 || self.pixels.iter().all(|&p| p == 0.0) {
            return None;
        }
        let digit = qnn::inspect::center_digit(&self.pixels);
        if (h, w) == (PAD_SIDE, PAD_SIDE) {
            return Some(digit);
        }
        let side = PAD_SIDE as u32;
        let img = image::GrayImage::from_raw(side, side, digit)?;
        let resized = image::imageops::resize(&img, w as u32, h as u32, image::imageops::Triangle);
        debug_assert_eq!(resized.len(), c * h * w);
        Some(resized.into_raw())
    }
}

pub struct Running {
    pub handle: Handle,
    pub pause: Option<Arc<AtomicBool>>,
    pub device: String,
    pub started: Instant,
    pub epoch_started: Instant,
}

/// A question the window asks before acting.
pub enum Ask {
    /// A fresh start would replace this run's files.
    Overwrite(PathBuf),
}

pub struct QnnApp {
    pub settings: Settings,
    gpu: Option<SharedGpu>,
    /// What the window's GPU is, for the device line.
    pub adapter: String,
    gpu_is_hardware: bool,
    data: Option<(DataSource, Arc<Dataset>)>,
    pub running: Option<Running>,
    pub shown: Shown,
    pub explorer: Option<Explorer>,
    pub pad: Pad,
    pub messages: Vec<(bool, String)>,
    pub ask: Option<Ask>,
    pub status: String,
    pub frames: FrameStats,
    pub grid_textures: Vec<egui::TextureHandle>,
    exit_when_done: bool,
    screenshot: Option<PathBuf>,
    closing: bool,
    exit: ExitReport,
    pending_start: bool,
    frames_drawn: u64,
    /// A set of pictures being read (a dropped or chosen folder or `.zip`).
    pub reading: Option<PictureLoad>,
    /// To wake the window from other threads.
    ctx: egui::Context,
}

impl QnnApp {
    pub fn new(cc: &eframe::CreationContext<'_>, launch: Launch, exit: ExitReport) -> Self {
        let remembered: Option<Settings> =
            cc.storage.and_then(|s| eframe::get_value(s, SETTINGS_KEY));
        let settings = if launch.flags_given || remembered.is_none() {
            launch.settings.clone()
        } else {
            remembered.unwrap_or_default()
        };
        let (gpu, adapter, gpu_is_hardware) = match &cc.wgpu_render_state {
            Some(rs) => {
                let info = rs.adapter.get_info();
                let hardware =
                    info.device_type != wgpu::DeviceType::Cpu && info.backend != wgpu::Backend::Gl;
                let compute = info.backend != wgpu::Backend::Gl;
                let adapter = format!("{} ({:?})", info.name, info.backend);
                let gpu = compute.then(|| SharedGpu {
                    device: rs.device.clone(),
                    queue: rs.queue.clone(),
                    info,
                });
                (gpu, adapter, hardware)
            }
            None => (None, "none".to_string(), false),
        };
        let mut app = QnnApp {
            settings,
            gpu,
            adapter,
            gpu_is_hardware,
            data: None,
            running: None,
            shown: Shown::default(),
            explorer: None,
            pad: Pad::default(),
            messages: Vec::new(),
            ask: None,
            status: "ready".into(),
            frames: FrameStats::default(),
            grid_textures: Vec::new(),
            exit_when_done: launch.exit_when_done,
            screenshot: launch.screenshot,
            closing: false,
            exit,
            pending_start: launch.start,
            frames_drawn: 0,
            reading: None,
            ctx: cc.egui_ctx.clone(),
        };
        let (_, reason) = app.training_device();
        if let Some(r) = reason {
            app.say(false, r);
        }
        if let Some(m) = &launch.model {
            app.load_model(m);
        }
        // a set of pictures (from the command line, or remembered) is read again, in the
        // background: the network follows its shape and classes, the views show its pictures
        if let (Ok(DatasetKind::Folder), Some(p)) =
            (app.settings.kind(), app.settings.data_path.clone())
        {
            app.read_pictures(p);
        }
        if launch.resume && launch.start {
            app.pending_start = false;
            app.start(StartFrom::Resume, &cc.egui_ctx);
        }
        app
    }

    /// The name the run's files take (`qnn train`'s), for the save dialogs.
    fn model_file_stem(&self) -> String {
        self.settings
            .run_settings()
            .map(|s| s.model_name())
            .unwrap_or_else(|_| "model".into())
    }

    /// Asks where to save the best model and writes it there (the same .safetensors as `qnn train`).
    pub fn save_model_dialog(&mut self) {
        let Some(bytes) = self.shown.best_model.clone() else {
            return;
        };
        let name = self.model_file_stem();
        if let Some(p) = rfd::FileDialog::new()
            .add_filter("qnn model", &["safetensors"])
            .set_file_name(format!("{name}.safetensors"))
            .save_file()
        {
            match qnn::files::write_atomic(&p, &bytes) {
                Ok(()) => self.say(false, format!("saved {}", p.display())),
                Err(e) => self.say(true, e.to_string()),
            }
        }
    }

    /// Asks where to write the model shown as an ONNX or QONNX file (`qnn export`'s bytes) and
    /// writes it there.
    pub fn export_model_dialog(&mut self, format: qnn::export::Format) {
        let Some(model) = self.shown.best_model.as_deref() else {
            return;
        };
        let bytes = match qnn::export::export_model_bytes(model, "the model shown", format) {
            Ok(b) => b,
            Err(e) => return self.say(true, e.to_string()),
        };
        let name = self.model_file_stem();
        if let Some(p) = rfd::FileDialog::new()
            .add_filter(format.name(), &["onnx"])
            .set_file_name(format!("{name}.{}", format.extension()))
            .save_file()
        {
            match qnn::files::write_atomic(&p, &bytes) {
                Ok(()) => self.say(false, format!("exported {}", p.display())),
                Err(e) => self.say(true, e.to_string()),
            }
        }
    }

    /// Asks where to save the loss and error curves and draws them there as a PNG.
    pub fn export_curves_dialog(&mut self) {
        if let Some(p) = rfd::FileDialog::new()
            .add_filter("PNG", &["png"])
            .set_file_name("curves.png")
            .save_file()
        {
            match qnn::run_folder::plot::curves(&p, &self.shown.history, &self.shown.title) {
                Ok(()) => self.say(false, format!("curves saved to {}", p.display())),
                Err(e) => self.say(true, format!("{}: {e:#}", p.display())),
            }
        }
    }

    /// A line in the message area (`true`: an error).
    pub fn say(&mut self, error: bool, text: String) {
        self.messages.push((error, text));
        if self.messages.len() > 6 {
            self.messages.remove(0);
        }
    }

    /// An action that could not be done: a message in the window; a scripted run
    /// (`--exit-when-done`) also ends with it and exit status 1.
    fn refuse(&mut self, e: String) {
        if self.exit_when_done {
            self.exit.fail(e.clone());
        }
        self.say(true, e);
    }

    /// The explorer of the model shown (the loaded one, or the run's best so far), built when
    /// first asked for.
    fn shown_explorer(&mut self) -> Result<Option<&mut Explorer>, String> {
        if self.explorer.is_none() {
            if let Some(bytes) = &self.shown.best_model {
                let ex = Explorer::from_model_bytes(bytes, "the model shown")
                    .map_err(|e| e.to_string())?;
                self.explorer = Some(ex);
            }
        }
        Ok(self.explorer.as_mut())
    }

    /// The GPU the trainer would use and, when it trains on the CPU, why.
    pub fn training_device(&self) -> (Option<SharedGpu>, Option<String>) {
        match (self.settings.device, &self.gpu) {
            (Device::Cpu, _) => (None, Some("training on the CPU backend (chosen)".into())),
            (_, None) => (
                None,
                Some(format!(
                    "no GPU the trainer can use ({}): training on the CPU backend",
                    self.adapter
                )),
            ),
            (Device::Auto, Some(_)) if !self.gpu_is_hardware => (
                None,
                Some(format!(
                    "the window's GPU is a software rasterizer ({}): training on the CPU backend (choose device GPU to force it)",
                    self.adapter
                )),
            ),
            (_, Some(g)) => (Some(g.clone()), None),
        }
    }

    pub fn is_training(&self) -> bool {
        self.running.is_some()
    }

    /// The names of the classes shown: the loaded data's, else the shown model's (numbers
    /// where neither names them).
    pub fn class_names(&self) -> Vec<String> {
        match (self.data(), &self.explorer) {
            (Some(d), _) => d.class_names.clone(),
            (None, Some(ex)) => ex.class_names(),
            (None, None) => Vec::new(),
        }
    }

    /// The data of the current source, when already loaded.
    pub fn data(&self) -> Option<&Arc<Dataset>> {
        let src = self.source().ok()?;
        self.data
            .as_ref()
            .filter(|(s, _)| *s == src)
            .map(|(_, d)| d)
    }

    fn source(&self) -> Result<DataSource, String> {
        Ok(DataSource {
            kind: self.settings.kind()?,
            path: self.settings.data_path.clone(),
        })
    }

    /// The run's files for the current settings.
    pub fn run_files(&self) -> Option<RunFolder> {
        let s = self.settings.run_settings().ok()?;
        Some(RunFolder::new(&self.settings.out, s.model_name()))
    }

    /// Starts a run (the Start, Resume and Fine-tune buttons).
    pub fn start(&mut self, from: StartFrom, ctx: &egui::Context) {
        if self.is_training() {
            return;
        }
        if let Some(r) = &self.reading {
            let e = format!(
                "still reading the pictures of {}: start when they are read",
                r.path.display()
            );
            return self.refuse(e);
        }
        let checked = self
            .settings
            .run_settings()
            .and_then(|s| Ok((s, self.source()?)));
        let (settings, source) = match checked {
            Ok(v) => v,
            Err(e) => return self.refuse(e),
        };
        if let (StartFrom::Fresh { overwrite: false }, Some(p)) = (&from, self.run_files()) {
            if let Some(f) = p.existing() {
                self.ask = Some(Ask::Overwrite(f));
                return;
            }
        }
        let (gpu, cpu_reason) = self.training_device();
        let resuming = matches!(from, StartFrom::Resume);
        let job = Job {
            settings: settings.clone(),
            source,
            data: self.data().cloned(),
            start: from,
            gpu,
            cpu_reason,
            out: self.settings.out.clone(),
        };
        let ctx2 = ctx.clone();
        let handle = match worker::spawn(job, move || ctx2.request_repaint()) {
            Ok(h) => h,
            Err(e) => return self.refuse(e),
        };
        self.shown = Shown {
            title: settings.model_name(),
            epochs: settings.options.epochs,
            ..Shown::default()
        };
        self.pad.scores = None;
        self.explorer = None;
        self.running = Some(Running {
            handle,
            pause: None,
            device: String::new(),
            started: Instant::now(),
            epoch_started: Instant::now(),
        });
        self.status = if resuming {
            "resuming…".into()
        } else {
            "loading data…".into()
        };
    }

    fn on_event(&mut self, ev: Event, ctx: &egui::Context) {
        match ev {
            Event::Data(d) => {
                if let Ok(src) = self.source() {
                    self.data = Some((src, d));
                    self.grid_textures.clear();
                }
            }
            Event::Started {
                device,
                steps,
                epochs,
                history,
                folder,
                pause,
                note,
            } => {
                // said once: the same note at launch and at each start would crowd the messages
                if let Some(n) = note.filter(|n| self.messages.iter().all(|(_, m)| m != n)) {
                    self.say(false, n);
                }
                self.say(
                    false,
                    format!(
                        "training on {device}: {steps} steps per epoch; files in {}",
                        folder.display()
                    ),
                );
                self.shown.epochs = epochs;
                self.shown.history = history;
                if let Some(r) = &mut self.running {
                    r.pause = Some(pause);
                    r.device = device;
                    r.epoch_started = Instant::now();
                }
                self.status = "training".into();
            }
            Event::Step {
                epoch,
                step,
                steps,
                loss,
                error,
                images_per_second,
            } => {
                let x = epoch as f64 - 1.0 + step as f64 / steps as f64;
                if let Some(l) = loss {
                    self.shown.step_loss.push([x, l]);
                }
                if let Some(e) = error {
                    self.shown.step_error.push([x, e]);
                }
                self.shown.progress = Some((epoch, step, steps));
                self.shown.images_per_second = images_per_second;
                if let Some(r) = &self.running {
                    let per_step = r.epoch_started.elapsed().as_secs_f64() / step as f64;
                    let epochs_left = self.shown.epochs.saturating_sub(epoch);
                    self.shown.seconds_left =
                        Some(per_step * ((steps - step) + epochs_left * steps) as f64);
                }
            }
            Event::Probe(p) => {
                self.shown.probe = Some(*p);
                self.shown.probe_images = "validation";
            }
            Event::Grid(g) => self.shown.grid = g,
            Event::Epoch {
                report,
                confusion,
                best_model,
            } => {
                self.exit.line(format!(
                    "epoch {} of {}: training loss {:.4}, validation error {:.2}%, test error {:.2}% (best epoch {}), {:.0} images/s",
                    report.epoch,
                    self.shown.epochs,
                    report.train_loss,
                    report.val_error,
                    report.test_error,
                    report.best_epoch,
                    report.images_per_second
                ));
                self.shown.history.push(report);
                self.shown.confusion = Some(confusion);
                if let Some(m) = best_model {
                    self.shown.best_model = Some(m);
                    self.explorer = None;
                    self.pad.dirty = true;
                }
                if let Some(r) = &mut self.running {
                    r.epoch_started = Instant::now();
                }
            }
            Event::Done { finished, message } => {
                self.say(false, message.clone());
                self.exit.line(message);
                self.finish_run(finished, ctx);
            }
            Event::Failed(msg) => {
                self.say(true, msg.clone());
                self.exit.fail(msg);
                self.finish_run(false, ctx);
            }
        }
    }

    fn finish_run(&mut self, finished: bool, ctx: &egui::Context) {
        let elapsed = self.running.as_ref().map(|r| r.started.elapsed());
        self.running = None;
        self.status = if finished { "done" } else { "stopped" }.into();
        if let Some(t) = elapsed {
            self.status
                .push_str(&format!(" after {:.0} s", t.as_secs_f64()));
        }
        if let Some((median, p95, worst)) = self.frames.summary() {
            self.exit.line(format!(
                "window: {} frames while training, frame interval median {median:.1} ms, 95th percentile {p95:.1} ms, worst {worst:.1} ms",
                self.frames.intervals_ms.len()
            ));
        }
        if self.exit_when_done {
            self.close(ctx);
        }
    }

    /// Closes the window, after taking the screenshot when one was asked for.
    fn close(&mut self, ctx: &egui::Context) {
        if self.closing {
            return;
        }
        self.closing = true;
        match self.screenshot.take() {
            Some(path) => {
                let exit = self.exit.clone();
                let ctx2 = ctx.clone();
                ctx.request_screenshot(move |img| {
                    if let Err(e) = save_screenshot(&path, &img) {
                        if let Ok(mut st) = exit.0.lock() {
                            st.screenshot_error = Some(format!("{}: {e:#}", path.display()));
                        }
                    } else {
                        exit.line(format!("screenshot: {}", path.display()));
                    }
                    ctx2.send_viewport_cmd(egui::ViewportCommand::Close);
                });
                ctx.request_repaint();
            }
            None => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
        }
    }

    pub fn toggle_pause(&mut self) {
        if let Some(p) = self.running.as_ref().and_then(|r| r.pause.as_ref()) {
            let now = !p.load(Ordering::Relaxed);
            p.store(now, Ordering::Relaxed);
            self.status = if now { "paused" } else { "training" }.into();
        }
    }

    pub fn paused(&self) -> bool {
        self.running
            .as_ref()
            .and_then(|r| r.pause.as_ref())
            .is_some_and(|p| p.load(Ordering::Relaxed))
    }

    pub fn stop(&mut self) {
        if let Some(r) = &self.running {
            r.handle.stop();
            if let Some(p) = &r.pause {
                p.store(false, Ordering::Relaxed);
            }
            self.status = "stopping after this step…".into();
        }
    }

    /// Sets the data source from a path (file dialog or drop), guessing the data set.
    pub fn take_data_path(&mut self, path: PathBuf) {
        if self.is_training() {
            // the run's data and files follow the settings: they do not change under it
            return self.say(
                true,
                format!(
                    "{}: a run is training; stop it before choosing other data or a model",
                    path.display()
                ),
            );
        }
        let kind = data_kind(&path);
        if path.extension().is_some_and(|e| e == "safetensors") {
            self.load_model(&path);
            return;
        }
        if kind == DatasetKind::Folder {
            return self.read_pictures(path);
        }
        self.settings.dataset = kind.name().into();
        self.say(
            false,
            format!("data: {} from {}", kind.name(), path.display()),
        );
        self.settings.data_path = Some(path);
    }

    /// Starts reading a folder of pictures (or a `.zip` of one) in the background; when read,
    /// they become the data (see [`QnnApp::poll_reading`]). While one set is read a second is
    /// refused: the library cannot stop a read half-way, and two at once would each take
    /// longer than waiting.
    pub fn read_pictures(&mut self, path: PathBuf) {
        if let Some(r) = &self.reading {
            let e = format!(
                "{}: still reading {}; choose or drop it again when that is done",
                path.display(),
                r.path.display()
            );
            return self.say(true, e);
        }
        let ctx = self.ctx.clone();
        match PictureLoad::spawn(path, move || ctx.request_repaint()) {
            Ok(r) => {
                self.reading = Some(r);
                self.status = "reading pictures…".into();
            }
            Err(e) => self.refuse(e),
        }
    }

    /// Takes the pictures read in the background, once read: the settings follow their shape
    /// and classes, and the views show them; or says why they could not be read.
    fn poll_reading(&mut self) {
        let Some(done) = self.reading.as_ref().and_then(|r| r.try_finish()) else {
            return;
        };
        let Some(reading) = self.reading.take() else {
            return;
        };
        let path = reading.path;
        if !self.is_training() {
            self.status = "ready".into();
        }
        match done {
            Ok(p) => {
                let d = p.data;
                self.settings.pictures =
                    Some(crate::gui::settings::PictureShape::of(&d, p.valid, &p.name));
                let (c, h, w) = d.chw;
                let line = format!(
                    "data: {} pictures of {} classes ({c}×{h}×{w}) from {}{}",
                    d.train.len() + d.test.len(),
                    d.classes(),
                    path.display(),
                    if p.from_cache { " (cached)" } else { "" }
                );
                // a scripted run prints what it trained on
                self.exit.line(line.clone());
                self.say(false, line);
                let kind = DatasetKind::Folder;
                self.settings.dataset = kind.name().into();
                self.settings.data_path = Some(path.clone());
                self.data = Some((
                    DataSource {
                        kind,
                        path: Some(path),
                    },
                    Arc::new(d),
                ));
                self.grid_textures.clear();
                self.pad.dirty = true;
                self.explore();
            }
            Err(e) => {
                // a scripted start has nothing to train
                self.pending_start = false;
                self.refuse(e);
            }
        }
    }

    /// Loads a model file to explore, evaluate or fine-tune.
    pub fn load_model(&mut self, path: &Path) {
        let loaded = qnn::checkpoint::read_file(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let ex = Explorer::from_model_bytes(&bytes, &path.display().to_string())
                    .map_err(|e| e.to_string())?;
                Ok((bytes, ex))
            });
        match loaded {
            Ok((bytes, ex)) => {
                let m = &ex.meta;
                let line = format!(
                    "loaded {}: {} (epoch {}, test error {})",
                    path.display(),
                    m.config.model_name(&m.dataset),
                    m.epoch,
                    qnn::checkpoint::percent(m.test_error)
                );
                self.exit.line(line.clone());
                self.say(false, line);
                self.settings.take_network(&m.dataset, &m.config);
                self.shown = Shown {
                    title: format!("model file {}", path.display()),
                    best_model: Some(bytes),
                    ..Shown::default()
                };
                self.explorer = Some(ex);
                self.pad.dirty = true;
                if self.data().is_none() && self.settings.kind() == Ok(DatasetKind::MnistMini) {
                    // the embedded set loads at once; others wait for "Load the data"
                    self.load_data_now();
                } else {
                    self.explore();
                }
            }
            Err(e) => self.refuse(e),
        }
    }

    /// Fills the views from the loaded model on the current data (test images).
    pub fn explore(&mut self) {
        let Some(data) = self.data().cloned() else {
            return;
        };
        let Some(ex) = self.explorer.as_mut() else {
            return;
        };
        if ex.config().input != [data.chw.0, data.chw.1, data.chw.2]
            || ex.classes() != data.classes()
        {
            return;
        }
        let len = data.image_len();
        let n = worker::GRID_IMAGES.min(data.test.len());
        // the filters and histograms need a conv layer (a list of dense layers has none)
        let probes = !ex.config().conv_layers().is_empty();
        let pixels = &data.test.pixels[..n * len];
        let r = ex.scores(pixels).and_then(|s| {
            let probe = if probes {
                Some(ex.probe(pixels)?)
            } else {
                None
            };
            Ok((s, probe))
        });
        match r {
            Ok((scores, probe)) => {
                self.shown.grid = qnn::inspect::predicted_classes(ex.classes(), &scores);
                self.shown.probe = probe;
                self.shown.probe_images = "test";
            }
            Err(e) => self.say(true, e.to_string()),
        }
    }

    /// Evaluates the shown model on the whole test set (CPU, a few seconds), for its
    /// confusion matrix and error.
    pub fn evaluate_shown(&mut self) {
        let Some(data) = self.data().cloned() else {
            self.say(
                true,
                "load the data first (Start loads them, or Load data)".into(),
            );
            return;
        };
        let r = match self.shown_explorer() {
            Ok(Some(ex)) if ex.classes() != data.classes() => Err(format!(
                "the model scores {} classes, the data have {}: evaluate it on the data it was trained on",
                ex.classes(),
                data.classes()
            )),
            Ok(Some(ex)) => {
                let classes = ex.classes();
                ex.scores(&data.test.pixels)
                    .map(|s| ConfusionMatrix::new(classes, &s, &data.test.labels))
                    .map_err(|e| e.to_string())
            }
            Ok(None) => return,
            Err(e) => Err(e),
        };
        match r {
            Ok(m) => {
                self.say(
                    false,
                    format!(
                        "test set: {:.2}% error on {} images",
                        m.error_percent(),
                        m.total()
                    ),
                );
                self.shown.confusion = Some(m);
            }
            Err(e) => self.say(true, e),
        }
    }

    /// Loads the data of the current source now (for exploring a model without training).
    pub fn load_data_now(&mut self) {
        if let (Ok(DatasetKind::Folder), Some(p)) =
            (self.settings.kind(), self.settings.data_path.clone())
        {
            // pictures take long the first time: read them in the background
            return self.read_pictures(p);
        }
        match self.source().and_then(|s| Ok((s.clone(), s.load()?))) {
            Ok((src, d)) => {
                self.data = Some((src, Arc::new(d)));
                self.grid_textures.clear();
                self.explore();
            }
            Err(e) => self.say(true, e),
        }
    }

    /// Runs the draw pad through the shown model when it changed.
    pub fn update_pad(&mut self) {
        if !self.pad.dirty {
            return;
        }
        self.pad.dirty = false;
        let input = match self.shown_explorer() {
            Ok(Some(ex)) => ex.config().input,
            Ok(None) => return,
            Err(e) => return self.say(true, e),
        };
        self.pad.scores = match (self.pad.image_for(input), self.explorer.as_mut()) {
            (Some(img), Some(ex)) => ex.scores(&img).ok(),
            _ => None,
        };
    }

    /// The input [c, h, w] of the network shown: the shown model's, else the data set's
    /// (`None` while a folder of pictures is not read yet).
    pub fn input_shape(&self) -> Option<[usize; 3]> {
        if let Some(ex) = &self.explorer {
            return Some(ex.config().input);
        }
        match (self.settings.kind().ok()?, &self.settings.pictures) {
            (DatasetKind::Folder, Some(p)) => Some(p.chw),
            (DatasetKind::Folder, None) => None,
            (k, _) => {
                let (c, h, w) = k.chw();
                Some([c, h, w])
            }
        }
    }

    fn poll_worker(&mut self, ctx: &egui::Context) {
        let mut events = Vec::new();
        if let Some(r) = &self.running {
            while let Ok(ev) = r.handle.events.try_recv() {
                events.push(ev);
            }
        }
        for ev in events {
            self.on_event(ev, ctx);
        }
        // a worker that ended without its last word (it cannot, but a window must not hang)
        if self
            .running
            .as_ref()
            .is_some_and(|r| r.handle.is_finished() && r.handle.events.try_recv().is_err())
        {
            self.finish_run(false, ctx);
        }
    }
}

impl eframe::App for QnnApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.frames.tick(self.is_training());
        self.poll_worker(&ctx);
        self.poll_reading();
        // a scripted start waits for the pictures being read
        if self.pending_start && self.reading.is_none() {
            self.pending_start = false;
            self.start(StartFrom::Fresh { overwrite: false }, &ctx);
            if let Some(Ask::Overwrite(f)) = &self.ask {
                // a scripted start does not wait for a person
                let msg = format!(
                    "{} already exists: resume that run (--resume) or pass --overwrite",
                    f.display()
                );
                self.ask = None;
                self.say(true, msg.clone());
                if self.exit_when_done {
                    self.exit.fail(msg);
                    self.close(&ctx);
                }
            }
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        for p in dropped {
            self.take_data_path(p);
        }
        views::window(self, ui);
        self.update_pad();
        self.frames_drawn += 1;
        // --exit-when-done without a run (a model to look at, or a start that was refused):
        // close once the pictures are read and the views have been drawn a few times
        if self.exit_when_done
            && !self.is_training()
            && !self.pending_start
            && self.reading.is_none()
        {
            if self.frames_drawn > 5 {
                self.close(&ctx);
            } else {
                ctx.request_repaint();
            }
        }
        if self.reading.is_some() {
            // the reading thread wakes the window as it decodes; this keeps the spinner turning
            // while it lists a set or reads its cache
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        if self.is_training() {
            // keep drawing while training, so the window's smoothness is measurable and seen
            ctx.request_repaint_after(Duration::from_millis(33));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.settings);
    }

    fn on_exit(&mut self) {
        if let Some(r) = self.running.take() {
            // stops the run after its current step and waits for it (Handle's drop)
            drop(r);
        }
    }
}

/// The data set a chosen or dropped path holds, guessed from its name and what it holds: a
/// zip or a folder of class folders is your own pictures, CIFAR-10 and MNIST by their files'
/// names.
pub fn data_kind(path: &Path) -> DatasetKind {
    let name = path.to_string_lossy().to_lowercase();
    // CIFAR-10's names (its batches, their folder, its archive), else MNIST's IDX files
    let cifar_inside = [
        "data_batch_1.bin",
        "cifar-10-batches-bin",
        "cifar-10-binary.tar.gz",
    ]
    .iter()
    .any(|f| path.join(f).exists());
    let mnist_inside = qnn::data::MNIST_FILES
        .iter()
        .any(|f| path.join(f).exists() || path.join(format!("{f}.gz")).exists());
    // a zip is a folder of pictures zipped (CIFAR-10's and MNIST's files are never zips)
    if is_zip_file(path) {
        DatasetKind::Folder
    } else if cifar_inside
        || name.contains("cifar")
        || name.ends_with(".bin")
        || name.ends_with(".tar.gz")
    {
        DatasetKind::Cifar10
    } else if path.is_dir() && !mnist_inside {
        DatasetKind::Folder // your own pictures: a folder of class folders
    } else {
        DatasetKind::Mnist
    }
}

/// Whether `path` is a zip file: named `.zip` (one that is not a zip is then named in the
/// library's message) or starting as a zip archive does, whatever its name.
fn is_zip_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    path.is_file()
        && (path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
            || std::fs::File::open(path)
                .and_then(|mut f| f.read_exact(&mut head))
                .is_ok_and(|()| qnn::image_folder::is_zip(&head)))
}

/// Overwrite a run's files after the person said so.
pub fn overwrite_and_start(app: &mut QnnApp, ctx: &egui::Context) {
    app.ask = None;
    app.start(StartFrom::Fresh { overwrite: true }, ctx);
}

/// Saves the window's pixels as a PNG (written atomically).
fn save_screenshot(path: &Path, img: &egui::ColorImage) -> Result<()> {
    let [w, h] = img.size;
    let rgb: Vec<u8> = img
        .pixels
        .iter()
        .flat_map(|c| [c.r(), c.g(), c.b()])
        .collect();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let png = qnn::run_folder::plot::png(&rgb, w as u32, h as u32)?;
    qnn::files::write_atomic(path, &png)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gui::worker::tests::{temp_dir, write_set, write_zip};

    /// The draw pad is for grey inputs of any size; RGB inputs hide it.
    #[test]
    fn the_draw_pad_fits_grey_inputs_only() {
        assert!(Pad::fits([1, 28, 28]));
        assert!(Pad::fits([1, 64, 48]));
        assert!(!Pad::fits([3, 32, 32]));
        assert!(!Pad::fits([3, 28, 28]));
    }

    /// A drawing becomes an image of the network's input: 28×28 as drawn (centred), another
    /// grey size resized with the ink kept, nothing for RGB or a blank pad.
    #[test]
    fn a_drawing_is_resized_to_a_grey_input() {
        let mut pad = Pad::default();
        assert_eq!(pad.image_for([1, 28, 28]), None, "blank");
        for y in 4..20 {
            pad.pixels[y * PAD_SIDE + 10] = 1.0;
        }
        let same = pad.image_for([1, 28, 28]).unwrap();
        assert_eq!(same, qnn::inspect::center_digit(&pad.pixels));
        let small = pad.image_for([1, 14, 20]).unwrap();
        assert_eq!(small.len(), 14 * 20);
        assert!(
            small.iter().any(|&p| p > 100),
            "the stroke survives resizing"
        );
        assert!(small.iter().filter(|&&p| p == 0).count() > 14 * 20 / 2);
        assert_eq!(pad.image_for([3, 28, 28]), None);
    }

    /// A dropped or chosen zip of a folder of pictures is your own pictures, whatever its
    /// name (`.zip`, or a zip by its first bytes), as a folder of class folders is; MNIST's
    /// and CIFAR-10's files stay theirs.
    #[test]
    fn a_zip_or_a_folder_of_pictures_is_your_own_pictures() {
        let dir = temp_dir("kind");
        let set = write_set(&dir, &["a", "b"], 2);
        let zip = dir.join("set.zip");
        write_zip(&set, &zip);
        let renamed = dir.join("set.download");
        std::fs::copy(&zip, &renamed).unwrap();
        let broken = dir.join("broken.zip");
        std::fs::write(&broken, b"no zip").unwrap();
        for p in [&set, &zip, &renamed, &broken] {
            assert_eq!(data_kind(p), DatasetKind::Folder, "{}", p.display());
        }
        let cifar = dir.join("cifar-10-binary.tar.gz");
        std::fs::write(&cifar, b"\x1f\x8b").unwrap();
        assert_eq!(data_kind(&cifar), DatasetKind::Cifar10);
        let mnist = dir.join("train-images-idx3-ubyte");
        std::fs::write(&mnist, b"\0\0\x08\x03").unwrap();
        assert_eq!(data_kind(&mnist), DatasetKind::Mnist);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
