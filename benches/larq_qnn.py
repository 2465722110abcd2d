#!/usr/bin/env python3
"""Larq/TensorFlow twin of qnn's network, for training throughput only.

  python3 benches/larq_qnn.py bench [--batch 64] [--nla 1 --nfa 64 --nlb 1 --nfb 64 --nlc 1 --nfc 64]
      [--bits 4] [--nl relu|hardtanh] [--sym 0|1] [--quantized 1] [--seconds 5] [--input 3,32,32]
      [--threads 2] [--quantizer qnn|dorefa] [--larq-input-quantizers] [--xla] [--lr 1e-3] [--seed 1]

trains on generated random data and prints one JSON line (images/s, ms/step) to compare with
`qnn bench train --device cpu` and `benches/torch_qnn.py bench --device cpu` (benches/cpu.sh
runs all three). Without TensorFlow or Larq importable it says so on stderr and exits 77.

Environment this was written against (see benches/cpu.sh; Larq needs Keras 2, i.e. tf.keras of
TF ≤ 2.15 or tf_keras with TF_USE_LEGACY_KERAS=1):

    python3.11 -m venv /opt/larqvenv
    /opt/larqvenv/bin/pip install "tensorflow-cpu==2.15.1" "larq==0.14.0"
    # → tensorflow-cpu 2.15.1, keras 2.15.0, larq 0.14.0, numpy 1.26.4 (CPython 3.11.7)

The network is qnn's (docs/spec.md §1): blocks A, B, C of (QuantConv2D 3×3 "same" with bias →
BatchNormalization → quantized activation) × layers, a 2×2 max pool after every block (empty
blocks still pool), flatten → Dense(10) → BatchNormalization, squared hinge loss on ±1 targets,
Adam (β1 0.9, β2 0.999, ε 1e-8). Each training step is one tf.function (graph mode; --xla adds
jit_compile=True): forward, GradientTape backward, optimizer update.

Quantizers (--quantizer qnn, the default):
  * binary (--bits 0, hardtanh, --sym 1): Larq's `ste_sign` (lq.quantizers.SteSign) for the
    activations and as QuantConv2D's kernel_quantizer, BinaryNet style. This is exactly qnn's
    math: sign with sign(0) = +1, straight-through gradient masked to |x| ≤ 1 (for the weights
    the mask never bites, since the weights stay clipped to [−1, 1]).
  * n bits: custom `larq.quantizers.Quantizer` subclasses with tf.custom_gradient that compute
    spec.md §4 exactly: activations q = clip(2·round(hs(x)·2^nb)/2^nb − 1, lo, hi) with round
    half away from zero and the STE mask −1 ≤ x ≤ 1 and lo ≤ v ≤ hi; conv weights per tensor
    with the power-of-two scale 2^(nb−1+f), f = floor(log2(1/max|W|)) read from the float's
    exponent bits, round half to even, clip to [−2^(nb−1), U], identity gradient.
--quantizer dorefa uses Larq's stock `DoReFa(k_bit=nb)` instead (activations: clip to [0, 1] and
2^nb − 1 uniform levels; weights: tanh, divide by max, 2^nb − 1 levels on [−1, 1]): other
levels than qnn's, for comparing the cost of Larq's own n-bit quantizer.

What differs from qnn (throughput-neutral or nearly so):
  * Layout: NHWC (channels_last), TensorFlow's fast CPU layout; qnn is NCHW. So the flatten
    order before the dense layer differs (a fixed permutation of the dense weights).
  * Batch norm: Keras BatchNormalization (fused kernel) normalizes exactly like Lasagne's
    (biased batch variance, ε = 1e-4, momentum 0.9), but its running statistics average the
    (unbiased) variance where qnn averages inv_std. Only evaluation would see that.
  * BinaryNet's update rule W ← clip(W + s·(W_adam − W), −1, 1) for quantized conv weights is
    done the Keras way: one Keras Adam per distinct W_LR_scale s with learning rate s·lr (the
    same thing algebraically, since the Adam step is linear in the learning rate), plus Larq's
    `weight_clip` kernel constraint, which Keras applies after each update. Keras' Adam has
    Lasagne's form (bias correction folded into the step size); its f32 rounding order differs.
  * Initialisation: quantized convs Uniform(−1, 1), dense Glorot uniform, as qnn; the random
    streams differ, and the data are random images and labels (throughput only).
  * Max pool ties: the same (quantize, then pool) by default. --larq-input-quantizers moves each
    activation quantizer into the next QuantConv2D's / QuantDense's `input_quantizer`, Larq's
    recommended form; then block ends pool before quantizing (the same forward values, as the
    quantizers are monotone; a tie in a window may send the gradient to another element, and
    the quantizer runs on a quarter of the elements there).
  * Float mode (--quantized 0): plain relu / clip(x, −1, 1) activations, Glorot uniform convs,
    one plain Adam, as qnn.
"""

