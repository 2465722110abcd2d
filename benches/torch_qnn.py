#!/usr/bin/env python3
"""PyTorch twin of qnn's network and training step.

The same network as qnn (src/model.rs): blocks A, B, C of (conv 3x3 pad 1 with bias ->
BatchNorm -> quantized activation) x layers, a 2x2 max pool after every block (empty blocks
still pool), flatten -> dense(10) -> BatchNorm, squared hinge loss; the same quantizers
(src/quant.rs), the same Lasagne BatchNorm with running mean / running inv_std
(src/ops/batchnorm.rs) and the same Adam with BinaryNet's scaled-and-clipped rule for
quantized conv weights (src/ops/optimizer.rs).

Two uses:

  python3 benches/torch_qnn.py bench [--device cuda|cpu] [--compile] [--batch 64]
      [--nla 1 --nfa 64 --nlb 1 --nfb 64 --nlc 1 --nfc 64] [--bits 4] [--nl relu] [--sym 0]
      [--quantized 1] [--seconds 5] [--input 3,32,32] [--tf32] [--compile-mode MODE]
    trains on generated data (no read-back per step) and prints one JSON line (images/s,
    ms/step) to compare with `qnn bench train`. A failing torch.compile prints {"error": ...}
    and exits 0. Without torch: exit 1.

  python3 benches/torch_qnn.py check-step DIR [--tol 1e-4] [--noise 1e-4] [--save FILE] [--native-bn]
    runs one training step in float32 on the CPU from DIR/config.json, DIR/before.safetensors
    and DIR/batch.safetensors, and compares every tensor with DIR/after.safetensors (qnn's
    result): |diff| ≤ tol·max(1, max|ref|) per tensor, plus two full Adam steps for elements
    whose gradient is rounding noise (all conv/dense biases; see cmd_check_step).
    Exit 0: all agree, 1: some differ, 77: torch is not installed (a skip).

Needs only torch (safetensors files are read and written by hand below).
"""

import argparse
import array
import json
import math
import os
import struct
import sys
import time
from dataclasses import dataclass

try:
    import torch
    import torch.nn.functional as F

    _Function, _Module = torch.autograd.Function, torch.nn.Module
except (ImportError, OSError):  # main() reports it with the exit code each subcommand needs
    torch = F = None
    _Function = _Module = object

CLASSES = 10
SKIP = 77  # exit code the Rust test reads as "skipped"


def f32(x):
    """x rounded to float32, for constants qnn computes in f32 arithmetic."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


# qnn's constants as the f32 values its kernels use (backend.rs AdamConfig, batchnorm.rs)
BETA1, BETA2, ADAM_EPS = f32(0.9), f32(0.999), f32(1e-8)
ONE_MINUS_BETA1 = f32(1.0 - BETA1)  # 0.100000024 (1 − 0.9f32 is exact in f32), not 0.1
ONE_MINUS_BETA2 = f32(1.0 - BETA2)  # 0.0009999871, not 0.001
BN_EPS = f32(1e-4)
BN_ALPHA = f32(0.1)
BN_KEEP = f32(1.0 - BN_ALPHA)


def adam_step(lr, t):
    """Lasagne's bias-corrected step lr·√(1−β2^t)/(1−β1^t), in f64 then f32 (StepScalars::adam)."""
    b1, b2 = BETA1**t, BETA2**t
    return f32(f32(lr) * math.sqrt(1.0 - b2) / (1.0 - b1))


# ---- safetensors, by hand ----------------------------------------------------------------

def read_safetensors(path):
    """{name: float32 CPU tensor}, metadata. Layout: u64 LE header length, JSON header
    {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw little-endian bytes."""
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}
    with open(path, "rb") as fh:
        raw = fh.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", None) or {}
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        dtype = dtypes[info["dtype"]]
        if b > a:
            t = torch.frombuffer(bytearray(data[a:b]), dtype=dtype)
        else:
            t = torch.zeros(0, dtype=dtype)
        out[name] = t.float().reshape(info["shape"])
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} as F32, names sorted as the safetensors package does."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu", torch.float32).contiguous()
        blob = array.array("f", t.flatten().tolist())
        if sys.byteorder != "little":
            blob.byteswap()
        blob = blob.tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data start stays 8-byte aligned
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# ---- configuration (model.rs NetConfig) ----------------------------------------------------


