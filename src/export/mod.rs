//! Models that leave qnn: a saved model as an ONNX file ([`Format::Onnx`], standard operators
//! only, for onnxruntime and the like) or a QONNX file ([`Format::Qonnx`], the dialect of FINN
//! and hls4ml: `Quant` / `BipolarQuant` nodes of the domain `qonnx.custom_op.general`), built in
//! memory (no files, no threads: the page and the window call it too).
//!
//! Both graphs compute what qnn computes in evaluation mode (docs/spec.md §1, §1b, §2, §4),
//! layer by layer, with these nodes (N is the batch; shapes after each layer as in
//! [`crate::model::ResolvedLayer`]):
//!
//! | qnn | nodes | shape |
//! |---|---|---|
//! | input | graph input `input`, f32, pixels already scaled: byte p → p·(2/255) − 1 | [N, c, h, w] |
//! | conv k×k, stride s, pad p | `Conv(x, Wq, b)` with `kernel_shape` [k, k], `strides` [s, s], `pads` [p, p, p, p] | [N, cout, oh, ow] |
//! | Wq (quantized) | onnx: integer initializer (int8, or int32 past int8's range) → `DequantizeLinear(·, step)`; qonnx: f32 initializer of the levels → `Quant` (n bits) or `BipolarQuant` (binary) | as the weight |
//! | batch norm (running statistics) | `Sub(z, mean)` → `Mul(·, γ·inv_std)` → `Add(·, β)`, per channel [1, c, 1, 1] (or [c] after a dense layer) | unchanged |
//! | activation | below | unchanged |
//! | max pool | `MaxPool` 2×2, stride 2 (floor) | [N, c, h/2, w/2] |
//! | global average pool | `ReduceSum` over axes 2, 3 (kept) → `Mul(·, 1/(h·w))` | [N, c, 1, 1] |
//! | dense (hidden or output) | `Flatten(axis 1)` (after a 4-D tensor) → `MatMul(x, Wqᵀ)` → `Add(·, b)` | [N, units] |
//! | a conv or pool after a dense layer | `Reshape(x, [0, units, 1, 1])` first | [N, units, 1, 1] |
//! | scores | the output batch norm's `Add`, graph output `scores` | [N, classes] |
//!
//! Batch norm is kept as qnn computes it, u = (z − mean)·k + β with k = γ·inv_std rounded to f32
//! once, rather than as `BatchNormalization` (which takes a variance and an ε, so its k would
//! differ in the last bit) or folded into the weights (which would change the product's
//! rounding and leave the weights no longer on their quantized levels).
//!
//! The quantized activation q = clip(2·round(hs(u)·S)/S − 1, lo, hi), hs(u) = clip((u + 1)·½,
//! 0, 1), S = 2^nb, rounds half away from zero. ONNX's `Round` and `QuantizeLinear` round half
//! to even, so the onnx graph spells it out with exact float operations ([`onnx`]); the qonnx
//! graph shifts u by half a step and uses `Quant` with `rounding_mode` `FLOOR`, whose output is
//! qnn's level itself ([`qonnx`]). Float activations are `Relu` and `Clip(u, −1, 1)`.
//!
//! Where a layer's inputs and weights are all on quantized levels (every layer after the first
//! of a quantized network) its sums are of multiples of a power of two and come out exact in any
//! order. Measured (tests/export_onnx.rs, 1,000 mnist-mini test images, every kind of model):
//! onnxruntime and qonnx give qnn's CPU scores bit for bit, float networks included, except
//! onnxruntime's default optimization level on float weights, whose NCHWc convolution kernels
//! sum in another order (differences of a few 1e-6).

pub mod onnx;
pub mod onnx_proto;
pub mod qonnx;

use std::collections::HashMap;

use prost::Message;

use crate::checkpoint::ModelMeta;
use crate::model::{Op, ResolvedLayer, Tensor};
use crate::quant::{ldexp, weight_exponent, ActQuant, Nonlinearity, WeightQuant};
use crate::Error;
use onnx_proto::*;

/// The kind of file [`export`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Standard ONNX, opset 13: runs in onnxruntime with no custom operators.
    Onnx,
    /// QONNX: ONNX opset 13 plus `Quant` / `BipolarQuant` of `qonnx.custom_op.general`, batch 1
    /// (as FINN and hls4ml expect; qonnx's `ChangeBatchSize` changes it).
    Qonnx,
}