import argparse
import json
import math
import os
import sys
import time

CLASSES = 10
SKIP = 77  # "not installed": benches/cpu.sh reports the peer as missing


def network_name(blocks):
    parts = [f"{n}-{f}" for n, f in blocks]
    return f"{parts[0]} x3" if len(set(parts)) == 1 else "/".join(parts)


def validate(args, blocks, c, h, w):
    """NetConfig::validate and quant.rs check_combination (the same refusals as qnn)."""
    nl, bits = args.nl, args.bits
    if args.quantized:
        if not 0 <= bits <= 16:
            raise ValueError(f"--bits {bits}: bit widths from 0 (binary) to 16 are supported")
        if nl == "relu" and bits <= 1:
            raise ValueError(f"--nl relu with --bits {bits}: every activation would be 0")
        if nl == "hardtanh" and bits == 0 and not args.sym:
            raise ValueError("--nl hardtanh --bits 0 --sym 0: every activation would be -1")
        if args.quantizer == "dorefa" and bits == 0:
            raise ValueError("--quantizer dorefa needs --bits >= 1 (binary uses ste_sign)")
    for name, (layers, filters) in zip("ABC", blocks):
        if layers > 0 and filters == 0:
            raise ValueError(f"block {name} has {layers} layers of 0 filters")
    if c == 0 or h < 8 or w < 8:
        raise ValueError(f"input {c}x{h}x{w}: need 1 channel and 8x8 pixels")


