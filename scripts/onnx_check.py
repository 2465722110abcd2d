#!/usr/bin/env python3
"""Runs a model exported by `qnn export` with independent code and compares its scores with qnn's.

    onnx_check.py MODEL --format onnx|qonnx --input X.npy --scores S.npy [--tol 1e-5] [--json]

X.npy: f32 [N, C, H, W], the images as qnn's network reads them (pixels scaled to [-1, 1]);
S.npy: f32 [N, K], qnn's scores for them (`qnn eval`'s path: the CPU backend, evaluation mode).

- onnx: onnx.checker (full check, with shape inference), then onnxruntime's CPU provider at the
  graph optimization level --ort-level: all (onnxruntime's default), extended (all but the layout
  transformations: NCHWc convolution kernels, which sum float products in another order), basic
  or none.
- qonnx: qonnx's cleanup (qonnx.util.cleanup.cleanup_model, with the batch changed from the
  file's 1 to N) and shape inference (InferShapes), then qonnx.core.onnx_exec.execute_onnx.

Reports the classes that agree (first maximum of each row, as qnn takes it) out of N and the
worst relative score difference, where for qnn's score b and the runtime's a in row r

    rel = |a - b| / max(|b|, 1e-3 * max_k |b_rk|)

so a score near 0 is measured against its row's scale rather than against itself. Exits 1 when a
class differs or the worst rel exceeds --tol (default 1e-5), 2 on a usage or loading error.
"""
import argparse
import json
import sys
import time

import numpy as np


def run_onnx(path, x, level):
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[level]
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x})[0]


def run_qonnx(path, x):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    model = ModelWrapper(path)
    model = cleanup_model(model, override_inpsize=int(x.shape[0]))
    model = model.transform(InferShapes())
    iname = model.graph.input[0].name
    oname = model.graph.output[0].name
    return execute_onnx(model, {iname: x})[oname]


def compare(a, b):
    """(classes equal, worst rel, where) of runtime scores a against qnn's b."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    floor = 1e-3 * np.abs(b).max(axis=1, keepdims=True)
    denom = np.maximum(np.abs(b), floor)
    denom[denom == 0] = 1.0
    rel = np.abs(a - b) / denom
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
    equal = int((a.argmax(axis=1) == b.argmax(axis=1)).sum())
    return equal, float(rel[worst]), (int(worst[0]), int(worst[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--format", choices=["onnx", "qonnx"], required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--scores", required=True)
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument(
        "--ort-level",
        choices=["all", "extended", "basic", "none"],
        default="all",
        help="onnx: onnxruntime's graph optimization level (default: all, onnxruntime's default)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = p.parse_args()
    try:
        x = np.load(args.input).astype(np.float32)
        want = np.load(args.scores).astype(np.float32)
    except Exception as e:  # noqa: BLE001 - any unreadable input is a usage error
        print(f"onnx_check: cannot read the inputs: {e}", file=sys.stderr)
        return 2
    if x.shape[0] != want.shape[0]:
        print(f"onnx_check: {x.shape[0]} images but {want.shape[0]} rows of scores", file=sys.stderr)
        return 2
    start = time.time()
    if args.format == "onnx":
        got = run_onnx(args.model, x, args.ort_level)
    else:
        got = run_qonnx(args.model, x)
    seconds = time.time() - start
    got = np.asarray(got, dtype=np.float32).reshape(want.shape)
    equal, worst, (r, k) = compare(got, want)
    n = want.shape[0]
    ok = equal == n and worst <= args.tol
    result = {
        "model": args.model,
        "format": args.format,
        "ort_level": args.ort_level if args.format == "onnx" else None,
        "images": n,
        "classes_equal": equal,
        "worst_rel": worst,
        "worst_at": [r, k],
        "qnn": float(want[r, k]),
        "runtime": float(got[r, k]),
        "exact_rows": int((got == want).all(axis=1).sum()),
        "seconds": round(seconds, 2),
        "ok": ok,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.model} ({args.format}): classes equal {equal}/{n}, worst relative difference "
            f"{worst:.3g} (image {r}, class {k}: qnn {want[r, k]!r}, runtime {got[r, k]!r}), "
            f"{result['exact_rows']}/{n} rows bit-equal, {seconds:.1f} s"
        )
    if not ok:
        print(
            f"onnx_check: FAILED: {n - equal} classes differ, worst relative difference {worst:.3g} "
            f"(tolerance {args.tol:g})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
