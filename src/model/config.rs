//! What defines the network: [`NetConfig`] — the input and either the seed's blocks A/B/C at one
//! bit width, or a layer list read from a net file ([`NetDef`]) — and the layers it implies.

use serde::{Deserialize, Serialize};

use super::layers::{NetDef, Op};
use crate::backend::{DEFAULT_CLASSES, MAX_CLASSES, MIN_CLASSES};
use crate::quant::{check_combination, ActQuant, Nonlinearity, WeightQuant};
use crate::Error;

/// Everything that defines the network's shape and arithmetic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Input channels, height, width.
    pub input: [usize; 3],
    /// Classes the network scores: its output layer's units, [`MIN_CLASSES`] to
    /// [`MAX_CLASSES`]. Left out of a saved configuration when it is the default 10, so that
    /// files written before there was a choice read back, and are written, unchanged.
    #[serde(
        default = "default_classes",
        skip_serializing_if = "is_default_classes"
    )]
    pub classes: usize,
    /// (layers, filters) of blocks A, B, C.
    pub blocks: [(usize, usize); 3],
    /// Quantize weights and activations (-q 1); off trains in float.
    pub quantized: bool,
    /// Bits nb of weights and activations when quantized, 0 (binary) to 16.
    pub bits: u32,
    /// The activation after each conv batch norm.
    pub nonlinearity: Nonlinearity,
    /// Symmetric clipping (hardtanh only; forced off for relu).
    pub sym: bool,
    /// A layer list (`--net FILE`). When present it alone defines the layers, and `blocks`,
    /// `quantized`, `bits`, `nonlinearity` and `sym` (the seed's flags) are unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetDef>,
}

fn default_classes() -> usize {
    DEFAULT_CLASSES
}

fn is_default_classes(classes: &usize) -> bool {
    *classes == DEFAULT_CLASSES
}

/// One conv layer of the network, with where it sits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvLayer {
    /// Input channels.
    pub cin: usize,
    /// Output channels (the filters).
    pub cout: usize,
    /// Height of its input (and output, for the seed's 3×3 same convolutions).
    pub h: usize,
    /// Width of its input.
    pub w: usize,
    /// Side of its square kernel.
    pub kernel: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// A max pool follows this layer (the last layer of a seed block).
    pub pool_after: bool,
}

impl NetConfig {
    /// Refuses a configuration that cannot train: for the seed's flags, a refused quantizer
    /// combination (see [`check_combination`]), a block of 0 filters or over 64 layers, an
    /// input under 8×8; for a layer list, a layer that cannot be placed (named by its position
    /// and line); for both, a class count outside [`MIN_CLASSES`]..=[`MAX_CLASSES`] and counts
    /// that overflow.
    pub fn validate(&self) -> Result<(), Error> {
        let [c, h, w] = self.input;
        if !(MIN_CLASSES..=MAX_CLASSES).contains(&self.classes) {
            return Err(Error::Model(format!(
                "{} classes: a network scores {MIN_CLASSES} to {MAX_CLASSES} classes",
                self.classes
            )));
        }
        if self.net.is_none() {
            check_combination(self.nonlinearity, self.bits, self.sym, self.quantized)
                .map_err(Error::Model)?;
            for (name, (layers, filters)) in ['A', 'B', 'C'].iter().zip(self.blocks) {
                if layers > 0 && filters == 0 {
                    return Err(Error::Model(format!(
                        "block {name} has {layers} layers of 0 filters: give it at least 1 filter"
                    )));
                }
                if layers > 64 {
                    return Err(Error::Model(format!(
                        "block {name}: {layers} layers is more than the 64 supported"
                    )));
                }
            }
            if c == 0 || h < 8 || w < 8 {
                return Err(Error::Model(format!(
                    "input {c}×{h}×{w}: need at least 1 channel and 8×8 pixels for three 2×2 pools"
                )));
            }
        } else if self.net.as_ref().is_some_and(|n| n.layers.len() > 1024) {
            return Err(Error::Model(
                "more than 1024 layers: qnn builds networks of up to 1024".into(),
            ));
        }
        self.check_counts()?;
        self.resolve().map(|_| ())
    }

    /// Refuses a network whose counts (weights, multiply-accumulates, activations per image)
    /// do not fit a 64-bit integer: everything that counts them afterwards — the summary, the
    /// memory plan, the energy model — multiplies without checking.
    fn check_counts(&self) -> Result<(), Error> {
        let too_large = |what: String| {
            Err(Error::Model(format!(
                "{what}: the network is too large to count (its weights, multiply-accumulates or activations overflow 64 bits)"
            )))
        };
        let [c, h, w] = self.input;
        let Some(input) = c.checked_mul(h).and_then(|n| n.checked_mul(w)) else {
            return too_large(format!("input {c}×{h}×{w}"));
        };
        // each layer's output elements and MACs, with the shapes carried in u128 so that
        // nothing here overflows before it is compared
        let mut total: u128 = input as u128 * self.classes as u128;
        let (mut cc, mut hh, mut ww) = (c as u128, h as u128, w as u128);
        for (i, layer) in self.layer_list().iter().enumerate() {
            use super::layers::Layer;
            let (macs, out) = match layer {
                Layer::Conv {
                    filters,
                    kernel,
                    stride,
                    ..
                } => {
                    let s = (*stride).max(1) as u128;
                    let (oh, ow) = (hh.div_ceil(s), ww.div_ceil(s));
                    let macs = *filters as u128 * cc * (*kernel as u128).pow(2) * oh * ow;
                    (macs, (*filters as u128, oh, ow))
                }
                Layer::MaxPool => (0, (cc, hh / 2, ww / 2)),
                Layer::GlobalAvgPool => (0, (cc, 1, 1)),
                Layer::Dense { units, .. } => {
                    let u = units.unwrap_or(self.classes) as u128;
                    (u * cc * hh * ww, (u, 1, 1))
                }
            };
            (cc, hh, ww) = out;
            total = total.saturating_add(macs).saturating_add(cc * hh * ww);
            if total > u64::MAX as u128 / 64 {
                return too_large(self.layer_name(i));
            }
        }
        Ok(())
    }