def build(tf, lq, args, blocks, input_hwc):
    """(model, [(W_LR_scale or None, variable)]) for qnn's network in Larq layers, NHWC."""
    quantized, bits, nl = bool(args.quantized), args.bits, args.nl
    weight_sym = bool(args.sym) and nl == "hardtanh"

    class QnnActQuantizer(lq.quantizers.Quantizer):
        """spec.md §4 activations: q = clip(v, lo, hi), v = 2·round(hs(x)·S)/S − 1, round half away
        from zero (exact: floor, then compare the remainder); STE mask −1 ≤ x ≤ 1 and lo ≤ v ≤ hi."""

        precision = bits

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.scale = float(2**bits)
            top = 1.0 - 2.0 ** (1 - bits)
            if nl == "relu":
                self.lo, self.hi = 0.0, top
            else:
                self.lo, self.hi = -1.0, (1.0 if args.sym else top)

        def call(self, x):
            s, lo, hi = self.scale, self.lo, self.hi

            @tf.custom_gradient
            def quant(x):
                r = tf.clip_by_value((x + 1.0) * 0.5, 0.0, 1.0) * s  # exact: s is a power of two
                t = tf.floor(r)
                r = t + tf.cast(r - t >= 0.5, x.dtype)
                v = 2.0 * r / s - 1.0
                mask = (x >= -1.0) & (x <= 1.0) & (v >= lo) & (v <= hi)

                def grad(dy):
                    return tf.where(mask, dy, tf.zeros_like(dy))

                return tf.clip_by_value(v, lo, hi), grad

            return quant(x)

    class QnnWeightQuantizer(lq.quantizers.Quantizer):
        """spec.md §4 conv weights: Wq = clip(round_half_even(W·2^(nb−1+f)), −2^(nb−1), U) / 2^(nb−1+f),
        f = floor(log2(1/max|W|)) from the exponent bits of the f32 1/max|W|; gradient passes unchanged."""

        precision = bits

        def call(self, w):
            lo = -(2.0 ** (bits - 1))
            hi = -lo if weight_sym else -lo - 1.0

            @tf.custom_gradient
            def quant(w):
                absmax = tf.reduce_max(tf.abs(w))
                r = 1.0 / absmax
                field = tf.bitwise.bitwise_and(tf.bitwise.right_shift(tf.bitcast(r, tf.int32), 23), 0xFF)
                f = field - 127
                f = tf.where(tf.math.is_finite(r), f, 127)
                f = tf.where(tf.equal(absmax, 0.0) | ~tf.math.is_finite(absmax), 0, f)
                e = tf.clip_by_value(f + (bits - 1 + 127), 1, 254)
                scale = tf.bitcast(tf.bitwise.left_shift(e, 23), tf.float32)  # exactly 2^(nb−1+f)
                wq = tf.clip_by_value(tf.round(w * scale), lo, hi) / scale  # tf.round: half to even
                return wq, (lambda dw: dw)

            return quant(w)

    if not quantized:
        act = (lambda: tf.keras.layers.ReLU()) if nl == "relu" else (
            lambda: tf.keras.layers.Lambda(lambda x: tf.clip_by_value(x, -1.0, 1.0)))
        kernel_q = None
    elif bits == 0:
        act, kernel_q = (lambda: lq.quantizers.SteSign()), (lambda: lq.quantizers.SteSign())
    elif args.quantizer == "dorefa":
        act = lambda: lq.quantizers.DoReFa(k_bit=bits, mode="activations")  # noqa: E731
        kernel_q = lambda: lq.quantizers.DoReFa(k_bit=bits, mode="weights")  # noqa: E731
    else:
        act, kernel_q = QnnActQuantizer, QnnWeightQuantizer
    as_input = quantized and args.larq_input_quantizers

    x_in = tf.keras.Input(shape=input_hwc, batch_size=args.batch)
    x, pending, cin, scaled = x_in, None, input_hwc[2], []  # pending: quantizer for the next layer's input
    for layers, filters in blocks:
        for _ in range(layers):
            fan = 9 * cin + 9 * filters
            if quantized:
                init = tf.keras.initializers.RandomUniform(-1.0, 1.0)
                w_lr_scale = 1.0 / math.sqrt(1.5 / fan)  # BinaryNet's W_LR_scale
            else:
                init, w_lr_scale = tf.keras.initializers.GlorotUniform(), None
            conv = lq.layers.QuantConv2D(
                filters, 3, padding="same", use_bias=True,
                input_quantizer=pending,
                kernel_quantizer=kernel_q() if kernel_q else None,
                kernel_initializer=init,
                kernel_constraint="weight_clip" if quantized else None,
            )
            x = conv(x)
            scaled.append((w_lr_scale, conv.kernel))  # Larq's QuantizedVariable, as Keras trains it
            x = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-4)(x)
            if as_input:
                pending = act()
            else:
                x = act()(x)
            cin = filters
        x = tf.keras.layers.MaxPool2D(2)(x)  # floor sizes, as qnn
    x = tf.keras.layers.Flatten()(x)
    dense = lq.layers.QuantDense(CLASSES, input_quantizer=pending, kernel_quantizer=None,
                                 kernel_initializer="glorot_uniform")
    x = dense(x)
    y = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-4)(x)
    model = tf.keras.Model(x_in, y)
    kernels = {id(v) for _, v in scaled}
    plain = [(None, v) for v in model.trainable_variables if id(v) not in kernels]
    if len(scaled) + len(plain) != len(model.trainable_variables):
        raise RuntimeError("conv kernels not found among the model's trainable variables")
    return model, scaled + plain


def make_train_step(tf, model, params, lr, xla=False):
    """The training step as one tf.function: forward, squared hinge, backward, Adam. One Keras Adam
    per learning-rate scale: BinaryNet's W ← clip(W + s·(W_adam − W), −1, 1) is Adam at s·lr followed
    by the kernels' weight_clip constraint (see the docstring)."""
    groups = {}
    for s, v in params:
        groups.setdefault(s, []).append(v)
    opts = []
    for s, vs in groups.items():
        opt = tf.keras.optimizers.Adam(learning_rate=lr * (s or 1.0), beta_1=0.9, beta_2=0.999, epsilon=1e-8)
        opt.build(vs)
        opts.append((opt, vs))
    all_vars = [v for _, vs in opts for v in vs]

    @tf.function(jit_compile=xla)
    def train_step(x, t):
        # x [B, H, W, C], t [B, 10] in {−1, +1}
        with tf.GradientTape() as tape:
            y = model(x, training=True)  # [B, 10]
            hinge = tf.maximum(1.0 - t * y, 0.0)
            loss = tf.reduce_mean(hinge * hinge)  # squared hinge over batch and classes
        grads = tape.gradient(loss, all_vars)
        k = 0
        for opt, vs in opts:
            opt.apply_gradients(zip(grads[k : k + len(vs)], vs))
            k += len(vs)
        return loss

    return train_step


def keras_version():
    try:
        import keras  # Keras 2 beside TF ≤ 2.15; tf_keras' own version where TF_USE_LEGACY_KERAS=1

        if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
            import tf_keras as keras
        return keras.__version__
    except Exception:
        return None


