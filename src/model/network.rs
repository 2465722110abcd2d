//! [`Model`]: the network on a backend — every buffer a batch of `max_batch` images needs
//! (parameters, optimizer state, activations, gradients), allocated once — and the forward,
//! backward and update of a training step recorded as backend calls on them.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::config::NetConfig;
use super::layers::{Op, ResolvedLayer};
use super::summary::Summary;
use crate::backend::*;
use crate::ops::data::scale_pixel;
use crate::quant::{ActQuant, Nonlinearity, WeightQuant};
use crate::Error;

/// A named f32 tensor, as a model or state file holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Its name in the file, e.g. `conv0.weight`.
    pub name: String,
    /// Its shape, e.g. [cout, cin, 3, 3].
    pub shape: Vec<usize>,
    /// The values, row-major: the product of `shape` of them.
    pub values: Vec<f32>,
}

impl Tensor {
    /// A tensor named `name` of `shape` holding `values`.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, values: Vec<f32>) -> Self {
        Tensor {
            name: name.into(),
            shape,
            values,
        }
    }
}

/// A trainable tensor with its gradient and optimizer state.
#[derive(Clone, Debug)]
pub struct Param {
    /// Its name in the saved model, e.g. `conv0.weight`.
    pub name: String,
    /// Its shape, e.g. [cout, cin, 3, 3] for a conv weight.
    pub shape: Vec<usize>,
    /// Its value, gradient and optimizer moments, each f32 of the shape's length.
    pub tensors: ParamTensors,
    /// How the optimizer updates it.
    pub rule: UpdateRule,
}

/// Where a layer's parameters are in [`Model::params`].
#[derive(Clone, Copy, Debug)]
struct ParamIds {
    /// The weights: [cout, cin, k, k] for a conv, [units, inputs] for a dense layer.
    weight: usize,
    /// The bias, [cout] or [units].
    bias: usize,
    /// The batch norm's γ and β after it (same length as the bias), if it has one.
    bn: Option<(usize, usize)>,
}

/// Buffers of a layer with weights (conv or dense): x (its `src`) → z = layer(x, wq) + bias →
/// u = bn(z) → a = act(u) (`tensors`), and their gradients (`grads`). A conv's tensors are
/// [batch, cout, out_h, out_w]; a dense layer's [batch, units]. Without a batch norm, u and du
/// are z and dz (the same buffers). The output layer has no activation: its a and da are u and
/// du, the scores and their gradient.
#[derive(Clone, Debug)]
struct WeightBufs {
    /// Where it sits, its shapes and its widths.
    layer: ResolvedLayer,
    /// The tensor it reads.
    src: Src,
    params: ParamIds,
    /// Its weights' quantizer.
    quant: WeightQuant,
    /// The weights it reads: their quantized copy, or the float weights themselves.
    wq: Buf,
    /// max|w|, one f32, written by the weight quantizer.
    absmax: Buf,
    /// The batch norm's batch and running statistics, [2·channels] each, if it has one.
    stats: Option<BnStats>,
    /// z, u and a.
    tensors: BnActTensors,
    /// da, du and dz (dγ and dβ are the parameters' gradients; zero-length handles without a
    /// batch norm).
    grads: BnActGrads,
}

/// A pool: max 2×2 (`src` [batch, channels, h, w] → `out` [batch, channels, h/2, w/2]) or
/// global average (→ `out` [batch, channels]).
#[derive(Clone, Debug)]
struct PoolBufs {
    /// The tensor it pools.
    src: Src,
    /// Global average rather than 2×2 max.
    global: bool,
    channels: usize,
    h: usize,
    w: usize,
    /// The pooled output.
    out: Buf,
    /// The gradient with respect to `out`, same shape.
    dout: Buf,
    /// Which input of each window was the maximum, a byte per output value (U32 words), where
    /// the backend keeps that instead of the pooled activations ([`Backend::bn_act_pool_train`]).
    window: Buf,
}

impl PoolBufs {
    fn shape(&self, batch: usize) -> PoolShape {
        PoolShape {
            planes: batch * self.channels,
            h: self.h,
            w: self.w,
        }
    }
}

/// The network as a sequence of stages, in forward order.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// A layer with weights: index into [`Model::layers`].
    Weights(usize),
    /// A pool: index into [`Model::pools`].
    Pool(usize),
}

