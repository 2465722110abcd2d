#!/usr/bin/env bash
# The page's ready model: a small 4-bit network trained on the embedded mnist-mini with fixed
# flags and seed, copied to web/models/mnist-mini-4bit.safetensors, which the page loads on
# arrival (so the draw pad, the test grid and the views work before anyone trains).
#
#   scripts/page-model.sh          build the release binary, train, copy the model
#   QNN=path/to/qnn scripts/page-model.sh   use that binary instead of building one
#
# The network: the seed's blocks 1×16, 1×32, 1×32 filters, 4-bit relu (weights and
# activations), 10 epochs, batch 32, Adam 0.01 → 0.0003, seed 1, the CPU backend. On the 2-core
# build machine (Dec 2026) it took 28 s and reached validation error 2.90 %, test error 3.30 %
# (test accuracy 96.7 %) at epoch 10; the file is 71 KB. Another CPU may round differently and
# end a little apart.
set -euo pipefail
cd "$(dirname "$0")/.."
qnn="${QNN:-}"
if [ -z "$qnn" ]; then
    cargo build --release
    qnn=target/release/qnn
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$qnn" train --dataset mnist-mini --bits 4 --quantized 1 --nonlinearity relu \
    --layers-a 1 --filters-a 16 --layers-b 1 --filters-b 32 --layers-c 1 --filters-c 32 \
    --epochs 10 --lr 0.01 --lr-final 0.0003 --batch-size 32 --seed 1 --device cpu \
    --out "$out" --json | tail -n 1
mkdir -p web/models
cp "$out"/mnist-mini_relu_0_quantized_1_16_1_32_1_32_4bits.safetensors web/models/mnist-mini-4bit.safetensors
echo "page-model.sh: web/models/mnist-mini-4bit.safetensors ($(stat -c %s web/models/mnist-mini-4bit.safetensors) bytes)" >&2
