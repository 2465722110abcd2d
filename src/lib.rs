//! qnn: train quantized (binary / n-bit) neural networks on WebGPU.
//!
//! Layout, bottom up:
//! - [`quant`]: the quantizers of docs/spec.md as scalar functions (the definition);
//! - [`backend`]: the `Backend` trait, one call per op of the network;
//! - [`ops`]: one module per kernel family — its CPU twin and its GPU launcher side by side,
//!   the WGSL source in `shaders/<family>.wgsl`;
//! - [`cpu`] and [`gpu`]: the two backends (plain Rust with rayon; wgpu);
//! - [`model`], [`train`], [`data`], [`checkpoint`]: the seed's network, its training loop,
//!   data sets and saved models, written once over any backend;
//! - [`run`]: one whole training run as every front end drives it (bytes in, bytes out).

pub mod backend;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod energy;
pub mod gpu;
pub mod model;
pub mod ops;
mod par;
pub mod platform;
pub mod quant;
pub mod run;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use backend::{Backend, Buf, Dtype};
pub use cpu::CpuBackend;
pub use gpu::GpuBackend;

/// Everything that can go wrong in the library, each with a message meant for a person.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no GPU adapter found (wgpu saw none). On Linux without a GPU install a Vulkan driver, e.g. `apt-get install mesa-vulkan-drivers`, or use the CPU backend")]
    NoAdapter,
    #[error("could not open the GPU device: {0}")]
    Device(String),
    #[error("GPU read-back failed: {0}")]
    ReadBack(String),
    #[error("{0}")]
    Shape(String),
    #[error("{0}")]
    Data(String),
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
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
}

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            error,
        }
    }
}
