//! The seed's VGG-like network over any backend: blocks A, B, C of (conv 3×3 → batch norm →
//! activation) × layers, each block followed by max pool 2×2; then dense(10) → batch norm.
//!
//! The model owns every buffer it needs for a batch of `max_batch` (parameters, optimizer state,
//! activations, gradients), allocated once; a training step only records ops on them.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::backend::*;
use crate::ops::data::scale_pixel;
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

impl Serialize for Nonlinearity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Nonlinearity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Nonlinearity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "relu" => Ok(Nonlinearity::Relu),
            "hardtanh" => Ok(Nonlinearity::Hardtanh),
            other => Err(format!(
                "unknown nonlinearity '{other}' (use relu or hardtanh)"
            )),
        }
    }
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

/// A trainable tensor with its gradient and optimizer state.
#[derive(Clone, Debug)]
pub struct Param {
    /// Its name in the saved model, e.g. `conv0.weight`.
    pub name: String,
    /// Its shape, e.g. [cout, cin, 3, 3] for a conv weight.
    pub shape: Vec<usize>,
    /// The values (f32).
    pub value: Buf,
    /// The gradient of the loss, same shape.
    pub grad: Buf,
    /// Adam's first moment, or SGD's momentum.
    pub m: Buf,
    /// Adam's second moment.
    pub v: Buf,
    /// How the optimizer updates it.
    pub rule: UpdateRule,
}

/// Buffers of one conv layer.
#[derive(Clone, Debug)]
struct ConvBufs {
    layer: ConvLayer,
    w: usize, // index into params
    b: usize,
    gamma: usize,
    beta: usize,
    wq: Buf,
    absmax: Buf,
    z: Buf,
    stats: Buf,
    running: Buf,
    u: Buf,
    a: Buf,
    da: Buf,
    du: Buf,
    dz: Buf,
    src: Src,
}

