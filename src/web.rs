//! The web page's bindings (wasm32 only): one [`Run`] driven from JavaScript. The page draws
//! and reacts; everything it trains, measures and saves goes through the library's run, as the
//! command line's does. Built with `scripts/web.sh` (wasm-bindgen, `--target web`).
//!
//! An epoch holds the run (a `RefCell` borrow across its awaits) on purpose: every other entry
//! point takes it with `try_borrow` and answers "busy" instead of waiting or panicking; stop and
//! pause are atomics outside it.
#![allow(clippy::await_holding_refcell_ref)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::backend::Backend;
use crate::data::{self, Dataset, DatasetKind};
use crate::image_folder::{self, FolderOptions, Source};
use crate::inspect::{ConfusionMatrix, Probe};
use crate::model::NetConfig;
use crate::quant::Nonlinearity;
use crate::run::{EpochOutcome, Run, RunSettings, Start};
use crate::train::{Optimizer, StepWants, TrainOptions};
use crate::{CpuBackend, Error, GpuBackend};

/// The page's settings, as its form and its URL parameters give them.
#[derive(Deserialize, Serialize)]
#[serde(default)]
struct PageSettings {
    dataset: String,
    bits: u32,
    quantized: bool,
    nla: usize,
    nfa: usize,
    nlb: usize,
    nfb: usize,
    nlc: usize,
    nfc: usize,
    nl: String,
    sym: bool,
    epochs: usize,
    lr: f32,
    lr_final: f32,
    batch: usize,
    valid: Option<usize>,
    flip: bool,
    /// Random-crop padding in pixels (0: off; 4 is CIFAR's).
    crop_pad: usize,
    seed: u64,
    /// Train on the first `limit` training images only (quick demos and tests).
    limit: Option<usize>,
    /// A layer list (a net file's TOML text). When given (and not blank) it alone defines the
    /// network, and the seed's fields above (bits … nfc) are unused.
    net: Option<String>,
    /// With `dataset` "folder": the shape of the picture set the page has decoded
    /// ([`WebPictures::info`]), which the network follows.
    pictures: Option<PictureShape>,
}

/// What the settings need of a set of pictures: its image shape, classes, validation images
/// and name (model files start with it).
#[derive(Deserialize, Serialize)]
struct PictureShape {
    chw: [usize; 3],
    classes: usize,
    valid: usize,
    name: String,
}

impl Default for PageSettings {
    /// The library's defaults ([`RunSettings::new`] on mnist-mini), so the page, the window and
    /// `qnn train` start from the same run.
    fn default() -> Self {
        let RunSettings {
            dataset,
            net,
            options,
            valid,
            data_name: _,
        } = RunSettings::new(DatasetKind::MnistMini);
        let [(nla, nfa), (nlb, nfb), (nlc, nfc)] = net.blocks;
        PageSettings {
            dataset: dataset.name().into(),
            bits: net.bits,
            quantized: net.quantized,
            nla,
            nfa,
            nlb,
            nfb,
            nlc,
            nfc,
            nl: net.nonlinearity.name().into(),
            sym: net.sym,
            epochs: options.epochs,
            lr: options.lr_start,
            lr_final: options.lr_final,
            batch: options.batch,
            valid,
            flip: options.flip,
            crop_pad: options.crop_pad,
            seed: options.seed,
            limit: None,
            net: net.net.as_ref().map(|n| n.to_toml()),
            pictures: None,
        }
    }
}

/// wasm-bindgen-rayon's pool (`await initThreadPool(n)`: n Web Workers; the calling thread only
/// waits, spinning on the page's thread) and its `wbg_rayon_start_worker`, which web/worker.js
/// runs for [`ThreadPool`].
#[cfg(target_feature = "atomics")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// The threaded module's (web/pkg-mt/, built with the atomics target feature) rayon pool, of
/// the page's own thread and `threads - 1` Web Workers (web/worker.js): the page's thread works
/// in it too instead of spinning while the workers do the work (it may not block: a rayon wait
/// there spins). Once, after `init()` and before any training: `new ThreadPool(n)`, start
/// `workers()` workers with `module()`, `memory()` and `receiver()`, then `build()`.
#[cfg(target_feature = "atomics")]
#[wasm_bindgen]
pub struct ThreadPool {
    workers: usize,
    sender: crossbeam_channel::Sender<rayon::ThreadBuilder>,
    // leaked: a worker may still be inside `recv` on it when the page drops the pool
    receiver: &'static crossbeam_channel::Receiver<rayon::ThreadBuilder>,
}

