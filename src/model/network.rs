//! [`Model`]: the network on a backend — every buffer a batch of `max_batch` images needs
//! (parameters, optimizer state, activations, gradients), allocated once — and the forward,
//! backward and update of a training step recorded as backend calls on them.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::config::{ConvLayer, NetConfig};
use super::summary::Summary;
use crate::backend::*;
use crate::ops::data::scale_pixel;
use crate::quant::{ActQuant, WeightQuant};
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
    /// The weights: [cout, cin, 3, 3] for a conv, [CLASSES, features] for the dense layer.
    weight: usize,
    /// The bias, [cout] or [CLASSES].
    bias: usize,
    /// The batch norm's γ after it, same length as the bias.
    gamma: usize,
    /// The batch norm's β after it, same length as the bias.
    beta: usize,
}

/// Buffers of one conv layer: x (its `src`) [batch, cin, h, w] → z = conv(x, wq) + bias →
/// u = bn(z) → a = act(u), each [batch, cout, h, w] (`tensors`), and their gradients (`grads`).
#[derive(Clone, Debug)]
struct ConvBufs {
    layer: ConvLayer,
    /// The tensor it reads.
    src: Src,
    params: ParamIds,
    /// The weights the conv reads, [cout, cin, 3, 3]: their quantized copy, or the float
    /// weights themselves in a float network.
    wq: Buf,
    /// max|w|, one f32, written by the weight quantizer.
    absmax: Buf,
    /// The batch norm's batch and running statistics, [2·cout] each.
    stats: BnStats,
    /// z, u and a.
    tensors: BnActTensors,
    /// da, du and dz (dγ and dβ are the parameters' gradients).
    grads: BnActGrads,
}

