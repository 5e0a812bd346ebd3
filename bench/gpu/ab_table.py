"""The side-by-side table of an A/B on the device (gpu_lab.sh ab-env, ab-trees, gemm-race).

    ab_table.py OUT PREFIX LABEL ARM...

reads OUT/PREFIX<arm>.jsonl (bench_gpu --json lines, several runs per arm),
prints items/s per shape for each arm and the ratio of each arm's best run
to the first arm's. LABEL names the arms in the header ("VAR" gives
"VAR=<arm>"; "" gives the arm alone)."""
import json
import os
import sys

out, prefix, label, arms = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
runs = {}
for a in arms:
    path = os.path.join(out, f"{prefix}{a}.jsonl")
    for line in open(path) if os.path.exists(path) else []:
        r = json.loads(line)
        if "tower" not in r:  # frames and peak-GEMM lines
            continue
        runs.setdefault((r["model"], r["tower"], r["batch"], r["seq"]), {}).setdefault(a, []).append(r["items_per_s"])
name = (lambda a: f"{label}={a}") if label else (lambda a: a)
head = " | ".join(f"{name(a)} items/s (runs)" for a in arms)
ratios = " | ".join(f"{a}/{arms[0]}" for a in arms[1:])
print(f"| model | tower | batch | tokens | {head} | {ratios} |")
print("|---|---|---:|---:|" + "---|" * len(arms) + "---:|" * (len(arms) - 1))
for k, d in runs.items():
    cells = " | ".join(", ".join(f"{x:,.0f}" for x in d.get(a, [])) for a in arms)
    base = d.get(arms[0], [])
    rs = " | ".join(f"{max(d[a]) / max(base):.3f}" if base and d.get(a) else "-" for a in arms[1:])
    print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {cells} | {rs} |")
