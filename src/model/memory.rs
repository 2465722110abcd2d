//! What a network's buffers take for a batch, from the configuration alone, so a configuration too
//! large for the machine or the device is refused before anything is allocated.

use super::config::NetConfig;
use super::layers::Op;
use crate::backend::DeviceLimits;
use crate::quant::WeightQuant;
use crate::Error;

/// What a network's buffers take for a batch, worked out from the configuration alone (the same
/// buffers [`Model::new`](super::Model::new) allocates), so a configuration too large for the machine is refused
/// before anything is allocated.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    /// The batch size planned for.
    pub batch: usize,
    /// All buffers together, in bytes.
    pub total_bytes: u64,
    /// The largest single buffer, in bytes, and what it holds.
    pub largest_bytes: u64,
    /// What the largest buffer holds.
    pub largest: String,
}

/// Room the GPU backend's scratch buffers take at most (the weight gradient's K slices).
const SCRATCH_BYTES: u64 = 8 << 20;

/// Bytes as a person reads them.
pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

impl MemoryPlan {
    /// Refuses a plan the device cannot hold, naming the numbers and the batch that would fit.
    pub fn check(&self, limits: &DeviceLimits, config: &NetConfig) -> Result<(), Error> {
        if limits.fits(self) {
            return Ok(());
        }
        let fit = config.largest_batch(limits, self.batch);
        let advice = if fit > 0 {
            format!("a batch of at most {fit} fits, or use fewer filters")
        } else {
            "even a batch of 1 does not fit: use fewer filters or layers".to_string()
        };
        let binding = limits.max_binding_bytes.unwrap_or(u64::MAX);
        let buffer = limits.max_buffer_bytes.unwrap_or(u64::MAX);
        if self.largest_bytes > binding.min(buffer) {
            return Err(Error::TooLarge(format!(
                "a batch of {} needs a {} buffer for {}; this device takes at most {} per buffer: {advice}",
                self.batch,
                human_bytes(self.largest_bytes),
                self.largest,
                human_bytes(binding.min(buffer))
            )));
        }
        Err(Error::TooLarge(format!(
            "a batch of {} needs {} of buffers for this network; {} available: {advice}",
            self.batch,
            human_bytes(self.total_bytes),
            human_bytes(limits.memory_bytes.unwrap_or(0))
        )))
    }
}

impl DeviceLimits {
    /// The plan's largest buffer fits the per-buffer limits and its total the memory (if known).
    pub fn fits(&self, plan: &MemoryPlan) -> bool {
        let per_buffer = self
            .max_binding_bytes
            .unwrap_or(u64::MAX)
            .min(self.max_buffer_bytes.unwrap_or(u64::MAX));
        plan.largest_bytes <= per_buffer && self.memory_bytes.is_none_or(|m| plan.total_bytes <= m)
    }
}

impl NetConfig {
    /// The buffers of [`Model::new`](super::Model::new) for a batch of `batch`, as (what, f32 elements).
    fn buffers(&self, batch: usize) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let [c0, h0, w0] = self.input;
        out.push(("the input batch".to_string(), batch * c0 * h0 * w0));
        for l in self.layers() {
            let [c, h, w] = l.output;
            let n = batch * c * h * w;
            let shape = format!("({batch} × {c}×{h}×{w} floats)");
            let Some(q) = l.quant() else {
                let name = if matches!(l.op, Op::MaxPool) {
                    "a pool"
                } else {
                    "a global pool"
                };
                // output and its gradient (+ the window maxima of a max pool, a byte each)
                for _ in 0..2 {
                    out.push((format!("{name}'s output {shape}"), n));
                }
                if matches!(l.op, Op::MaxPool) {
                    out.push((
                        format!("a pool's window maxima ({batch} × {c}×{h}×{w} bytes)"),
                        n.div_ceil(4),
                    ));
                }
                continue;
            };
            let name = &l.name;
            let quantized = q.weight_quant() != WeightQuant::None;
            // value, gradient, two optimizer moments (+ the quantized copy)
            out.push((
                format!("{name}'s weights"),
                l.weights() * if quantized { 5 } else { 4 },
            ));
            let bn = l.has_batch_norm();
            out.push((
                format!("{name}'s biases and batch norm"),
                if bn { 16 * c + 1 } else { 4 * c + 1 },
            ));
            // z, dz; u, du with a batch norm; a, da unless it is the output layer
            let copies = 2 + if bn { 2 } else { 0 } + if l.activation().is_some() { 2 } else { 0 };
            let what = if l.activation().is_some() {
                format!("{name}'s activations {shape}")
            } else {
                "the scores".to_string()
            };
            for _ in 0..copies {
                out.push((what.clone(), n));
            }
        }
        // labels [batch]; the indices and their crop shifts [2·batch]
        out.push(("labels, indices and crop shifts".to_string(), 3 * batch));
        out
    }

    /// What the network's buffers take for a batch of `batch`.
    pub fn memory_plan(&self, batch: usize) -> MemoryPlan {
        let bufs = self.buffers(batch);
        let total: u64 = bufs.iter().map(|b| b.1 as u64 * 4).sum::<u64>() + SCRATCH_BYTES;
        let (largest, n) = bufs.iter().max_by_key(|b| b.1).cloned().unwrap_or_default();
        MemoryPlan {
            batch,
            total_bytes: total,
            largest_bytes: n as u64 * 4,
            largest,
        }
    }

    /// The largest batch up to `want` whose buffers fit `limits` (0: not even one image).
    pub fn largest_batch(&self, limits: &DeviceLimits, want: usize) -> usize {
        let (mut lo, mut hi) = (0usize, want);
        // buffers grow with the batch, so the batches that fit are 1..=answer
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if limits.fits(&self.memory_plan(mid)) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }
}