/// Which batch norm statistics a forward pass uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training: each batch norm uses the batch's statistics and moves its running ones.
    Train,
    /// Evaluation: each batch norm uses its running statistics; nothing is updated.
    Eval,
}

/// How one training step updates the parameters, with the values that change from step to step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Update {
    /// Adam (Lasagne's form, the model's [`AdamConfig`]) at learning rate `lr`.
    Adam {
        /// The learning rate.
        lr: f32,
        /// The 1-based step count, for Adam's bias correction.
        t: u64,
    },
    /// SGD with momentum at learning rate `lr`.
    Sgd {
        /// The learning rate.
        lr: f32,
        /// The momentum μ, in [0, 1).
        momentum: f32,
    },
}

/// The network on a backend: its configuration and every buffer a batch of up to `max_batch`
/// images needs.
pub struct Model {
    /// The network's shape and arithmetic.
    pub config: NetConfig,
    /// The largest batch its buffers hold.
    pub max_batch: usize,
    /// The trainable tensors, in network order.
    pub params: Vec<Param>,
    /// Running batch-norm statistics, (name, buffer of [mean; inv_std]).
    pub running: Vec<(String, Buf)>,
    /// The conv and dense layers, in network order (the last is the output layer).
    layers: Vec<WeightBufs>,
    pools: Vec<PoolBufs>,
    stages: Vec<Stage>,
    /// The input batch, f32 [max_batch, c, h, w], scaled to [−1, 1].
    x: Buf,
    /// The batch's labels, u32 `[max_batch]`.
    pub labels: Buf,
    /// The batch's image indices in the data set on the device, then (when the step crops)
    /// their packed shifts: u32 `[2·max_batch]` ([`BatchIndices`]).
    pub indices: Buf,
    /// The scores, f32 [max_batch, classes]: the output batch norm's output.
    scores: Buf,
    /// The loss's gradient with respect to the scores, same shape.
    dscores: Buf,
    /// The loss kernel's running sums over an epoch: [`LossAcc`] layout.
    pub acc: Buf,
    /// The optimizer's per-step scalars, f32 [[`StepScalars::LEN`]], written by
    /// [`Model::train_step`].
    step_scalars: Buf,
    /// Adam's constant hyper-parameters.
    pub adam: AdamConfig,
}

/// The activation tensor layers read from: the batch, a layer's activations or a pool's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Input,
    Layer(usize),
    Pool(usize),
}

