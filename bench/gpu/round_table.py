"""The table of a GPU round (gpu_lab.sh round): ours against PyTorch.

    round_table.py OUT

reads OUT/bench.jsonl (bench_gpu, bench_frames and torch_bench.py --json
lines) and OUT/test_cuda_model.log ([metric] lines), and prints three
markdown tables: items/s per shape with the ratios to torch eager and
torch.compile, frames against the pinned-copy floor, and the accuracy of each
precision against its fp32 baseline."""
import json
import os
import sys

out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "bench.jsonl"))] if os.path.exists(os.path.join(out, "bench.jsonl")) else []
by = {}
for r in rows:
    if "tower" in r:  # frames rows have none
        by[(r["engine"], r["model"], r["tower"], r["batch"], r["seq"])] = r
ours = [r for r in rows if "tower" in r and r["engine"] == "clipfind" and r["precision"] == "fp16"]
frames = [r for r in rows if r.get("bench") == "frames"]
def fmt(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
# SM MHz and W: medians over the timed calls; of peak: TFLOP/s over the dense
# fp16 peak at that clock (bench_gpu, gpu_clocks.h).
print("| model | tower | batch | tokens | clipfind items/s | ms | wall ms | TFLOP/s | SM MHz | W | of peak | GPU MiB | torch eager items/s | ×eager | torch.compile items/s | ×compile |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in ours:
    k = (r["model"], r["tower"], r["batch"], r["seq"])
    e = by.get(("torch-eager",) + k)
    c = by.get(("torch-compile",) + k)
    ips = r["items_per_s"]
    print(f"| {r['model']} | {r['tower']} | {r['batch']} | {r['seq']} | {fmt(ips)} | {r['ms']:.3f} | {r['wall_ms']:.3f} | "
          f"{r['tflops']:.0f} | {fmt(r.get('sm_mhz'))} | {fmt(r.get('watts'))} | {fmt(r.get('of_clock_peak'), 2)} | "
          f"{r['gpu_mem_mb']:.0f} | {fmt(e and e['items_per_s'])} | "
          f"{fmt(e and ips / e['items_per_s'], 2)} | {fmt(c and c['items_per_s'])} | {fmt(c and ips / c['items_per_s'], 2)} |")
print()
print("| frames | source | frames/s | floor (pinned H2D / frame size) | of floor | H2D GB/s |")
print("|---|---|---:|---:|---:|---:|")
for r in frames:
    print(f"| {r['width']}x{r['height']} → {r['model']} {r['precision']} | {r['source']} | {r['frames_per_s']:,.0f} | "
          f"{r['floor_frames_per_s']:,.0f} | {r['of_floor']:.2f} | {r['h2d_gb_s']:.1f} |")
print()
print("| model | tower | precision | vs | max abs | median rel | min cosine |")
print("|---|---|---|---|---:|---:|---:|")
log = os.path.join(out, "test_cuda_model.log")
if os.path.exists(log):
    for line in open(log):
        if line.startswith("[metric]"):
            kv = dict(p.split("=", 1) for p in line.split()[1:])
            print(f"| {kv['model']} | {kv['tower']} | {kv['precision']} | {kv['vs']} | {float(kv['max_abs']):.2e} | "
                  f"{float(kv['median_rel']):.2e} | {float(kv['min_cos']):.7f} |")
