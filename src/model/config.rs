//! What defines the network: [`NetConfig`] (input, blocks A/B/C, bits, nonlinearity) and the conv
//! layers it implies.

use serde::{Deserialize, Serialize};

use crate::backend::CLASSES;
use crate::quant::{check_combination, ActQuant, Nonlinearity, WeightQuant};
use crate::Error;

/// Everything that defines the network's shape and arithmetic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Input channels, height, width.
    pub input: [usize; 3],
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
}

/// One conv layer of the network, with where it sits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvLayer {
    /// Input channels.
    pub cin: usize,
    /// Output channels (the block's filters).
    pub cout: usize,
    /// Height of its input and output (3×3, padding 1).
    pub h: usize,
    /// Width of its input and output.
    pub w: usize,
    /// A max pool follows this layer (the last layer of a block).
    pub pool_after: bool,
    /// Its block: `'A'`, `'B'` or `'C'`.
    pub block: char,
}

impl NetConfig {
    /// Refuses a configuration that cannot train: a refused quantizer combination (see
    /// [`check_combination`]), a block of 0 filters or over 64 layers, an input under 8×8.
    pub fn validate(&self) -> Result<(), Error> {
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
        let [c, h, w] = self.input;
        if c == 0 || h < 8 || w < 8 {
            return Err(Error::Model(format!(
                "input {c}×{h}×{w}: need at least 1 channel and 8×8 pixels for three 2×2 pools"
            )));
        }
        self.check_counts()
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
        let mut total = 0usize;
        for (k, l) in self.conv_layers().iter().enumerate() {
            let macs = l
                .cout
                .checked_mul(l.cin)
                .and_then(|n| n.checked_mul(9))
                .and_then(|n| n.checked_mul(l.h.max(1)))
                .and_then(|n| n.checked_mul(l.w.max(1)));
            let acts = l.cout.checked_mul(l.h).and_then(|n| n.checked_mul(l.w));
            match (macs, acts) {
                (Some(m), Some(a)) => match total.checked_add(m).and_then(|t| t.checked_add(a)) {
                    Some(t) => total = t,
                    None => return too_large(format!("conv{k} ({})", l.block)),
                },
                _ => {
                    return too_large(format!(
                        "conv{k} ({}): {} filters over {} inputs",
                        l.block, l.cout, l.cin
                    ))
                }
            }
        }
        let [c, h, w] = self.input;
        if c.checked_mul(h)
            .and_then(|n| n.checked_mul(w))
            .and_then(|n| n.checked_mul(CLASSES))
            .and_then(|n| total.checked_add(n))
            .is_none()
        {
            return too_large(format!("input {c}×{h}×{w}"));
        }
        Ok(())
    }

    /// Weights are quantized symmetrically only for hardtanh with -sym 1.
    pub fn weight_sym(&self) -> bool {
        self.sym && self.nonlinearity == Nonlinearity::Hardtanh
    }

    /// The conv weights' quantizer.
    pub fn weight_quant(&self) -> WeightQuant {
        WeightQuant::new(self.quantized, self.bits, self.weight_sym())
    }

    /// The activation after each conv batch norm.
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
        let [mut c, mut h, mut w] = self.input;
        let mut out = Vec::new();
        for (bi, &(layers, filters)) in self.blocks.iter().enumerate() {
            for l in 0..layers {
                out.push(ConvLayer {
                    cin: c,
                    cout: filters,
                    h,
                    w,
                    pool_after: l + 1 == layers,
                    block: ['A', 'B', 'C'][bi],
                });
                c = filters;
            }
            h /= 2;
            w /= 2;
        }
        out
    }

    /// Shape [c, h, w] after the three blocks (the dense layer's input).
    pub fn features_shape(&self) -> [usize; 3] {
        let c = self
            .blocks
            .iter()
            .rev()
            .find(|b| b.0 > 0)
            .map_or(self.input[0], |b| b.1);
        [c, self.input[1] / 8, self.input[2] / 8]
    }

    /// Elements per image after the three blocks, c·h·w of [`NetConfig::features_shape`].
    pub fn features(&self) -> usize {
        self.features_shape().iter().product()
    }

    /// The tensors a saved model of this network holds, (name, shape), in the order
    /// [`Model::export`](super::Model::export) writes them: per conv layer k `conv{k}.weight`
    /// [cout, cin, 3, 3], `conv{k}.bias`, `bn{k}.gamma`, `bn{k}.beta`, `bn{k}.mean`,
    /// `bn{k}.inv_std` [cout]; then `dense.weight` [CLASSES, features], `dense.bias` and
    /// `bn_out.*` [CLASSES]. Nothing is allocated but the names.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        let mut layer = |w: String, shape: Vec<usize>, b: &str, bn: &str, n: usize| {
            out.push((w, shape));
            out.push((b.to_string(), vec![n]));
            for part in ["gamma", "beta", "mean", "inv_std"] {
                out.push((format!("{bn}.{part}"), vec![n]));
            }
        };
        for (k, l) in self.conv_layers().iter().enumerate() {
            layer(
                format!("conv{k}.weight"),
                vec![l.cout, l.cin, 3, 3],
                &format!("conv{k}.bias"),
                &format!("bn{k}"),
                l.cout,
            );
        }
        layer(
            "dense.weight".into(),
            vec![CLASSES, self.features()],
            "dense.bias",
            "bn_out",
            CLASSES,
        );
        out
    }

    /// The seed's model name: `{ds}_{nl}_{sym}_quantized_{nla}_{nfa}_{nlb}_{nfb}_{nlc}_{nfc}_{nb}bits`.
    pub fn model_name(&self, dataset: &str) -> String {
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