#[cfg(target_feature = "atomics")]
#[wasm_bindgen]
impl ThreadPool {
    /// A pool of `threads` threads in all (at least 1: the page's).
    #[wasm_bindgen(constructor)]
    pub fn new(threads: usize) -> ThreadPool {
        let workers = threads.max(1) - 1;
        let (sender, receiver) = crossbeam_channel::bounded(workers.max(1));
        ThreadPool {
            workers,
            sender,
            receiver: Box::leak(Box::new(receiver)),
        }
    }

    /// How many Web Workers to start.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// What each worker passes to `wbg_rayon_start_worker`.
    pub fn receiver(&self) -> *const crossbeam_channel::Receiver<rayon::ThreadBuilder> {
        self.receiver
    }

    /// This module, for the workers' `init`.
    pub fn module() -> JsValue {
        wasm_bindgen::module()
    }

    /// The shared memory, for the workers' `init`.
    pub fn memory() -> JsValue {
        wasm_bindgen::memory()
    }

    /// Makes the pool rayon's global one, once all the workers wait in `wbg_rayon_start_worker`.
    pub fn build(&self) -> Result<(), JsValue> {
        let sender = self.sender.clone();
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.workers + 1)
            .use_current_thread()
            .spawn_handler(move |thread| {
                sender
                    .send(thread)
                    .map_err(|_| std::io::Error::other("no worker took the thread"))
            })
            .build_global()
            .map_err(|e| JsValue::from_str(&e.to_string()))
    }
}

/// How many threads the CPU backend's parallel loops use: 1 in the single-threaded module, the
/// pool's size in the threaded one.
#[wasm_bindgen]
pub fn threads() -> usize {
    #[cfg(target_feature = "atomics")]
    return rayon::current_num_threads();
    #[cfg(not(target_feature = "atomics"))]
    return 1;
}

/// How many of the CPU backend's threads took part in a parallel loop of `jobs` small jobs (a
/// millisecond or so each): the page's test that the workers do work. 1 in the single-threaded
/// module.
#[wasm_bindgen]
pub fn threads_working(jobs: usize) -> usize {
    let ids = crate::par::map(jobs, |i| {
        let mut x = i as u64;
        for _ in 0..1_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        std::hint::black_box(x);
        #[cfg(target_feature = "atomics")]
        return rayon::current_thread_index();
        #[cfg(not(target_feature = "atomics"))]
        return Some(0);
    });
    let mut ids: Vec<usize> = ids.into_iter().flatten().collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len().max(1)
}

/// The settings a fresh page shows, as JSON (the form's field names): the library's defaults.
#[wasm_bindgen]
pub fn default_settings() -> Result<String, JsValue> {
    serde_json::to_string(&PageSettings::default()).map_err(js_err)
}

const NO_PICTURES: &str =
    "your own pictures: choose or drop a folder of them (one sub-folder per class), or a .zip of one, first";

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