impl Format {
    /// `onnx` or `qonnx`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Onnx => "onnx",
            Format::Qonnx => "qonnx",
        }
    }

    /// The end of an exported file's name: `.onnx`, or `.qonnx.onnx` (a QONNX file is an ONNX
    /// file that needs qonnx's operators).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Onnx => "onnx",
            Format::Qonnx => "qonnx.onnx",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "onnx" => Ok(Format::Onnx),
            "qonnx" => Ok(Format::Qonnx),
            other => Err(format!(
                "unknown export format '{other}' (use onnx or qonnx)"
            )),
        }
    }
}

/// The ONNX opset the graphs use (Clip with min/max inputs, ReduceSum with axes as an input,
/// per-tensor DequantizeLinear of int8 and int32).
pub const OPSET: i64 = 13;
/// The IR version that goes with opset 13.
const IR_VERSION: i64 = 7;
/// QONNX's operator domain.
pub const QONNX_DOMAIN: &str = "qonnx.custom_op.general";

/// The file's bytes: the model (`tensors` as [`crate::checkpoint::load_model`] returns them, and
/// its `meta`) as an ONNX or QONNX graph. Refuses a model whose tensors do not fit its network.
pub fn export(tensors: &[Tensor], meta: &ModelMeta, format: Format) -> Result<Vec<u8>, Error> {
    Ok(model_proto(tensors, meta, format)?.encode_to_vec())
}

/// [`export`] of a model file's bytes; `what` names it in messages.
pub fn export_model_bytes(model: &[u8], what: &str, format: Format) -> Result<Vec<u8>, Error> {
    let (tensors, meta) = crate::checkpoint::model_from_bytes(model, what)?;
    export(&tensors, &meta, format)
}

/// Reads an exported file back (for tests and tools that look at the graph).
pub fn parse(bytes: &[u8]) -> Result<ModelProto, Error> {
    ModelProto::decode(bytes).map_err(|e| Error::Model(format!("not an ONNX model ({e})")))
}