def cmd_bench(args):
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        import larq as lq
    except Exception as e:  # ImportError, or a broken install (e.g. Keras 3 without tf_keras)
        print(f"bench: TensorFlow/Larq not importable ({type(e).__name__}: {e}); "
              "pip install tensorflow-cpu==2.15.1 larq", file=sys.stderr)
        return SKIP
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.keras.utils.set_random_seed(args.seed)
    c, h, w = (int(v) for v in args.input.split(","))
    blocks = ((args.nla, args.nfa), (args.nlb, args.nfb), (args.nlc, args.nfc))
    validate(args, blocks, c, h, w)
    model, params = build(tf, lq, args, blocks, (h, w, c))

    train_step = make_train_step(tf, model, params, args.lr, args.xla)

    nb = 8  # a few distinct batches, cycled: x [B, H, W, C] in [−1, 1], targets ±1 [B, 10]
    gen = tf.random.Generator.from_seed(args.seed)
    xs = [gen.uniform((args.batch, h, w, c), -1.0, 1.0) for _ in range(nb)]
    ts = [tf.one_hot(gen.uniform((args.batch,), 0, CLASSES, dtype=tf.int32), CLASSES) * 2.0 - 1.0
          for _ in range(nb)]

    record = {
        "framework": "larq",
        "mode": "tf.function+xla" if args.xla else "tf.function",
        "device": "cpu",
        "tf": tf.__version__,
        "keras": keras_version(),
        "larq": getattr(lq, "__version__", None),
        "threads": args.threads,
        "batch": args.batch,
        "net": "/".join(f"{n}-{f}" for n, f in blocks),
        "network": network_name(blocks),
        "input": [c, h, w],
        "quantized": bool(args.quantized),
        "bits": args.bits,
        "nonlinearity": args.nl,
        "sym": bool(args.sym),
        "quantizer": ("ste_sign" if args.bits == 0 else args.quantizer) if args.quantized else None,
        "input_quantizers": bool(args.larq_input_quantizers),
    }
    t_trace = time.perf_counter()
    loss = train_step(xs[0], ts[0])  # traces and runs the first step
    loss.numpy()
    record["first_step_s"] = time.perf_counter() - t_trace
    for i in range(1, 4):
        loss = train_step(xs[i % nb], ts[i % nb])
    if not math.isfinite(float(loss.numpy())):
        record["error"] = "non-finite loss in the warm-up steps"
        print(json.dumps(record))
        return 1
    steps, t0 = 0, time.perf_counter()
    while steps < 10 or time.perf_counter() - t0 < args.seconds:
        loss = train_step(xs[steps % nb], ts[steps % nb])
        steps += 1
    loss.numpy()
    secs = time.perf_counter() - t0
    record.update(
        images_per_second=steps * args.batch / secs,
        ms_per_step=secs * 1e3 / steps,
        steps_timed=steps,
        loss=float(loss.numpy()),
    )
    print(json.dumps(record))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="time training steps on generated data; one JSON line")
    b.add_argument("--batch", type=int, default=64)
    for blk in "abc":
        b.add_argument(f"--nl{blk}", type=int, default=1)
        b.add_argument(f"--nf{blk}", type=int, default=64)
    b.add_argument("--bits", type=int, default=4)
    b.add_argument("--nl", default="relu", choices=["relu", "hardtanh"])
    b.add_argument("--sym", type=int, default=0, choices=[0, 1])
    b.add_argument("--quantized", type=int, default=1, choices=[0, 1])
    b.add_argument("--quantizer", default="qnn", choices=["qnn", "dorefa"],
                   help="n-bit quantizers: qnn's exact ones (custom Larq quantizers) or Larq's DoReFa")
    b.add_argument("--larq-input-quantizers", action="store_true",
                   help="quantize activations as the next layer's input_quantizer (after the pool)")
    b.add_argument("--xla", action="store_true", help="jit_compile=True on the training step")
    b.add_argument("--lr", type=float, default=1e-3)
    b.add_argument("--seconds", type=float, default=5.0)
    b.add_argument("--input", default="3,32,32", help="c,h,w")
    b.add_argument("--threads", type=int, default=2, help="TF intra- and inter-op threads")
    b.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.batch < 1 or args.threads < 1:
        ap.error("--batch and --threads must be at least 1")
    try:
        return cmd_bench(args)
    except ValueError as e:  # a refused network
        print(f"{args.cmd}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