impl Model {
    /// Builds the network with fresh parameters (the initialisation of docs/spec.md), seeded:
    /// quantized weights uniform in [−1, 1] with BinaryNet's scaled clip, float weights
    /// Glorot-uniform, drawn layer by layer in network order.
    pub fn new<B: Backend>(
        b: &mut B,
        config: NetConfig,
        max_batch: usize,
        seed: u64,
    ) -> Result<Self, Error> {
        config.validate()?;
        if max_batch == 0 {
            return Err(Error::Config("the batch size must be at least 1".into()));
        }
        // refuse with numbers before allocating, rather than abort or fail inside the driver
        config.memory_plan(max_batch).check(&b.limits(), &config)?;
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut params = Vec::new();
        let mut running = Vec::new();
        let mut add_param =
            |b: &mut B, name: String, shape: Vec<usize>, init: Vec<f32>, rule: UpdateRule| {
                let n: usize = shape.iter().product();
                debug_assert_eq!(init.len(), n);
                let value = b.alloc(n, Dtype::F32);
                b.write_f32(value, &init);
                let p = Param {
                    name,
                    shape,
                    tensors: ParamTensors {
                        value,
                        grad: b.alloc(n, Dtype::F32),
                        m: b.alloc(n, Dtype::F32),
                        v: b.alloc(n, Dtype::F32),
                    },
                    rule,
                };
                let tensors = p.tensors;
                params.push(p);
                (params.len() - 1, tensors)
            };
        let new_running = |b: &mut B, c: usize| {
            let r = b.alloc(2 * c, Dtype::F32);
            let mut init = vec![0.0; c];
            init.extend(vec![1.0; c]);
            b.write_f32(r, &init);
            r
        };
        let act = |b: &mut B, n: usize| b.alloc(n, Dtype::F32);
        let [c0, h0, w0] = config.input;
        let x = b.alloc(max_batch * c0 * h0 * w0, Dtype::F32);
        let mut layers: Vec<WeightBufs> = Vec::new();
        let mut pools = Vec::new();
        let mut stages = Vec::new();
        let resolved = config.layers();
        let mut cur = Src::Input;
        for l in resolved {
            let [oc, oh, ow] = l.output;
            let out_n = max_batch * oc * oh * ow;
            let (weight_shape, fan_in, fan_out, quant) = match l.op {
                Op::Conv(c) => {
                    let s = c.shape;
                    let taps = s.kernel * s.kernel;
                    let shape = vec![s.cout, s.cin, s.kernel, s.kernel];
                    (shape, taps * s.cin, taps * s.cout, c.quant)
                }
                Op::Dense(d) => (vec![d.units, d.inputs], d.inputs, d.units, d.quant),
                Op::MaxPool | Op::GlobalAvgPool => {
                    let [c, h, w] = l.input;
                    let global = matches!(l.op, Op::GlobalAvgPool);
                    pools.push(PoolBufs {
                        src: cur,
                        global,
                        channels: c,
                        h,
                        w,
                        out: act(b, out_n),
                        dout: act(b, out_n),
                        window: if global {
                            b.alloc(0, Dtype::U32)
                        } else {
                            b.alloc(out_n.div_ceil(4), Dtype::U32)
                        },
                    });
                    stages.push(Stage::Pool(pools.len() - 1));
                    cur = Src::Pool(pools.len() - 1);
                    continue;
                }
            };
            let n_w: usize = weight_shape.iter().product();
            let (w_init, rule): (Vec<f32>, _) = if quant.w_bits.is_quantized() {
                let scale = 1.0 / (1.5 / (fan_in + fan_out) as f32).sqrt();
                (
                    (0..n_w).map(|_| rng.random_range(-1.0..1.0)).collect(),
                    UpdateRule::ScaledClip { scale },
                )
            } else {
                let lim = (6.0 / (fan_in + fan_out) as f32).sqrt();
                (
                    (0..n_w).map(|_| rng.random_range(-lim..lim)).collect(),
                    UpdateRule::Plain,
                )
            };
            let units = oc;
            let (w, w_tensors) =
                add_param(b, format!("{}.weight", l.name), weight_shape, w_init, rule);
            let bias = add_param(
                b,
                format!("{}.bias", l.name),
                vec![units],
                vec![0.0; units],
                UpdateRule::Plain,
            )
            .0;
            let mut bn_ids = None;
            let mut stats = None;
            let mut bn_grads = BnGrads {
                dgamma: b.alloc(0, Dtype::F32),
                dbeta: b.alloc(0, Dtype::F32),
            };
            if let Some(bn) = &l.bn_name {
                let (gamma, g_t) = add_param(
                    b,
                    format!("{bn}.gamma"),
                    vec![units],
                    vec![1.0; units],
                    UpdateRule::Plain,
                );
                let (beta, b_t) = add_param(
                    b,
                    format!("{bn}.beta"),
                    vec![units],
                    vec![0.0; units],
                    UpdateRule::Plain,
                );
                let run = new_running(b, units);
                running.push((bn.clone(), run));
                bn_ids = Some((gamma, beta));
                stats = Some(BnStats {
                    batch: b.alloc(2 * units, Dtype::F32),
                    running: run,
                });
                bn_grads = BnGrads {
                    dgamma: g_t.grad,
                    dbeta: b_t.grad,
                };
            }
            let wquant = quant.weight_quant();
            let wq = if wquant == WeightQuant::None {
                w_tensors.value
            } else {
                b.alloc(n_w, Dtype::F32)
            };
            let is_output = matches!(l.op, Op::Dense(d) if d.output);
            let z = act(b, out_n);
            let dz = act(b, out_n);
            let (u, du) = if stats.is_some() {
                (act(b, out_n), act(b, out_n))
            } else {
                (z, dz)
            };
            let (a, da) = if is_output {
                (u, du)
            } else {
                (act(b, out_n), act(b, out_n))
            };
            layers.push(WeightBufs {
                layer: l,
                src: cur,
                params: ParamIds {
                    weight: w,
                    bias,
                    bn: bn_ids,
                },
                quant: wquant,
                wq,
                absmax: b.alloc(1, Dtype::F32),
                stats,
                tensors: BnActTensors { z, u, a },
                grads: BnActGrads {
                    da,
                    du,
                    dz,
                    params: bn_grads,
                },
            });
            stages.push(Stage::Weights(layers.len() - 1));
            cur = Src::Layer(layers.len() - 1);
        }
        let out = layers
            .last()
            .expect("a validated network ends in a dense layer");
        let (scores, dscores) = (out.tensors.u, out.grads.du);
        let model = Model {
            max_batch,
            params,
            running,
            pools,
            stages,
            x,
            labels: b.alloc(max_batch, Dtype::U32),
            indices: b.alloc(2 * max_batch, Dtype::U32),
            scores,
            dscores,
            acc: b.alloc(LossAcc::LEN, Dtype::F32),
            step_scalars: b.alloc(StepScalars::LEN, Dtype::F32),
            adam: AdamConfig::default(),
            layers,
            config,
        };
        Ok(model)
    }