@dataclass
class NetConfig:
    input: tuple  # (c, h, w)
    blocks: tuple  # ((layers, filters),) * 3 for blocks A, B, C
    quantized: bool = True
    bits: int = 4
    nonlinearity: str = "relu"
    sym: bool = False

    def validate(self):
        """The checks of NetConfig::validate and quant.rs check_combination."""
        nl, bits = self.nonlinearity, self.bits
        if nl not in ("relu", "hardtanh"):
            raise ValueError(f"unknown nonlinearity '{nl}' (use relu or hardtanh)")
        if self.quantized:
            if not 0 <= bits <= 16:
                raise ValueError(f"-nb {bits}: bit widths from 0 (binary) to 16 are supported")
            if nl == "relu" and bits <= 1:
                raise ValueError(f"-nl relu with -nb {bits}: every activation would be 0")
            if nl == "hardtanh" and bits == 0 and not self.sym:
                raise ValueError("-nl hardtanh -nb 0 -sym 0: every activation would be -1")
        for name, (layers, filters) in zip("ABC", self.blocks):
            if layers > 0 and filters == 0:
                raise ValueError(f"block {name} has {layers} layers of 0 filters")
        c, h, w = self.input
        if c == 0 or h < 8 or w < 8:
            raise ValueError(f"input {c}x{h}x{w}: need 1 channel and 8x8 pixels")

    def weight_sym(self):
        # symmetric weight levels only for hardtanh with -sym 1 (model.rs weight_sym)
        return self.sym and self.nonlinearity == "hardtanh"

    def conv_channels(self):
        """(cin, cout) of every conv layer in network order."""
        c, out = self.input[0], []
        for layers, filters in self.blocks:
            for _ in range(layers):
                out.append((c, filters))
                c = filters
        return out

    def features(self):
        c = next((f for n, f in reversed(self.blocks) if n > 0), self.input[0])
        return c * (self.input[1] // 8) * (self.input[2] // 8)

    def network_name(self):
        parts = [f"{n}-{f}" for n, f in self.blocks]
        return f"{parts[0]} x3" if len(set(parts)) == 1 else "/".join(parts)


# ---- quantizers (quant.rs), straight-through backward ---------------------------------------


class QuantAct(_Function):
    """q = clip(2·round(hs(x)·2^nb)/2^nb − 1, lo, hi), hs(x) = clip((x+1)/2, 0, 1), round half
    away from zero; STE mask: −1 ≤ x ≤ 1 and the value before the final clip within [lo, hi]."""

    @staticmethod
    def forward(ctx, x, scale, lo, hi):
        # x [B, C, H, W]
        r = ((x + 1.0) * 0.5).clamp(0.0, 1.0) * scale  # exact: scale is a power of two
        t = torch.trunc(r)
        r = t + (r - t >= 0.5).to(x.dtype)  # half away from zero for r >= 0, exactly as qnn
        v = 2.0 * r / scale - 1.0
        ctx.save_for_backward((x >= -1.0) & (x <= 1.0) & (v >= lo) & (v <= hi))
        return v.clamp(lo, hi)

    @staticmethod
    def backward(ctx, dq):
        (mask,) = ctx.saved_tensors
        return dq * mask, None, None, None


def act_levels(cfg):
    """(scale, lo, hi) of ActQuant::levels."""
    bits = cfg.bits
    scale, top = 2.0**bits, 1.0 - 2.0 ** (1 - bits)
    if bits == 0:
        return scale, -1.0, 1.0
    if cfg.nonlinearity == "relu":
        return scale, 0.0, top
    return scale, -1.0, (1.0 if cfg.sym else top)


class QuantWeight(_Function):
    """Per tensor: f = floor(log2(1/max|W|)), Wq = clip(round_half_even(W·2^(nb−1+f)), −2^(nb−1), U)
    / 2^(nb−1+f); nb = 0: sign with +1 for W ≥ 0. Backward: dWq goes to W unchanged."""

    @staticmethod
    def forward(ctx, w, bits, sym):
        # w [Cout, Cin, 3, 3]
        if bits == 0:
            return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
        absmax = w.abs().amax()
        r = 1.0 / absmax
        # f is the binary exponent of the f32 value 1/max|W| (quant.rs weight_exponent), exactly
        field = (r.view(torch.int32) >> 23) & 0xFF
        f = torch.where(field == 0, -127, field - 127)
        f = torch.where(torch.isfinite(r), f, 127)
        f = torch.where((absmax == 0) | ~torch.isfinite(absmax), 0, f)
        # 2^(nb−1+f) built from its bits, so it is exact (qnn's ldexp); clamped to normal floats
        scale = ((f + (bits - 1 + 127)).clamp(1, 254).to(torch.int32) << 23).view(torch.float32)
        lo = -(2.0 ** (bits - 1))
        hi = -lo if sym else -lo - 1.0
        return torch.round(w * scale).clamp(lo, hi) / scale  # torch.round: half to even

    @staticmethod
    def backward(ctx, dwq):
        return dwq, None, None


# ---- batch norm (batchnorm.rs) --------------------------------------------------------------


def _channel_view(x):
    dims = [0] + list(range(2, x.dim()))
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    return dims, shape, x.numel() // x.shape[1]


class ExactBatchNorm(_Function):
    """Training-mode BN computed as qnn's CPU backend does: sums in f64, everything else in f32,
    the same expression order; backward dβ = Σdy, dγ = Σdy·x̂, dx = γ·istd·(dy − dβ/M − x̂·dγ/M)."""

    @staticmethod
    def forward(ctx, x, gamma, beta):
        # x [B, C, H, W] or [B, C]
        dims, shape, count = _channel_view(x)
        mean = (x.double().sum(dims) / count).float()  # [C]
        d = x - mean.view(shape)
        var = ((d.double() ** 2).sum(dims) / count).float()
        inv_std = torch.sqrt(var + BN_EPS).reciprocal()  # [C]
        y = d * (gamma * inv_std).view(shape) + beta.view(shape)
        ctx.save_for_backward(x, gamma, mean, inv_std)
        ctx.mark_non_differentiable(mean, inv_std)
        return y, mean, inv_std

    @staticmethod
    def backward(ctx, dy, _dmean, _dinv_std):
        x, gamma, mean, inv_std = ctx.saved_tensors
        dims, shape, count = _channel_view(x)
        xhat = (x - mean.view(shape)) * inv_std.view(shape)
        dbeta = dy.double().sum(dims).float()  # [C]
        dgamma = (dy.double() * xhat.double()).sum(dims).float()  # [C]
        inv_m = f32(1.0 / count)
        k = (gamma * inv_std).view(shape)
        dx = k * (dy - (dbeta * inv_m).view(shape) - xhat * (dgamma * inv_m).view(shape))
        return dx, dgamma, dbeta


def batch_norm_train(x, gamma, beta, run_mean, run_inv_std, exact):
    """y = (x − mean)·γ·inv_std + β over batch statistics; running buffers moved by α = 0.1.
    qnn's running buffer holds the mean and the inv_std (not the variance), as Lasagne's does."""
    if exact:
        y, mean, inv_std = ExactBatchNorm.apply(x, gamma, beta)
    else:
        # the fast kernel; save_invstd is exactly 1/sqrt(biased var + eps)
        y, mean, inv_std = torch.ops.aten.native_batch_norm(x, gamma, beta, None, None, True, 0.0, BN_EPS)
    with torch.no_grad():
        # run = 0.9·run + 0.1·stat, both products rounded before the sum as in qnn
        run_mean.mul_(BN_KEEP).add_(mean.detach() * BN_ALPHA)
        run_inv_std.mul_(BN_KEEP).add_(inv_std.detach() * BN_ALPHA)
    return y


# ---- the network (model.rs) -----------------------------------------------------------------


class QNN(_Module):
    def __init__(self, cfg, exact_bn=False):
        super().__init__()
        cfg.validate()
        self.cfg, self.exact_bn = cfg, exact_bn
        P = torch.nn.Parameter
        self.conv_w, self.conv_b = torch.nn.ParameterList(), torch.nn.ParameterList()
        self.bn_gamma, self.bn_beta = torch.nn.ParameterList(), torch.nn.ParameterList()
        self.w_lr_scale = []  # per conv: BinaryNet's W_LR_scale, None for plain Adam
        for k, (cin, cout) in enumerate(cfg.conv_channels()):
            fan = 9 * cin + 9 * cout
            if cfg.quantized:
                w = torch.empty(cout, cin, 3, 3).uniform_(-1.0, 1.0)
                # f32 arithmetic as model.rs: 1/sqrt(1.5/(fan_in+fan_out))
                self.w_lr_scale.append(f32(1.0 / f32(math.sqrt(f32(1.5 / fan)))))
            else:
                lim = math.sqrt(6.0 / fan)  # Glorot uniform
                w = torch.empty(cout, cin, 3, 3).uniform_(-lim, lim)
                self.w_lr_scale.append(None)
            self.conv_w.append(P(w))
            self.conv_b.append(P(torch.zeros(cout)))
            self.bn_gamma.append(P(torch.ones(cout)))
            self.bn_beta.append(P(torch.zeros(cout)))
            self.register_buffer(f"bn{k}_mean", torch.zeros(cout))
            self.register_buffer(f"bn{k}_inv_std", torch.ones(cout))
        nf = cfg.features()
        lim = math.sqrt(6.0 / (nf + CLASSES))
        self.dense_w = P(torch.empty(CLASSES, nf).uniform_(-lim, lim))
        self.dense_b = P(torch.zeros(CLASSES))
        self.out_gamma = P(torch.ones(CLASSES))
        self.out_beta = P(torch.zeros(CLASSES))
        self.register_buffer("bn_out_mean", torch.zeros(CLASSES))
        self.register_buffer("bn_out_inv_std", torch.ones(CLASSES))
        self.act = act_levels(cfg) if cfg.quantized else None

    def activation(self, u):
        if self.act is not None:
            return QuantAct.apply(u, *self.act)
        if self.cfg.nonlinearity == "relu":
            return torch.relu(u)  # backward passes where x > 0, as qnn
        return torch.clamp(u, -1.0, 1.0)  # backward passes where −1 ≤ x ≤ 1 (inclusive), as qnn

    def forward(self, x):
        # x [B, C, H, W]
        cfg, k = self.cfg, 0
        for layers, _ in cfg.blocks:
            for _ in range(layers):
                w = self.conv_w[k]
                if cfg.quantized:
                    w = QuantWeight.apply(w, cfg.bits, cfg.weight_sym())
                z = F.conv2d(x, w, self.conv_b[k], padding=1)  # z [B, Cout, H, W], cross-correlation
                u = batch_norm_train(
                    z,
                    self.bn_gamma[k],
                    self.bn_beta[k],
                    getattr(self, f"bn{k}_mean"),
                    getattr(self, f"bn{k}_inv_std"),
                    self.exact_bn,
                )
                x = self.activation(u)
                k += 1
            # first maximum of a window wins ties and gets the gradient, in qnn and in torch
            x = F.max_pool2d(x, 2)  # x [B, C, H/2, W/2], floor
        y = F.linear(x.flatten(1), self.dense_w, self.dense_b)  # y [B, 10]
        return batch_norm_train(
            y, self.out_gamma, self.out_beta, self.bn_out_mean, self.bn_out_inv_std, self.exact_bn
        )

    def qnn_tensors(self):
        """(name, tensor, W_LR_scale or None, is_param) in Model::export's order and names."""
        out = []
        for k in range(len(self.conv_w)):
            out += [
                (f"conv{k}.weight", self.conv_w[k], self.w_lr_scale[k], True),
                (f"conv{k}.bias", self.conv_b[k], None, True),
                (f"bn{k}.gamma", self.bn_gamma[k], None, True),
                (f"bn{k}.beta", self.bn_beta[k], None, True),
                (f"bn{k}.mean", getattr(self, f"bn{k}_mean"), None, False),
                (f"bn{k}.inv_std", getattr(self, f"bn{k}_inv_std"), None, False),
            ]
        out += [
            ("dense.weight", self.dense_w, None, True),
            ("dense.bias", self.dense_b, None, True),
            ("bn_out.gamma", self.out_gamma, None, True),
            ("bn_out.beta", self.out_beta, None, True),
            ("bn_out.mean", self.bn_out_mean, None, False),
            ("bn_out.inv_std", self.bn_out_inv_std, None, False),
        ]
        return out

    def load(self, tensors):
        for name, t, _, _ in self.qnn_tensors():
            if name not in tensors:
                raise ValueError(f"the model file has no tensor '{name}'")
            if tuple(tensors[name].shape) != tuple(t.shape):
                have = list(tensors[name].shape)
                raise ValueError(f"tensor '{name}' has shape {have}, this network needs {list(t.shape)}")
            with torch.no_grad():
                t.copy_(tensors[name])


def squared_hinge(scores, labels):
    """mean over batch and classes of max(0, 1 − t·y)², t = 2·onehot − 1."""
    # scores [B, 10], labels [B] int64
    t = F.one_hot(labels, CLASSES).to(scores.dtype) * 2.0 - 1.0  # [B, 10]
    h = (1.0 - t * scores).clamp_min(0.0)
    return (h * h).mean()


# ---- optimizer (optimizer.rs) ---------------------------------------------------------------


class QnnAdam:
    """Adam in Lasagne's form; quantized conv weights take W ← clip(W + s·(W_adam − W), −1, 1).
    m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; W_adam = W − a·m/(√v + ε), a = adam_step(lr, t)."""

    def __init__(self, model, lr, t=0):
        entries = [(p, s) for _, p, s, is_param in model.qnn_tensors() if is_param]
        self.plain = [p for p, s in entries if s is None]
        self.scaled = [p for p, s in entries if s is not None]
        self.scales = [s for p, s in entries if s is not None]
        self.params = self.plain + self.scaled
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.lr, self.t = lr, t
        dev = self.params[0].device
        self.a = torch.zeros((), device=dev)  # the step size, a device scalar like qnn's step buffer
        self.update = self._update

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.t += 1
        self.a.fill_(adam_step(self.lr, self.t))  # host arithmetic, no read-back
        self.update([p.grad for p in self.params], self.a)

    def _update(self, grads, a):
        with torch.no_grad():
            self._adam(grads, a)

    def _adam(self, grads, a):
        M, V, n = self.m, self.v, len(self.plain)
        torch._foreach_mul_(M, BETA1)
        torch._foreach_add_(M, grads, alpha=ONE_MINUS_BETA1)
        torch._foreach_mul_(V, BETA2)
        torch._foreach_addcmul_(V, grads, grads, value=ONE_MINUS_BETA2)
        denom = torch._foreach_sqrt(V)
        torch._foreach_add_(denom, ADAM_EPS)
        step = torch._foreach_mul(M, a)  # (a·m)/(√v + ε), qnn's order
        torch._foreach_div_(step, denom)
        if n:
            torch._foreach_sub_(self.plain, step[:n])
        if self.scaled:
            # W_adam is rounded to f32 before W + s·(W_adam − W), as in qnn
            delta = torch._foreach_sub(self.scaled, step[n:])
            torch._foreach_sub_(delta, self.scaled)
            torch._foreach_mul_(delta, self.scales)
            torch._foreach_add_(self.scaled, delta)
            torch._foreach_clamp_min_(self.scaled, -1.0)
            torch._foreach_clamp_max_(self.scaled, 1.0)


def train_step(loss_fn, opt, x, labels, cuda_graphs=False):
    """forward, loss, backward, update; the loss stays on the device."""
    if cuda_graphs:
        torch.compiler.cudagraph_mark_step_begin()
    opt.zero_grad()
    loss = loss_fn(x, labels)
    loss.backward()
    opt.step()
    return loss


# ---- bench --------------------------------------------------------------------------------


def cmd_bench(args):
    if torch is None:
        print("bench: torch is not installed (pip install torch)", file=sys.stderr)
        return 1
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            print("bench: --device cuda but torch sees no CUDA device", file=sys.stderr)
            return 1
        torch.backends.cudnn.benchmark = True
    # qnn computes in plain f32; TF32 only when asked for
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.manual_seed(args.seed)
    c, h, w = (int(v) for v in args.input.split(","))
    cfg = NetConfig(
        input=(c, h, w),
        blocks=((args.nla, args.nfa), (args.nlb, args.nfb), (args.nlc, args.nfc)),
        quantized=bool(args.quantized),
        bits=args.bits,
        nonlinearity=args.nl,
        sym=bool(args.sym),
    )
    model = QNN(cfg).to(dev)
    opt = QnnAdam(model, args.lr)
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    nb = 8  # a few distinct batches, cycled: x [nb, B, C, H, W] in [−1, 1], labels [nb, B]
    xs = torch.rand(nb, args.batch, c, h, w, generator=gen, device=dev) * 2.0 - 1.0
    ys = torch.randint(0, CLASSES, (nb, args.batch), generator=gen, device=dev)

    def loss_fn(x, labels):
        return squared_hinge(model(x), labels)

    record = {
        "framework": "pytorch",
        "mode": "compile" if args.compile else "eager",
        "device": dev.type,
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "torch": torch.__version__,
        "batch": args.batch,
        "network": cfg.network_name(),
        "input": [c, h, w],
        "quantized": cfg.quantized,
        "bits": cfg.bits,
        "nonlinearity": cfg.nonlinearity,
        "tf32": args.tf32,
    }
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    graphs = args.compile and args.compile_mode != "default" and dev.type == "cuda"

    def step(i, fn):
        return train_step(fn, opt, xs[i % nb], ys[i % nb], graphs)

    step_fn = loss_fn
    if args.compile:
        try:
            step_fn = torch.compile(loss_fn, mode=args.compile_mode)
            opt.update = torch.compile(opt._update, mode=args.compile_mode)
            for i in range(3):  # the first forward and backward compile
                step(i, step_fn)
            sync()
        except Exception as e:  # report, so the caller's comparison script goes on
            first = (str(e).splitlines() or [""])[0]
            record["error"] = f"torch.compile failed: {type(e).__name__}: {first}"
            print(json.dumps(record))
            return 0
        record["compile_mode"] = args.compile_mode
    for i in range(5):
        step(i, step_fn)
    sync()
    # the host runs ahead of the device (no read-back per step); the final sync settles it
    steps, t0 = 0, time.perf_counter()
    while steps < 10 or time.perf_counter() - t0 < args.seconds:
        step(steps, step_fn)
        steps += 1
    sync()
    secs = time.perf_counter() - t0
    record.update(
        images_per_second=steps * args.batch / secs,
        ms_per_step=secs * 1e3 / steps,
        steps_timed=steps,
    )
    print(json.dumps(record))
    return 0


# ---- check-step ---------------------------------------------------------------------------


def cmd_check_step(args):
    if torch is None:
        print("skipped: torch is not installed")
        return SKIP
    torch.manual_seed(0)
    d = args.dir
    with open(os.path.join(d, "config.json")) as fh:
        conf = json.load(fh)
    cfg = NetConfig(
        input=tuple(conf["input"]),
        blocks=tuple(tuple(b) for b in conf["blocks"]),
        quantized=bool(conf["quantized"]),
        bits=int(conf["bits"]),
        nonlinearity=conf["nonlinearity"].lower(),
        sym=bool(conf["sym"]),
    )
    lr, t = f32(float(conf["lr"])), int(conf["t"])
    before, _ = read_safetensors(os.path.join(d, "before.safetensors"))
    batch, _ = read_safetensors(os.path.join(d, "batch.safetensors"))
    after, _ = read_safetensors(os.path.join(d, "after.safetensors"))

    model = QNN(cfg, exact_bn=not args.native_bn)
    model.load(before)
    opt = QnnAdam(model, lr, t=t - 1)  # moments at zero, this step is number t
    x = batch["x"]  # [B, C, H, W]
    labels = batch["labels"].round().long()  # [B]

    def loss_fn(x, labels):
        return squared_hinge(model(x), labels)

    loss = train_step(loss_fn, opt, x, labels)
    print(f"torch {torch.__version__}, batch {x.shape[0]}, network {cfg.network_name()}, t {t}, lr {lr:g}")
    print(f"loss {loss.item():.7f}")

    ours, grads, scales = {}, {}, {}
    for name, tensor, scale, is_param in model.qnn_tensors():
        ours[name] = tensor.detach()
        if is_param:
            grads[name], scales[name] = tensor.grad, scale or 1.0
    if args.save:
        write_safetensors(args.save, ours, {"format": "torch_qnn-after-step"})
    # A gradient that is zero in exact arithmetic is rounding noise of arbitrary sign, and Adam
    # from zero moments turns any nonzero g into its full step a·(1−β1)/√(1−β2) (= lr at t = 1).
    # That is every conv bias and dense.bias (each feeds a batch norm; docs/spec.md), and also e.g. the
    # dense.weight columns of a feature that is constant over the batch. Such elements, taken as
    # |g| ≤ --noise·max|g| of their tensor, may differ by two full steps (times W_LR_scale).
    full_step = adam_step(lr, t) * ONE_MINUS_BETA1 / math.sqrt(ONE_MINUS_BETA2)
    ok = True
    print(f"{'tensor':<16} {'max abs diff':>13} {'max rel diff':>13} {'limit':>10} {'noisy':>7} {'over':>6}")
    for name in sorted(set(ours) | set(after)):
        if name not in after or name not in ours:
            print(f"{name:<16} missing from {'qnn' if name not in after else 'torch'}'s tensors  FAIL")
            ok = False
            continue
        ref, got = after[name], ours[name]
        if ref.shape != got.shape:
            print(f"{name:<16} shape {list(ref.shape)} vs torch {list(got.shape)}  FAIL")
            ok = False
            continue
        diff = (got - ref).abs()
        ref_max = ref.abs().max().item() if ref.numel() else 0.0
        limit = args.tol * max(1.0, ref_max)
        noisy = torch.zeros_like(diff, dtype=torch.bool)
        if name in grads:
            g = grads[name].abs()
            if name.endswith(".bias"):
                noisy[:] = True
            elif g.numel():
                noisy = g <= args.noise * g.max()
        allowed = limit + noisy.float() * (2.0 * full_step * scales.get(name, 1.0))
        over = int((diff > allowed).sum()) + int(torch.isnan(diff).sum())
        dmax = diff.max().item() if diff.numel() else 0.0
        ok &= over == 0
        rel = dmax / ref_max if ref_max > 0 else dmax
        print(
            f"{name:<16} {dmax:13.3e} {rel:13.3e} {limit:10.3e} {int(noisy.sum()):7d} {over:6d}"
            + ("" if over == 0 else "  FAIL")
        )
    print("all tensors agree" if ok else "some tensors differ")
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="time training steps on generated data; one JSON line")
    b.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    b.add_argument("--compile", action="store_true", help="torch.compile the step")
    b.add_argument("--compile-mode", default="default", choices=["default", "reduce-overhead", "max-autotune"])
    b.add_argument("--tf32", action="store_true", help="allow TF32 in convs and matmuls (qnn uses f32)")
    b.add_argument("--batch", type=int, default=64)
    for blk in "abc":
        b.add_argument(f"--nl{blk}", type=int, default=1)
        b.add_argument(f"--nf{blk}", type=int, default=64)
    b.add_argument("--bits", type=int, default=4)
    b.add_argument("--nl", default="relu", choices=["relu", "hardtanh"])
    b.add_argument("--sym", type=int, default=0, choices=[0, 1])
    b.add_argument("--quantized", type=int, default=1, choices=[0, 1])
    b.add_argument("--lr", type=float, default=1e-3)
    b.add_argument("--seconds", type=float, default=5.0)
    b.add_argument("--input", default="3,32,32", help="c,h,w")
    b.add_argument("--seed", type=int, default=1)
    c = sub.add_parser("check-step", help="one step on the CPU against qnn's after.safetensors")
    c.add_argument("dir")
    c.add_argument("--tol", type=float, default=1e-4, help="abs diff limit, times max(1, max|ref|)")
    c.add_argument("--noise", type=float, default=1e-4, help="|g| ≤ noise·max|g|: a rounding-noise gradient")
    c.add_argument("--save", help="write torch's tensors after the step to this safetensors file")
    c.add_argument("--native-bn", action="store_true", help="use torch's batch norm kernel (as bench does)")
    args = ap.parse_args(argv)
    try:
        return cmd_bench(args) if args.cmd == "bench" else cmd_check_step(args)
    except ValueError as e:  # a refused network or a model file that does not fit it
        print(f"{args.cmd}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
