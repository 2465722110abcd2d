//! The network as an ordered list of layers, each with its own widths: what a net file
//! (`qnn train --net FILE`, a small TOML file; see examples/nets/ and README's "Writing a net
//! file") describes, and what the seed's flags expand to ([`NetConfig::layers`]).
//!
//! Two forms:
//! - [`Layer`]: a layer as written — conv, max pool, global average pool, dense — with its
//!   bits and nonlinearity made explicit. A [`NetDef`] (a name and its layers) is kept in the
//!   model's metadata.
//! - [`ResolvedLayer`]: a layer placed in the network — its input and output shapes, its
//!   quantizers, its parameter names — which the model, the summary, the memory plan and the
//!   energy model all read, so they cannot disagree.

use serde::{Deserialize, Serialize};

use super::config::NetConfig;
use crate::backend::ConvShape;
use crate::quant::{check_combination, ActQuant, Nonlinearity, WeightQuant};
use crate::Error;

/// The width of a layer's weights or activations.
///
/// In a net file: `1` (or `"binary"`: ±1, BinaryNet's sign), `2` … `16` (the seed's quantizer at
/// nb = that many bits), `"float"`, or `"ternary"` (the seed's `-nb 1`: levels {−1, 0, 1} for
/// symmetric hardtanh). Internally the seed's nb: 0 is binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bits {
    /// Not quantized (f32).
    Float,
    /// The seed's quantizer at nb bits: 0 is binary, 1 ternary, 2 … 16.
    Nb(u32),
}

impl Bits {
    /// The seed's `-q`/`-nb` pair as a width.
    pub fn from_seed(quantized: bool, nb: u32) -> Bits {
        if quantized {
            Bits::Nb(nb)
        } else {
            Bits::Float
        }
    }

    /// True unless float.
    pub fn is_quantized(self) -> bool {
        self != Bits::Float
    }

    /// The seed's nb (0 when float, where it is unused).
    pub fn nb(self) -> u32 {
        match self {
            Bits::Float => 0,
            Bits::Nb(nb) => nb,
        }
    }

    /// As the seed's `-nb` writes it (0 is binary), or `float`: the sweep's tables use it.
    pub fn seed_label(self) -> String {
        match self {
            Bits::Float => "float".into(),
            Bits::Nb(nb) => nb.to_string(),
        }
    }

    /// Q of Moons' energy model: 1 for binary, nb otherwise, `float_bits` for float.
    pub fn energy_q(self, float_bits: f64) -> f64 {
        match self {
            Bits::Float => float_bits,
            Bits::Nb(0) => 1.0,
            Bits::Nb(b) => b as f64,
        }
    }

    /// As a net file writes it: `1` (binary), `ternary`, `2` … `16`, `float`.
    pub fn label(self) -> String {
        match self {
            Bits::Float => "float".into(),
            Bits::Nb(0) => "1".into(),
            Bits::Nb(1) => "ternary".into(),
            Bits::Nb(b) => b.to_string(),
        }
    }

    /// What a width may be, for messages.
    const HINT: &'static str = "give 1 (binary) to 16, \"ternary\" or \"float\"";

    /// Reads a net file's value: an integer 1 … 16 or `binary`, `ternary`, `float`.
    fn parse(v: &toml::Value) -> Result<Bits, String> {
        match v {
            toml::Value::Integer(1) => Ok(Bits::Nb(0)),
            toml::Value::Integer(b) if (2..=16).contains(b) => Ok(Bits::Nb(*b as u32)),
            toml::Value::Integer(b) => Err(format!("{b} bits is out of range: {}", Bits::HINT)),
            toml::Value::String(s) => match s.as_str() {
                "binary" => Ok(Bits::Nb(0)),
                "ternary" => Ok(Bits::Nb(1)),
                "float" => Ok(Bits::Float),
                other => Err(format!("bits \"{other}\": {}", Bits::HINT)),
            },
            other => Err(format!("bits {}: {}", show(other), Bits::HINT)),
        }
    }
}

impl std::str::FromStr for Bits {
    type Err = String;
    /// As in a net file: `1` … `16`, `binary`, `ternary`, `float`.
    fn from_str(s: &str) -> Result<Bits, String> {
        let v = match s.trim().parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => toml::Value::String(s.trim().to_ascii_lowercase()),
        };
        Bits::parse(&v)
    }
}

// in metadata as a net file writes it, so `qnn info` and a net file read the same
impl Serialize for Bits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Bits::Nb(b) if *b != 1 => s.serialize_u32((*b).max(1)),
            _ => s.serialize_str(&self.label()),
        }
    }
}

impl<'de> Deserialize<'de> for Bits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        let v = match Raw::deserialize(d)? {
            Raw::N(n) => toml::Value::Integer(n),
            Raw::S(s) => toml::Value::String(s),
        };
        Bits::parse(&v).map_err(serde::de::Error::custom)
    }
}

/// A convolution's zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// (kernel − 1)/2 on each side: the output keeps the input's size at stride 1.
    Same,
    /// None: the output shrinks by kernel − 1.
    Valid,
}

/// How a layer quantizes: its weights' and activations' widths, and its nonlinearity (with the
/// seed's rule for `sym`: symmetric hardtanh levels and weights; forced off for relu).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerQuant {
    /// Width of the weights.
    pub w_bits: Bits,
    /// Width of the activations it outputs (unused by the output layer).
    pub a_bits: Bits,
    /// The activation after its batch norm.
    pub nonlinearity: Nonlinearity,
    /// Symmetric clipping (hardtanh only).
    pub sym: bool,
}

impl LayerQuant {
    /// Its weights' quantizer: symmetric only for hardtanh with `sym`.
    pub fn weight_quant(&self) -> WeightQuant {
        let sym = self.sym && self.nonlinearity == Nonlinearity::Hardtanh;
        WeightQuant::new(self.w_bits.is_quantized(), self.w_bits.nb(), sym)
    }