/// The graph of [`export`], before encoding.
pub fn model_proto(
    tensors: &[Tensor],
    meta: &ModelMeta,
    format: Format,
) -> Result<ModelProto, Error> {
    let config = &meta.config;
    let layers = config.resolve()?;
    let model_name = config.model_name(&meta.dataset);
    let find = |name: &str| -> Result<&Tensor, Error> {
        tensors.iter().find(|t| t.name == name).ok_or_else(|| {
            Error::Model(format!(
                "{model_name}: no tensor {name}, which its network needs"
            ))
        })
    };
    // the tensors the network reads, each of its shape (as a model file's are checked on
    // loading), so the graph never reads past one
    for (name, shape) in config.tensor_shapes() {
        let t = find(&name)?;
        if t.shape != shape || t.values.len() != shape.iter().product::<usize>() {
            return Err(Error::Model(format!(
                "{model_name}: tensor {name} is {:?} with {} values where the network has {shape:?}",
                t.shape,
                t.values.len()
            )));
        }
    }
    let mut g = Graph::default();
    let [c0, h0, w0] = config.input;
    let mut x = "input".to_string();
    // rank 4 [N, c, h, w] until a dense layer makes it [N, units]
    let mut flat = false;
    for l in &layers {
        g.prefix = l.name.clone();
        match l.op {
            Op::Conv(c) => {
                if flat {
                    x = g.reshape_4d(&x, l.input);
                    flat = false;
                }
                let s = c.shape;
                let w = find(&format!("{}.weight", l.name))?;
                let wq = weight(&mut g, format, l, w, c.quant.weight_quant(), false)?;
                let b = g.f32_init(
                    "bias",
                    &[s.cout],
                    &find(&format!("{}.bias", l.name))?.values,
                );
                let (k, st, p) = (s.kernel as i64, s.stride as i64, s.pad as i64);
                let z = g.node(
                    "Conv",
                    &[&x, &wq, &b],
                    vec![
                        attr_ints("kernel_shape", &[k, k]),
                        attr_ints("strides", &[st, st]),
                        attr_ints("pads", &[p, p, p, p]),
                        // the defaults, written out: qonnx's channels-last Conv requires them
                        attr_ints("dilations", &[1, 1]),
                        attr_int("group", 1),
                    ],
                );
                let u = match &l.bn_name {
                    Some(bn) => batch_norm(&mut g, &z, bn, s.cout, true, &find)?,
                    None => z,
                };
                x = activation(&mut g, format, &u, c.quant.activation());
            }
            Op::MaxPool => {
                if flat {
                    x = g.reshape_4d(&x, l.input);
                    flat = false;
                }
                x = g.node(
                    "MaxPool",
                    &[&x],
                    vec![
                        attr_ints("kernel_shape", &[2, 2]),
                        attr_ints("strides", &[2, 2]),
                        // the default, written out: qonnx's channels-last MaxPool requires it
                        attr_ints("pads", &[0, 0, 0, 0]),
                    ],
                );
            }
            Op::GlobalAvgPool => {
                if flat {
                    x = g.reshape_4d(&x, l.input);
                    flat = false;
                }
                // qnn sums each plane, then multiplies by the f32 1/(h·w) (ops/pool.rs)
                let [_, h, w] = l.input;
                let axes = g.i64_init("axes", &[2, 3]);
                let sum = g.node("ReduceSum", &[&x, &axes], vec![attr_int("keepdims", 1)]);
                let scale = g.scalar(crate::ops::pool::global_scale(crate::backend::PoolShape {
                    planes: 1,
                    h,
                    w,
                }));
                x = g.node("Mul", &[&sum, &scale], vec![]);
            }
            Op::Dense(d) => {
                if !flat {
                    x = g.node("Flatten", &[&x], vec![attr_int("axis", 1)]);
                    flat = true;
                }
                let w = find(&format!("{}.weight", l.name))?;
                let wq = weight(&mut g, format, l, w, d.quant.weight_quant(), true)?;
                let b = g.f32_init(
                    "bias",
                    &[d.units],
                    &find(&format!("{}.bias", l.name))?.values,
                );
                let y = g.node("MatMul", &[&x, &wq], vec![]);
                let z = g.node("Add", &[&y, &b], vec![]);
                let bn = l.bn_name.as_deref().unwrap_or("bn_out");
                let u = batch_norm(&mut g, &z, bn, d.units, false, &find)?;
                x = if d.output {
                    u
                } else {
                    activation(&mut g, format, &u, d.quant.activation())
                };
            }
        }
    }
    // the last node (the output batch norm's Add) writes the scores
    let last = g
        .nodes
        .last_mut()
        .ok_or_else(|| Error::Model(format!("{model_name}: the network has no layers")))?;
    last.output[0] = "scores".into();

    let batch = match format {
        Format::Onnx => Dimension {
            dim_param: Some("N".into()),
            dim_value: None,
        },
        Format::Qonnx => Dimension {
            dim_value: Some(1),
            dim_param: None,
        },
    };
    let fixed = |v: usize| Dimension {
        dim_value: Some(v as i64),
        dim_param: None,
    };
    let value_info = |name: &str, dims: Vec<Dimension>| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    };
    let input = value_info(
        "input",
        vec![batch.clone(), fixed(c0), fixed(h0), fixed(w0)],
    );
    let output = value_info("scores", vec![batch, fixed(config.classes)]);

    let classes = meta.class_names_or_numbers();
    let doc = format!(
        "{model_name}, exported by qnn {} from a model trained on {} (epoch {}, test error {}). \
         Input 'input' f32 [N, {c0}, {h0}, {w0}]: pixel bytes p scaled as p·(2/255) − 1. Output \
         'scores' f32 [N, {}]: the batch-normed class scores (no softmax); the class is the \
         first maximum.",
        env!("CARGO_PKG_VERSION"),
        meta.dataset,
        meta.epoch,
        crate::checkpoint::percent(meta.test_error),
        config.classes
    );
    let props = [
        ("qnn.model", model_name.clone()),
        ("qnn.dataset", meta.dataset.clone()),
        ("qnn.format", format.name().to_string()),
        (
            "qnn.classes",
            serde_json::to_string(&classes).expect("strings serialize"),
        ),
        (
            "qnn.input_scaling",
            "pixel byte p -> p * (2/255) - 1 (f32)".to_string(),
        ),
        (
            "qnn.config",
            serde_json::to_string(config).expect("the configuration serializes"),
        ),
    ];
    let mut opset_import = vec![OperatorSetIdProto {
        domain: String::new(),
        version: OPSET,
    }];
    if format == Format::Qonnx {
        opset_import.push(OperatorSetIdProto {
            domain: QONNX_DOMAIN.into(),
            version: 1,
        });
    }
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import,
        producer_name: "qnn".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.clone(),
        graph: Some(GraphProto {
            node: g.nodes,
            name: model_name,
            initializer: g.inits,
            doc_string: doc,
            input: vec![input],
            output: vec![output],
        }),
        metadata_props: props
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.into(),
                value: v,
            })
            .collect(),
    })
}