/// A max pool at the end of a block: `src` [batch, channels, h, w] → `out` [batch, channels,
/// h/2, w/2].
#[derive(Clone, Debug)]
struct PoolBufs {
    /// The tensor it pools.
    src: Src,
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

/// The dense layer and the batch norm after it: features [batch, features] → y = features·Wᵀ
/// + b [batch, CLASSES] → scores = bn(y) [batch, CLASSES].
#[derive(Clone, Debug)]
struct DenseBufs {
    params: ParamIds,
    /// y, the batch norm's input, f32 [max_batch, CLASSES].
    y: Buf,
    /// The gradient with respect to y, same shape.
    dy: Buf,
    /// The batch norm's batch and running statistics, [2·CLASSES] each.
    stats: BnStats,
}

/// The network as a sequence of stages (conv layers and pools), in forward order.
#[derive(Clone, Copy, Debug)]
enum Stage {
    Conv(usize),
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
    convs: Vec<ConvBufs>,
    pools: Vec<PoolBufs>,
    stages: Vec<Stage>,
    dense: DenseBufs,
    /// The input batch, f32 [max_batch, c, h, w], scaled to [−1, 1].
    x: Buf,
    /// The batch's labels, u32 `[max_batch]`.
    pub labels: Buf,
    /// Indices of the batch's images in the data set on the device, u32 `[max_batch]`.
    pub indices: Buf,
    /// The scores, f32 [max_batch, CLASSES]: the output batch norm's output.
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

/// The activation tensor layers read from: the batch, a conv's output or a pool's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Input,
    Conv(usize),
    Pool(usize),
}

impl Model {
    /// Builds the network with fresh parameters (the initialisation of docs/spec.md), seeded.
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
        let wq_mode = config.weight_quant();
        let act = |b: &mut B, n: usize| b.alloc(n, Dtype::F32);
        let [c0, h0, w0] = config.input;
        let x = b.alloc(max_batch * c0 * h0 * w0, Dtype::F32);
        let mut convs: Vec<ConvBufs> = Vec::new();
        let mut pools = Vec::new();
        let mut stages = Vec::new();
        // the tensor flowing through the network; empty blocks still pool, as the seed does
        let (mut cur, mut cur_c, mut cur_h, mut cur_w) = (Src::Input, c0, h0, w0);
        let mut layer_iter = config.conv_layers().into_iter();
        for &(layers, _) in config.blocks.iter() {
            for _ in 0..layers {
                let l = layer_iter.next().expect("conv_layers matches blocks");
                let k = convs.len();
                let (fan_in, fan_out) = (9 * l.cin, 9 * l.cout);
                let (w_init, rule): (Vec<f32>, _) = if config.quantized {
                    let scale = 1.0 / (1.5 / (fan_in + fan_out) as f32).sqrt();
                    (
                        (0..l.cout * l.cin * 9)
                            .map(|_| rng.random_range(-1.0..1.0))
                            .collect(),
                        UpdateRule::ScaledClip { scale },
                    )
                } else {
                    let lim = (6.0 / (fan_in + fan_out) as f32).sqrt();
                    (
                        (0..l.cout * l.cin * 9)
                            .map(|_| rng.random_range(-lim..lim))
                            .collect(),
                        UpdateRule::Plain,
                    )
                };
                let (w, w_tensors) = add_param(
                    b,
                    format!("conv{k}.weight"),
                    vec![l.cout, l.cin, 3, 3],
                    w_init,
                    rule,
                );
                let bi = add_param(
                    b,
                    format!("conv{k}.bias"),
                    vec![l.cout],
                    vec![0.0; l.cout],
                    UpdateRule::Plain,
                )
                .0;
                let (gamma, gamma_tensors) = add_param(
                    b,
                    format!("bn{k}.gamma"),
                    vec![l.cout],
                    vec![1.0; l.cout],
                    UpdateRule::Plain,
                );
                let (beta, beta_tensors) = add_param(
                    b,
                    format!("bn{k}.beta"),
                    vec![l.cout],
                    vec![0.0; l.cout],
                    UpdateRule::Plain,
                );
                let run = new_running(b, l.cout);
                running.push((format!("bn{k}"), run));
                let n = max_batch * l.cout * l.h * l.w;
                let wq = if wq_mode == WeightQuant::None {
                    w_tensors.value
                } else {
                    b.alloc(l.cout * l.cin * 9, Dtype::F32)
                };
                let params = ParamIds {
                    weight: w,
                    bias: bi,
                    gamma,
                    beta,
                };
                let stats = BnStats {
                    batch: b.alloc(2 * l.cout, Dtype::F32),
                    running: run,
                };
                let tensors = BnActTensors {
                    z: act(b, n),
                    u: act(b, n),
                    a: act(b, n),
                };
                let grads = BnActGrads {
                    da: act(b, n),
                    du: act(b, n),
                    dz: act(b, n),
                    params: BnGrads {
                        dgamma: gamma_tensors.grad,
                        dbeta: beta_tensors.grad,
                    },
                };
                convs.push(ConvBufs {
                    layer: l,
                    src: cur,
                    params,
                    wq,
                    absmax: b.alloc(1, Dtype::F32),
                    stats,
                    tensors,
                    grads,
                });
                stages.push(Stage::Conv(k));
                (cur, cur_c) = (Src::Conv(k), l.cout);
            }
            let out_n = max_batch * cur_c * (cur_h / 2) * (cur_w / 2);
            pools.push(PoolBufs {
                src: cur,
                channels: cur_c,
                h: cur_h,
                w: cur_w,
                out: act(b, out_n),
                dout: act(b, out_n),
                window: b.alloc(out_n.div_ceil(4), Dtype::U32),
            });
            stages.push(Stage::Pool(pools.len() - 1));
            (cur, cur_h, cur_w) = (Src::Pool(pools.len() - 1), cur_h / 2, cur_w / 2);
        }
        let features = config.features();
        let lim = (6.0 / (features + CLASSES) as f32).sqrt();
        let dense_init = (0..CLASSES * features)
            .map(|_| rng.random_range(-lim..lim))
            .collect();
        let dw = add_param(
            b,
            "dense.weight".into(),
            vec![CLASSES, features],
            dense_init,
            UpdateRule::Plain,
        )
        .0;
        let db = add_param(
            b,
            "dense.bias".into(),
            vec![CLASSES],
            vec![0.0; CLASSES],
            UpdateRule::Plain,
        )
        .0;
        let og = add_param(
            b,
            "bn_out.gamma".into(),
            vec![CLASSES],
            vec![1.0; CLASSES],
            UpdateRule::Plain,
        )
        .0;
        let ob = add_param(
            b,
            "bn_out.beta".into(),
            vec![CLASSES],
            vec![0.0; CLASSES],
            UpdateRule::Plain,
        )
        .0;
        let out_running = new_running(b, CLASSES);
        running.push(("bn_out".into(), out_running));
        let nb = max_batch * CLASSES;
        let dense = DenseBufs {
            params: ParamIds {
                weight: dw,
                bias: db,
                gamma: og,
                beta: ob,
            },
            y: act(b, nb),
            dy: act(b, nb),
            stats: BnStats {
                batch: b.alloc(2 * CLASSES, Dtype::F32),
                running: out_running,
            },
        };
        let model = Model {
            max_batch,
            params,
            running,
            pools,
            stages,
            x,
            labels: b.alloc(max_batch, Dtype::U32),
            indices: b.alloc(max_batch, Dtype::U32),
            dense,
            scores: act(b, nb),
            dscores: act(b, nb),
            acc: b.alloc(LossAcc::LEN, Dtype::F32),
            step_scalars: b.alloc(StepScalars::LEN, Dtype::F32),
            adam: AdamConfig::default(),
            convs,
            config,
        };
        Ok(model)
    }