/// A max pool at the end of a block.
#[derive(Clone, Debug)]
struct PoolBufs {
    src: Src,
    channels: usize,
    h: usize,
    w: usize,
    out: Buf,
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

/// The network as a sequence of stages (conv layers and pools), in forward order.
#[derive(Clone, Copy, Debug)]
enum Stage {
    Conv(usize),
    Pool(usize),
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
    x: Buf,
    /// The batch's labels, u32 `[max_batch]`.
    pub labels: Buf,
    /// Indices of the batch's images in the data set on the device, u32 `[max_batch]`.
    pub indices: Buf,
    dense: (usize, usize, usize, usize), // params: W, b, gamma, beta
    dense_y: Buf,
    out_stats: Buf,
    out_running: Buf,
    scores: Buf,
    dscores: Buf,
    ddense_y: Buf,
    /// The loss kernel's running sums over an epoch: [`LossAcc`] layout.
    pub acc: Buf,
    /// The optimizer's per-step scalars, f32 [[`StepScalars::LEN`]].
    pub step_scalars: Buf,
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
                    value,
                    grad: b.alloc(n, Dtype::F32),
                    m: b.alloc(n, Dtype::F32),
                    v: b.alloc(n, Dtype::F32),
                    rule,
                };
                params.push(p);
                (params.len() - 1, value)
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
                let (w, w_value) = add_param(
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
                let gamma = add_param(
                    b,
                    format!("bn{k}.gamma"),
                    vec![l.cout],
                    vec![1.0; l.cout],
                    UpdateRule::Plain,
                )
                .0;
                let beta = add_param(
                    b,
                    format!("bn{k}.beta"),
                    vec![l.cout],
                    vec![0.0; l.cout],
                    UpdateRule::Plain,
                )
                .0;
                let run = new_running(b, l.cout);
                running.push((format!("bn{k}"), run));
                let n = max_batch * l.cout * l.h * l.w;
                let wq = if wq_mode == WeightQuant::None {
                    w_value
                } else {
                    b.alloc(l.cout * l.cin * 9, Dtype::F32)
                };
                convs.push(ConvBufs {
                    layer: l,
                    w,
                    b: bi,
                    gamma,
                    beta,
                    wq,
                    absmax: b.alloc(1, Dtype::F32),
                    z: act(b, n),
                    stats: b.alloc(2 * l.cout, Dtype::F32),
                    running: run,
                    u: act(b, n),
                    a: act(b, n),
                    da: act(b, n),
                    du: act(b, n),
                    dz: act(b, n),
                    src: cur,
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
        let model = Model {
            max_batch,
            params,
            running,
            pools,
            stages,
            x,
            labels: b.alloc(max_batch, Dtype::U32),
            indices: b.alloc(max_batch, Dtype::U32),
            dense: (dw, db, og, ob),
            dense_y: act(b, nb),
            out_stats: b.alloc(2 * CLASSES, Dtype::F32),
            out_running,
            scores: act(b, nb),
            dscores: act(b, nb),
            ddense_y: act(b, nb),
            acc: b.alloc(LossAcc::LEN, Dtype::F32),
            step_scalars: b.alloc(StepScalars::LEN, Dtype::F32),
            adam: AdamConfig::default(),
            convs,
            config,
        };
        Ok(model)
    }

    fn buf(&self, s: Src) -> Buf {
        match s {
            Src::Input => self.x,
            Src::Conv(k) => self.convs[k].a,
            Src::Pool(p) => self.pools[p].out,
        }
    }

    /// Where the gradient for a tensor goes (None for the input).
    fn grad_buf(&self, s: Src) -> Option<Buf> {
        match s {
            Src::Input => None,
            Src::Conv(k) => Some(self.convs[k].da),
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

    /// Records the forward pass over `batch` samples already in the input buffer: scores in
    /// `self.scores`. Training mode uses and updates batch statistics.
    pub fn forward<B: Backend>(&self, b: &mut B, batch: usize, train: bool) {
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
                        b.weight_quantize(wq_mode, self.params[c.w].value, c.absmax, c.wq);
                    }
                    // a binary layer fed by binary activations: ±1 inputs and weights
                    let binary = wq_mode == WeightQuant::Binary
                        && !matches!(c.src, Src::Input)
                        && matches!(act, ActQuant::Quantized { bits: 0, .. });
                    if binary {
                        b.conv_forward_binary(
                            s,
                            self.buf(c.src),
                            c.wq,
                            self.params[c.b].value,
                            c.z,
                        );
                    } else {
                        b.conv_forward(s, self.buf(c.src), c.wq, self.params[c.b].value, c.z);
                    }
                    let cs = ChannelShape {
                        batch,
                        channels: l.cout,
                        hw: l.h * l.w,
                    };
                    let (g, be) = (self.params[c.gamma].value, self.params[c.beta].value);
                    if let (true, Some(p)) = (train, self.pool_after(k)) {
                        let p = &self.pools[p];
                        b.bn_act_pool_train(
                            cs,
                            p.shape(batch),
                            act,
                            c.z,
                            g,
                            be,
                            c.u,
                            c.a,
                            p.out,
                            p.window,
                            c.stats,
                            c.running,
                        );
                    } else if train {
                        b.bn_act_train(cs, act, c.z, g, be, c.u, c.a, c.stats, c.running);
                    } else {
                        b.bn_act_eval(cs, act, c.z, g, be, c.running, c.u, c.a);
                    }
                }
            }
        }
        let (dw, db, og, ob) = self.dense;
        let ds = DenseShape {
            batch,
            inputs: self.config.features(),
            outputs: CLASSES,
        };
        b.dense_forward(
            ds,
            self.buf(self.features_src()),
            self.params[dw].value,
            self.params[db].value,
            self.dense_y,
        );
        let cs = ChannelShape {
            batch,
            channels: CLASSES,
            hw: 1,
        };
        if train {
            b.bn_train(
                cs,
                self.dense_y,
                self.params[og].value,
                self.params[ob].value,
                self.scores,
                self.out_stats,
                self.out_running,
            );
        } else {
            b.bn_eval(
                cs,
                self.dense_y,
                self.params[og].value,
                self.params[ob].value,
                self.out_running,
                self.scores,
            );
        }
    }

