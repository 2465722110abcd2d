//! The one interface both backends implement: buffers named by handles, and every op of the
//! seed's network as a call that reads some buffers and writes others.
//!
//! The CPU backend runs each call at once; the GPU backend records it and submits everything
//! recorded at the next `flush` (or read), so one training step is one queue submit. Outputs must
//! be distinct buffers from inputs. Shapes are in the structs below; tensors are row-major, images
//! NCHW.

use std::future::Future;

use crate::quant::{ActQuant, WeightQuant};
use crate::Error;

/// Element type of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// 32-bit float.
    F32,
    /// 32-bit unsigned integer.
    U32,
}

/// A buffer owned by a backend: a handle, cheap to copy. `len` counts elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Buf {
    /// The backend's index of the buffer.
    pub id: u32,
    /// Length in elements.
    pub len: usize,
    /// Element type.
    pub dtype: Dtype,
}

/// Convolution with bias: x [batch, cin, h, w] → y [batch, cout, out_h, out_w]; weights [cout,
/// cin, kernel, kernel], bias [cout]. out_h = (h + 2·pad − kernel) / stride + 1 (floor), out_w
/// likewise; zero padding. The seed's layers are [`ConvShape::SAME_3X3`]: kernel 3, stride 1,
/// pad 1, so out_h = h and out_w = w.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Input height in pixels.
    pub h: usize,
    /// Input width in pixels.
    pub w: usize,
    /// Side of the square kernel: 1, 3 or 5 in the networks qnn builds (any odd size computes).
    pub kernel: usize,
    /// Step between two outputs' windows, 1 or 2.
    pub stride: usize,
    /// Zero padding on each side: (kernel − 1)/2 for "same", 0 for "valid".
    pub pad: usize,
}

impl ConvShape {
    /// The seed's geometry (3×3, stride 1, pad 1) with an empty batch and no channels, for
    /// `ConvShape { batch, cin, cout, h, w, ..ConvShape::SAME_3X3 }`.
    pub const SAME_3X3: ConvShape = ConvShape {
        batch: 0,
        cin: 0,
        cout: 0,
        h: 0,
        w: 0,
        kernel: 3,
        stride: 1,
        pad: 1,
    };
    /// True for the seed's geometry, the one the fast paths (Winograd, XNOR) take.
    pub fn is_same_3x3(&self) -> bool {
        (self.kernel, self.stride, self.pad) == (3, 1, 1)
    }
    /// Output height: (h + 2·pad − kernel) / stride + 1, 0 when the kernel does not fit.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.pad)
            .checked_sub(self.kernel)
            .map_or(0, |d| d / self.stride.max(1) + 1)
    }
    /// Output width, as [`ConvShape::out_h`].
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.pad)
            .checked_sub(self.kernel)
            .map_or(0, |d| d / self.stride.max(1) + 1)
    }
    /// Taps of one filter per input channel: kernel².
    pub fn taps(&self) -> usize {
        self.kernel * self.kernel
    }
    /// Elements of x: batch·cin·h·w.
    pub fn x_len(&self) -> usize {
        self.batch * self.cin * self.h * self.w
    }
    /// Elements of y: batch·cout·out_h·out_w.
    pub fn y_len(&self) -> usize {
        self.batch * self.cout * self.out_h() * self.out_w()
    }
    /// Elements of the weights: cout·cin·kernel².
    pub fn w_len(&self) -> usize {
        self.cout * self.cin * self.taps()
    }
    /// Multiply-accumulates of one forward call.
    pub fn macs(&self) -> usize {
        self.y_len() * self.cin * self.taps()
    }
}

/// A tensor seen as [batch, channels, hw]: batch norm and per-channel sums reduce over batch and hw.
/// The dense layer's output is [batch, units, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChannelShape {
    /// Images in the batch.
    pub batch: usize,
    /// Channels (or dense units).
    pub channels: usize,
    /// Elements per channel per image: h·w (1 for a dense layer).
    pub hw: usize,
}

impl ChannelShape {
    /// Elements of the tensor: batch·channels·hw.
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.hw
    }
    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Dense layer: x [batch, inputs] → y [batch, outputs]; weights [outputs, inputs], bias [outputs].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DenseShape {
    /// Rows in the batch.
    pub batch: usize,
    /// Input features per row.
    pub inputs: usize,
    /// Output units per row.
    pub outputs: usize,
}