    /// Its activation.
    pub fn activation(&self) -> ActQuant {
        match self.a_bits {
            Bits::Float => ActQuant::Float(self.nonlinearity),
            Bits::Nb(bits) => ActQuant::Quantized {
                nl: self.nonlinearity,
                bits,
                sym: self.sym,
            },
        }
    }
}

/// One layer as a net file writes it, every choice explicit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Layer {
    /// Convolution → batch norm (optional) → activation.
    Conv {
        /// Output channels.
        filters: usize,
        /// Side of the square kernel: 1, 3 or 5.
        kernel: usize,
        /// 1 or 2.
        stride: usize,
        /// Same or valid.
        padding: Padding,
        /// A batch norm between the convolution and the activation.
        batch_norm: bool,
        /// Widths and nonlinearity.
        #[serde(flatten)]
        quant: LayerQuant,
    },
    /// Max pool 2×2, stride 2 (floor).
    MaxPool,
    /// The mean of each channel: [c, h, w] → [c, 1, 1].
    GlobalAvgPool,
    /// Dense → batch norm → activation; the last dense layer is the output (its units are the
    /// class count, batch norm and no activation: the class scores).
    Dense {
        /// Output units; `None` for the last layer, whose units are the class count.
        units: Option<usize>,
        /// Widths and nonlinearity.
        #[serde(flatten)]
        quant: LayerQuant,
    },
}

/// A network described as a list of layers: what `--net FILE` reads, kept in the model's
/// metadata. Two are equal when their names and layers are (wherever they were read from).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetDef {
    /// The network's name (the file's stem), used in the model's file name.
    pub name: String,
    /// The layers in order; the last is a dense layer (the class scores).
    pub layers: Vec<Layer>,
    /// The file it was read from and the line of each layer, for messages (not saved).
    #[serde(skip)]
    pub origin: Option<(String, Vec<usize>)>,
}

impl PartialEq for NetDef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.layers == other.layers
    }
}

/// A conv layer placed in the network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvPlan {
    /// Its geometry for a batch of 0 (set `batch` before use).
    pub shape: ConvShape,
    /// A batch norm follows the convolution.
    pub batch_norm: bool,
    /// Widths and nonlinearity.
    pub quant: LayerQuant,
}

/// A dense layer placed in the network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DensePlan {
    /// Input features: c·h·w of what it reads, flattened.
    pub inputs: usize,
    /// Output units.
    pub units: usize,
    /// The output layer (batch norm, no activation) rather than a hidden one.
    pub output: bool,
    /// Widths and nonlinearity (the output layer's activation is unused).
    pub quant: LayerQuant,
}

/// What a placed layer computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// A convolution (+ batch norm) + activation.
    Conv(ConvPlan),
    /// Max pool 2×2 stride 2.
    MaxPool,
    /// Global average pool.
    GlobalAvgPool,
    /// A dense layer (+ batch norm, + activation when hidden).
    Dense(DensePlan),
}

/// A layer placed in the network: what it computes, its shapes and its name.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedLayer {
    /// What it computes.
    pub op: Op,
    /// The shape it reads, [c, h, w].
    pub input: [usize; 3],
    /// The shape it writes, [c, h, w] ([units, 1, 1] for a dense layer).
    pub output: [usize; 3],
    /// Its name in the saved model's tensors: `conv{k}`, `dense{j}` (hidden), `dense` (the
    /// output); `pool{p}` / `gap{g}` for pools, which have no tensors.
    pub name: String,
    /// Its batch norm's name in the saved model (`bn{k}`, `bn_dense{j}`, `bn_out`), if any.
    pub bn_name: Option<String>,
    /// How it is shown: the name, with the seed's block letter for the seed's conv layers.
    pub label: String,
    /// 1-based position in the layer list (the net file's `[[layer]]` count).
    pub position: usize,
}

impl ResolvedLayer {
    /// Trainable weights (not counting bias and batch norm).
    pub fn weights(&self) -> usize {
        match self.op {
            Op::Conv(c) => c.shape.w_len(),
            Op::Dense(d) => d.inputs * d.units,
            _ => 0,
        }
    }

    /// Multiply-accumulates per image.
    pub fn macs(&self) -> usize {
        match self.op {
            Op::Conv(c) => {
                let s = ConvShape {
                    batch: 1,
                    ..c.shape
                };
                s.macs()
            }
            Op::Dense(d) => d.inputs * d.units,
            _ => 0,
        }
    }

    /// Output channels or units of a layer with parameters (bias and batch norm length).
    pub fn channels(&self) -> usize {
        self.output[0]
    }

    /// The layer's quantization, for layers with weights.
    pub fn quant(&self) -> Option<LayerQuant> {
        match self.op {
            Op::Conv(c) => Some(c.quant),
            Op::Dense(d) => Some(d.quant),
            _ => None,
        }
    }

    /// Whether a batch norm follows its weights.
    pub fn has_batch_norm(&self) -> bool {
        match self.op {
            Op::Conv(c) => c.batch_norm,
            Op::Dense(_) => true,
            _ => false,
        }
    }

    /// Its activation; `None` for pools and the output layer.
    pub fn activation(&self) -> Option<ActQuant> {
        match self.op {
            Op::Conv(c) => Some(c.quant.activation()),
            Op::Dense(d) if !d.output => Some(d.quant.activation()),
            _ => None,
        }
    }

    /// Its output activations' width (float for the output layer's scores; a pool keeps its
    /// input's, which the caller passes).
    pub fn output_bits(&self, input_bits: Bits) -> Bits {
        match self.op {
            Op::Conv(c) => c.quant.a_bits,
            Op::Dense(d) if d.output => Bits::Float,
            Op::Dense(d) => d.quant.a_bits,
            Op::MaxPool => input_bits,
            Op::GlobalAvgPool => Bits::Float,
        }
    }
}