fn parse_settings(json: &str) -> Result<(RunSettings, Option<usize>), Error> {
    let p: PageSettings = serde_json::from_str(json)
        .map_err(|e| Error::Config(format!("unreadable settings ({e})")))?;
    let dataset: DatasetKind = p.dataset.parse().map_err(Error::Config)?;
    let nonlinearity: Nonlinearity = p.nl.parse().map_err(Error::Config)?;
    // your own pictures: the network follows the decoded set's shape and classes
    let ((c, h, w), classes, folder_valid, data_name) = match (dataset, &p.pictures) {
        (DatasetKind::Folder, Some(s)) => {
            let [c, h, w] = s.chw;
            ((c, h, w), s.classes, Some(s.valid), Some(s.name.clone()))
        }
        (DatasetKind::Folder, None) => return Err(Error::Config(NO_PICTURES.into())),
        _ => (dataset.chw(), dataset.classes(), None, None),
    };
    let net = match p.net.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => NetConfig::from_net_text([c, h, w], classes, text, "layer list")?,
        None => NetConfig {
            input: [c, h, w],
            classes,
            blocks: [(p.nla, p.nfa), (p.nlb, p.nfb), (p.nlc, p.nfc)],
            quantized: p.quantized,
            bits: p.bits,
            nonlinearity,
            sym: p.sym,
            net: None,
        },
    };
    let settings = RunSettings {
        dataset,
        net,
        options: TrainOptions {
            epochs: p.epochs,
            lr_start: p.lr,
            lr_final: p.lr_final,
            batch: p.batch,
            flip: p.flip,
            crop_pad: p.crop_pad,
            shuffle: true,
            seed: p.seed,
            optimizer: Optimizer::Adam,
        },
        valid: p.valid.or(folder_valid),
        data_name,
    };
    settings.validate()?;
    Ok((settings, p.limit))
}

/// The model summary of a settings JSON (parameters, memory at the bit width, MACs, energy), or
/// the reason the settings are refused.
#[wasm_bindgen]
pub fn summarize(settings: &str) -> Result<String, JsValue> {
    let (s, _) = parse_settings(settings).map_err(js_err)?;
    Ok(s.net.summary().to_string())
}

/// The name a model of these settings is saved under, without `.safetensors` (what `qnn train`
/// names its files): the seed's `{ds}_{nl}_{sym}_{quantized|float}_…_{nb}bits`, or
/// `{ds}_{net name}` for a layer list.
#[wasm_bindgen]
pub fn model_name(settings: &str) -> Result<String, JsValue> {
    let (s, _) = parse_settings(settings).map_err(js_err)?;
    Ok(s.model_name())
}

/// The networks the page offers to start a layer list from, as a JSON array of
/// `{"name", "label", "toml"}` ([`crate::model::PRESETS`]).
#[wasm_bindgen]
pub fn net_presets() -> Result<String, JsValue> {
    let list: Vec<_> = crate::model::PRESETS
        .iter()
        .map(|p| serde_json::json!({"name": p.name, "label": p.label, "toml": p.toml}))
        .collect();
    serde_json::to_string(&list).map_err(js_err)
}

/// The data set the settings name: mnist-mini from the module, else parsed from the files
/// (an array of `[name, Uint8Array]`).
fn dataset(kind: DatasetKind, files: &js_sys::Array) -> Result<Dataset, Error> {
    let mut named = Vec::new();
    for f in files.iter() {
        let pair: js_sys::Array = f.into();
        let name = pair.get(0).as_string().unwrap_or_default();
        let bytes = js_sys::Uint8Array::new(&pair.get(1)).to_vec();
        named.push((name, bytes));
    }
    data::from_files(kind, &named)
}

/// A set of your own pictures, decoded in the page (nothing leaves the machine): the data set,
/// how many of its training images validate, and what reading it found. A run takes a
/// [`WebPictures::handle`] of it, so one decoded set serves every run of the page.
#[wasm_bindgen]
pub struct WebPictures {
    data: Rc<Dataset>,
    info: String,
}

/// The page offers a box for what the command line's flag does.
fn page_words(e: Error) -> JsValue {
    js_err(
        e.to_string()
            .replace("--skip-bad-images", "\"skip unreadable pictures\""),
    )
}

fn decode_pictures(source: Source, skip_bad: bool) -> Result<WebPictures, JsValue> {
    let opts = FolderOptions {
        skip_bad,
        ..FolderOptions::default()
    };
    // in the page's thread: a few thousand small pictures take a moment (no progress: the
    // page cannot repaint until it returns)
    let (f, report) = image_folder::load_source(&source, &opts, &|_, _| {}).map_err(page_words)?;
    drop(source); // the files' bytes, before the set is kept
    let name = f.name.clone();
    let chw = f.chw;
    let (data, valid) = data::from_folder(f);
    let info = serde_json::json!({
        "name": name, "chw": chw, "classes": data.classes(), "class_names": data.class_names,
        "valid": valid, "train": data.train.len() - valid, "test": data.test.len(),
        "images": report.images, "split": report.split, "resized": report.resized,
        "converted": report.converted, "not_images": report.not_images,
        "not_image_example": report.not_image_example.as_ref().map(|p| p.display().to_string()),
        "skipped": report.bad.iter().map(|(p, why)| [p.display().to_string(), why.clone()]).collect::<Vec<_>>(),
        "report": report.to_string(),
    })
    .to_string();
    Ok(WebPictures {
        data: Rc::new(data),
        info,
    })
}

