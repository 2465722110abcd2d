#!/usr/bin/env bash
# One command that measures qnn's WGSL kernels on a real GPU against PyTorch on the same
# networks, and writes one table (markdown + JSON).
#
#   benches/gpu.sh [--qnn PATH] [--out DIR] [--seconds S] [--no-compile] [--no-torch] [--torch-device DEV] [--quick]
#
# For each network — the seed's CIFAR-10 example (1-64 ×3, 4-bit relu) at batch 64 and 256, and
# the large 3-256 ×3 network at batch 64 and 256 — it runs `qnn bench train --device gpu` (images/s
# plus each kernel family's share of a step from GPU timestamps), PyTorch eager and, where it
# works, torch.compile (benches/torch_qnn.py: the same network, quantizers, straight-through
# estimators and update rule; its step is checked against qnn's CPU backend by
# tests/torch_twin.rs), then `qnn bench ops --device gpu` for per-kernel times.
#
# The GPU machine may have no crate registry: give a prebuilt qnn with --qnn or QNN_BIN (built
# elsewhere with `cargo build --release` and stripped). Finishes in a few minutes on an H100/H200.
# --quick: tiny networks and short timings, to check the script itself (e.g. on lavapipe with
# --torch-device cpu). --no-torch: measure qnn only (after a kernel change), keeping the
# torch.jsonl of an earlier run in --out for the table.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
qnn="${QNN_BIN:-}"
out="bench-gpu"
seconds=5
compile=1
torch=1
torch_device=cuda
quick=0
python="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
    case "$1" in
        --qnn) qnn="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --no-compile) compile=0; shift ;;
        --no-torch) torch=0; shift ;;
        --torch-device) torch_device="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$qnn" ]; then
    qnn="$root/target/release/qnn"
    if [ ! -x "$qnn" ]; then
        command -v cargo >/dev/null || { echo "gpu.sh: no qnn binary: pass --qnn PATH or build with cargo" >&2; exit 2; }
        (cd "$root" && cargo build --release) || exit 1
    fi
fi
[ -x "$qnn" ] || { echo "gpu.sh: $qnn is not an executable" >&2; exit 2; }
mkdir -p "$out"
rm -f "$out/qnn.jsonl"
[ "$torch" = 1 ] && rm -f "$out/torch.jsonl"
# NVIDIA's Vulkan driver where the loader does not find it by itself
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

{
    echo "{\"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\", \"host\": \"$(uname -n)\","
    if command -v nvidia-smi >/dev/null; then
        echo " \"gpu\": \"$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)\","
        echo " \"driver\": \"$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)\","
    fi
    echo " \"qnn\": \"$("$qnn" --version)\"}"
} > "$out/machine.json"
cat "$out/machine.json"

# preflight: a wgpu adapter must be there before minutes go to PyTorch
if ! "$qnn" bench train --device gpu --seconds 0.2 --batch-size 4 --nfa 4 --nfb 4 --nfc 4 > "$out/preflight.txt" 2>&1; then
    cat "$out/preflight.txt" >&2
    echo "gpu.sh: qnn found no working GPU adapter (Vulkan loader and driver?)" >&2
    exit 1
fi
grep -m1 "bench train on" "$out/preflight.txt" >&2

if [ "$quick" = 1 ]; then
    nets=("1-8 x3|--nla 1 --nfa 8 --nlb 1 --nfb 8 --nlc 1 --nfc 8" "3-16 x3|--nla 3 --nfa 16 --nlb 3 --nfb 16 --nlc 3 --nfc 16")
    batches=(8)
else
    nets=("1-64 x3|--nla 1 --nfa 64 --nlb 1 --nfb 64 --nlc 1 --nfc 64" "3-256 x3|--nla 3 --nfa 256 --nlb 3 --nfb 256 --nlc 3 --nfc 256")
    batches=(64 256)
fi

for net in "${nets[@]}"; do
    label="${net%%|*}"; flags="${net#*|}"
    for batch in "${batches[@]}"; do
        echo "== $label, batch $batch" >&2
        # shellcheck disable=SC2086
        "$qnn" bench train --device gpu --json --seconds "$seconds" --batch-size "$batch" $flags \
            >> "$out/qnn.jsonl" || echo "gpu.sh: qnn bench train failed for $label batch $batch" >&2
        [ "$torch" = 1 ] || continue
        # shellcheck disable=SC2086
        "$python" "$here/torch_qnn.py" bench --device "$torch_device" --seconds "$seconds" --batch "$batch" $flags \
            >> "$out/torch.jsonl" || echo "gpu.sh: torch eager failed for $label batch $batch" >&2
        if [ "$compile" = 1 ]; then
            # shellcheck disable=SC2086
            timeout 100 "$python" "$here/torch_qnn.py" bench --compile --device "$torch_device" --seconds "$seconds" --batch "$batch" $flags \
                >> "$out/torch.jsonl" || echo "gpu.sh: torch.compile failed for $label batch $batch" >&2
        fi
    done
done
echo "== per-kernel times (qnn bench ops --device gpu)" >&2
reps=5; [ "$quick" = 1 ] && reps=1
"$qnn" bench ops --device gpu --json --reps "$reps" > "$out/ops.json" || echo "gpu.sh: qnn bench ops failed" >&2
"$python" "$here/gpu_table.py" "$out"