impl Layer {
    /// Its `type` in a net file: `conv`, `max_pool`, `global_avg_pool` or `dense`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Layer::Conv { .. } => "conv",
            Layer::MaxPool => "max_pool",
            Layer::GlobalAvgPool => "global_avg_pool",
            Layer::Dense { .. } => "dense",
        }
    }
}

/// The seed's block letter (`A`, `B`, `C`) of each of its conv layers, in order.
pub(crate) fn seed_block_letters(blocks: &[(usize, usize); 3]) -> Vec<char> {
    blocks
        .iter()
        .zip(['A', 'B', 'C'])
        .flat_map(|(&(n, _), l)| std::iter::repeat_n(l, n))
        .collect()
}

/// How messages name layer `i` (0-based) of type `what`: `layer 3 (conv)`, with the file and
/// the line of its `[[layer]]` where the list was read from one.
pub(crate) fn layer_at(origin: Option<&(String, Vec<usize>)>, i: usize, what: &str) -> String {
    let position = i + 1;
    match origin {
        Some((file, lines)) => match lines.get(i) {
            Some(l) => format!("{file} line {l}: layer {position} ({what})"),
            None => format!("{file}: layer {position} ({what})"),
        },
        None => format!("layer {position} ({what})"),
    }
}

/// Places `layers` on an input of `input` [c, h, w] ending in `classes` scores: checks each
/// layer (kernel, stride, bits, shapes) and names it. An error names the layer by its position.
pub fn resolve(
    layers: &[Layer],
    input: [usize; 3],
    classes: usize,
    blocks: Option<&[(usize, usize); 3]>,
    origin: Option<&(String, Vec<usize>)>,
) -> Result<Vec<ResolvedLayer>, String> {
    if layers.is_empty() {
        return Err(
            "the network has no layers: end it with a dense layer (the class scores)".into(),
        );
    }
    let [c0, h0, w0] = input;
    if c0 == 0 || h0 == 0 || w0 == 0 {
        return Err(format!("input {c0}×{h0}×{w0} has no pixels"));
    }
    // the seed's block letter of each conv layer, for its label
    let letters: Vec<char> = blocks.map_or(Vec::new(), seed_block_letters);
    let mut out: Vec<ResolvedLayer> = Vec::with_capacity(layers.len());
    let (mut convs, mut pools, mut gaps) = (0, 0, 0);
    let dense_total = layers
        .iter()
        .filter(|l| matches!(l, Layer::Dense { .. }))
        .count();
    let mut dense_seen = 0;
    let mut cur = input;
    for (i, layer) in layers.iter().enumerate() {
        let position = i + 1;
        let last = i + 1 == layers.len();
        let [c, h, w] = cur;
        let flat = c.checked_mul(h).and_then(|n| n.checked_mul(w));
        let here = |what: &str| layer_at(origin, i, what);
        if last && !matches!(layer, Layer::Dense { .. }) {
            return Err(format!(
                "{}: the last layer must be a dense layer (the class scores)",
                here(layer.type_name())
            ));
        }
        let r = match layer {
            Layer::Conv {
                filters,
                kernel,
                stride,
                padding,
                batch_norm,
                quant,
            } => {
                let at = here("conv");
                if *filters == 0 {
                    return Err(format!("{at}: give it at least 1 filter"));
                }
                if ![1, 3, 5].contains(kernel) {
                    return Err(format!("{at}: kernel {kernel}: use 1, 3 or 5"));
                }
                if ![1, 2].contains(stride) {
                    return Err(format!("{at}: stride {stride}: use 1 or 2"));
                }
                check_quant(quant, true).map_err(|e| format!("{at}: {e}"))?;
                let pad = match padding {
                    Padding::Same => (kernel - 1) / 2,
                    Padding::Valid => 0,
                };
                let shape = ConvShape {
                    batch: 0,
                    cin: c,
                    cout: *filters,
                    h,
                    w,
                    kernel: *kernel,
                    stride: *stride,
                    pad,
                };
                let (oh, ow) = (shape.out_h(), shape.out_w());
                if oh == 0 || ow == 0 {
                    return Err(format!(
                        "{at}: a {kernel}×{kernel} valid convolution does not fit its {h}×{w} input"
                    ));
                }
                let k = convs;
                convs += 1;
                let name = format!("conv{k}");
                let label = match letters.get(k) {
                    Some(l) => format!("{name} ({l})"),
                    None => name.clone(),
                };
                ResolvedLayer {
                    op: Op::Conv(ConvPlan {
                        shape,
                        batch_norm: *batch_norm,
                        quant: *quant,
                    }),
                    input: cur,
                    output: [*filters, oh, ow],
                    bn_name: batch_norm.then(|| format!("bn{k}")),
                    name,
                    label,
                    position,
                }
            }
            Layer::MaxPool => {
                let at = here("max_pool");
                if h < 2 || w < 2 {
                    return Err(format!(
                        "{at}: a 2×2 pool on a {h}×{w} input leaves nothing: remove it or pool earlier"
                    ));
                }
                let p = pools;
                pools += 1;
                ResolvedLayer {
                    op: Op::MaxPool,
                    input: cur,
                    output: [c, h / 2, w / 2],
                    name: format!("pool{p}"),
                    bn_name: None,
                    label: "maxpool 2×2".into(),
                    position,
                }
            }
            Layer::GlobalAvgPool => {
                let g = gaps;
                gaps += 1;
                ResolvedLayer {
                    op: Op::GlobalAvgPool,
                    input: cur,
                    output: [c, 1, 1],
                    name: format!("gap{g}"),
                    bn_name: None,
                    label: "global avg pool".into(),
                    position,
                }
            }
            Layer::Dense { units, quant } => {
                let at = here("dense");
                dense_seen += 1;
                let output = dense_seen == dense_total;
                if output && !last {
                    return Err(format!(
                        "{at}: the last dense layer gives the class scores, so it must be the last layer"
                    ));
                }
                let units = match (output, units) {
                    (true, None) => classes,
                    (true, Some(u)) if *u == classes => classes,
                    (true, Some(u)) => {
                        return Err(format!(
                            "{at}: the last dense layer has {u} units, the data set has {classes} classes: \
                             leave its units out (they follow the class count)"
                        ))
                    }
                    (false, Some(u)) if *u > 0 => *u,
                    (false, _) => {
                        return Err(format!("{at}: a hidden dense layer needs units (1 or more)"))
                    }
                };
                check_quant(quant, !output).map_err(|e| format!("{at}: {e}"))?;
                let inputs =
                    flat.ok_or_else(|| format!("{at}: its input is too large to count"))?;
                let (name, bn_name) = if output {
                    ("dense".to_string(), "bn_out".to_string())
                } else {
                    let j = dense_seen - 1;
                    (format!("dense{j}"), format!("bn_dense{j}"))
                };
                ResolvedLayer {
                    op: Op::Dense(DensePlan {
                        inputs,
                        units,
                        output,
                        quant: *quant,
                    }),
                    input: cur,
                    output: [units, 1, 1],
                    label: name.clone(),
                    name,
                    bn_name: Some(bn_name),
                    position,
                }
            }
        };
        cur = r.output;
        out.push(r);
    }
    Ok(out)
}