    /// Records the backward pass of the batch whose forward pass (training mode) was recorded
    /// last, from the loss gradient in `self.dscores`.
    pub fn backward<B: Backend>(&self, b: &mut B, batch: usize) {
        let act = self.config.activation();
        let (dw, db, og, ob) = self.dense;
        let cs = ChannelShape {
            batch,
            channels: CLASSES,
            hw: 1,
        };
        b.bn_backward(
            cs,
            self.dscores,
            self.dense_y,
            self.params[og].value,
            self.out_stats,
            self.ddense_y,
            self.params[og].grad,
            self.params[ob].grad,
        );
        let ds = DenseShape {
            batch,
            inputs: self.config.features(),
            outputs: CLASSES,
        };
        let feats = self.buf(self.features_src());
        b.dense_grad_weight(ds, self.ddense_y, feats, self.params[dw].grad);
        b.channel_sum(cs, self.ddense_y, self.params[db].grad);
        let fgrad = self
            .grad_buf(self.features_src())
            .expect("features come from a pool");
        b.dense_grad_input(ds, self.ddense_y, self.params[dw].value, fgrad);
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
                    let l = c.layer;
                    let cs = ChannelShape {
                        batch,
                        channels: l.cout,
                        hw: l.h * l.w,
                    };
                    let (g, be) = (self.params[c.gamma].value, self.params[c.beta].value);
                    let (dg, dbe) = (self.params[c.gamma].grad, self.params[c.beta].grad);
                    if let Some(p) = self.pool_after(k) {
                        let p = &self.pools[p];
                        b.pool_act_bn_backward(
                            cs,
                            p.shape(batch),
                            act,
                            p.dout,
                            c.a,
                            p.window,
                            c.z,
                            c.u,
                            c.da,
                            c.du,
                            g,
                            be,
                            c.stats,
                            c.dz,
                            dg,
                            dbe,
                            self.params[c.b].grad,
                        );
                    } else {
                        b.act_bn_backward(
                            cs, act, c.da, c.z, c.u, c.du, g, be, c.stats, c.dz, dg, dbe,
                        );
                        b.channel_sum(cs, c.dz, self.params[c.b].grad);
                    }
                    let s = ConvShape {
                        batch,
                        cin: l.cin,
                        cout: l.cout,
                        h: l.h,
                        w: l.w,
                    };
                    b.conv_grad_weight(s, c.dz, self.buf(c.src), self.params[c.w].grad);
                    if let Some(g) = self.grad_buf(c.src) {
                        b.conv_grad_input(s, c.dz, c.wq, g);
                    }
                }
            }
        }
    }

    /// Records one optimizer update of every parameter; the step scalars must be written first.
    pub fn update<B: Backend>(&self, b: &mut B, sgd: bool) {
        for p in &self.params {
            if sgd {
                b.sgd(p.rule, p.value, p.grad, p.m, self.step_scalars);
            } else {
                b.adam(
                    p.rule,
                    self.adam,
                    p.value,
                    p.grad,
                    p.m,
                    p.v,
                    self.step_scalars,
                );
            }
        }
    }

    /// One training step on the batch in the input buffer: forward, loss, backward, update.
    pub fn train_step<B: Backend>(&self, b: &mut B, batch: usize, sgd: bool) {
        self.forward(b, batch, true);
        b.loss(
            batch,
            self.scores,
            self.labels,
            Some(self.dscores),
            self.acc,
        );
        self.backward(b, batch);
        self.update(b, sgd);
    }

    /// Loss and error of the batch in the input buffer (evaluation mode) added to `acc`.
    pub fn eval_step<B: Backend>(&self, b: &mut B, batch: usize) {
        self.forward(b, batch, false);
        b.loss(batch, self.scores, self.labels, None, self.acc);
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
        self.forward(b, n, false);
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
            let v = b.read_f32(c.a).await?;
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
        b.read_f32(self.params[c.w].value).await
    }

    /// Resets the optimizer state (fine-tuning restarts it).
    pub fn reset_optimizer<B: Backend>(&self, b: &mut B) {
        for p in &self.params {
            b.fill_zero(p.m);
            b.fill_zero(p.v);
        }
    }

    /// Named tensors of the saved model: parameters and running statistics split into
    /// `.mean` / `.inv_std`, in network order.
    pub async fn export<B: Backend>(
        &self,
        b: &mut B,
    ) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>, Error> {
        let mut out = Vec::new();
        let mut run_i = 0;
        for p in &self.params {
            out.push((p.name.clone(), p.shape.clone(), b.read_f32(p.value).await?));
            if p.name.ends_with(".beta") {
                let (name, buf) = &self.running[run_i];
                run_i += 1;
                let v = b.read_f32(*buf).await?;
                let c = v.len() / 2;
                out.push((format!("{name}.mean"), vec![c], v[..c].to_vec()));
                out.push((format!("{name}.inv_std"), vec![c], v[c..].to_vec()));
            }
        }
        Ok(out)
    }

    /// Loads named tensors (as [`Model::export`] writes them); refuses the first missing or
    /// mis-shaped one.
    pub fn import<B: Backend>(
        &self,
        b: &mut B,
        tensors: &[(String, Vec<usize>, Vec<f32>)],
    ) -> Result<(), Error> {
        let find = |name: &str, shape: &[usize]| -> Result<&Vec<f32>, Error> {
            let t = tensors.iter().find(|t| t.0 == name).ok_or_else(|| {
                Error::Model(format!(
                    "the model file has no tensor '{name}' (another architecture?)"
                ))
            })?;
            if t.1 != shape {
                return Err(Error::Model(format!(
                    "tensor '{name}' has shape {:?}, this network needs {:?}",
                    t.1, shape
                )));
            }
            Ok(&t.2)
        };
        for p in &self.params {
            let v = find(&p.name, &p.shape)?;
            b.write_f32(p.value, v);
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

/// One row of the network summary: a layer (input, conv, pool or dense).
#[derive(Clone, Debug)]
pub struct SummaryRow {
    /// The layer, e.g. `conv0 (A) + bn + act`.
    pub name: String,
    /// Output shape [c, h, w].
    pub shape: [usize; 3],
    /// Trainable parameters (weights, bias, batch norm).
    pub params: usize,
    /// Bits per weight (32 for float, 0 for layers without weights).
    pub weight_bits: usize,
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
    /// Parameter memory at the chosen bit width (biases, batch norm and dense stay float32).
    pub weight_bytes: usize,
    /// Parameter memory all in float32.
    pub float_bytes: usize,
    /// Multiply-accumulates per image.
    pub macs: usize,
    /// Energy per inference in µJ ([`crate::energy`], the built-in 45 nm profile).
    pub energy_uj: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<24} {:>14} {:>10} {:>6} {:>12}",
            "layer", "output", "params", "bits", "MACs"
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
                "{:<24} {:>14} {:>10} {:>6} {:>12}",
                r.name, shape, r.params, bits, r.macs
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

/// What a network's buffers take for a batch, worked out from the configuration alone (the same
/// buffers [`Model::new`] allocates), so a configuration too large for the machine is refused
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
    /// The buffers of [`Model::new`] for a batch of `batch`, as (what, f32 elements).
    fn buffers(&self, batch: usize) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let [c0, h0, w0] = self.input;
        out.push(("the input batch".to_string(), batch * c0 * h0 * w0));
        let quantized = self.weight_quant() != WeightQuant::None;
        let layers = self.conv_layers();
        for (k, l) in layers.iter().enumerate() {
            let nw = l.cout * l.cin * 9;
            // value, gradient, two optimizer moments (+ the quantized copy)
            out.push((
                format!("conv{k}'s weights"),
                nw * if quantized { 5 } else { 4 },
            ));
            out.push((format!("conv{k}'s biases and batch norm"), 16 * l.cout + 1));
            let act = batch * l.cout * l.h * l.w;
            let what = format!(
                "conv{k}'s activations ({batch} × {}×{}×{} floats)",
                l.cout, l.h, l.w
            );
            // z, u, a and their three gradients
            for _ in 0..6 {
                out.push((what.clone(), act));
            }
        }
        // pools: output and its gradient, after each block (empty blocks pool the input)
        let (mut c, mut h, mut w) = (c0, h0, w0);
        for &(layers, filters) in &self.blocks {
            if layers > 0 {
                c = filters;
            }
            h /= 2;
            w /= 2;
            for _ in 0..2 {
                out.push((
                    format!("a pool's output ({batch} × {c}×{h}×{w} floats)"),
                    batch * c * h * w,
                ));
            }
            out.push((
                format!("a pool's window maxima ({batch} × {c}×{h}×{w} bytes)"),
                (batch * c * h * w).div_ceil(4),
            ));
        }
        let f = self.features();
        out.push((
            "the dense layer".to_string(),
            4 * f * CLASSES + 14 * CLASSES,
        ));
        for _ in 0..4 {
            out.push(("the scores".to_string(), batch * CLASSES));
        }
        out.push(("labels and indices".to_string(), 2 * batch));
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

    /// Per-layer rows and totals (parameters, memory at the bit width, MACs per image), from the
    /// configuration alone.
    pub fn summary(&self) -> Summary {
        let bits = self.weight_quant().storage_bits() as usize;
        let mut rows = Vec::new();
        let [c, h, w] = self.input;
        rows.push(SummaryRow {
            name: "input".into(),
            shape: [c, h, w],
            params: 0,
            weight_bits: 0,
            macs: 0,
        });
        let mut weights_bits_total = 0usize;
        let mut weights_total = 0usize;
        let (mut cur_c, mut cur_h, mut cur_w) = (c, h, w);
        let mut layers = self.conv_layers().into_iter().enumerate();
        for &(n, _) in &self.blocks {
            for (k, l) in layers.by_ref().take(n) {
                let nw = l.cout * l.cin * 9;
                weights_bits_total += nw * bits + 4 * l.cout * 32;
                weights_total += nw + 4 * l.cout;
                rows.push(SummaryRow {
                    name: format!("conv{k} ({}) + bn + act", l.block),
                    shape: [l.cout, l.h, l.w],
                    params: nw + 4 * l.cout,
                    weight_bits: bits,
                    macs: nw * l.h * l.w,
                });
                cur_c = l.cout;
            }
            (cur_h, cur_w) = (cur_h / 2, cur_w / 2);
            rows.push(SummaryRow {
                name: "maxpool 2×2".into(),
                shape: [cur_c, cur_h, cur_w],
                params: 0,
                weight_bits: 0,
                macs: 0,
            });
        }
        let f = self.features();
        weights_bits_total += (f * CLASSES + 3 * CLASSES) * 32;
        weights_total += f * CLASSES + 3 * CLASSES;
        rows.push(SummaryRow {
            name: "dense + bn".into(),
            shape: [CLASSES, 1, 1],
            params: f * CLASSES + 3 * CLASSES,
            weight_bits: 32,
            macs: f * CLASSES,
        });
        let macs = rows.iter().map(|r| r.macs).sum();
        Summary {
            rows,
            params: weights_total,
            weight_bytes: weights_bits_total.div_ceil(8),
            float_bytes: weights_total * 4,
            macs,
            energy_uj: crate::energy::estimate(self, &crate::energy::EnergyProfile::default())
                .total_uj(),
        }
    }
}
