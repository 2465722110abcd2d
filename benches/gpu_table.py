#!/usr/bin/env python3
"""Builds the table of benches/gpu.sh from its result folder: images/s of qnn and of PyTorch
(eager, torch.compile) per network and batch, their ratio, each kernel family's share of a qnn
step, and the per-kernel times. Writes DIR/table.md and DIR/table.json and prints the markdown.

    python3 benches/gpu_table.py DIR
"""

import json
import os
import sys


def lines(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            v = json.loads(line)
            out.extend(v if isinstance(v, list) else [v])
    return out


def norm(network):
    """'1-64 ×3, 4-bit relu' and '1-64 x3' name the same blocks."""
    return network.split(",")[0].replace("×", "x").replace(" ", "")


def main():
    d = sys.argv[1]
    machine = json.load(open(os.path.join(d, "machine.json")))
    qnn = lines(os.path.join(d, "qnn.jsonl"))
    torch = lines(os.path.join(d, "torch.jsonl"))
    rows = []
    for q in qnn:
        key = (norm(q["network"]), q["batch"])
        row = {
            "network": q["network"],
            "batch": q["batch"],
            "qnn_images_per_second": q["images_per_second"],
            "qnn_device": q["device"],
            "qnn_kernel_ms_per_step": q.get("kernel_ms_per_step"),
            "qnn_ms_per_step": q["ms_per_step"],
            "families": q.get("families", []),
        }
        for t in torch:
            if "error" in t or (norm(t["network"]), t["batch"]) != key:
                continue
            row[f"torch_{t['mode']}_images_per_second"] = t["images_per_second"]
            row["torch_device"] = t.get("gpu") or t.get("device")
            row["torch_version"] = t.get("torch")
        for mode in ("eager", "compile"):
            t = row.get(f"torch_{mode}_images_per_second")
            if t:
                row[f"ratio_vs_{mode}"] = row["qnn_images_per_second"] / t
        rows.append(row)

    md = []
    gpu = machine.get("gpu", "(no nvidia-smi)")
    md.append(f"Measured {machine['date']} on {gpu}, driver {machine.get('driver', '?')}, {machine['qnn']}; "
              f"torch {rows[0].get('torch_version', '?') if rows else '?'}. Command: `benches/gpu.sh`.")
    md.append("")
    md.append("| network | batch | qnn images/s | PyTorch eager | torch.compile | qnn / eager | qnn / compile |")
    md.append("|---|---|---|---|---|---|---|")
    fmt = lambda v: "–" if v is None else f"{v:,.0f}"
    ratio = lambda v: "–" if v is None else f"{v:.2f}×"
    for r in rows:
        md.append(
            f"| {r['network']} | {r['batch']} | {fmt(r['qnn_images_per_second'])} | "
            f"{fmt(r.get('torch_eager_images_per_second'))} | {fmt(r.get('torch_compile_images_per_second'))} | "
            f"{ratio(r.get('ratio_vs_eager'))} | {ratio(r.get('ratio_vs_compile'))} |"
        )
    md.append("")
    md.append("qnn's step by kernel family (GPU timestamps, one pass per kernel while timing):")
    md.append("")
    md.append("| network | batch | wall ms/step | kernel ms/step | " + " | ".join(
        ["conv forward", "conv grad input", "conv grad weight", "batch norm", "quantizers", "pooling", "optimizer", "other"]) + " |")
    md.append("|---|---|---|---|" + "---|" * 8)
    for r in rows:
        fam = {f["family"]: f for f in r["families"]}
        cells = []
        for name in ["conv forward", "conv grad input", "conv grad weight", "batch norm", "quantizers", "pooling", "optimizer"]:
            f = fam.pop(name, None)
            if f is None:
                cells.append("–")
            else:
                g = f" ({f['gflops']:,.0f} GFLOP/s)" if f.get("gflops") else ""
                cells.append(f"{100 * f['share']:.0f}%{g}")
        cells.append(f"{100 * sum(f['share'] for f in fam.values()):.0f}%")
        k = r["qnn_kernel_ms_per_step"]
        md.append(f"| {r['network']} | {r['batch']} | {r['qnn_ms_per_step']:.2f} | {'–' if k is None else f'{k:.2f}'} | " + " | ".join(cells) + " |")

    ops_path = os.path.join(d, "ops.json")
    ops = json.load(open(ops_path))["ops"] if os.path.exists(ops_path) else []
    if ops:
        md.append("")
        md.append("Per-kernel times, batch 64 (`qnn bench ops --device gpu`):")
        md.append("")
        md.append("| op | shape | wall ms/call | kernel ms/call | rate |")
        md.append("|---|---|---|---|---|")
        for o in ops:
            k = o.get("kernel_ms_per_call")
            md.append(f"| {o['op']} | {o['shape']} | {o['ms_per_call']:.3f} | {'–' if k is None else f'{k:.4f}'} | {o['rate']:.1f} {o['unit']} |")
    text = "\n".join(md) + "\n"
    open(os.path.join(d, "table.md"), "w").write(text)
    json.dump({"machine": machine, "rows": rows, "ops": ops}, open(os.path.join(d, "table.json"), "w"), indent=1)
    print(text)


if __name__ == "__main__":
    main()