/// The seed's rules on a layer's widths: the activation's (nonlinearity, bits, sym) must train
/// (see [`check_combination`]); a weight width alone is always fine.
fn check_quant(q: &LayerQuant, has_activation: bool) -> Result<(), String> {
    for b in [q.w_bits, q.a_bits] {
        if let Bits::Nb(nb) = b {
            if nb > 16 {
                return Err(format!("{nb} bits is out of range: {}", Bits::HINT));
            }
        }
    }
    if has_activation {
        if let Bits::Nb(nb) = q.a_bits {
            check_combination(q.nonlinearity, nb, q.sym, true).map_err(|e| {
                if nb == 0 && q.nonlinearity == Nonlinearity::Relu {
                    "relu with 1-bit (binary) activations gives only 0: use 2 bits or more with relu, \
                     or hardtanh with sym = true for ±1 activations"
                        .to_string()
                } else {
                    e
                }
            })?;
        }
    }
    Ok(())
}

/// The seed's network as a layer list: each block's conv layers (3×3 same, batch norm), then a
/// 2×2 max pool (empty blocks still pool, as the seed does), then the float dense output layer.
pub fn seed_layers(c: &NetConfig) -> Vec<Layer> {
    let quant = LayerQuant {
        w_bits: Bits::from_seed(c.quantized, c.bits),
        a_bits: Bits::from_seed(c.quantized, c.bits),
        nonlinearity: c.nonlinearity,
        sym: c.sym,
    };
    let mut out = Vec::new();
    for &(layers, filters) in &c.blocks {
        for _ in 0..layers {
            out.push(Layer::Conv {
                filters,
                kernel: 3,
                stride: 1,
                padding: Padding::Same,
                batch_norm: true,
                quant,
            });
        }
        out.push(Layer::MaxPool);
    }
    out.push(Layer::Dense {
        units: None,
        quant: LayerQuant {
            w_bits: Bits::Float,
            a_bits: Bits::Float,
            ..quant
        },
    });
    out
}

/// A network to start from, as a net file: the window and the page offer these, and
/// examples/nets/ holds the same files.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// Its name (the file's stem).
    pub name: &'static str,
    /// What a person picks it by.
    pub label: &'static str,
    /// The net file's text.
    pub toml: &'static str,
}

/// The presets: the seed's network, a LeNet-5-like network at 4 bits, an MLP at 2 bits, the
/// seed's CIFAR-10 network with 8-bit first and last layers, and a binary all-conv network.
pub const PRESETS: [Preset; 5] = [
    Preset {
        name: "seed",
        label: "the seed's network (4-bit relu, 32-64-64)",
        toml: include_str!("../../examples/nets/seed.toml"),
    },
    Preset {
        name: "lenet5-4bit",
        label: "LeNet-5-like, 4 bits",
        toml: include_str!("../../examples/nets/lenet5-4bit.toml"),
    },
    Preset {
        name: "mlp-2bit",
        label: "MLP 256-256, 2 bits",
        toml: include_str!("../../examples/nets/mlp-2bit.toml"),
    },
    Preset {
        name: "seed-cifar10-8bit-ends",
        label: "the seed's CIFAR-10 network, 8-bit first and last layers",
        toml: include_str!("../../examples/nets/seed-cifar10-8bit-ends.toml"),
    },
    Preset {
        name: "allconv-binary",
        label: "binary all-conv (strided convs, global average pool)",
        toml: include_str!("../../examples/nets/allconv-binary.toml"),
    },
];