    /// How messages name layer `i` of [`NetConfig::layer_list`]: `conv1 (B)` for the seed's
    /// conv layers, `layer 3 (conv)` (with the file and line where known) for a layer list.
    fn layer_name(&self, i: usize) -> String {
        use super::layers::{layer_at, seed_block_letters, Layer};
        let list = self.layer_list();
        let ty = list.get(i).map_or("?", Layer::type_name);
        match &self.net {
            None => {
                let convs_before = list[..i]
                    .iter()
                    .filter(|l| matches!(l, Layer::Conv { .. }))
                    .count();
                match (ty, seed_block_letters(&self.blocks).get(convs_before)) {
                    ("conv", Some(l)) => format!("conv{convs_before} ({l})"),
                    _ => format!("the {ty} layer {}", i + 1),
                }
            }
            Some(net) => layer_at(net.origin.as_ref(), i, ty),
        }
    }

    /// Weights are quantized symmetrically only for hardtanh with -sym 1 (the seed's flags).
    pub fn weight_sym(&self) -> bool {
        self.sym && self.nonlinearity == Nonlinearity::Hardtanh
    }

    /// The conv weights' quantizer of the seed's flags.
    pub fn weight_quant(&self) -> WeightQuant {
        WeightQuant::new(self.quantized, self.bits, self.weight_sym())
    }

    /// The activation after each conv batch norm, by the seed's flags.
    pub fn activation(&self) -> ActQuant {
        if self.quantized {
            ActQuant::Quantized {
                nl: self.nonlinearity,
                bits: self.bits,
                sym: self.sym,
            }
        } else {
            ActQuant::Float(self.nonlinearity)
        }
    }

    /// The conv layers in network order.
    pub fn conv_layers(&self) -> Vec<ConvLayer> {
        let layers = self.layers();
        let mut out = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            if let Op::Conv(c) = l.op {
                out.push(ConvLayer {
                    cin: c.shape.cin,
                    cout: c.shape.cout,
                    h: c.shape.h,
                    w: c.shape.w,
                    kernel: c.shape.kernel,
                    out_h: l.output[1],
                    out_w: l.output[2],
                    pool_after: layers
                        .get(i + 1)
                        .is_some_and(|n| matches!(n.op, Op::MaxPool)),
                });
            }
        }
        out
    }

    /// Shape [c, h, w] of what the output (dense) layer reads.
    pub fn features_shape(&self) -> [usize; 3] {
        self.layers().last().map_or([0; 3], |l| l.input)
    }

    /// Elements per image the output layer reads, c·h·w of [`NetConfig::features_shape`].
    pub fn features(&self) -> usize {
        self.features_shape().iter().product()
    }

    /// The tensors a saved model of this network holds, (name, shape), in the order
    /// [`Model::export`](super::Model::export) writes them: per layer with weights, its
    /// `{name}.weight` ([cout, cin, k, k] for a conv, [units, inputs] for a dense layer) and
    /// `{name}.bias` [units]; then, if it has a batch norm, `{bn}.gamma`, `{bn}.beta`,
    /// `{bn}.mean`, `{bn}.inv_std` [units]. The seed's names: `conv{k}`, `bn{k}`, `dense`,
    /// `bn_out`. Nothing is allocated but the names.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for l in self.layers() {
            let shape = match l.op {
                Op::Conv(c) => {
                    let s = c.shape;
                    vec![s.cout, s.cin, s.kernel, s.kernel]
                }
                Op::Dense(d) => vec![d.units, d.inputs],
                _ => continue,
            };
            let n = l.channels();
            out.push((format!("{}.weight", l.name), shape));
            out.push((format!("{}.bias", l.name), vec![n]));
            if let Some(bn) = &l.bn_name {
                for part in ["gamma", "beta", "mean", "inv_std"] {
                    out.push((format!("{bn}.{part}"), vec![n]));
                }
            }
        }
        out
    }

    /// The seed's model name: `{ds}_{nl}_{sym}_quantized_{nla}_{nfa}_{nlb}_{nfb}_{nlc}_{nfc}_{nb}bits`;
    /// for a layer list, `{ds}_{net name}`.
    pub fn model_name(&self, dataset: &str) -> String {
        if let Some(net) = &self.net {
            return format!("{dataset}_{}", net.name);
        }
        let [(a, fa), (b, fb), (c, fc)] = self.blocks;
        format!(
            "{dataset}_{}_{}_{}_{a}_{fa}_{b}_{fb}_{c}_{fc}_{}bits",
            self.nonlinearity.name(),
            self.sym as u8,
            if self.quantized { "quantized" } else { "float" },
            self.bits
        )
    }
}