/// Loss over scores y [batch, classes] (one row of scores per image) and labels [batch].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LossShape {
    /// Rows (images) in the batch.
    pub batch: usize,
    /// Scores per row: the network's classes.
    pub classes: usize,
}

/// Max pool 2×2 stride 2 over x [batch·channels, h, w] → y [batch·channels, h/2, w/2] (floor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolShape {
    /// Planes pooled independently: batch·channels.
    pub planes: usize,
    /// Input height in pixels.
    pub h: usize,
    /// Input width in pixels.
    pub w: usize,
}

impl PoolShape {
    /// Output height: h/2 (floor).
    pub fn out_h(&self) -> usize {
        self.h / 2
    }
    /// Output width: w/2 (floor).
    pub fn out_w(&self) -> usize {
        self.w / 2
    }
    /// Elements of x: planes·h·w.
    pub fn x_len(&self) -> usize {
        self.planes * self.h * self.w
    }
    /// Elements of y: planes·out_h·out_w.
    pub fn y_len(&self) -> usize {
        self.planes * self.out_h() * self.out_w()
    }
}

/// A batch norm's learned scale and shift: γ and β, f32 [channels] each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnParams {
    /// γ, the scale.
    pub gamma: Buf,
    /// β, the shift.
    pub beta: Buf,
}

/// The gradients of [`BnParams`], f32 [channels] each; the backward passes write them (they are
/// not added to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnGrads {
    /// dγ.
    pub dgamma: Buf,
    /// dβ.
    pub dbeta: Buf,
}

/// Where a batch norm keeps its statistics: two f32 buffers of [2·channels], each laid out
/// [mean 0..C, inv_std C..2C].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnStats {
    /// The batch's own statistics (biased variance, eps 1e-4): written by the training forward,
    /// read by the backward.
    pub batch: Buf,
    /// The running statistics: moved toward the batch's by α = 0.1 in training; what the
    /// evaluation forward normalizes with.
    pub running: Buf,
}

/// One batch norm over a tensor seen as [batch, channels, hw]: its shape, parameters and
/// statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm {
    /// The tensor it normalizes (statistics per channel over batch and hw).
    pub shape: ChannelShape,
    /// γ and β.
    pub params: BnParams,
    /// Batch and running statistics.
    pub stats: BnStats,
}

/// A conv layer's batch norm followed by its activation: u = bn(z), a = act(u).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnAct {
    /// The batch norm.
    pub bn: BatchNorm,
    /// The activation (and its quantizer).
    pub act: ActQuant,
}

/// The tensors of a [`BnAct`], each f32 [batch, channels, h, w].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnActTensors {
    /// z: the batch norm's input (the conv's output).
    pub z: Buf,
    /// u = bn(z): the activation's input. A backend that fuses the two may leave it unwritten.
    pub u: Buf,
    /// a = act(u): the layer's output.
    pub a: Buf,
}

/// The gradients through a [`BnAct`]: f32 [batch, channels, h, w] each, but `params`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnActGrads {
    /// da: the gradient with respect to a — the backward's input, or scratch where the layer is
    /// pooled (the pooled gradient is routed into it).
    pub da: Buf,
    /// du: scratch for the gradient with respect to u, where a backend does not fuse.
    pub du: Buf,
    /// dz: the gradient with respect to z — written.
    pub dz: Buf,
    /// dγ and dβ — written.
    pub params: BnGrads,
}

/// The 2×2 max pool that follows the last [`BnAct`] of a block, as the fused ops take it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pooled {
    /// The pool over the layer's output a.
    pub shape: PoolShape,
    /// The pooled output, f32 [batch·channels, h/2, w/2].
    pub out: Buf,
    /// U32, ⌈pooled values / 4⌉ words, a byte per pooled value: which of its window's four
    /// inputs was the maximum, where a backend keeps that instead of a.
    pub window: Buf,
}

/// A trainable tensor and its optimizer state on a backend, all f32 of the tensor's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamTensors {
    /// The values, updated in place.
    pub value: Buf,
    /// The gradient of the loss.
    pub grad: Buf,
    /// Adam's first moment, or SGD's velocity.
    pub m: Buf,
    /// Adam's second moment (unused by SGD).
    pub v: Buf,
}