/// u = (z − mean)·k + β with k = γ·inv_std (f32), as qnn's evaluation computes it; the
/// per-channel constants are [1, c, 1, 1] after a conv (`spatial`), [c] after a dense layer.
fn batch_norm<'a>(
    g: &mut Graph,
    z: &str,
    bn: &str,
    channels: usize,
    spatial: bool,
    find: &impl Fn(&str) -> Result<&'a Tensor, Error>,
) -> Result<String, Error> {
    let part = |p: &str| find(&format!("{bn}.{p}")).map(|t| t.values.clone());
    let (gamma, beta, mean, inv_std) = (
        part("gamma")?,
        part("beta")?,
        part("mean")?,
        part("inv_std")?,
    );
    let k: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
    // 4-D [1, c, 1, 1] rather than [c, 1, 1]: qonnx's channels-last conversion moves such
    // constants along with the tensors they meet
    let dims: Vec<usize> = if spatial {
        vec![1, channels, 1, 1]
    } else {
        vec![channels]
    };
    let mean = g.f32_init("bn_mean", &dims, &mean);
    let k = g.f32_init("bn_scale", &dims, &k);
    let beta = g.f32_init("bn_beta", &dims, &beta);
    let centred = g.node("Sub", &[z, &mean], vec![]);
    let scaled = g.node("Mul", &[&centred, &k], vec![]);
    Ok(g.node("Add", &[&scaled, &beta], vec![]))
}

/// The layer's weights as the graph reads them (f32, [cout, cin, k, k] for a conv, [inputs,
/// units] — transposed — for a dense layer), quantized as `q` says.
fn weight(
    g: &mut Graph,
    format: Format,
    l: &ResolvedLayer,
    w: &Tensor,
    q: WeightQuant,
    transpose: bool,
) -> Result<String, Error> {
    let (dims, values) = if transpose {
        let [rows, cols] = [w.shape[0], w.shape[1]];
        let mut t = vec![0.0; w.values.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = w.values[r * cols + c];
            }
        }
        (vec![cols, rows], t)
    } else {
        (w.shape.clone(), w.values.clone())
    };
    let Some(levels) = IntLevels::of(&values, q) else {
        return Ok(g.f32_init("weight", &dims, &values));
    };
    // the integers times the step are exactly qnn's quantized weights; checked, so a change
    // in quant.rs cannot silently make the export differ
    let absmax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (v, k) in values.iter().zip(&levels.ints) {
        if (*k as f32) * levels.step != q.apply(*v, absmax) {
            return Err(Error::Model(format!(
                "{}: weight {v} does not quantize to an integer level of step {} (a bug in the export)",
                l.label, levels.step
            )));
        }
    }
    Ok(match format {
        Format::Onnx => onnx::weight(g, &dims, &levels),
        Format::Qonnx => qonnx::weight(g, &dims, &levels, q),
    })
}

/// A quantized weight tensor as integers k with Wq = k·step.
#[derive(Clone, Debug, PartialEq)]
pub struct IntLevels {
    /// k, row-major.
    pub ints: Vec<i32>,
    /// The step between levels: 1 for binary, 2^−(nb−1+f) for nb bits.
    pub step: f32,
    /// The lowest and highest k the quantizer can give.
    pub range: (i32, i32),
}

impl IntLevels {
    /// The levels of `w` under `q` (docs/spec.md §4); `None` for float weights.
    pub fn of(w: &[f32], q: WeightQuant) -> Option<IntLevels> {
        let absmax = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        match q {
            WeightQuant::None => None,
            WeightQuant::Binary => Some(IntLevels {
                ints: w.iter().map(|&v| if v >= 0.0 { 1 } else { -1 }).collect(),
                step: 1.0,
                range: (-1, 1),
            }),
            WeightQuant::Bits { bits, sym } => {
                let e = bits as i32 - 1 + weight_exponent(absmax);
                let scale = ldexp(1.0, e);
                let lo = -(1i32 << (bits - 1));
                let hi = if sym { -lo } else { -lo - 1 };
                Some(IntLevels {
                    ints: w
                        .iter()
                        .map(|&v| ((v * scale).round_ties_even() as i32).clamp(lo, hi))
                        .collect(),
                    step: ldexp(1.0, -e),
                    range: (lo, hi),
                })
            }
        }
    }
}