#[wasm_bindgen]
impl WebPictures {
    /// Decodes the files of a chosen or dropped folder: `paths[i]` (`/`-separated, e.g.
    /// `pets/cats/1.png`; one top folder common to all is stepped into) holds `bytes[i]`.
    /// `name` names the set when the files have no common top folder. A JS array of
    /// Uint8Arrays: each file is copied once, straight into its own buffer in wasm (one
    /// concatenated array would be copied whole and then split again). Refusals name the file.
    pub fn from_files(
        name: String,
        paths: Vec<String>,
        bytes: Vec<js_sys::Uint8Array>,
        skip_bad: bool,
    ) -> Result<WebPictures, JsValue> {
        if paths.len() != bytes.len() {
            return Err(js_err(format!(
                "{} paths for {} files",
                paths.len(),
                bytes.len()
            )));
        }
        let files = paths.into_iter().zip(bytes.iter().map(|b| b.to_vec()));
        decode_pictures(
            Source::Files {
                name,
                files: files.collect(),
            },
            skip_bad,
        )
    }

    /// Decodes a `.zip` of such a folder (`name`: the file's name, `pets.zip`).
    pub fn from_zip(name: String, bytes: Vec<u8>, skip_bad: bool) -> Result<WebPictures, JsValue> {
        if !image_folder::is_zip(&bytes) {
            return Err(js_err(format!(
                "{name}: not a .zip (a .zip of a folder of class folders of pictures is expected)"
            )));
        }
        decode_pictures(Source::Zip { name, bytes }, skip_bad)
    }

    /// What was read, as JSON: `name`, `chw`, `classes`, `class_names`, `valid`, `train`,
    /// `test`, `images`, `split`, `resized`, `converted`, `not_images`, `not_image_example`,
    /// `skipped` ([path, why] of each unreadable picture skipped) and `report` (in words).
    pub fn info(&self) -> String {
        self.info.clone()
    }

    /// Another handle on the same decoded set (no copy), for [`WebRun::create`] to take.
    pub fn handle(&self) -> WebPictures {
        WebPictures {
            data: self.data.clone(),
            info: self.info.clone(),
        }
    }
}