/// How an optimizer step treats a parameter tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateRule {
    /// p ← p_new
    Plain,
    /// BinaryNet's rule for quantized weights: W ← clip(W + scale·(W_new − W), −1, 1).
    ScaledClip {
        /// Factor on the step: BinaryNet's per-layer learning-rate scale (1 / Glorot bound).
        scale: f32,
    },
}

/// The optimizer's constant hyper-parameters; the learning rate lives in a device buffer
/// (see [`StepScalars`]) so changing it needs no new pipeline or bind group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Decay of the first-moment (mean) estimate.
    pub beta1: f32,
    /// Decay of the second-moment (uncentred variance) estimate.
    pub beta2: f32,
    /// Added to √v in the denominator.
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Per-step scalars the update kernels read from a small f32 device buffer:
/// `[adam_step, lr, momentum, 0]` where adam_step = lr·√(1−β2^t)/(1−β1^t) (Lasagne's form).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepScalars {
    /// Adam's bias-corrected step size lr·√(1−β2^t)/(1−β1^t).
    pub adam_step: f32,
    /// Learning rate.
    pub lr: f32,
    /// SGD momentum μ (0 for Adam).
    pub momentum: f32,
}

impl StepScalars {
    /// Length in f32 of the device buffer.
    pub const LEN: usize = 4;
    /// Scalars for Adam step `t` (1-based) at learning rate `lr`.
    pub fn adam(lr: f32, t: u64, cfg: AdamConfig) -> Self {
        let t = t as i32;
        let b1 = (cfg.beta1 as f64).powi(t);
        let b2 = (cfg.beta2 as f64).powi(t);
        let adam_step = (lr as f64 * (1.0 - b2).sqrt() / (1.0 - b1)) as f32;
        Self {
            adam_step,
            lr,
            momentum: 0.0,
        }
    }
    /// Scalars for SGD with momentum.
    pub fn sgd(lr: f32, momentum: f32) -> Self {
        Self {
            adam_step: 0.0,
            lr,
            momentum,
        }
    }
    /// The buffer's contents: `[adam_step, lr, momentum, 0]`.
    pub fn to_vec(self) -> [f32; 4] {
        [self.adam_step, self.lr, self.momentum, 0.0]
    }
}

/// A labelled image set held by a backend: u8 pixels [count, c, h, w], labels u32 [count].
/// The GPU keeps the pixels in shards no larger than the device's storage-binding limit.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// Number of images.
    pub count: usize,
    /// Channels per image.
    pub c: usize,
    /// Image height in pixels.
    pub h: usize,
    /// Image width in pixels.
    pub w: usize,
    /// The pixels, in consecutive runs of images.
    pub shards: Vec<Shard>,
    /// Labels: u32, one per image.
    pub labels: Buf,
}

/// A run of an [`ImageSet`]'s images in one buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The pixels, u8 [count, c, h, w] packed four to a u32 word.
    pub pixels: Buf,
    /// The set's index of the first image here.
    pub first: usize,
    /// Images here.
    pub count: usize,
}

impl ImageSet {
    /// Bytes (pixels) per image: c·h·w.
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// A random crop's shift of one training image (docs/spec.md §7): the gathered image is
/// x(ch, i, j) = image(ch, i + dy, j + dx), reading pixel 0 (x = −1 once scaled) outside the
/// image — CIFAR's pad-then-crop with pad p when dy and dx lie in [−p, p]. A flipped image is
/// flipped first, then shifted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Shift {
    /// Rows: the image moves up by `dy` (row i reads row i + dy).
    pub dy: i32,
    /// Columns: the image moves left by `dx` (column j reads column j + dx).
    pub dx: i32,
}

impl Shift {
    /// As the gather reads it from the indices buffer: dy in the high 16 bits, dx in the low 16,
    /// each two's complement (shifts of up to ±32767).
    pub fn pack(self) -> u32 {
        ((self.dy as i16 as u16 as u32) << 16) | self.dx as i16 as u16 as u32
    }

    /// The shift [`Shift::pack`] packed.
    pub fn unpack(v: u32) -> Shift {
        Shift {
            dy: (v >> 16) as u16 as i16 as i32,
            dx: v as u16 as i16 as i32,
        }
    }
}

