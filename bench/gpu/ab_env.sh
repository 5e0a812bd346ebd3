#!/bin/bash
# A/B of one environment switch on the device machine, in one call: builds
# bench_gpu alone, then runs `bench_gpu --quick` with AB_VAR=0 and AB_VAR=1
# alternately (AB_REPEAT times each, so drift between runs shows) and prints
# the items/s of both side by side per shape, with the ratio 1/0.
#
#   AB_VAR=CLIPFIND_CUDA_PDL AB_MODELS=B/32,L/14 OUT=/tmp/out bench/gpu/ab_env.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/bench/out}
VAR=${AB_VAR:?set AB_VAR to the switch to compare, e.g. CLIPFIND_CUDA_PDL}
MODELS=${AB_MODELS:-B/32}
REPEAT=${AB_REPEAT:-2}
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
  for v in 0 1; do
    env "$VAR=$v" timeout 150 $BUILD/bench/gpu/bench_gpu --models "$MODELS" --quick --json "$OUT/ab_$v.jsonl" \
      >>"$OUT/ab_run.log" 2>&1 || echo "bench_gpu $VAR=$v exit $?"
  done
done
python3 - "$OUT" "$VAR" <<'PY'
import json, os, sys
out, var = sys.argv[1], sys.argv[2]
runs = {}
for v in ("0", "1"):
    path = os.path.join(out, f"ab_{v}.jsonl")
    for line in open(path) if os.path.exists(path) else []:
        r = json.loads(line)
        runs.setdefault((r["model"], r["tower"], r["batch"], r["seq"]), {}).setdefault(v, []).append(r["items_per_s"])
print(f"| model | tower | batch | tokens | {var}=0 items/s (runs) | {var}=1 items/s (runs) | 1/0 (best of each) |")
print("|---|---|---:|---:|---|---|---:|")
for k, d in runs.items():
    a, b = d.get("0", []), d.get("1", [])
    ratio = f"{max(b) / max(a):.3f}" if a and b else "-"
    print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {', '.join(f'{x:,.0f}' for x in a)} | "
          f"{', '.join(f'{x:,.0f}' for x in b)} | {ratio} |")
PY
