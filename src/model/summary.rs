//! The network summary: per-layer output shapes, parameters, bits and MACs, and the totals with
//! the energy per inference, from the configuration alone.

use super::config::NetConfig;
use super::energy::{estimate, EnergyProfile};
use super::layers::Op;

/// One row of the network summary: a layer (input, conv, pool or dense).
#[derive(Clone, Debug)]
pub struct SummaryRow {
    /// The layer, e.g. `conv0 (A) + bn + act`.
    pub name: String,
    /// Output shape [c, h, w].
    pub shape: [usize; 3],
    /// Trainable parameters: weights, bias, and a batch norm's γ and β.
    pub params: usize,
    /// Bits per weight (32 for float, 0 for layers without weights).
    pub weight_bits: usize,
    /// Its activations: `4 relu`, `1 hardtanh` (binary), `float hardtanh`; empty for layers
    /// without an activation.
    pub activation: String,
    /// Multiply-accumulates per image.
    pub macs: usize,
}

/// The network summary printed at start-up: per-layer rows and totals. `Display` prints a table.
#[derive(Clone, Debug)]
pub struct Summary {
    /// One row per layer, in network order.
    pub rows: Vec<SummaryRow>,
    /// Trainable parameters in all.
    pub params: usize,
    /// The model's memory with each layer's weights at its width (biases, batch norm and its
    /// running statistics in float32).
    pub weight_bytes: usize,
    /// The same tensors all in float32.
    pub float_bytes: usize,
    /// Multiply-accumulates per image.
    pub macs: usize,
    /// Energy per inference in µJ ([`crate::model::energy`], the built-in 45 nm profile).
    pub energy_uj: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<28} {:>14} {:>10} {:>6} {:>12}  activation",
            "layer", "output", "params", "w bits", "MACs"
        )?;
        for r in &self.rows {
            let shape = format!("{}×{}×{}", r.shape[0], r.shape[1], r.shape[2]);
            let bits = if r.weight_bits == 0 {
                "-".to_string()
            } else {
                r.weight_bits.to_string()
            };
            writeln!(
                f,
                "{:<28} {:>14} {:>10} {:>6} {:>12}  {}",
                r.name, shape, r.params, bits, r.macs, r.activation
            )?;
        }
        write!(
            f,
            "total: {} parameters, {:.1} KiB at the chosen bit width vs {:.1} KiB float32 ({:.1}×), {:.2} M MACs per image, {:.3} µJ per inference (45 nm model, `qnn energy`)",
            self.params,
            self.weight_bytes as f64 / 1024.0,
            self.float_bytes as f64 / 1024.0,
            self.float_bytes as f64 / self.weight_bytes.max(1) as f64,
            self.macs as f64 / 1e6,
            self.energy_uj
        )
    }
}

impl NetConfig {
    /// Per-layer rows and totals (parameters, memory at each layer's bit width, MACs per
    /// image), from the configuration alone.
    pub fn summary(&self) -> Summary {
        let mut rows = vec![SummaryRow {
            name: "input".into(),
            shape: self.input,
            params: 0,
            weight_bits: 0,
            macs: 0,
            activation: String::new(),
        }];
        let mut weights_bits_total = 0usize;
        let mut weights_total = 0usize;
        let mut stored_total = 0usize;
        for l in self.layers() {
            let Some(q) = l.quant() else {
                rows.push(SummaryRow {
                    name: l.label.clone(),
                    shape: l.output,
                    params: 0,
                    weight_bits: 0,
                    macs: 0,
                    activation: String::new(),
                });
                continue;
            };
            let bits = q.weight_quant().storage_bits() as usize;
            let nw = l.weights();
            let c = l.channels();
            // bias, and γ, β, mean, 1/std of a batch norm: float32
            // trainable: the bias, and γ and β of a batch norm; stored beside them in float32:
            // the batch norm's running mean and 1/std
            let (trained, stored) = if l.has_batch_norm() {
                (3 * c, 5 * c)
            } else {
                (c, c)
            };
            weights_bits_total += nw * bits + stored * 32;
            weights_total += nw + trained;
            stored_total += nw + stored;
            let after = match (l.has_batch_norm(), l.activation()) {
                (true, Some(_)) => " + bn + act",
                (true, None) => " + bn",
                (false, Some(_)) => " + act",
                (false, None) => "",
            };
            let what = match l.op {
                Op::Conv(cp) if !cp.shape.is_same_3x3() => {
                    let s = cp.shape;
                    format!(" {k}×{k}/{}", s.stride, k = s.kernel)
                }
                _ => String::new(),
            };
            rows.push(SummaryRow {
                name: format!("{}{what}{after}", l.label),
                shape: l.output,
                params: nw + trained,
                weight_bits: bits,
                macs: l.macs(),
                activation: match l.activation() {
                    Some(_) => format!("{} {}", q.a_bits.label(), q.nonlinearity.name()),
                    None => String::new(),
                },
            });
        }
        let macs = rows.iter().map(|r| r.macs).sum();
        Summary {
            rows,
            params: weights_total,
            weight_bytes: weights_bits_total.div_ceil(8),
            float_bytes: stored_total * 4,
            macs,
            energy_uj: estimate(self, &EnergyProfile::default()).total_uj(),
        }
    }
}