/// The images a gather assembles. `indices` (u32) holds `batch` image indices (an index ≥ the
/// set's count is the left-right flip of image index − count) and, when `shifted`, right after
/// them `batch` packed [`Shift`]s, one per image ([`Shift::pack`]): one buffer, written once per
/// step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchIndices {
    /// The indices, then (when `shifted`) the shifts: at least `batch` (`2·batch`) u32s.
    pub indices: Buf,
    /// Images in the batch.
    pub batch: usize,
    /// The shifts follow the indices; else no image is shifted.
    pub shifted: bool,
}

/// The family of ops a kernel belongs to, for the share of a training step each takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// The convolution's forward pass.
    ConvForward,
    /// The convolution's input gradient.
    ConvGradInput,
    /// The convolution's weight gradient, its slice sum included.
    ConvGradWeight,
    /// Batch norm forward and backward, and the per-channel sums of the bias gradients.
    BatchNorm,
    /// Batch norm fused with the activation (and the pool), as the CPU backend runs it.
    BatchNormAct,
    /// The activation and weight quantizers (and the weights' max |w|).
    Quantizers,
    /// Max pooling and global average pooling.
    Pooling,
    /// Adam and SGD.
    Optimizer,
    /// Batch assembly on the device.
    Data,
    /// The loss and its gradient.
    Loss,
    /// The dense layer.
    Dense,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 11] = [
        Family::ConvForward,
        Family::ConvGradInput,
        Family::ConvGradWeight,
        Family::BatchNorm,
        Family::BatchNormAct,
        Family::Quantizers,
        Family::Pooling,
        Family::Optimizer,
        Family::Data,
        Family::Loss,
        Family::Dense,
    ];

    /// The family's name in profiles (`qnn bench train` prints it, and docs quote it).
    pub const fn label(self) -> &'static str {
        match self {
            Family::ConvForward => "conv forward",
            Family::ConvGradInput => "conv grad input",
            Family::ConvGradWeight => "conv grad weight",
            Family::BatchNorm => "batch norm",
            Family::BatchNormAct => "batch norm + act",
            Family::Quantizers => "quantizers",
            Family::Pooling => "pooling",
            Family::Optimizer => "optimizer",
            Family::Data => "data",
            Family::Loss => "loss",
            Family::Dense => "dense",
        }
    }
}

/// The time one kernel (GPU) or op (CPU) took, while profiling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelTime {
    /// What ran: the kernel's name, or the CPU op's.
    pub name: &'static str,
    /// Its family.
    pub family: Family,
    /// Seconds: GPU time from timestamp queries, or the CPU op's wall time.
    pub seconds: f64,
}

/// The seconds of each op family in `samples`, added in the samples' order, the dearest family
/// first (`qnn bench train`'s shares and the page's profile).
pub fn family_seconds(samples: &[KernelTime]) -> Vec<(Family, f64)> {
    let mut families: Vec<(Family, f64)> = Vec::new();
    for s in samples {
        match families.iter_mut().find(|f| f.0 == s.family) {
            Some(f) => f.1 += s.seconds,
            None => families.push((s.family, s.seconds)),
        }
    }
    families.sort_by(|a, b| b.1.total_cmp(&a.1));
    families
}

/// How much work the device was given: dispatches recorded and queue submits made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Queue submits made.
    pub submits: u64,
}

/// Classes a network scores unless its configuration says otherwise (MNIST and CIFAR-10 have
/// ten): the output layer's units and the loss's scores per image ([`LossShape`]).
pub const DEFAULT_CLASSES: usize = 10;
/// Fewest classes a network or data set may have.
pub const MIN_CLASSES: usize = 2;
/// Most classes a network or data set may have.
pub const MAX_CLASSES: usize = 1000;

/// The running sums the loss kernel keeps on the device, one f32 buffer of [`LossAcc::LEN`]:
/// `[loss sum, wrong count, calls, first bad call, bad rows]`. A row is bad when one of its
/// scores, or its loss, is NaN or infinite; `first bad call` is the 1-based number of the first
/// call (training step) that saw one, 0 while none has. All counts are exact in f32 below 2^24.
/// Reading this one small buffer tells the host the loss and whether (and since which step) the
/// run went non-finite, without a read-back per step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossAcc {
    /// Sum over calls and rows of each row's mean squared hinge loss.
    pub loss_sum: f64,
    /// Rows whose argmax was not the label.
    pub wrong: f64,
    /// Loss calls (training or evaluation steps) made.
    pub calls: u64,
    /// 1-based call that first saw a non-finite row; 0 while none has.
    pub first_bad_call: u64,
    /// Rows whose scores or loss were non-finite.
    pub bad_rows: u64,
}

