//! The network over any backend: a list of layers (conv → batch norm → activation, max pool,
//! global average pool, dense), each with its own bits — or the seed's VGG-like network, blocks
//! A, B, C of (conv 3×3 → batch norm → activation) × layers, each block followed by max pool
//! 2×2, then dense(10) → batch norm, which the seed's flags expand to.
//!
//! The model owns every buffer it needs for a batch of `max_batch` (parameters, optimizer state,
//! activations, gradients), allocated once; a training step only records ops on them.
//!
//! - [`config`]: [`NetConfig`], what defines the network (the seed's blocks, bits,
//!   nonlinearity, or a layer list), and the tensors it implies;
//! - [`layers`]: the layer list — [`Layer`] as a net file writes it, [`NetDef`] (read from TOML),
//!   [`ResolvedLayer`] placed with its shapes, which everything below reads;
//! - [`network`]: [`Model`], the network's buffers on a backend and the training step recorded
//!   over them;
//! - [`summary`]: the per-layer table printed at start-up and by `qnn info`;
//! - [`memory`]: what a configuration's buffers take, so one too large is refused before anything
//!   is allocated;
//! - [`energy`]: energy per inference in Moons et al.'s model.

pub mod config;
pub mod energy;
pub mod layers;
pub mod memory;
pub mod network;
pub mod summary;

pub use config::{ConvLayer, NetConfig};
pub use layers::{Bits, Layer, LayerQuant, NetDef, Op, Padding, Preset, ResolvedLayer, PRESETS};
pub use memory::{human_bytes, MemoryPlan};
pub use network::{Mode, Model, Param, Tensor, Update};
pub use summary::{Summary, SummaryRow};