enum Device {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

macro_rules! on_device {
    ($dev:expr, |$b:ident| $body:expr) => {
        match $dev {
            Device::Cpu($b) => $body,
            Device::Gpu(g) => {
                let $b = &mut **g;
                $body
            }
        }
    };
}

struct Inner {
    device: Device,
    run: Run,
    data: Rc<Dataset>,
}

/// One training run in the page.
#[wasm_bindgen]
pub struct WebRun {
    inner: Rc<RefCell<Inner>>,
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    describe: String,
}

fn busy() -> JsValue {
    js_err("the run is busy (an epoch is in progress)")
}

impl WebRun {
    /// Opens the device, loads the data and builds the run from `start` (what
    /// [`WebRun::create`] and [`WebRun::resume`] share).
    async fn build(
        settings: &str,
        files: &js_sys::Array,
        device: &str,
        start: Start<'_>,
        pictures: Option<WebPictures>,
    ) -> Result<WebRun, JsValue> {
        let (settings, limit) = parse_settings(settings).map_err(js_err)?;
        let mut data = match (settings.dataset, pictures) {
            (DatasetKind::Folder, Some(p)) => p.data,
            (DatasetKind::Folder, None) => return Err(js_err(NO_PICTURES)),
            (kind, _) => Rc::new(dataset(kind, files).map_err(js_err)?),
        };
        if let Some(n) = limit {
            // a copy only when the set is shared with the page's WebPictures
            let d = Rc::make_mut(&mut data);
            let len = d.image_len();
            let n = n.min(d.train.len());
            d.train = d.train.slice(0, n, len);
        }
        let mut dev = match device {
            "gpu" => {
                let adapter = crate::gpu::best_adapter().await.map_err(js_err)?;
                let g = GpuBackend::with_adapter(&adapter).await.map_err(js_err)?;
                Device::Gpu(Box::new(g))
            }
            _ => Device::Cpu(CpuBackend::new()),
        };
        let describe = on_device!(&mut dev, |b| b.describe());
        let run =
            on_device!(&mut dev, |b| Run::new(b, settings, &data, start).await).map_err(js_err)?;
        let pause = run.pause_flag();
        Ok(WebRun {
            pause,
            inner: Rc::new(RefCell::new(Inner {
                device: dev,
                run,
                data,
            })),
            stop: Arc::new(AtomicBool::new(false)),
            describe,
        })
    }
}

#[wasm_bindgen]
impl WebRun {
    /// Opens the device (`"gpu"` for WebGPU, `"cpu"` for the CPU backend in wasm), loads the
    /// data and builds the run. `model` (a .safetensors file) starts it from that model
    /// (`mode` "finetune" or "init"). With the data set "folder", `pictures` (a
    /// [`WebPictures::handle`]) is the data and `files` is unused.
    pub async fn create(
        settings: String,
        files: js_sys::Array,
        device: String,
        model: Option<Vec<u8>>,
        mode: Option<String>,
        pictures: Option<WebPictures>,
    ) -> Result<WebRun, JsValue> {
        let start = match (&model, mode.as_deref()) {
            (Some(m), Some("init")) => Start::Init(m),
            (Some(m), _) => Start::FineTune(m),
            (None, _) => Start::Fresh,
        };
        WebRun::build(&settings, &files, &device, start, pictures).await
    }

    /// Continues a run where [`WebRun::state_bytes`] left it (the CLI's `--resume`): the same
    /// settings, data and device as [`WebRun::create`], `state` the saved state and
    /// `best_model` its best model so far ([`WebRun::best_model`]). The next epoch is the one
    /// after the saved ones, and [`WebRun::history`] holds the saved epochs' reports. A state
    /// of other settings or data, or from another version, is refused with the reason.
    pub async fn resume(
        settings: String,
        files: js_sys::Array,
        device: String,
        state: Vec<u8>,
        best_model: Option<Vec<u8>>,
        pictures: Option<WebPictures>,
    ) -> Result<WebRun, JsValue> {
        let start = Start::Resume {
            state: &state,
            best_model: best_model.as_deref(),
        };
        WebRun::build(&settings, &files, &device, start, pictures).await
    }

    /// The device in use, in words.
    pub fn device(&self) -> String {
        self.describe.clone()
    }