    /// The tensor `s` names, as the layers after it read it.
    fn buf(&self, s: Src) -> Buf {
        match s {
            Src::Input => self.x,
            Src::Layer(k) => self.layers[k].tensors.a,
            Src::Pool(p) => self.pools[p].out,
        }
    }

    /// Where the gradient for a tensor goes (None for the input).
    fn grad_buf(&self, s: Src) -> Option<Buf> {
        match s {
            Src::Input => None,
            Src::Layer(k) => Some(self.layers[k].grads.da),
            Src::Pool(p) => Some(self.pools[p].dout),
        }
    }

    /// True where the tensor `s` holds only ±1 (binary activations, or a max pool of them), so
    /// a binary layer reading it can run as XNOR-popcount.
    fn binary_values(&self, s: Src) -> bool {
        match s {
            Src::Input => false,
            Src::Layer(k) => matches!(
                self.layers[k].layer.activation(),
                Some(ActQuant::Quantized { bits: 0, .. })
            ),
            Src::Pool(p) => !self.pools[p].global && self.binary_values(self.pools[p].src),
        }
    }

    /// The max pool that reads layer k's output, if any, where that layer has a batch norm: in
    /// training, the layer's batch norm, activation and that pool are one op
    /// ([`Backend::bn_act_pool_train`]), and so are their backward passes
    /// ([`Backend::pool_act_bn_backward`]).
    fn pool_after(&self, k: usize) -> Option<usize> {
        self.layers[k].stats?;
        self.pools
            .iter()
            .position(|p| !p.global && p.src == Src::Layer(k))
    }

    /// The input buffer, f32 [max_batch, c, h, w], scaled to [−1, 1].
    pub fn input(&self) -> Buf {
        self.x
    }

    fn value(&self, id: usize) -> Buf {
        self.params[id].tensors.value
    }

    fn grad(&self, id: usize) -> Buf {
        self.params[id].tensors.grad
    }

    /// Layer `l`'s output seen as [batch, channels, hw] (hw = 1 for a dense layer).
    fn channel_shape(l: &WeightBufs, batch: usize) -> ChannelShape {
        let [c, h, w] = l.layer.output;
        ChannelShape {
            batch,
            channels: c,
            hw: h * w,
        }
    }

    /// Layer `l`'s batch norm and activation over a batch of `batch` (those with both).
    fn bn_act(&self, l: &WeightBufs, batch: usize) -> Option<BnAct> {
        let (stats, (gamma, beta)) = (l.stats?, l.params.bn?);
        Some(BnAct {
            bn: BatchNorm {
                shape: Self::channel_shape(l, batch),
                params: BnParams {
                    gamma: self.value(gamma),
                    beta: self.value(beta),
                },
                stats,
            },
            act: l
                .layer
                .activation()
                .unwrap_or(ActQuant::Float(Nonlinearity::Hardtanh)),
        })
    }

    /// Conv layer `l`'s convolution over a batch of `batch`.
    fn conv_shape(l: &WeightBufs, batch: usize) -> Option<ConvShape> {
        match l.layer.op {
            Op::Conv(c) => Some(ConvShape { batch, ..c.shape }),
            _ => None,
        }
    }

