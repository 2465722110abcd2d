#!/usr/bin/env bash
# qnn's CPU backend against PyTorch (eager, CPU) and Larq (TensorFlow, CPU): training images/s on
# the same networks, side by side in one invocation, with one markdown table.
#
#   benches/cpu.sh [--seconds S] [--quick] [--qnn PATH] [--out DIR] [--threads N] [--rounds R]
#
# Configurations (CIFAR-10 shape 3×32×32, batch 64, generated data):
#   a  1-64 ×3, 4-bit relu                 (the seed's example network)
#   b  1-64 ×3, binary (-nb 0 -nl hardtanh -sym 1)
#   c  2-64 / 3-128 / 3-128, 4-bit relu
# For each, one after the other (config by config, so that the machine's noise hits all alike):
#   qnn      `qnn bench train --device cpu --json --batch-size 64 --seconds S` + the network flags
#   PyTorch  `$TORCH_PY benches/torch_qnn.py bench --device cpu --batch 64 --seconds S` + flags
#            (eager; the same quantizers, STEs and update rule, checked against qnn by tests/torch_twin.rs)
#   Larq     `$LARQ_PY benches/larq_qnn.py bench --threads N --batch 64 --seconds S` + flags
#            (tf.function; ste_sign / qnn's quantizers as Larq quantizers; see its docstring)
# Writes DIR/results.jsonl (one line per run: config, framework, status, the tool's own JSON)
# and DIR/table.md (images/s of each and the ratios qnn/peer), and prints the table.
#
#   --seconds S  seconds of timed steps per run (default 6; PyTorch always times at least 10 steps)
#   --quick      tiny networks (1-8 ×3, 2-8/3-16/3-16), batch 16, 1 s: checks the script itself
#   --qnn PATH   the qnn binary (default target/release/qnn; QNN_BIN also works); never built here
#   --out DIR    result folder (default target/bench-cpu)
#   --threads N  threads for every framework (default 2): RAYON_NUM_THREADS for qnn,
#                OMP_NUM_THREADS/MKL_NUM_THREADS for PyTorch, intra/inter-op threads for TensorFlow
#   --rounds R   repeat the whole interleaved sequence R times (default 1); the table shows the
#                median images/s per framework and configuration
# Interpreters: TORCH_PY (default /opt/torchvenv/bin/python), LARQ_PY (default
# /opt/larqvenv/bin/python). A peer whose interpreter or package is missing is "not installed"
# in the table, not a failure.
#
# Larq environment used when this was written (Larq needs Keras 2; Python 3.11.7 from pyenv):
#   /root/.pyenv/versions/3.11.7/bin/python3 -m venv /opt/larqvenv
#   /opt/larqvenv/bin/python -m pip install "tensorflow-cpu==2.15.1" "larq==0.14.0"
#   → tensorflow-cpu 2.15.1, keras 2.15.0, larq 0.14.0, numpy 1.26.4
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
qnn="${QNN_BIN:-$root/target/release/qnn}"
out="$root/target/bench-cpu"
seconds=6
quick=0
threads=2
rounds=1
torch_py="${TORCH_PY:-/opt/torchvenv/bin/python}"
larq_py="${LARQ_PY:-/opt/larqvenv/bin/python}"
need() { [ $# -ge 2 ] || { echo "cpu.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) need "$@"; seconds="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        --qnn) need "$@"; qnn="$2"; shift 2 ;;
        --out) need "$@"; out="$2"; shift 2 ;;
        --threads) need "$@"; threads="$2"; shift 2 ;;
        --rounds) need "$@"; rounds="$2"; shift 2 ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        *) echo "cpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$threads" in ''|*[!0-9]*|0) echo "cpu.sh: --threads wants a positive integer" >&2; exit 2 ;; esac