impl NetDef {
    /// The network as a net file with every key explicit: [`NetDef::from_toml`] reads it back
    /// to an equal `NetDef`. The window shows a saved model's layers this way.
    pub fn to_toml(&self) -> String {
        let mut out = format!("name = \"{}\"\n", self.name);
        // the output layer takes its nonlinearity and sym (its weights' symmetry) from the
        // file-wide keys
        if let Some(Layer::Dense { quant: q, .. }) = self.layers.last() {
            out.push_str(&format!(
                "nonlinearity = \"{}\"\nsym = {}\n",
                q.nonlinearity.name(),
                q.sym
            ));
        }
        let quant = |out: &mut String, q: &LayerQuant, output: bool| {
            let bits = |b: Bits| match b {
                Bits::Nb(n) if n != 1 => n.max(1).to_string(),
                other => format!("\"{}\"", other.label()),
            };
            out.push_str(&format!("w_bits = {}\n", bits(q.w_bits)));
            if !output {
                out.push_str(&format!("a_bits = {}\n", bits(q.a_bits)));
                out.push_str(&format!("nonlinearity = \"{}\"\n", q.nonlinearity.name()));
                out.push_str(&format!("sym = {}\n", q.sym));
            }
        };
        let dense_total = self
            .layers
            .iter()
            .filter(|l| matches!(l, Layer::Dense { .. }))
            .count();
        let mut dense_seen = 0;
        for l in &self.layers {
            out.push_str("\n[[layer]]\n");
            match l {
                Layer::Conv {
                    filters,
                    kernel,
                    stride,
                    padding,
                    batch_norm,
                    quant: q,
                } => {
                    out.push_str(&format!(
                        "type = \"conv\"\nfilters = {filters}\nkernel = {kernel}\nstride = {stride}\npadding = \"{}\"\nbatch_norm = {batch_norm}\n",
                        match padding {
                            Padding::Same => "same",
                            Padding::Valid => "valid",
                        }
                    ));
                    quant(&mut out, q, false);
                }
                Layer::MaxPool => out.push_str("type = \"max_pool\"\n"),
                Layer::GlobalAvgPool => out.push_str("type = \"global_avg_pool\"\n"),
                Layer::Dense { units, quant: q } => {
                    dense_seen += 1;
                    out.push_str("type = \"dense\"\n");
                    if let Some(u) = units {
                        out.push_str(&format!("units = {u}\n"));
                    }
                    quant(&mut out, q, dense_seen == dense_total);
                }
            }
        }
        out
    }
}

/// The file-wide keys of a net file: defaults for every layer.
const FILE_KEYS: [&str; 6] = ["name", "bits", "w_bits", "a_bits", "nonlinearity", "sym"];

impl NetDef {
    /// Reads a net file's text. `file` names it in messages, each of which also names the layer
    /// (its position and type) and its line. See README's "Writing a net file".
    pub fn from_toml(text: &str, file: &str) -> Result<NetDef, Error> {
        let bad = |line: Option<usize>, msg: String| {
            let at = line.map_or(String::new(), |l| format!(" line {l}"));
            Error::Config(format!("{file}{at}: {msg}"))
        };
        let doc: toml::Spanned<toml::Table> =
            toml::from_str(text).map_err(|e: toml::de::Error| {
                let line = e.span().map(|s| line_of(text, s.start));
                bad(line, e.message().trim().to_string())
            })?;
        let table = doc.into_inner();
        for key in table.keys() {
            if !FILE_KEYS.contains(&key.as_str()) && key != "layer" {
                return Err(bad(
                    find_line(text, key),
                    format!(
                        "unknown key '{key}' (the file takes {} and [[layer]] tables)",
                        FILE_KEYS.join(", ")
                    ),
                ));
            }
        }
        let get = |k: &str| table.get(k);
        let name = match get("name") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(_) => {
                return Err(bad(
                    find_line(text, "name"),
                    "name must be a non-empty string".into(),
                ))
            }
            None => None,
        };
        let defaults = Defaults::read(&table).map_err(|(k, e)| bad(find_line(text, k), e))?;
        let layers = match get("layer") {
            Some(toml::Value::Array(a)) => a,
            _ => {
                return Err(bad(
                    None,
                    "no [[layer]] tables: list the layers in order, the last a dense layer".into(),
                ))
            }
        };
        let lines = layer_lines(text);
        let mut out = Vec::with_capacity(layers.len());
        for (i, v) in layers.iter().enumerate() {
            let line = lines.get(i).copied();
            let t = v
                .as_table()
                .ok_or_else(|| bad(line, format!("layer {}: not a table", i + 1)))?;
            let layer = read_layer(t, &defaults, i + 1 == layers.len())
                .map_err(|e| bad(line, format!("layer {}{e}", i + 1)))?;
            out.push(layer);
        }
        let stem = std::path::Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("net");
        let name = name.unwrap_or_else(|| stem.to_string());
        if !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err(bad(
                find_line(text, "name"),
                format!("name '{name}': use letters, digits, '-', '_' and '.' (it goes into file names)"),
            ));
        }
        Ok(NetDef {
            name,
            layers: out,
            origin: Some((file.to_string(), lines)),
        })
    }
}

/// The file-wide defaults a layer takes for keys it does not give.
struct Defaults {
    w_bits: Bits,
    a_bits: Bits,
    nonlinearity: Nonlinearity,
    sym: bool,
}

impl Defaults {
    /// Reads the file-wide keys; an error gives the key.
    fn read(t: &toml::Table) -> Result<Defaults, (&'static str, String)> {
        let bits = match t.get("bits") {
            Some(v) => Bits::parse(v).map_err(|e| ("bits", e))?,
            None => Bits::Float,
        };
        let mut d = Defaults {
            w_bits: bits,
            a_bits: bits,
            nonlinearity: Nonlinearity::Hardtanh,
            sym: true,
        };
        if let Some(v) = t.get("w_bits") {
            d.w_bits = Bits::parse(v).map_err(|e| ("w_bits", e))?;
        }
        if let Some(v) = t.get("a_bits") {
            d.a_bits = Bits::parse(v).map_err(|e| ("a_bits", e))?;
        }
        if let Some(v) = t.get("nonlinearity") {
            d.nonlinearity = nonlinearity(v).map_err(|e| ("nonlinearity", e))?;
        }
        if let Some(v) = t.get("sym") {
            d.sym = v
                .as_bool()
                .ok_or(("sym", "sym must be true or false".to_string()))?;
        }
        Ok(d)
    }
}