    /// The tensor `s` names, as the layers after it read it.
    fn buf(&self, s: Src) -> Buf {
        match s {
            Src::Input => self.x,
            Src::Conv(k) => self.convs[k].tensors.a,
            Src::Pool(p) => self.pools[p].out,
        }
    }

    /// Where the gradient for a tensor goes (None for the input).
    fn grad_buf(&self, s: Src) -> Option<Buf> {
        match s {
            Src::Input => None,
            Src::Conv(k) => Some(self.convs[k].grads.da),
            Src::Pool(p) => Some(self.pools[p].dout),
        }
    }

    /// The pool that reads conv layer k's output, if any: in training, the layer's batch norm,
    /// activation and that pool are one op ([`Backend::bn_act_pool_train`]), and so are their
    /// backward passes ([`Backend::pool_act_bn_backward`]).
    fn pool_after(&self, k: usize) -> Option<usize> {
        self.pools.iter().position(|p| p.src == Src::Conv(k))
    }

    fn features_src(&self) -> Src {
        Src::Pool(self.pools.len() - 1)
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

    /// A batch norm over `shape` with the γ, β of `ids` and the statistics `stats`.
    fn batch_norm(&self, shape: ChannelShape, ids: ParamIds, stats: BnStats) -> BatchNorm {
        BatchNorm {
            shape,
            params: BnParams {
                gamma: self.value(ids.gamma),
                beta: self.value(ids.beta),
            },
            stats,
        }
    }

    /// Conv layer `c`'s batch norm and activation over a batch of `batch`.
    fn bn_act(&self, c: &ConvBufs, batch: usize) -> BnAct {
        let l = c.layer;
        let shape = ChannelShape {
            batch,
            channels: l.cout,
            hw: l.h * l.w,
        };
        BnAct {
            bn: self.batch_norm(shape, c.params, c.stats),
            act: self.config.activation(),
        }
    }

    /// The output batch norm over a batch of `batch`.
    fn dense_bn(&self, batch: usize) -> BatchNorm {
        let shape = ChannelShape {
            batch,
            channels: CLASSES,
            hw: 1,
        };
        self.batch_norm(shape, self.dense.params, self.dense.stats)
    }

    fn dense_shape(&self, batch: usize) -> DenseShape {
        DenseShape {
            batch,
            inputs: self.config.features(),
            outputs: CLASSES,
        }
    }

    /// Records the forward pass over `batch` samples already in the input buffer: scores
    /// [batch, CLASSES] in the scores buffer.
    pub fn forward<B: Backend>(&self, b: &mut B, batch: usize, mode: Mode) {
        let train = mode == Mode::Train;
        let act = self.config.activation();
        let wq_mode = self.config.weight_quant();
        for stage in &self.stages {
            match *stage {
                Stage::Pool(p) => {
                    let p = &self.pools[p];
                    if train && matches!(p.src, Src::Conv(_)) {
                        continue; // pooled with its conv's batch norm
                    }
                    b.pool_forward(p.shape(batch), self.buf(p.src), p.out);
                }
                Stage::Conv(k) => {
                    let c = &self.convs[k];
                    let l = c.layer;
                    let s = ConvShape {
                        batch,
                        cin: l.cin,
                        cout: l.cout,
                        h: l.h,
                        w: l.w,
                    };
                    if wq_mode != WeightQuant::None {
                        b.weight_quantize(wq_mode, self.value(c.params.weight), c.absmax, c.wq);
                    }
                    // a binary layer fed by binary activations: ±1 inputs and weights
                    let binary = wq_mode == WeightQuant::Binary
                        && !matches!(c.src, Src::Input)
                        && matches!(act, ActQuant::Quantized { bits: 0, .. });
                    let (x, bias, z) = (self.buf(c.src), self.value(c.params.bias), c.tensors.z);
                    if binary {
                        b.conv_forward_binary(s, x, c.wq, bias, z);
                    } else {
                        b.conv_forward(s, x, c.wq, bias, z);
                    }
                    let l = self.bn_act(c, batch);
                    match (mode, self.pool_after(k)) {
                        (Mode::Train, Some(p)) => {
                            let p = &self.pools[p];
                            let pooled = Pooled {
                                shape: p.shape(batch),
                                out: p.out,
                                window: p.window,
                            };
                            b.bn_act_pool_train(l, c.tensors, pooled);
                        }
                        (Mode::Train, None) => b.bn_act_train(l, c.tensors),
                        (Mode::Eval, _) => b.bn_act_eval(l, c.tensors),
                    }
                }
            }
        }
        let d = &self.dense;
        b.dense_forward(
            self.dense_shape(batch),
            self.buf(self.features_src()),
            self.value(d.params.weight),
            self.value(d.params.bias),
            d.y,
        );
        match mode {
            Mode::Train => b.bn_train(self.dense_bn(batch), d.y, self.scores),
            Mode::Eval => b.bn_eval(self.dense_bn(batch), d.y, self.scores),
        }
    }

    /// Records the backward pass of the batch whose forward pass (training mode) was recorded
    /// last, from the loss gradient in the dscores buffer.
    fn backward<B: Backend>(&self, b: &mut B, batch: usize) {
        let d = &self.dense;
        let grads = BnGrads {
            dgamma: self.grad(d.params.gamma),
            dbeta: self.grad(d.params.beta),
        };
        let bn = self.dense_bn(batch);
        b.bn_backward(bn, d.y, self.dscores, d.dy, grads);
        let ds = self.dense_shape(batch);
        let feats = self.buf(self.features_src());
        b.dense_grad_weight(ds, d.dy, feats, self.grad(d.params.weight));
        b.channel_sum(bn.shape, d.dy, self.grad(d.params.bias));
        let fgrad = self
            .grad_buf(self.features_src())
            .expect("features come from a pool");
        b.dense_grad_input(ds, d.dy, self.value(d.params.weight), fgrad);
        for stage in self.stages.iter().rev() {
            match *stage {
                Stage::Pool(p) => {
                    let p = &self.pools[p];
                    if matches!(p.src, Src::Conv(_)) {
                        continue; // with its conv's batch norm, below
                    }
                    if let Some(g) = self.grad_buf(p.src) {
                        b.pool_backward(p.shape(batch), self.buf(p.src), p.dout, g);
                    }
                }
                Stage::Conv(k) => {
                    let c = &self.convs[k];
                    let l = self.bn_act(c, batch);
                    let dbias = self.grad(c.params.bias);
                    if let Some(p) = self.pool_after(k) {
                        let p = &self.pools[p];
                        let pooled = Pooled {
                            shape: p.shape(batch),
                            out: p.out,
                            window: p.window,
                        };
                        b.pool_act_bn_backward(l, c.tensors, pooled, p.dout, c.grads, dbias);
                    } else {
                        b.act_bn_backward(l, c.tensors, c.grads);
                        b.channel_sum(l.bn.shape, c.grads.dz, dbias);
                    }
                    let cl = c.layer;
                    let s = ConvShape {
                        batch,
                        cin: cl.cin,
                        cout: cl.cout,
                        h: cl.h,
                        w: cl.w,
                    };
                    let dz = c.grads.dz;
                    b.conv_grad_weight(s, dz, self.buf(c.src), self.grad(c.params.weight));
                    if let Some(g) = self.grad_buf(c.src) {
                        b.conv_grad_input(s, dz, c.wq, g);
                    }
                }
            }
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
        let n = indices.len();
        if n == 0 || n > self.max_batch {
            return Err(Error::Shape(format!(
                "a batch takes 1 to {} images, got {n}",
                self.max_batch
            )));
        }
        b.write_u32(self.indices, indices);
        b.gather_batch(images, self.indices, n, self.x, self.labels);
        Ok(n)
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
        let batch = self.load_batch(b, images, indices)?;
        let scalars = match update {
            Update::Adam { lr, t } => StepScalars::adam(lr, t, self.adam),
            Update::Sgd { lr, momentum } => StepScalars::sgd(lr, momentum),
        };
        b.write_f32(self.step_scalars, &scalars.to_vec());
        self.forward(b, batch, Mode::Train);
        b.loss(
            batch,
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
        b.loss(batch, self.scores, self.labels, None, self.acc);
        Ok(())
    }

    /// Scores [n, 10] of n images x [n, c, h, w] (already scaled to [−1, 1]), evaluation mode;
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

    /// Scores [n, 10] (evaluation mode) for any number n of images of u8 pixels [n, c, h, w] as
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
        let mut scores = Vec::with_capacity(pixels.len() / len * CLASSES);
        for chunk in pixels.chunks(len * self.max_batch) {
            let x: Vec<f32> = chunk.iter().map(|&p| scale_pixel(p)).collect();
            scores.extend(self.predict(b, &x).await?);
        }
        Ok(scores)
    }

    /// Scores [n, 10] of the n images already in the input buffer, evaluation mode.
    pub async fn eval_scores<B: Backend>(&self, b: &mut B, n: usize) -> Result<Vec<f32>, Error> {
        self.forward(b, n, Mode::Eval);
        let s = b.read_f32(self.scores).await?;
        Ok(s[..n * CLASSES].to_vec())
    }

    /// Each conv layer's quantized activations `[n, cout, h, w]` from the evaluation-mode
    /// forward pass recorded last (over n ≤ `max_batch` images), named `conv{k} ({block})`. (A
    /// training forward may leave a pooled layer's activations unwritten: see
    /// [`Backend::bn_act_pool_train`].)
    pub async fn activations<B: Backend>(
        &self,
        b: &mut B,
        n: usize,
    ) -> Result<Vec<(String, Vec<f32>)>, Error> {
        let mut out = Vec::with_capacity(self.convs.len());
        for (k, c) in self.convs.iter().enumerate() {
            let l = c.layer;
            let v = b.read_f32(c.tensors.a).await?;
            out.push((
                format!("conv{k} ({})", l.block),
                v[..n * l.cout * l.h * l.w].to_vec(),
            ));
        }
        Ok(out)
    }

    /// The first conv layer's float weights `[cout, cin, 3, 3]`.
    pub async fn first_layer_weights<B: Backend>(&self, b: &mut B) -> Result<Vec<f32>, Error> {
        let c = self
            .convs
            .first()
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