    /// Dense layer `l`'s product over a batch of `batch`.
    fn dense_shape(l: &WeightBufs, batch: usize) -> DenseShape {
        DenseShape {
            batch,
            inputs: l.layer.input.iter().product(),
            outputs: l.layer.output[0],
        }
    }

    /// Records the forward pass over `batch` samples already in the input buffer: scores
    /// [batch, classes] in the scores buffer.
    pub fn forward<B: Backend>(&self, b: &mut B, batch: usize, mode: Mode) {
        let train = mode == Mode::Train;
        for stage in &self.stages {
            match *stage {
                Stage::Pool(p) => {
                    let p = &self.pools[p];
                    let shape = p.shape(batch);
                    if p.global {
                        b.global_pool_forward(shape, self.buf(p.src), p.out);
                        continue;
                    }
                    let fused = matches!(p.src, Src::Layer(k) if self.pool_after(k).is_some());
                    if train && fused {
                        continue; // pooled with its layer's batch norm
                    }
                    b.pool_forward(shape, self.buf(p.src), p.out);
                }
                Stage::Weights(k) => self.layer_forward(b, k, batch, mode),
            }
        }
    }

    /// Records layer k's forward: its weights quantized, its product, its batch norm and
    /// activation (and, in training, the max pool that follows a batch norm).
    fn layer_forward<B: Backend>(&self, b: &mut B, k: usize, batch: usize, mode: Mode) {
        let l = &self.layers[k];
        if l.quant != WeightQuant::None {
            b.weight_quantize(l.quant, self.value(l.params.weight), l.absmax, l.wq);
        }
        let (x, bias, z) = (self.buf(l.src), self.value(l.params.bias), l.tensors.z);
        match Self::conv_shape(l, batch) {
            Some(s) => {
                // a binary layer fed by binary activations: ±1 inputs and weights
                if l.quant == WeightQuant::Binary && self.binary_values(l.src) {
                    b.conv_forward_binary(s, x, l.wq, bias, z);
                } else {
                    b.conv_forward(s, x, l.wq, bias, z);
                }
            }
            None => b.dense_forward(Self::dense_shape(l, batch), x, l.wq, bias, z),
        }
        let Some(bn_act) = self.bn_act(l, batch) else {
            // no batch norm: a = act(z)
            if let Some(a) = l.layer.activation() {
                let n = Self::channel_shape(l, batch).len();
                b.act_forward(a, n, z, l.tensors.a);
            }
            return;
        };
        if l.layer.activation().is_none() {
            // the output layer: scores = bn(y)
            match mode {
                Mode::Train => b.bn_train(bn_act.bn, z, l.tensors.u),
                Mode::Eval => b.bn_eval(bn_act.bn, z, l.tensors.u),
            }
            return;
        }
        match (mode, self.pool_after(k)) {
            (Mode::Train, Some(p)) => {
                let p = &self.pools[p];
                let pooled = Pooled {
                    shape: p.shape(batch),
                    out: p.out,
                    window: p.window,
                };
                b.bn_act_pool_train(bn_act, l.tensors, pooled);
            }
            (Mode::Train, None) => b.bn_act_train(bn_act, l.tensors),
            (Mode::Eval, _) => b.bn_act_eval(bn_act, l.tensors),
        }
    }

    /// Records the backward pass of the batch whose forward pass (training mode) was recorded
    /// last, from the loss gradient in the dscores buffer.
    fn backward<B: Backend>(&self, b: &mut B, batch: usize) {
        for stage in self.stages.iter().rev() {
            match *stage {
                Stage::Pool(p) => {
                    let p = &self.pools[p];
                    let Some(g) = self.grad_buf(p.src) else {
                        continue;
                    };
                    if p.global {
                        b.global_pool_backward(p.shape(batch), p.dout, g);
                    } else if !matches!(p.src, Src::Layer(k) if self.pool_after(k).is_some()) {
                        b.pool_backward(p.shape(batch), self.buf(p.src), p.dout, g);
                    } // else with its layer's batch norm, below
                }
                Stage::Weights(k) => self.layer_backward(b, k, batch),
            }
        }
    }