fn nonlinearity(v: &toml::Value) -> Result<Nonlinearity, String> {
    v.as_str()
        .ok_or_else(|| "nonlinearity must be \"relu\" or \"hardtanh\"".to_string())?
        .parse()
}

/// The keys each layer type takes.
const CONV_KEYS: &[&str] = &[
    "type",
    "filters",
    "kernel",
    "stride",
    "padding",
    "batch_norm",
    "bits",
    "w_bits",
    "a_bits",
    "nonlinearity",
    "sym",
];
const POOL_KEYS: &[&str] = &["type"];
const DENSE_KEYS: &[&str] = &[
    "type",
    "units",
    "bits",
    "w_bits",
    "a_bits",
    "nonlinearity",
    "sym",
];

/// One `[[layer]]` table, with the file's defaults for what it leaves out. The error starts
/// with the layer's type in parentheses.
fn read_layer(t: &toml::Table, d: &Defaults, last: bool) -> Result<Layer, String> {
    let ty =
        match t.get("type") {
            Some(toml::Value::String(s)) => s.as_str(),
            Some(_) => return Err(": type must be a string".into()),
            None => return Err(
                ": no type (give type = \"conv\", \"max_pool\", \"global_avg_pool\" or \"dense\")"
                    .into(),
            ),
        };
    let keys = match ty {
        "conv" => CONV_KEYS,
        "max_pool" | "global_avg_pool" => POOL_KEYS,
        "dense" => DENSE_KEYS,
        other => {
            return Err(format!(
                ": unknown layer type '{other}' (use conv, max_pool, global_avg_pool or dense)"
            ))
        }
    };
    let at = format!(" ({ty})");
    for k in t.keys() {
        if !keys.contains(&k.as_str()) {
            return Err(format!(
                "{at}: unknown key '{k}' (a {ty} layer takes {})",
                keys.join(", ")
            ));
        }
    }
    let uint = |k: &str| -> Result<Option<usize>, String> {
        match t.get(k) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(*n as usize)),
            Some(v) => Err(format!("{at}: {k} = {}: give a whole number", show(v))),
        }
    };
    let quant = |output: bool| -> Result<LayerQuant, String> {
        let mut q = LayerQuant {
            w_bits: d.w_bits,
            a_bits: d.a_bits,
            nonlinearity: d.nonlinearity,
            sym: d.sym,
        };
        // the output layer's weights stay float unless it says otherwise, as the seed's; it has
        // no activation (a_bits is unused: float)
        if output {
            (q.w_bits, q.a_bits) = (Bits::Float, Bits::Float);
        }
        if output {
            for k in ["a_bits", "nonlinearity", "sym"] {
                if t.contains_key(k) {
                    return Err(format!(
                        "{at}: the last dense layer gives the class scores, with no activation: remove {k}"
                    ));
                }
            }
        }
        if let Some(v) = t.get("bits") {
            let b = Bits::parse(v).map_err(|e| format!("{at}: {e}"))?;
            q.w_bits = b;
            if !output {
                q.a_bits = b;
            }
        }
        if let Some(v) = t.get("w_bits") {
            q.w_bits = Bits::parse(v).map_err(|e| format!("{at}: {e}"))?;
        }
        if let Some(v) = t.get("a_bits") {
            q.a_bits = Bits::parse(v).map_err(|e| format!("{at}: {e}"))?;
        }
        if let Some(v) = t.get("nonlinearity") {
            q.nonlinearity = nonlinearity(v).map_err(|e| format!("{at}: {e}"))?;
        }
        if let Some(v) = t.get("sym") {
            q.sym = v
                .as_bool()
                .ok_or_else(|| format!("{at}: sym must be true or false"))?;
        }
        if q.nonlinearity == Nonlinearity::Relu {
            q.sym = false; // the seed's rule
        }
        Ok(q)
    };
    Ok(match ty {
        "conv" => {
            let filters =
                uint("filters")?.ok_or_else(|| format!("{at}: give filters (output channels)"))?;
            let padding = match t.get("padding") {
                None => Padding::Same,
                Some(toml::Value::String(s)) if s == "same" => Padding::Same,
                Some(toml::Value::String(s)) if s == "valid" => Padding::Valid,
                Some(v) => {
                    return Err(format!(
                        "{at}: padding = {}: use \"same\" or \"valid\"",
                        show(v)
                    ))
                }
            };
            let batch_norm = match t.get("batch_norm") {
                None => true,
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| format!("{at}: batch_norm must be true or false"))?,
            };
            Layer::Conv {
                filters,
                kernel: uint("kernel")?.unwrap_or(3),
                stride: uint("stride")?.unwrap_or(1),
                padding,
                batch_norm,
                quant: quant(false)?,
            }
        }
        "max_pool" => Layer::MaxPool,
        "global_avg_pool" => Layer::GlobalAvgPool,
        _ => Layer::Dense {
            units: uint("units")?,
            quant: quant(last)?,
        },
    })
}

/// A value as the file wrote it (near enough for a message).
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

/// 1-based line of byte `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The line of the first `key =` at the start of a line, if any.
fn find_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// The line of each `[[layer]]` header, in order.
fn layer_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim();
            l.starts_with("[[") && l.trim_start_matches('[').trim_start().starts_with("layer")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

impl NetConfig {
    /// The network a net file's text describes on an input of `input` [c, h, w] scoring
    /// `classes` classes (the data set's), checked: messages name `file`, the line and the
    /// layer. The seed's fields are the library's defaults, unused.
    pub fn from_net_text(
        input: [usize; 3],
        classes: usize,
        text: &str,
        file: &str,
    ) -> Result<NetConfig, Error> {
        let def = NetDef::from_toml(text, file)?;
        let config = NetConfig {
            input,
            classes,
            net: Some(def),
            ..crate::run::RunSettings::new(crate::data::DatasetKind::MnistMini).net
        };
        config.validate()?;
        Ok(config)
    }