    /// Trains the next epoch. `on_step(step, steps, loss)` is called at every step (loss is
    /// `undefined` except a few times a second). `on_probe(json)`, when given, receives a
    /// look inside the network ([`WebRun::probe`]'s JSON) between two steps, about once a
    /// second at most. Resolves to the epoch's report as JSON, or to
    /// `{"interrupted": true, ...}` after [`WebRun::stop`].
    pub fn epoch(
        &self,
        on_step: js_sys::Function,
        on_probe: Option<js_sys::Function>,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        let stop = self.stop.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
            let Inner { device, run, .. } = &mut *guard;
            // filters and histograms need a conv layer (a list of dense layers has none)
            let probes = on_probe.is_some() && !run.settings.net.conv_layers().is_empty();
            let mut last = 0.0;
            let (mut last_call, mut last_probe, mut probe_gap) = (0.0, 0.0, 1.0);
            let outcome = on_device!(device, |b| {
                run.next_epoch(b, &stop, |info| {
                    let now = crate::platform::now_seconds();
                    if let (Some(p), Some(f)) = (&info.probe, &on_probe) {
                        // the step that carried this probe cost (step + probe): probing again
                        // only after 20 times that keeps it to about 5 % of the training time
                        // (a forward pass is dear on a software GPU), and never above once a
                        // second
                        probe_gap = f64::max(1.0, 20.0 * (now - last_call));
                        last_probe = now;
                        let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&probe_json(p)));
                    }
                    last_call = now;
                    let loss = info.loss.map_or(JsValue::UNDEFINED, JsValue::from);
                    let _ = on_step.call3(
                        &JsValue::NULL,
                        &(info.step as f64).into(),
                        &(info.steps as f64).into(),
                        &loss,
                    );
                    // ask for the running loss about twice a second
                    let want = now - last > 0.5;
                    if want {
                        last = now;
                    }
                    let probe = probes && now - last_probe > probe_gap;
                    if probe {
                        // counted from the request, so a slow probe does not ask again at once
                        last_probe = now;
                    }
                    StepWants { loss: want, probe }
                })
                .await
            })
            .map_err(js_err)?;
            stop.store(false, Ordering::SeqCst);
            let json = match outcome {
                EpochOutcome::Finished(r) => serde_json::to_string(&r).map_err(js_err)?,
                EpochOutcome::Interrupted { epoch, steps_done } => serde_json::json!({
                    "interrupted": true, "epoch": epoch, "steps_done": steps_done
                })
                .to_string(),
            };
            Ok(JsValue::from_str(&json))
        })
    }

    /// Ends the epoch in progress after its current step (nothing of it counts).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Pauses or resumes the epoch in progress between two steps.
    pub fn pause(&self, paused: bool) {
        self.pause.store(paused, Ordering::SeqCst);
    }

    /// Times every op from now on (`on`), as `qnn bench train` does, for
    /// [`WebRun::take_profile`]. False where the device cannot (a WebGPU adapter without
    /// timestamp queries).
    pub fn set_profiling(&self, on: bool) -> Result<bool, JsValue> {
        let mut g = self.inner.try_borrow_mut().map_err(|_| busy())?;
        Ok(on_device!(&mut g.device, |b| b.set_profiling(on)))
    }

    /// The seconds spent in each op family since the last call, as JSON `[[family, seconds],
    /// …]`, the dearest first (what `qnn bench train` prints as shares).
    pub fn take_profile(&self) -> Result<String, JsValue> {
        let mut g = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let samples = on_device!(&mut g.device, |b| b.take_profile());
        let families: Vec<(&str, f64)> = crate::backend::family_seconds(&samples)
            .into_iter()
            .map(|(f, seconds)| (f.label(), seconds))
            .collect();
        serde_json::to_string(&families).map_err(js_err)
    }

    /// All epochs of the schedule are done (an error while an epoch is in progress).
    pub fn is_finished(&self) -> Result<bool, JsValue> {
        Ok(self
            .inner
            .try_borrow()
            .map_err(|_| busy())?
            .run
            .is_finished())
    }

    /// Epochs done, best epoch and its errors, as JSON.
    pub fn state(&self) -> Result<String, JsValue> {
        let g = self.inner.try_borrow().map_err(|_| busy())?;
        serde_json::to_string(g.run.state()).map_err(js_err)
    }

    /// The best model so far as a .safetensors file (what `qnn eval` reads).
    pub fn best_model(&self) -> Result<Option<Vec<u8>>, JsValue> {
        let g = self.inner.try_borrow().map_err(|_| busy())?;
        Ok(g.run.best_model().map(<[u8]>::to_vec))
    }

    /// Resolves to the run's state as bytes ([`Run::state_bytes`], the CLI's
    /// `.state.safetensors`): with [`WebRun::best_model`], what [`WebRun::resume`] continues
    /// from. Between epochs (an error while one is in progress).
    pub fn state_bytes(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
            let Inner { device, run, .. } = &mut *guard;
            let bytes = on_device!(device, |b| run.state_bytes(b).await).map_err(js_err)?;
            Ok(js_sys::Uint8Array::from(&bytes[..]).into())
        })
    }

    /// The report of every finished epoch as a JSON array (a resumed run's saved epochs
    /// included), as [`WebRun::epoch`] gave them.
    pub fn history(&self) -> Result<String, JsValue> {
        let g = self.inner.try_borrow().map_err(|_| busy())?;
        serde_json::to_string(g.run.history()).map_err(js_err)
    }

    /// Scores [n·classes] of n images of u8 pixels (the data set's shape): a row of
    /// [`WebRun::classes`] scores per image.
    pub fn predict(&self, pixels: Vec<u8>) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
            let Inner { device, run, .. } = &mut *guard;
            let scores = on_device!(device, |b| run.predict(b, &pixels).await).map_err(js_err)?;
            Ok(js_sys::Float32Array::from(&scores[..]).into())
        })
    }

    /// Test loss and error (%) of the current model, as JSON `{"loss": …, "error": …}`.
    pub fn evaluate(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
            let Inner { device, run, .. } = &mut *guard;
            let e = on_device!(device, |b| run.evaluate_test(b).await).map_err(js_err)?;
            Ok(JsValue::from_str(
                &serde_json::json!({"loss": e.loss, "error": e.error}).to_string(),
            ))
        })
    }

    /// The first `n` test images (u8 pixels, the data set's shape); their labels come from
    /// [`WebRun::test_labels`].
    pub fn test_images(&self, n: usize) -> Result<Vec<u8>, JsValue> {
        let g = self.inner.try_borrow().map_err(|_| busy())?;
        let n = n.min(g.data.test.len());
        Ok(g.data.test.pixels[..n * g.data.image_len()].to_vec())
    }

    /// The labels (0 to classes − 1) of the first `n` test images.
    pub fn test_labels(&self, n: usize) -> Result<Vec<u16>, JsValue> {
        let g = self.inner.try_borrow().map_err(|_| busy())?;
        let n = n.min(g.data.test.len());
        Ok(g.data.test.labels[..n].to_vec())
    }

    /// Classes the network scores (the data set's): the length of each image's row of scores.
    pub fn classes(&self) -> Result<usize, JsValue> {
        let g = self.inner.try_borrow().map_err(|_| busy())?;
        Ok(g.run.settings.net.classes)
    }

    /// The input's shape [c, h, w] (the data set's images).
    pub fn input_shape(&self) -> Result<Vec<usize>, JsValue> {
        let g = self.inner.try_borrow().map_err(|_| busy())?;
        let (c, h, w) = g.data.chw;
        Ok(vec![c, h, w])
    }

    /// The classes' names, in label order (the data set's).
    pub fn class_names(&self) -> Result<Vec<String>, JsValue> {
        let g = self.inner.try_borrow().map_err(|_| busy())?;
        Ok(g.data.class_names.clone())
    }

    /// The run's network: JSON `{"text"` (the table `qnn train` prints before it starts: layers,
    /// parameters, memory at the bit width, MACs, energy), `"params"`, `"weight_bytes"`,
    /// `"float_bytes"`, `"macs"` (per image) and `"energy_uj"` (per inference, the 45 nm
    /// model)`}`.
    pub fn summary(&self) -> Result<String, JsValue> {
        let g = self.inner.try_borrow().map_err(|_| busy())?;
        let s = g.run.summary();
        Ok(serde_json::json!({
            "text": s.to_string(), "params": s.params, "weight_bytes": s.weight_bytes,
            "float_bytes": s.float_bytes, "macs": s.macs, "energy_uj": s.energy_uj,
        })
        .to_string())
    }

    /// A look inside the current model on the first (up to 64) validation images, as the
    /// window's views show it ([`crate::inspect::Probe`]): resolves to JSON `{"images",
    /// "filters": {"cout", "cin", "size", "shades" (0–255 per weight, `[cout, cin, size,
    /// size]`), "levels", "level_counts", "caption"}, "activations": [{"layer", "levels",
    /// "counts", "used", "quantizer_levels", "caption"}]}`, or to `null` for a network without
    /// a conv layer (nothing to look into).
    pub fn probe(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
            let Inner { device, run, .. } = &mut *guard;
            if run.settings.net.conv_layers().is_empty() {
                return Ok(JsValue::NULL);
            }
            let p = on_device!(device, |b| run.probe(b).await).map_err(js_err)?;
            Ok(JsValue::from_str(&probe_json(&p)))
        })
    }

    /// The confusion matrix of the current model on `split`: `"valid"` (the validation
    /// images, as the window shows during a run) or `"test"` (every test image, as it shows
    /// for a loaded model). Resolves to JSON `{"split", "classes", "class_names", "counts"
    /// (row-major, rows the true classes), "total", "error", "caption", "most_confused"}`.
    pub fn confusion(&self, split: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
            let Inner { device, run, data } = &mut *guard;
            let classes = run.settings.net.classes;
            let m = match split.as_str() {
                "valid" => on_device!(device, |b| run.validation_confusion(b, data).await)
                    .map_err(js_err)?,
                "test" => {
                    let scores = on_device!(device, |b| run.predict(b, &data.test.pixels).await)
                        .map_err(js_err)?;
                    ConfusionMatrix::new(classes, &scores, &data.test.labels)
                }
                other => {
                    return Err(js_err(format!(
                        "confusion: unknown split '{other}' (\"valid\" or \"test\")"
                    )))
                }
            };
            let names = &data.class_names;
            Ok(JsValue::from_str(
                &serde_json::json!({
                    "split": split, "classes": m.classes, "class_names": names,
                    "counts": m.counts, "total": m.total(), "error": m.error_percent(),
                    "caption": m.caption(), "most_confused": m.most_confused(names),
                })
                .to_string(),
            ))
        })
    }
}