/// The activation after a batch norm (or a conv without one), as the format writes it.
fn activation(g: &mut Graph, format: Format, u: &str, act: ActQuant) -> String {
    match act {
        ActQuant::Float(Nonlinearity::Relu) => g.node("Relu", &[u], vec![]),
        ActQuant::Float(Nonlinearity::Hardtanh) => {
            let (lo, hi) = (g.scalar(-1.0), g.scalar(1.0));
            g.node("Clip", &[u, &lo, &hi], vec![])
        }
        quantized => {
            let l = quantized
                .levels()
                .expect("a quantized activation has levels");
            match format {
                Format::Onnx => onnx::activation(g, u, l),
                Format::Qonnx => qonnx::activation(g, u, l),
            }
        }
    }
}

/// A graph being built: nodes in order, initializers, and a name for everything.
#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    /// Scalar f32 constants already made, by their bits.
    scalars: HashMap<u32, String>,
    /// The layer being written: the start of its values' names.
    prefix: String,
    count: usize,
}

impl Graph {
    fn fresh(&mut self, what: &str) -> String {
        self.count += 1;
        if self.prefix.is_empty() {
            format!("{what}_{}", self.count)
        } else {
            format!("{}.{what}_{}", self.prefix, self.count)
        }
    }

    /// A standard ONNX node with one output, named after the layer and the operator.
    pub(crate) fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.node_in("", op, inputs, attribute)
    }

    /// A node of `domain` (`""`: standard ONNX) with one output.
    pub(crate) fn node_in(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        let out = self.fresh(op);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.into(),
            attribute,
            domain: domain.into(),
        });
        out
    }

    fn init(&mut self, what: &str, dims: &[usize], data_type: i32, raw_data: Vec<u8>) -> String {
        let name = self.fresh(what);
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            name: name.clone(),
            raw_data,
        });
        name
    }

    /// An f32 initializer.
    pub(crate) fn f32_init(&mut self, what: &str, dims: &[usize], v: &[f32]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init(what, dims, data_type::FLOAT, raw)
    }

    /// An integer initializer: int8 where every value fits, else int32.
    pub(crate) fn int_init(&mut self, what: &str, dims: &[usize], v: &[i32]) -> String {
        if v.iter().all(|&k| i8::try_from(k).is_ok()) {
            let raw = v.iter().map(|&k| k as i8 as u8).collect();
            self.init(what, dims, data_type::INT8, raw)
        } else {
            let raw = v.iter().flat_map(|k| k.to_le_bytes()).collect();
            self.init(what, dims, data_type::INT32, raw)
        }
    }

    /// An int64 vector initializer (axes, shapes).
    fn i64_init(&mut self, what: &str, v: &[i64]) -> String {
        let raw = v.iter().flat_map(|k| k.to_le_bytes()).collect();
        self.init(what, &[v.len()], data_type::INT64, raw)
    }

    /// A scalar f32 constant (made once per value).
    pub(crate) fn scalar(&mut self, v: f32) -> String {
        if let Some(n) = self.scalars.get(&v.to_bits()) {
            return n.clone();
        }
        let prefix = std::mem::take(&mut self.prefix);
        let name = self.f32_init("const", &[], &[v]);
        self.prefix = prefix;
        self.scalars.insert(v.to_bits(), name.clone());
        name
    }

    /// [N, units] → [N, units, 1, 1] for a conv or pool after a dense layer.
    fn reshape_4d(&mut self, x: &str, shape: [usize; 3]) -> String {
        let [c, h, w] = shape;
        let s = self.i64_init("shape", &[0, c as i64, h as i64, w as i64]);
        self.node("Reshape", &[x, &s], vec![])
    }
}

/// An integer attribute.
pub(crate) fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i: Some(i),
        ..Default::default()
    }
}

/// A list-of-integers attribute.
pub(crate) fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// A string attribute.
pub(crate) fn attr_str(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: Some(s.as_bytes().to_vec()),
        ..Default::default()
    }
}
