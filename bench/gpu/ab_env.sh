#!/bin/bash
# A/B of one environment switch on the device machine, in one call: builds
# bench_gpu alone, then runs `bench_gpu --quick` with AB_VAR set to each of
# AB_VALUES (default "0 1") in turn, AB_REPEAT times (so drift between runs
# shows), and prints the items/s side by side per shape, with the ratio of
# each value's best to the first value's.
#
#   AB_VAR=CLIPFIND_CUDA_PDL AB_MODELS=B/32,L/14 OUT=/tmp/out bench/gpu/ab_env.sh
#   AB_VAR=CLIPFIND_CUDA_SMALL_COLS AB_VALUES="8 16 32" OUT=/tmp/out bench/gpu/ab_env.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/bench/out}
VAR=${AB_VAR:?set AB_VAR to the switch to compare, e.g. CLIPFIND_CUDA_PDL}
MODELS=${AB_MODELS:-B/32}
REPEAT=${AB_REPEAT:-2}
VALUES=${AB_VALUES:-0 1}
mkdir -p "$OUT"
source bench/gpu/carried_debs.sh
scripts/fetch-cutlass.sh || echo "no CUTLASS headers: building with cuBLASLt alone"
BUILD=build-gpu
cmake -S . -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLIPFIND_BUILD_APP=OFF -DCLIPFIND_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" -DCMAKE_CUDA_ARCHITECTURES=90 \
  >"$OUT/ab_build.log" 2>&1 && cmake --build $BUILD -j16 --target bench_gpu >>"$OUT/ab_build.log" 2>&1 \
  || { grep -E "error" "$OUT/ab_build.log" | head -20; echo "build failed"; exit 1; }
rm -f "$OUT/ab.jsonl"
for i in $(seq "$REPEAT"); do
  for v in $VALUES; do
    env "$VAR=$v" timeout 150 $BUILD/bench/gpu/bench_gpu --models "$MODELS" --quick --json "$OUT/ab_$v.jsonl" \
      >>"$OUT/ab_run.log" 2>&1 || echo "bench_gpu $VAR=$v exit $?"
  done
done
python3 - "$OUT" "$VAR" $VALUES <<'PY'
import json, os, sys
out, var, values = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = {}
for v in values:
    path = os.path.join(out, f"ab_{v}.jsonl")
    for line in open(path) if os.path.exists(path) else []:
        r = json.loads(line)
        runs.setdefault((r["model"], r["tower"], r["batch"], r["seq"]), {}).setdefault(v, []).append(r["items_per_s"])
head = " | ".join(f"{var}={v} items/s (runs)" for v in values)
ratios = " | ".join(f"{v}/{values[0]}" for v in values[1:])
print(f"| model | tower | batch | tokens | {head} | {ratios} |")
print("|---|---|---:|---:|" + "---|" * len(values) + "---:|" * (len(values) - 1))
for k, d in runs.items():
    cells = " | ".join(", ".join(f"{x:,.0f}" for x in d.get(v, [])) for v in values)
    base = d.get(values[0], [])
    rs = " | ".join(f"{max(d[v]) / max(base):.3f}" if base and d.get(v) else "-" for v in values[1:])
    print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {cells} | {rs} |")
PY