    /// This network with its first layer's weights at `first` and its output layer's weights
    /// at `last` bits (each `None`: unchanged) — the minimum-energy design's 8-bit ends. The
    /// seed's flags become a layer list named after the seed's model name with `_first{F}` /
    /// `_last{L}` added; a net file keeps its name, with the same suffixes.
    pub fn with_end_bits(&self, first: Option<Bits>, last: Option<Bits>) -> NetConfig {
        if first.is_none() && last.is_none() {
            return self.clone();
        }
        let mut layers = self.layer_list();
        let base = match &self.net {
            Some(n) => n.name.clone(),
            None => self
                .model_name("seed")
                .trim_start_matches("seed_")
                .to_string(),
        };
        let mut name = base;
        if let Some(b) = first {
            let q = layers.iter_mut().find_map(|l| match l {
                Layer::Conv { quant, .. } | Layer::Dense { quant, .. } => Some(quant),
                _ => None,
            });
            if let Some(q) = q {
                q.w_bits = b;
            }
            name.push_str(&format!("_first{}", b.label()));
        }
        if let Some(b) = last {
            if let Some(Layer::Dense { quant, .. }) = layers.last_mut() {
                quant.w_bits = b;
            }
            name.push_str(&format!("_last{}", b.label()));
        }
        NetConfig {
            net: Some(NetDef {
                name,
                layers,
                origin: None,
            }),
            ..self.clone()
        }
    }

    /// The network's bit widths in a few characters, for tables, in the seed's `-nb` terms (0 is
    /// binary): the body's weight width (the most common among the layers with weights), then
    /// ` first F` / ` last L` where the first layer's or the output layer's weights differ from
    /// the seed's convention (the first as the body, the output float). E.g. `4`, `float`,
    /// `2 first 8 last 8`.
    pub fn bits_label(&self) -> String {
        let layers = self.layers();
        let widths: Vec<Bits> = layers
            .iter()
            .filter_map(|l| l.quant().map(|q| q.w_bits))
            .collect();
        let Some((&last, rest)) = widths.split_last() else {
            return String::new();
        };
        let body_of = if rest.len() > 1 { &rest[1..] } else { rest };
        let body = body_of
            .iter()
            .max_by_key(|b| body_of.iter().filter(|x| x == b).count())
            .copied()
            .unwrap_or(last);
        let mut label = body.seed_label();
        if let Some(&first) = rest.first() {
            if first != body {
                label.push_str(&format!(" first {}", first.seed_label()));
            }
        }
        if last != Bits::Float {
            label.push_str(&format!(" last {}", last.seed_label()));
        }
        label
    }

    /// The network's layers: the net file's list when there is one, else the seed's blocks
    /// ([`seed_layers`]).
    pub fn layer_list(&self) -> Vec<Layer> {
        match &self.net {
            Some(n) => n.layers.clone(),
            None => seed_layers(self),
        }
    }

    /// The layers placed on the input ([`resolve`]), or why they cannot be.
    pub fn resolve(&self) -> Result<Vec<ResolvedLayer>, Error> {
        let blocks = self.net.is_none().then_some(&self.blocks);
        let origin = self.net.as_ref().and_then(|n| n.origin.as_ref());
        resolve(&self.layer_list(), self.input, self.classes, blocks, origin).map_err(Error::Model)
    }