case "$rounds" in ''|*[!0-9]*|0) echo "cpu.sh: --rounds wants a positive integer" >&2; exit 2 ;; esac
[ -x "$qnn" ] || { echo "cpu.sh: no qnn binary at $qnn (build with cargo build --release, or pass --qnn PATH)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "cpu.sh: python3 is needed for the table" >&2; exit 2; }
batch=64
if [ "$quick" = 1 ]; then
    seconds=1
    batch=16
    configs=(
        "a|1-8 x3, 4-bit relu|--nla 1 --nfa 8 --nlb 1 --nfb 8 --nlc 1 --nfc 8 --bits 4 --nl relu --sym 0"
        "b|1-8 x3, binary|--nla 1 --nfa 8 --nlb 1 --nfb 8 --nlc 1 --nfc 8 --bits 0 --nl hardtanh --sym 1"
        "c|2-8/3-16/3-16, 4-bit relu|--nla 2 --nfa 8 --nlb 3 --nfb 16 --nlc 3 --nfc 16 --bits 4 --nl relu --sym 0"
    )
else
    configs=(
        "a|1-64 x3, 4-bit relu|--nla 1 --nfa 64 --nlb 1 --nfb 64 --nlc 1 --nfc 64 --bits 4 --nl relu --sym 0"
        "b|1-64 x3, binary|--nla 1 --nfa 64 --nlb 1 --nfb 64 --nlc 1 --nfc 64 --bits 0 --nl hardtanh --sym 1"
        "c|2-64/3-128/3-128, 4-bit relu|--nla 2 --nfa 64 --nlb 3 --nfb 128 --nlc 3 --nfc 128 --bits 4 --nl relu --sym 0"
    )
fi
# a generous limit per run: PyTorch eager on 2 cores needs seconds per step on network c
limit=$(python3 -c 'import sys; print(int(max(600, 30 * float(sys.argv[1]))))' "$seconds" 2>/dev/null) \
    || { echo "cpu.sh: --seconds wants a number" >&2; exit 2; }

mkdir -p "$out" || exit 1
results="$out/results.jsonl"
: > "$results"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

# which peers are there (a missing one is reported, not fatal)
torch_ok=0; larq_ok=0
if [ -x "$torch_py" ] && "$torch_py" -c "import torch" >/dev/null 2>&1; then torch_ok=1
else echo "cpu.sh: PyTorch not installed ($torch_py cannot import torch); its column says so" >&2; fi
if [ -x "$larq_py" ] && "$larq_py" -c "import tensorflow, larq" >/dev/null 2>&1; then larq_ok=1
else echo "cpu.sh: Larq not installed ($larq_py cannot import tensorflow and larq); its column says so" >&2; fi

cpu_model=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')
machine=$(python3 - "$cpu_model" "$(nproc 2>/dev/null || echo '?')" "$("$qnn" --version 2>/dev/null)" \
    "$threads" "$seconds" "$batch" "$quick" "$rounds" <<'EOF'
import json, platform, sys, time
cpu, cores, qnn, threads, seconds, batch, quick, rounds = sys.argv[1:]
print(json.dumps({"kind": "machine", "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                  "host": platform.node(), "cpu": cpu, "cores": cores, "qnn": qnn,
                  "threads": int(threads), "seconds": float(seconds), "batch": int(batch),
                  "quick": quick == "1", "rounds": int(rounds)}))
EOF
)
echo "$machine" >> "$results"

# record CONFIG LABEL FRAMEWORK ROUND STATUS FILE: one line of results.jsonl around the tool's JSON
record() {
    python3 - "$@" >> "$results" <<'EOF'
import json, sys
config, label, framework, rnd, status, path = sys.argv[1:]
result, text = None, ""
try:
    text = open(path).read().strip()
    for line in reversed(text.splitlines()):  # the tool's JSON is its last line of stdout
        if line.startswith("{") or line.startswith("["):
            result = json.loads(line)
            break
except (OSError, ValueError):
    pass
if isinstance(result, list):  # qnn prints one row per backend
    result = result[0] if result else None
if status == "ok" and (result is None or "error" in result or "images_per_second" not in result):
    status = "failed"
print(json.dumps({"config": config, "label": label, "framework": framework, "round": int(rnd),
                  "status": status, "result": result}))
EOF
}

# run CONFIG LABEL FRAMEWORK ROUND COMMAND...: runs one measurement and records it
run() {
    local config="$1" label="$2" framework="$3" rnd="$4"; shift 4
    local tmp rc status
    tmp=$(mktemp)
    echo "== [$rnd/$rounds] $config ($label): $framework" >&2
    timeout "$limit" "$@" > "$tmp" 2> "$tmp.err"
    rc=$?
    case "$rc" in
        0) status=ok ;;
        77) status="not installed" ;;
        124) status="timed out"; echo "cpu.sh: $framework on $config ran past ${limit}s" >&2 ;;
        *) status=failed ;;
    esac
    if [ "$status" != ok ]; then
        echo "cpu.sh: $framework on $config: exit $rc" >&2
        tail -n 5 "$tmp.err" >&2
    fi
    record "$config" "$label" "$framework" "$rnd" "$status" "$tmp"
    python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]); x=r["result"] or {}; print("   ", r["status"], "%.1f images/s" % x["images_per_second"] if "images_per_second" in x else "")' "$results" >&2
    rm -f "$tmp" "$tmp.err"
}