impl LossAcc {
    /// Length in f32 of the device buffer.
    pub const LEN: usize = 5;

    /// Reads the accumulator from the buffer's contents (at least [`LossAcc::LEN`] values).
    pub fn from_slice(v: &[f32]) -> Self {
        Self {
            loss_sum: v[0] as f64,
            wrong: v[1] as f64,
            calls: v[2] as u64,
            first_bad_call: v[3] as u64,
            bad_rows: v[4] as u64,
        }
    }

    /// The accumulated loss is finite and no row was bad.
    pub fn is_finite(&self) -> bool {
        self.bad_rows == 0 && self.loss_sum.is_finite()
    }
}

/// How much a backend can hold; `None` where it does not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceLimits {
    /// Largest buffer a kernel may bind (GPU: `max_storage_buffer_binding_size`).
    pub max_binding_bytes: Option<u64>,
    /// Largest buffer (GPU: `max_buffer_size`).
    pub max_buffer_bytes: Option<u64>,
    /// Memory available for all buffers together (CPU: the machine's available memory).
    pub memory_bytes: Option<u64>,
}

/// A device that holds buffers and runs the network's ops on them: [`crate::cpu::CpuBackend`]
/// or [`crate::gpu::GpuBackend`].
pub trait Backend {
    /// Human-readable name of the device in use.
    fn describe(&self) -> String;
    /// What this backend can hold, for refusing a configuration before allocating it.
    fn limits(&self) -> DeviceLimits;
    /// True for the GPU backend.
    fn is_gpu(&self) -> bool;

    /// A zero-filled buffer of `len` elements.
    fn alloc(&mut self, len: usize, dtype: Dtype) -> Buf;
    /// Writes `data` into the start of an f32 buffer.
    fn write_f32(&mut self, buf: Buf, data: &[f32]);
    /// Writes `data` into the start of a u32 buffer.
    fn write_u32(&mut self, buf: Buf, data: &[u32]);
    /// Sets every element of `buf` to zero.
    fn fill_zero(&mut self, buf: Buf);
    /// Copies the contents of `src` into `dst` (same dtype).
    fn copy(&mut self, src: Buf, dst: Buf);
    /// Submits what was recorded; the CPU backend has nothing to do.
    fn flush(&mut self);
    /// Flushes, then reads an f32 buffer back to the host.
    fn read_f32(&mut self, buf: Buf) -> impl Future<Output = Result<Vec<f32>, Error>>;
    /// Flushes, then reads a u32 buffer back to the host.
    fn read_u32(&mut self, buf: Buf) -> impl Future<Output = Result<Vec<u32>, Error>>;
    /// Dispatches and submits so far (zero on the CPU).
    fn counters(&self) -> Counters;

    /// Turns per-kernel timing on or off; returns whether this backend can time kernels (the
    /// GPU backend with timestamp queries). For benchmarks: it slows every step.
    fn set_profiling(&mut self, _on: bool) -> bool {
        false
    }
    /// The time of each kernel run since the last call, while profiling.
    fn take_profile(&mut self) -> Vec<KernelTime> {
        Vec::new()
    }

    /// Uploads a data set: `pixels` holds `labels.len()` images of c·h·w bytes.
    fn upload_images(
        &mut self,
        pixels: &[u8],
        labels: &[u16],
        chw: (usize, usize, usize),
    ) -> Result<ImageSet, Error>;

    /// x[b] = image(indices[b])·2/255 − 1, flipped left-right when indices[b] ≥ count
    /// (index − count is then the image), then shifted by its [`Shift`] when the batch has
    /// shifts; labels[b] likewise. x and labels hold at least `batch` images.
    fn gather_batch(&mut self, set: &ImageSet, batch: BatchIndices, x: Buf, labels: Buf);

