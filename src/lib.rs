//! # qnn — quantized neural networks on WebGPU
//!
//! qnn trains binary and few-bit convolutional networks — the VGG-like A/B/C networks of Moons et
//! al., "Minimum Energy Quantized Neural Networks" (2017), with their quantizers,
//! straight-through estimators and BinaryNet's update rule — with its math in WGSL compute
//! shaders on [wgpu](https://wgpu.rs) (Vulkan, Metal, DX12, and WebGPU in the browser) or on a
//! multi-threaded CPU backend that is also the reference the GPU kernels are tested against.
//! What it computes is specified in `docs/spec.md`; how it is built, in `docs/architecture.md`.
//!
//! Training the default network on the embedded mnist-mini (`examples/train.rs`):
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use qnn::run::{EpochOutcome, Run, RunSettings, Start};
//! # fn main() -> Result<(), qnn::Error> {
//! let mut b = qnn::CpuBackend::new(); // or qnn::GpuBackend::new()?
//! let data = qnn::data::mnist_mini()?;
//! let settings = RunSettings::new(qnn::data::DatasetKind::MnistMini); // 4-bit relu, 10 epochs
//! let mut run = pollster::block_on(Run::new(&mut b, settings, &data, Start::Fresh))?;
//! let stop = AtomicBool::new(false);
//! while !run.is_finished() {
//!     if let EpochOutcome::Finished(r) = pollster::block_on(run.next_epoch(&mut b, &stop, |_| false))? {
//!         println!("epoch {}: validation error {:.2}%", r.epoch, r.val_error);
//!     }
//! }
//! std::fs::write("model.safetensors", run.best_model().expect("a best epoch")).ok();
//! # Ok(()) }
//! ```
//!
//! The modules, bottom up:
//! - [`quant`]: the quantizers as scalar functions (the definition both backends follow), with
//!   their level tables;
//! - [`backend`]: the [`Backend`] trait, one call per op of the network;
//! - [`ops`]: one module per kernel family — its CPU twin and its GPU launcher side by side,
//!   the WGSL source in `shaders/<family>.wgsl`;
//! - [`cpu`] and [`gpu`]: the two backends ([`CpuBackend`]: plain Rust with rayon;
//!   [`GpuBackend`]: wgpu, one queue submit per training step);
//! - [`model`]: the seed's network — its configuration, its buffers and training step on any
//!   backend, its summary, memory plan and energy per inference; [`train`]: its epoch loop;
//! - [`run`]: one whole training run as every front end drives it (bytes in, bytes out);
//! - [`run_folder`] (native only): a run's files in its folder — their paths, the lock, the start
//!   files, each epoch's save, the metrics and the plot — as `qnn train`, the window and
//!   `qnn sweep` use them;
//! - [`data`]: MNIST, CIFAR-10 and the embedded mnist-mini, from folders or bytes;
//! - [`checkpoint`]: saved models and training states (safetensors);
//! - [`export`]: a saved model as an ONNX or QONNX file (bytes), for onnxruntime, FINN, hls4ml;
//! - [`files`]: atomic writes, so nothing a user saved is lost;
//! - [`platform`]: the clock and the event-loop turns that differ in the browser.
//!
//! Shapes in the docs are written like `x [batch, channels, h, w]` (row-major, images NCHW).
#![warn(missing_docs)]
// shapes such as `w [cout, cin, 3, 3]` are not links
#![allow(rustdoc::broken_intra_doc_links)]

pub mod backend;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod export;
pub mod files;
pub mod gpu;
pub mod image_folder;
pub mod inspect;
pub mod model;
pub mod ops;
mod par;
pub mod platform;
pub mod quant;
pub mod run;
#[cfg(not(target_arch = "wasm32"))]
pub mod run_folder;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use backend::{Backend, Buf, Dtype};
pub use cpu::CpuBackend;
pub use gpu::GpuBackend;

/// Everything that can go wrong in the library, each with a message meant for a person.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// wgpu found no GPU adapter on this machine.
    #[error("no GPU adapter found (wgpu saw none). On Linux without a GPU install a Vulkan driver, e.g. `apt-get install mesa-vulkan-drivers`, or use the CPU backend")]
    NoAdapter,
    /// The GPU device could not be opened, or it refused submitted work (wgpu's message).
    #[error("could not open the GPU device: {0}")]
    Device(String),
    /// Reading a buffer back from the GPU failed (mapping error or device lost).
    #[error("GPU read-back failed: {0}")]
    ReadBack(String),
    /// A buffer or batch has the wrong size for the operation (e.g. too many images to predict).
    #[error("{0}")]
    Shape(String),
    /// A data set file is missing, corrupt or malformed (bad gzip, header, checksum, counts).
    #[error("{0}")]
    Data(String),
    /// An architecture that cannot be built, or a model file that does not fit the network.
    #[error("{0}")]
    Model(String),
    /// A setting that cannot be right (a NaN, a momentum of 1, a final LR above the start).
    /// The message names the setting, not a command-line flag.
    #[error("{0}")]
    Config(String),
    /// What a configuration needs is more than the machine or the device offers (with numbers).
    #[error("{0}")]
    TooLarge(String),
    /// A loss, score, statistic or parameter stopped being finite (where and which is named).
    #[error("{0}")]
    NonFinite(String),
    /// A saved training state belongs to another run: each setting that differs.
    #[error("the saved run differs from this one, so resuming would train another run: {}", run::describe_changes(.0))]
    ResumeMismatch(Vec<run::SettingChange>),
    // `error` is part of the message and deliberately not a `#[source]`, so a chain printer
    // (anyhow's `{:#}`) does not print the OS error twice.
    /// Reading or writing a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file, as displayed in the message.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl AsRef<std::path::Path>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            error,
        }
    }
}
