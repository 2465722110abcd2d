#!/usr/bin/env bash
# The Python venv that checks qnn's exported models with independent code (tests/export_onnx.rs,
# scripts/onnx_check.py): onnx, onnxruntime and qonnx from PyPI at pinned versions, in
# /opt/qnn-tools/onnx-venv (or $QNN_ONNX_VENV). Idempotent: when the venv already holds exactly
# these pins it does nothing, so CI can call it on every run and keep the folder between runs.
#
# Usage: scripts/onnx-venv.sh        then   QNN_ONNX_PYTHON=/opt/qnn-tools/onnx-venv/bin/python cargo test --test export_onnx
set -euo pipefail

VENV="${QNN_ONNX_VENV:-/opt/qnn-tools/onnx-venv}"
PYTHON="${PYTHON:-python3}"
# the direct dependencies, pinned; pip resolves the rest (recorded in $VENV/pip-freeze.txt).
# onnx 1.17 (IR 10), not later: qonnx's executor builds one-node models with the installed onnx,
# and onnxruntime 1.23 refuses onnx 1.19's IR 12
PINS=(
    "numpy==2.3.5"
    "onnx==1.17.0"
    "onnxruntime==1.23.2"
    "qonnx==1.0.0"
    # qonnx's own dependencies that decide what it computes and reads
    "onnxscript==0.7.2"
    "protobuf==7.36.2"
)
STAMP="$VENV/qnn-pins.txt"
want="$(printf '%s\n' "${PINS[@]}")"

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "onnx-venv: $VENV already holds ${PINS[*]}"
    exit 0
fi

start=$(date +%s)
echo "onnx-venv: creating $VENV with ${PINS[*]}"
rm -f "$STAMP"
"$PYTHON" -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
# a broken install (a missing wheel, an import error) fails here rather than in the tests
"$VENV/bin/python" - <<'PY'
import numpy, onnx, onnxruntime, qonnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.cleanup import cleanup_model
print("onnx-venv: numpy", numpy.__version__, "onnx", onnx.__version__,
      "onnxruntime", onnxruntime.__version__)
PY
"$VENV/bin/python" -m pip freeze --disable-pip-version-check > "$VENV/pip-freeze.txt"
printf '%s\n' "${PINS[@]}" > "$STAMP"
echo "onnx-venv: ready in $(( $(date +%s) - start )) s"