    /// y [batch, cout, h, w] = conv(x [batch, cin, h, w], w [cout, cin, 3, 3]) + bias b.
    fn conv_forward(&mut self, s: ConvShape, x: Buf, w: Buf, b: Buf, y: Buf);
    /// [`conv_forward`](Backend::conv_forward) where x and w hold only ±1 (a binary layer after
    /// the first): the same result, which a backend may compute with XNOR and popcount. The
    /// default is `conv_forward`.
    fn conv_forward_binary(&mut self, s: ConvShape, x: Buf, w: Buf, b: Buf, y: Buf) {
        self.conv_forward(s, x, w, b, y);
    }
    /// dx [batch, cin, h, w] from dy [batch, cout, h, w] and w.
    fn conv_grad_input(&mut self, s: ConvShape, dy: Buf, w: Buf, dx: Buf);
    /// dw [cout, cin, 3, 3] from dy [batch, cout, h, w] and x [batch, cin, h, w].
    fn conv_grad_weight(&mut self, s: ConvShape, dy: Buf, x: Buf, dw: Buf);
    /// out[c] = Σ_{b,hw} x[b,c,hw] (bias gradients).
    fn channel_sum(&mut self, s: ChannelShape, x: Buf, out: Buf);

    /// y [batch, outputs] = x [batch, inputs]·Wᵀ + b.
    fn dense_forward(&mut self, s: DenseShape, x: Buf, w: Buf, b: Buf, y: Buf);
    /// dx [batch, inputs] = dy·W.
    fn dense_grad_input(&mut self, s: DenseShape, dy: Buf, w: Buf, dx: Buf);
    /// dW [outputs, inputs] = dyᵀ·x.
    fn dense_grad_weight(&mut self, s: DenseShape, dy: Buf, x: Buf, dw: Buf);

    /// Training-mode batch norm of x into y: the batch's statistics (biased variance, eps 1e-4)
    /// into `bn.stats.batch`, `bn.stats.running` moved toward them by α = 0.1,
    /// y = (x − mean)·γ·inv_std + β.
    fn bn_train(&mut self, bn: BatchNorm, x: Buf, y: Buf);
    /// Evaluation-mode batch norm of x into y with the running statistics `bn.stats.running`.
    fn bn_eval(&mut self, bn: BatchNorm, x: Buf, y: Buf);
    /// The backward of [`bn_train`](Backend::bn_train): dx, dγ and dβ from dy, the forward's
    /// input x and its batch statistics `bn.stats.batch`.
    fn bn_backward(&mut self, bn: BatchNorm, x: Buf, dy: Buf, dx: Buf, grads: BnGrads);

    /// y = act(x) over the first `n` elements.
    fn act_forward(&mut self, a: ActQuant, n: usize, x: Buf, y: Buf);
    /// dx = dy · act'(x) (straight-through mask).
    fn act_backward(&mut self, a: ActQuant, n: usize, x: Buf, dy: Buf, dx: Buf);

    /// A conv layer's batch norm and activation (training mode): t.u = bn(t.z) as
    /// [`bn_train`], t.a = act(t.u). The default records the two ops; a backend may fuse them into
    /// one pass and leave t.u unwritten, as long as its [`act_bn_backward`] does not read it.
    ///
    /// [`bn_train`]: Backend::bn_train
    /// [`act_bn_backward`]: Backend::act_bn_backward
    fn bn_act_train(&mut self, l: BnAct, t: BnActTensors) {
        self.bn_train(l.bn, t.z, t.u);
        self.act_forward(l.act, l.bn.shape.len(), t.u, t.a);
    }

    /// Evaluation-mode [`bn_act_train`](Backend::bn_act_train), with the running statistics.
    fn bn_act_eval(&mut self, l: BnAct, t: BnActTensors) {
        self.bn_eval(l.bn, t.z, t.u);
        self.act_forward(l.act, l.bn.shape.len(), t.u, t.a);
    }

    /// The backward of [`bn_act_train`](Backend::bn_act_train): g.du = g.da·act'(t.u), then
    /// [`bn_backward`](Backend::bn_backward) into g.dz and g.params. `t.u` and `g.du` are the
    /// forward's output and scratch where the default is used.
    fn act_bn_backward(&mut self, l: BnAct, t: BnActTensors, g: BnActGrads) {
        self.act_backward(l.act, l.bn.shape.len(), t.u, g.da, g.du);
        self.bn_backward(l.bn, t.z, g.du, g.dz, g.params);
    }

