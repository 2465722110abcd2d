//! The seed's VGG-like network over any backend: blocks A, B, C of (conv 3×3 → batch norm →
//! activation) × layers, each block followed by max pool 2×2; then dense(10) → batch norm.
//!
//! The model owns every buffer it needs for a batch of `max_batch` (parameters, optimizer state,
//! activations, gradients), allocated once; a training step only records ops on them.
//!
//! - [`config`]: [`NetConfig`], what defines the network (its blocks, bits, nonlinearity), and
//!   the conv layers it implies;
//! - [`network`]: [`Model`], the network's buffers on a backend and the training step recorded
//!   over them;
//! - [`summary`]: the per-layer table printed at start-up and by `qnn info`;
//! - [`memory`]: what a configuration's buffers take, so one too large is refused before anything
//!   is allocated;
//! - [`energy`]: energy per inference in Moons et al.'s model.

pub mod config;
pub mod energy;
pub mod memory;
pub mod network;
pub mod summary;

pub use config::{ConvLayer, NetConfig};
pub use memory::{human_bytes, MemoryPlan};
pub use network::{Mode, Model, Param, Tensor, Update};
pub use summary::{Summary, SummaryRow};