    /// The layers placed on the input; empty if they cannot be (a configuration that failed
    /// [`NetConfig::validate`], which every model checks first).
    pub fn layers(&self) -> Vec<ResolvedLayer> {
        self.resolve().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENET: &str = r#"
name = "lenet"
bits = 4
nonlinearity = "relu"

[[layer]]
type = "conv"
filters = 6
kernel = 5
w_bits = 8

[[layer]]
type = "max_pool"

[[layer]]
type = "conv"
filters = 16
kernel = 5
padding = "valid"

[[layer]]
type = "max_pool"

[[layer]]
type = "dense"
units = 120

[[layer]]
type = "dense"
"#;

    /// A LeNet-like file reads into explicit layers and places on 28×28 as LeNet does:
    /// 6×28×28 → 6×14×14 → 16×10×10 → 16×5×5 → 120 → 10.
    #[test]
    fn a_lenet_file_reads_and_places() {
        let def = NetDef::from_toml(LENET, "lenet.toml").unwrap();
        assert_eq!(def.name, "lenet");
        assert_eq!(def.layers.len(), 6);
        let r = resolve(&def.layers, [1, 28, 28], 10, None, None).unwrap();
        let shapes: Vec<[usize; 3]> = r.iter().map(|l| l.output).collect();
        assert_eq!(
            shapes,
            [
                [6, 28, 28],
                [6, 14, 14],
                [16, 10, 10],
                [16, 5, 5],
                [120, 1, 1],
                [10, 1, 1]
            ]
        );
        let Op::Conv(c0) = r[0].op else { panic!() };
        assert_eq!(
            (c0.quant.w_bits, c0.quant.a_bits),
            (Bits::Nb(8), Bits::Nb(4))
        );
        let Op::Dense(out) = r[5].op else { panic!() };
        assert!(out.output && out.quant.w_bits == Bits::Float && out.inputs == 120);
        assert_eq!(r[4].name, "dense0");
        assert_eq!(r[4].bn_name.as_deref(), Some("bn_dense0"));
    }

    /// Each refusal of a file names the file, the line and (for a layer) its position and
    /// type, whether found reading the file or placing its layers on a 1×8×8 input.
    #[test]
    fn bad_files_name_the_layer_and_line() {
        let refusal = |text: &str| -> String {
            let def = match NetDef::from_toml(text, "n.toml") {
                Ok(d) => d,
                Err(e) => return e.to_string(),
            };
            resolve(&def.layers, [1, 8, 8], 10, None, def.origin.as_ref()).unwrap_err()
        };
        let cases = [
            ("[[layer]]\ntype = \"convv\"\n", "n.toml line 1: layer 1: unknown layer type 'convv'"),
            ("[[layer]]\ntype = \"conv\"\nfilters = 4\nfiltres = 3\n", "n.toml line 1: layer 1 (conv): unknown key 'filtres'"),
            ("[[layer]]\ntype = \"dense\"\nbits = 17\n", "17 bits is out of range"),
            ("bits = 0\n[[layer]]\ntype = \"dense\"\n", "n.toml line 1: 0 bits is out of range"),
            ("wbits = 3\n[[layer]]\ntype = \"dense\"\n", "n.toml line 1: unknown key 'wbits'"),
            ("[[layer]]\ntype = \"dense\"\nunits = 5\na_bits = 2\n", "remove a_bits"),
            ("[[layer]]\ntype = \"conv\"\nfilters = 2\nkernel = 4\n\n[[layer]]\ntype = \"dense\"\n", "n.toml line 1: layer 1 (conv): kernel 4"),
            ("[[layer]]\ntype = \"dense\"\n\n[[layer]]\ntype = \"max_pool\"\n", "n.toml line 1: layer 1 (dense): the last dense layer gives the class scores, so it must be the last layer"),
            ("[[layer]]\ntype = \"global_avg_pool\"\n[[layer]]\ntype = \"max_pool\"\n[[layer]]\ntype = \"dense\"\n", "n.toml line 3: layer 2 (max_pool): a 2×2 pool on a 1×1 input"),
            ("[[layer]\n", "n.toml line 1"),
        ];
        for (text, want) in cases {
            let e = refusal(text);
            assert!(e.contains(want), "{text:?}: got {e}, want {want}");
        }
    }

    /// Shape errors found when placing: a pool on 1×1, a dense layer not last, relu with 1 bit,
    /// the wrong class count; each names the layer's position and type.
    #[test]
    fn impossible_networks_are_refused_by_layer() {
        let conv = |bits: Bits, nl| Layer::Conv {
            filters: 2,
            kernel: 3,
            stride: 1,
            padding: Padding::Same,
            batch_norm: true,
            quant: LayerQuant {
                w_bits: bits,
                a_bits: bits,
                nonlinearity: nl,
                sym: false,
            },
        };
        let out = Layer::Dense {
            units: None,
            quant: LayerQuant {
                w_bits: Bits::Float,
                a_bits: Bits::Float,
                nonlinearity: Nonlinearity::Relu,
                sym: false,
            },
        };
        let r = |layers: Vec<Layer>, input| resolve(&layers, input, 10, None, None).unwrap_err();
        let e = r(vec![Layer::MaxPool, out.clone()], [1, 1, 1]);
        assert!(e.contains("layer 1 (max_pool)") && e.contains("1×1"), "{e}");
        let e = r(
            vec![conv(Bits::Nb(0), Nonlinearity::Relu), out.clone()],
            [1, 8, 8],
        );
        assert!(
            e.contains("layer 1 (conv)") && e.contains("relu with 1-bit"),
            "{e}"
        );
        let e = r(
            vec![out.clone(), conv(Bits::Float, Nonlinearity::Relu)],
            [1, 8, 8],
        );
        assert!(
            e.contains("layer 2 (conv)") || e.contains("layer 1 (dense)"),
            "{e}"
        );
        let e = r(vec![conv(Bits::Float, Nonlinearity::Relu)], [1, 8, 8]);
        assert!(
            e.contains("layer 1 (conv)") && e.contains("last layer must be a dense"),
            "{e}"
        );
        let wrong = Layer::Dense {
            units: Some(7),
            quant: LayerQuant {
                w_bits: Bits::Float,
                a_bits: Bits::Float,
                nonlinearity: Nonlinearity::Relu,
                sym: false,
            },
        };
        let e = r(vec![wrong], [1, 8, 8]);
        assert!(e.contains("7 units") && e.contains("10 classes"), "{e}");
    }

    /// Every preset reads, places on MNIST's or CIFAR-10's input, and its `to_toml` reads back
    /// to the same network.
    #[test]
    fn presets_read_and_round_trip() {
        for p in PRESETS {
            let def = NetDef::from_toml(p.toml, p.name).unwrap();
            assert_eq!(def.name, p.name);
            let input = if p.name.contains("cifar") {
                [3, 32, 32]
            } else {
                [1, 28, 28]
            };
            resolve(&def.layers, input, 10, None, None).unwrap();
            let again = NetDef::from_toml(&def.to_toml(), "again.toml").unwrap();
            assert_eq!(again, def, "{}", def.to_toml());
        }
    }

    /// Widths read as the table of [`Bits`] says, and metadata round-trips them.
    #[test]
    fn bits_read_and_round_trip() {
        for (v, want) in [
            (toml::Value::Integer(1), Bits::Nb(0)),
            (toml::Value::Integer(2), Bits::Nb(2)),
            (toml::Value::Integer(16), Bits::Nb(16)),
            (toml::Value::String("binary".into()), Bits::Nb(0)),
            (toml::Value::String("ternary".into()), Bits::Nb(1)),
            (toml::Value::String("float".into()), Bits::Float),
        ] {
            assert_eq!(Bits::parse(&v).unwrap(), want);
            let json = serde_json::to_string(&want).unwrap();
            assert_eq!(serde_json::from_str::<Bits>(&json).unwrap(), want, "{json}");
        }
        for bad in [0, 17, -1] {
            assert!(Bits::parse(&toml::Value::Integer(bad)).is_err());
        }
    }
}