    /// Records layer k's backward: from da (or the pooled gradient) to dz, then the gradients
    /// of its bias, weights and input.
    fn layer_backward<B: Backend>(&self, b: &mut B, k: usize, batch: usize) {
        let l = &self.layers[k];
        let dbias = self.grad(l.params.bias);
        let shape = Self::channel_shape(l, batch);
        // from the gradient of the layer's output to dz; `bias_summed`: the fused pool op also
        // summed the bias's gradient
        let bias_summed = match self.bn_act(l, batch) {
            Some(bn_act) if l.layer.activation().is_none() => {
                // the output layer: scores = bn(y)
                let g = l.grads;
                b.bn_backward(bn_act.bn, l.tensors.z, g.du, g.dz, g.params);
                false
            }
            Some(bn_act) => match self.pool_after(k) {
                Some(p) => {
                    let p = &self.pools[p];
                    let pooled = Pooled {
                        shape: p.shape(batch),
                        out: p.out,
                        window: p.window,
                    };
                    b.pool_act_bn_backward(bn_act, l.tensors, pooled, p.dout, l.grads, dbias);
                    true
                }
                None => {
                    b.act_bn_backward(bn_act, l.tensors, l.grads);
                    false
                }
            },
            None => {
                if let Some(a) = l.layer.activation() {
                    b.act_backward(a, shape.len(), l.tensors.z, l.grads.da, l.grads.dz);
                }
                false
            }
        };
        let Some(s) = Self::conv_shape(l, batch) else {
            return self.dense_backward(b, l, batch);
        };
        let dz = l.grads.dz;
        if !bias_summed {
            b.channel_sum(shape, dz, dbias);
        }
        b.conv_grad_weight(s, dz, self.buf(l.src), self.grad(l.params.weight));
        if let Some(g) = self.grad_buf(l.src) {
            b.conv_grad_input(s, dz, l.wq, g);
        }
    }

    /// A dense layer's gradients from dz: weights, bias (the seed's order), then its input.
    fn dense_backward<B: Backend>(&self, b: &mut B, l: &WeightBufs, batch: usize) {
        let ds = Self::dense_shape(l, batch);
        let dz = l.grads.dz;
        b.dense_grad_weight(ds, dz, self.buf(l.src), self.grad(l.params.weight));
        b.channel_sum(Self::channel_shape(l, batch), dz, self.grad(l.params.bias));
        if let Some(g) = self.grad_buf(l.src) {
            b.dense_grad_input(ds, dz, l.wq, g);
        }
    }

    /// Records one optimizer update of every parameter, reading the step scalars already
    /// written.
    fn update<B: Backend>(&self, b: &mut B, update: Update) {
        for p in &self.params {
            match update {
                Update::Sgd { .. } => b.sgd(p.rule, p.tensors, self.step_scalars),
                Update::Adam { .. } => b.adam(p.rule, self.adam, p.tensors, self.step_scalars),
            }
        }
    }

    /// Writes the batch's indices and gathers its images (`indices` into `images`, those ≥ its
    /// count flipped) into the input and label buffers; returns the batch size.
    pub fn load_batch<B: Backend>(
        &self,
        b: &mut B,
        images: &ImageSet,
        indices: &[u32],
    ) -> Result<usize, Error> {
        self.load_batch_shifted(b, images, indices, &[])
    }

    /// [`Model::load_batch`] with each image shifted by its [`Shift`] (a random crop):
    /// `shifts` holds one per index, or is empty for none. The indices and shifts are written
    /// as one buffer.
    pub fn load_batch_shifted<B: Backend>(
        &self,
        b: &mut B,
        images: &ImageSet,
        indices: &[u32],
        shifts: &[Shift],
    ) -> Result<usize, Error> {
        let n = indices.len();
        if n == 0 || n > self.max_batch {
            return Err(Error::Shape(format!(
                "a batch takes 1 to {} images, got {n}",
                self.max_batch
            )));
        }
        if !shifts.is_empty() && shifts.len() != n {
            return Err(Error::Shape(format!(
                "{} shifts for a batch of {n} images",
                shifts.len()
            )));
        }
        if shifts.is_empty() {
            b.write_u32(self.indices, indices);
        } else {
            let mut words = Vec::with_capacity(2 * n);
            words.extend_from_slice(indices);
            words.extend(shifts.iter().map(|s| s.pack()));
            b.write_u32(self.indices, &words);
        }
        let batch = BatchIndices {
            indices: self.indices,
            batch: n,
            shifted: !shifts.is_empty(),
        };
        b.gather_batch(images, batch, self.x, self.labels);
        Ok(n)
    }

