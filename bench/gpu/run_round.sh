#!/bin/bash
# One GPU round on the device machine, designed to finish inside one
# 10-minute call:
#   1. unpack the carried Debian packages (.debs/) into /tmp/debroot
#   2. build the engine (no application), the GPU tests and bench_gpu
#   3. run the GPU tests (test_cuda_ops also times the ops at real shapes)
#   4. bench_gpu (our engine), torch_bench.py eager, then torch.compile
#      with whatever time is left
#   5. print one table: ours vs PyTorch, with ratios, and the accuracy figures
# Logs and JSON lines go to $OUT (the device tool brings back 8 files at most:
# build.log, test_cuda_ops.log, test_cuda_model.log, bench_gpu.log, torch.log,
# bench.jsonl, table.md, plus the caller's own log).
#
#   OUT=/tmp/out bench/gpu/run_round.sh            # ROUND_BUDGET=560 seconds by default
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUDGET=${ROUND_BUDGET:-560}
left() { echo $((BUDGET - ($(date +%s) - T0))); }  # T0, OUT and stamp: from gpu_build.sh
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

# ---- 1. carried packages (utf8proc, oneDNN + OpenCL loader it links), CUTLASS --
source scripts/gpu/gpu_build.sh
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1

# ---- 2. build -------------------------------------------------------------------
stamp "configure"
BUILD=build-gpu
gpu_configure . $BUILD 90 >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; echo "configure failed"; }
stamp "build"
build_targets $BUILD "$OUT/build.log" clip_cuda test_cuda_ops bench_gpu bench_frames test_cuda_model test_cuda_preprocess
stamp "built"

# ---- 3. GPU tests -----------------------------------------------------------------
if [ -x $BUILD/tests/test_cuda_ops ]; then
  stamp "test_cuda_ops"
  CLIPFIND_OPS_TIME=1 CLIPFIND_CUDA_GEMM_LOG=1 run_gtest "$OUT/test_cuda_ops.log" 150 $BUILD/tests/test_cuda_ops
  grep -E " us " "$OUT/test_cuda_ops.log" | grep -v "^gemm M=" | head -70
  echo "sm90 vs cuBLASLt at real shapes (first-call tuning):"
  grep -E "^gemm M=(51200|65792) " "$OUT/test_cuda_ops.log" | head -30
fi
if [ -x $BUILD/tests/test_cuda_model ]; then
  stamp "test_cuda_model"
  run_gtest "$OUT/test_cuda_model.log" 240 $BUILD/tests/test_cuda_model
  grep -E ": done in" "$OUT/test_cuda_model.log" | head -30
fi

# ---- 4. benchmarks -----------------------------------------------------------------
rm -f "$OUT/bench.jsonl"
if [ -x $BUILD/bench/gpu/bench_gpu ]; then
  stamp "bench_gpu"
  timeout 150 $BUILD/bench/gpu/bench_gpu --json "$OUT/bench.jsonl" >"$OUT/bench_gpu.log" 2>&1
  rc=$?; echo "bench_gpu exit $rc"; [ $rc -ne 0 ] && tail -5 "$OUT/bench_gpu.log"
  grep "^#" "$OUT/bench_gpu.log"
  timeout 90 $BUILD/bench/gpu/bench_frames --json "$OUT/bench.jsonl" 2>&1 | tail -5
  stamp "per-op profile"
  CLIPFIND_CUDA_PROFILE=1 timeout 60 $BUILD/bench/gpu/bench_gpu --models B/32,L/14 --quick >>"$OUT/bench_gpu.log" 2>&1
  grep -E "^# profile|^#   " "$OUT/bench_gpu.log" | head -80
  stamp "GEMM autotuning A/B (CLIPFIND_CUDA_GEMM_TUNE=0: cuBLASLt's first heuristic pick)"
  CLIPFIND_CUDA_GEMM_TUNE=0 timeout 60 $BUILD/bench/gpu/bench_gpu --models B/32 --quick >>"$OUT/bench_gpu.log" 2>&1
  grep '"engine"' "$OUT/bench_gpu.log" | tail -5 | sed 's/^/untuned: /'
fi
if [ "${ROUND_TORCH:-1}" = 0 ]; then
  echo "PyTorch skipped (ROUND_TORCH=0)"
else
  stamp "torch eager"
  PYTHONUNBUFFERED=1 timeout 170 python3 bench/gpu/torch_bench.py --mode eager --json "$OUT/bench.jsonl" \
    >"$OUT/torch.log" 2>&1
  rc=$?; echo "torch eager exit $rc"; [ $rc -ne 0 ] && tail -5 "$OUT/torch.log"
fi
REM=$(($(left) - 25))
if [ "${ROUND_COMPILE:-1}" = 0 ] || [ "${ROUND_TORCH:-1}" = 0 ]; then
  echo "torch.compile skipped (ROUND_COMPILE=0)"
elif [ $REM -gt 90 ]; then
  stamp "torch compile (budget ${REM} s)"
  PYTHONUNBUFFERED=1 timeout $((REM + 15)) python3 bench/gpu/torch_bench.py --mode compile --budget $REM \
    --json "$OUT/bench.jsonl" >>"$OUT/torch.log" 2>&1
  rc=$?; echo "torch compile exit $rc"; [ $rc -ne 0 ] && tail -5 "$OUT/torch.log"
  grep "^# skip" "$OUT/torch.log"
else
  echo "no time left for torch.compile"
fi

# ---- 5. one table ------------------------------------------------------------------
stamp "table"
python3 - "$OUT" <<'EOF' | tee "$OUT/table.md"
import json, os, re, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "bench.jsonl"))] if os.path.exists(os.path.join(out, "bench.jsonl")) else []
by = {}
for r in rows:
    if "tower" in r:  # frames rows have none
        by[(r["engine"], r["model"], r["tower"], r["batch"], r["seq"])] = r
ours = [r for r in rows if r["engine"] == "clipfind" and r["precision"] == "fp16" and "tower" in r]
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
EOF
stamp "done"