/// A probe as the page draws it (see [`WebRun::probe`]): the filters' shades as bytes, so the
/// page paints what [`crate::inspect::Filters::shade`] says without knowing the quantizer.
fn probe_json(p: &Probe) -> String {
    let f = &p.filters;
    let shades: Vec<u8> = f
        .values
        .iter()
        .map(|&w| (f.shade(w).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let activations: Vec<_> = p
        .activations
        .iter()
        .map(|h| {
            serde_json::json!({
                "layer": h.layer, "levels": h.levels, "counts": h.counts, "used": h.used(),
                "quantizer_levels": h.quantizer_levels, "non_finite": h.non_finite,
                "caption": h.caption(),
            })
        })
        .collect();
    serde_json::json!({
        "images": p.images,
        "filters": {
            "cout": f.cout, "cin": f.cin, "size": f.size, "shades": shades,
            "levels": f.levels, "level_counts": f.level_counts, "caption": f.caption(),
        },
        "activations": activations,
    })
    .to_string()
}

/// A .safetensors model as an ONNX file (`format` "onnx": onnxruntime) or a QONNX file
/// ("qonnx": FINN, hls4ml), the bytes `qnn export` writes.
#[wasm_bindgen]
pub fn export_model(model: &[u8], format: &str) -> Result<Vec<u8>, JsValue> {
    let format: crate::export::Format = format.parse().map_err(js_err)?;
    crate::export::export_model_bytes(model, "the model", format).map_err(js_err)
}

/// The settings (as the page's form holds them) of the network a .safetensors model describes:
/// the seed's fields, and `net` (the layer list as a net file) when the model has one; also
/// its `classes` and their `class_names` (numbered when the file names none).
#[wasm_bindgen]
pub fn model_settings(model: &[u8]) -> Result<String, JsValue> {
    let (_, meta) = crate::checkpoint::model_from_bytes(model, "the model file").map_err(js_err)?;
    let c = &meta.config;
    Ok(serde_json::json!({
        "dataset": meta.dataset, "bits": c.bits, "quantized": c.quantized,
        "nla": c.blocks[0].0, "nfa": c.blocks[0].1, "nlb": c.blocks[1].0, "nfb": c.blocks[1].1,
        "nlc": c.blocks[2].0, "nfc": c.blocks[2].1, "nl": c.nonlinearity.name(), "sym": c.sym,
        "net": c.net.as_ref().map(|n| n.to_toml()),
        "classes": c.classes, "class_names": meta.class_names_or_numbers(),
        "epoch": meta.epoch, "val_error": meta.val_error, "test_error": meta.test_error,
    })
    .to_string())
}

/// `[epochs finished, epochs planned]` of a state from [`WebRun::state_bytes`], read from its
/// metadata alone (the page's offer to resume says it before building anything); refuses bytes
/// that are not a qnn training state.
#[wasm_bindgen]
pub fn saved_progress(state: &[u8]) -> Result<Vec<usize>, JsValue> {
    let (done, planned) =
        crate::run::saved_progress(state, "the saved run's state").map_err(js_err)?;
    Ok(vec![done, planned])
}