    /// Classes the network scores: its output layer's units (`config.classes`).
    pub fn classes(&self) -> usize {
        self.config.classes
    }

    fn loss_shape(&self, batch: usize) -> LossShape {
        LossShape {
            batch,
            classes: self.classes(),
        }
    }

    /// One whole training step on the images `indices` of `images`: loads the batch, writes the
    /// step's optimizer scalars, and records the forward pass, the loss (added to `acc`), the
    /// backward pass and the update of every parameter.
    pub fn train_step<B: Backend>(
        &self,
        b: &mut B,
        images: &ImageSet,
        indices: &[u32],
        update: Update,
    ) -> Result<(), Error> {
        self.train_step_shifted(b, images, indices, &[], update)
    }

    /// [`Model::train_step`] on images shifted by `shifts` (random crops; one per index, or
    /// empty for none), as [`Model::load_batch_shifted`] gathers them.
    pub fn train_step_shifted<B: Backend>(
        &self,
        b: &mut B,
        images: &ImageSet,
        indices: &[u32],
        shifts: &[Shift],
        update: Update,
    ) -> Result<(), Error> {
        let batch = self.load_batch_shifted(b, images, indices, shifts)?;
        let scalars = match update {
            Update::Adam { lr, t } => StepScalars::adam(lr, t, self.adam),
            Update::Sgd { lr, momentum } => StepScalars::sgd(lr, momentum),
        };
        b.write_f32(self.step_scalars, &scalars.to_vec());
        self.forward(b, batch, Mode::Train);
        b.loss(
            self.loss_shape(batch),
            self.scores,
            self.labels,
            Some(self.dscores),
            self.acc,
        );
        self.backward(b, batch);
        self.update(b, update);
        Ok(())
    }

    /// Loss and error of the images `indices` of `images` (evaluation mode) added to `acc`.
    pub fn eval_step<B: Backend>(
        &self,
        b: &mut B,
        images: &ImageSet,
        indices: &[u32],
    ) -> Result<(), Error> {
        let batch = self.load_batch(b, images, indices)?;
        self.forward(b, batch, Mode::Eval);
        b.loss(
            self.loss_shape(batch),
            self.scores,
            self.labels,
            None,
            self.acc,
        );
        Ok(())
    }

    /// Scores [n, classes] of n images x [n, c, h, w] (already scaled to [−1, 1]), evaluation mode;
    /// n ≤ `max_batch`.
    pub async fn predict<B: Backend>(&self, b: &mut B, x: &[f32]) -> Result<Vec<f32>, Error> {
        let n = x.len() / self.config.input.iter().product::<usize>();
        if n == 0 || n > self.max_batch {
            return Err(Error::Shape(format!(
                "predict takes 1 to {} images, got {n}",
                self.max_batch
            )));
        }
        b.write_f32(self.x, x);
        self.eval_scores(b, n).await
    }

    /// Scores [n, classes] (evaluation mode) for any number n of images of u8 pixels [n, c, h, w] as
    /// the data sets store them, scaled as the data kernels scale them, `max_batch` at a time.
    pub async fn predict_pixels<B: Backend>(
        &self,
        b: &mut B,
        pixels: &[u8],
    ) -> Result<Vec<f32>, Error> {
        let len: usize = self.config.input.iter().product();
        if pixels.is_empty() || !pixels.len().is_multiple_of(len) {
            return Err(Error::Shape(format!(
                "{} bytes are not whole images of {len} pixels",
                pixels.len()
            )));
        }
        let mut scores = Vec::with_capacity(pixels.len() / len * self.classes());
        for chunk in pixels.chunks(len * self.max_batch) {
            let x: Vec<f32> = chunk.iter().map(|&p| scale_pixel(p)).collect();
            scores.extend(self.predict(b, &x).await?);
        }
        Ok(scores)
    }