for rnd in $(seq 1 "$rounds"); do
    for cfg in "${configs[@]}"; do
        IFS='|' read -r config label flags <<< "$cfg"
        read -r -a f <<< "$flags"
        run "$config" "$label" qnn "$rnd" env RAYON_NUM_THREADS="$threads" \
            "$qnn" bench train --device cpu --json --batch-size "$batch" --seconds "$seconds" "${f[@]}"
        if [ "$torch_ok" = 1 ]; then
            run "$config" "$label" pytorch "$rnd" env OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
                "$torch_py" "$here/torch_qnn.py" bench --device cpu --batch "$batch" --seconds "$seconds" "${f[@]}"
        else
            echo "{\"config\": \"$config\", \"label\": \"$label\", \"framework\": \"pytorch\", \"round\": $rnd, \"status\": \"not installed\", \"result\": null}" >> "$results"
        fi
        if [ "$larq_ok" = 1 ]; then
            run "$config" "$label" larq "$rnd" \
                "$larq_py" "$here/larq_qnn.py" bench --threads "$threads" --batch "$batch" --seconds "$seconds" "${f[@]}"
        else
            echo "{\"config\": \"$config\", \"label\": \"$label\", \"framework\": \"larq\", \"round\": $rnd, \"status\": \"not installed\", \"result\": null}" >> "$results"
        fi
    done
done

python3 - "$results" "$out/table.md" <<'EOF'
import json, statistics, sys
src, dst = sys.argv[1:]
rows = [json.loads(l) for l in open(src) if l.strip()]
machine = next(r for r in rows if r.get("kind") == "machine")
runs = [r for r in rows if r.get("kind") != "machine"]
configs = []
for r in runs:
    if (r["config"], r["label"]) not in configs:
        configs.append((r["config"], r["label"]))
frameworks = ("qnn", "pytorch", "larq")
names = {"qnn": "qnn (CPU backend)", "pytorch": "PyTorch eager", "larq": "Larq (TF)"}

def cell(config, fw):
    """(median images/s or None, text for the table)."""
    mine = [r for r in runs if r["config"] == config and r["framework"] == fw]
    ips = [r["result"]["images_per_second"] for r in mine if r["status"] == "ok"]
    if ips:
        m = statistics.median(ips)
        spread = f" ({min(ips):,.0f}–{max(ips):,.0f})" if len(ips) > 1 else ""
        return m, f"{m:,.1f}{spread}"
    statuses = sorted({r["status"] for r in mine}) or ["not run"]
    return None, " / ".join(statuses)

versions = {}
for r in runs:
    res = r["result"] or {}
    if r["framework"] == "pytorch" and res.get("torch"):
        versions["pytorch"] = f"torch {res['torch']}"
    if r["framework"] == "larq" and res.get("tf"):
        versions["larq"] = f"tensorflow {res['tf']}, keras {res.get('keras')}, larq {res.get('larq')}"
md = [
    f"CPU training throughput, measured {machine['date']} on {machine['host']} "
    f"({machine['cpu'] or 'CPU ?'}, {machine['cores']} cores), {machine['threads']} threads each, "
    f"batch {machine['batch']}, {machine['seconds']:g} s per run"
    + (f", median of {machine['rounds']} interleaved rounds (min–max)" if machine["rounds"] > 1 else "")
    + (", QUICK (tiny networks)" if machine["quick"] else "") + ".",
    f"{machine['qnn']}; " + "; ".join(versions.get(f, f"{names[f]}: not installed") for f in ("pytorch", "larq"))
    + ". Command: `benches/cpu.sh`.",
    "",
    "| config | network | qnn images/s | PyTorch eager images/s | Larq images/s | qnn / PyTorch | qnn / Larq |",
    "|---|---|---|---|---|---|---|",
]
for config, label in configs:
    cells = {fw: cell(config, fw) for fw in frameworks}
    q = cells["qnn"][0]
    ratio = lambda p: "–" if q is None or p is None else f"{q / p:.2f}×"
    md.append(f"| {config} | {label} | {cells['qnn'][1]} | {cells['pytorch'][1]} | {cells['larq'][1]} | "
              f"{ratio(cells['pytorch'][0])} | {ratio(cells['larq'][0])} |")
md.append("")
md.append("Images/s of training steps (forward, backward, update) on generated data; a ratio above 1× "
          "means qnn is faster. PyTorch: benches/torch_qnn.py (eager). Larq: benches/larq_qnn.py "
          "(tf.function, NHWC; its docstring lists what differs from qnn's math).")
text = "\n".join(md) + "\n"
open(dst, "w").write(text)
print(text, end="")
EOF
echo "cpu.sh: wrote $results and $out/table.md" >&2