    /// [`bn_act_train`](Backend::bn_act_train), then [`pool_forward`](Backend::pool_forward) of
    /// its output t.a into `pool.out`. The default records the ops. A backend may fuse them and,
    /// instead of writing t.a, keep in `pool.window` which of each window's values was the
    /// maximum, as long as its [`pool_act_bn_backward`](Backend::pool_act_bn_backward) reads
    /// that instead of t.a.
    fn bn_act_pool_train(&mut self, l: BnAct, t: BnActTensors, pool: Pooled) {
        bn_act_pool_separately(self, l, t, pool);
    }

    /// The backward of [`bn_act_pool_train`](Backend::bn_act_pool_train): g.da =
    /// [`pool_backward`](Backend::pool_backward) of `dpooled` through t.a (or `pool.window`),
    /// then [`act_bn_backward`](Backend::act_bn_backward), then the conv bias's gradient `dbias`
    /// (f32 [channels]) = [`channel_sum`](Backend::channel_sum) of g.dz. g.da and g.du are
    /// scratch where the default is used.
    fn pool_act_bn_backward(
        &mut self,
        l: BnAct,
        t: BnActTensors,
        pool: Pooled,
        dpooled: Buf,
        g: BnActGrads,
        dbias: Buf,
    ) {
        pool_act_bn_backward_separately(self, l, t, pool, dpooled, g, dbias);
    }

    /// y = max of each 2×2 window of x.
    fn pool_forward(&mut self, s: PoolShape, x: Buf, y: Buf);
    /// dx: dy routed to each window's first maximum in x, zero elsewhere.
    fn pool_backward(&mut self, s: PoolShape, x: Buf, dy: Buf, dx: Buf);

    /// Global average pool: y [planes] = the mean of each plane of x [planes, h, w] (summed in
    /// pixel order, then multiplied by 1/(h·w)).
    fn global_pool_forward(&mut self, s: PoolShape, x: Buf, y: Buf);
    /// Its backward: dx [planes, h, w] = dy[plane] / (h·w) at every pixel of the plane.
    fn global_pool_backward(&mut self, s: PoolShape, dy: Buf, dx: Buf);

    /// wq = quantize(w); `absmax` (one f32) receives max|w|.
    fn weight_quantize(&mut self, q: WeightQuant, w: Buf, absmax: Buf, wq: Buf);

    /// Squared hinge over scores y [batch, classes] (`s`) into acc [[`LossAcc::LEN`]]:
    /// acc[0] += Σ_b mean_k max(0, 1 − t·y)², acc[1] += count of argmax(y) ≠ label, acc[2] += 1,
    /// acc[3] = acc[2] at the first call with a non-finite row, acc[4] += non-finite rows.
    /// With `dy`, also the gradient of the batch mean loss.
    fn loss(&mut self, s: LossShape, y: Buf, labels: Buf, dy: Option<Buf>, acc: Buf);

    /// One Adam step (Lasagne's form) on `p.value` with moments `p.m` and `p.v`; its scalars
    /// from `step` ([`StepScalars`]).
    fn adam(&mut self, rule: UpdateRule, cfg: AdamConfig, p: ParamTensors, step: Buf);
    /// SGD with momentum (Lasagne's form), the velocity in `p.m`: vel = μ·vel − lr·g;
    /// p_new = p + vel.
    fn sgd(&mut self, rule: UpdateRule, p: ParamTensors, step: Buf);
}

/// What [`Backend::bn_act_pool_train`] stands for, op by op: its default, and what a backend
/// that fuses it takes where nothing is pooled.
pub fn bn_act_pool_separately<B: Backend + ?Sized>(
    b: &mut B,
    l: BnAct,
    t: BnActTensors,
    pool: Pooled,
) {
    b.bn_act_train(l, t);
    b.pool_forward(pool.shape, t.a, pool.out);
}

/// What [`Backend::pool_act_bn_backward`] stands for, op by op (the backward of
/// [`bn_act_pool_separately`]).
pub fn pool_act_bn_backward_separately<B: Backend + ?Sized>(
    b: &mut B,
    l: BnAct,
    t: BnActTensors,
    pool: Pooled,
    dpooled: Buf,
    g: BnActGrads,
    dbias: Buf,
) {
    b.pool_backward(pool.shape, t.a, dpooled, g.da);
    b.act_bn_backward(l, t, g);
    b.channel_sum(l.bn.shape, g.dz, dbias);
}