    /// Scores [n, classes] of the n images already in the input buffer, evaluation mode.
    pub async fn eval_scores<B: Backend>(&self, b: &mut B, n: usize) -> Result<Vec<f32>, Error> {
        self.forward(b, n, Mode::Eval);
        let s = b.read_f32(self.scores).await?;
        Ok(s[..n * self.classes()].to_vec())
    }

    /// Each conv layer's activations `[n, cout, out_h, out_w]` from the evaluation-mode
    /// forward pass recorded last (over n ≤ `max_batch` images), named by the layer's label
    /// (`conv{k} ({block})` for the seed's). (A training forward may leave a pooled layer's
    /// activations unwritten: see [`Backend::bn_act_pool_train`].)
    pub async fn activations<B: Backend>(
        &self,
        b: &mut B,
        n: usize,
    ) -> Result<Vec<(String, Vec<f32>)>, Error> {
        let mut out = Vec::new();
        for l in self
            .layers
            .iter()
            .filter(|l| matches!(l.layer.op, Op::Conv(_)))
        {
            let len: usize = l.layer.output.iter().product();
            let v = b.read_f32(l.tensors.a).await?;
            out.push((l.layer.label.clone(), v[..n * len].to_vec()));
        }
        Ok(out)
    }

    /// The first conv layer's float weights `[cout, cin, k, k]`.
    pub async fn first_layer_weights<B: Backend>(&self, b: &mut B) -> Result<Vec<f32>, Error> {
        let c = self
            .layers
            .iter()
            .find(|l| matches!(l.layer.op, Op::Conv(_)))
            .ok_or_else(|| Error::Model("the network has no conv layer".into()))?;
        b.read_f32(self.value(c.params.weight)).await
    }

    /// Resets the optimizer state (fine-tuning restarts it).
    pub fn reset_optimizer<B: Backend>(&self, b: &mut B) {
        for p in &self.params {
            b.fill_zero(p.tensors.m);
            b.fill_zero(p.tensors.v);
        }
    }

    /// Named tensors of the saved model: parameters and running statistics split into
    /// `.mean` / `.inv_std`, in network order.
    pub async fn export<B: Backend>(&self, b: &mut B) -> Result<Vec<Tensor>, Error> {
        let mut out = Vec::new();
        let mut run_i = 0;
        for p in &self.params {
            let values = b.read_f32(p.tensors.value).await?;
            out.push(Tensor::new(p.name.clone(), p.shape.clone(), values));
            if p.name.ends_with(".beta") {
                let (name, buf) = &self.running[run_i];
                run_i += 1;
                let v = b.read_f32(*buf).await?;
                let c = v.len() / 2;
                out.push(Tensor::new(
                    format!("{name}.mean"),
                    vec![c],
                    v[..c].to_vec(),
                ));
                out.push(Tensor::new(
                    format!("{name}.inv_std"),
                    vec![c],
                    v[c..].to_vec(),
                ));
            }
        }
        Ok(out)
    }

    /// Loads named tensors (as [`Model::export`] writes them); refuses the first missing or
    /// mis-shaped one.
    pub fn import<B: Backend>(&self, b: &mut B, tensors: &[Tensor]) -> Result<(), Error> {
        let find = |name: &str, shape: &[usize]| -> Result<&Vec<f32>, Error> {
            let t = tensors.iter().find(|t| t.name == name).ok_or_else(|| {
                Error::Model(format!(
                    "the model file has no tensor '{name}' (another architecture?)"
                ))
            })?;
            if t.shape != shape {
                return Err(Error::Model(format!(
                    "tensor '{name}' has shape {:?}, this network needs {:?}",
                    t.shape, shape
                )));
            }
            Ok(&t.values)
        };
        for p in &self.params {
            let v = find(&p.name, &p.shape)?;
            b.write_f32(p.tensors.value, v);
        }
        for (name, buf) in &self.running {
            let c = buf.len / 2;
            let mut v = find(&format!("{name}.mean"), &[c])?.clone();
            v.extend(find(&format!("{name}.inv_std"), &[c])?);
            b.write_f32(*buf, &v);
        }
        Ok(())
    }

    /// Per-layer rows and totals for the start-up summary.
    pub fn summary(&self) -> Summary {
        self.config.summary()
    }
}
