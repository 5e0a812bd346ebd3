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
VAR=${AB_VAR:?set AB_VAR to the switch to compare, e.g. CLIPFIND_CUDA_PDL}
MODELS=${AB_MODELS:-B/32}
REPEAT=${AB_REPEAT:-2}
VALUES=${AB_VALUES:-0 1}
source scripts/gpu/gpu_build.sh
BUILD=build-gpu
gpu_configure . $BUILD 90 >"$OUT/ab_build.log" 2>&1 && cmake --build $BUILD -j16 --target bench_gpu >>"$OUT/ab_build.log" 2>&1 \
  || { grep -E "error" "$OUT/ab_build.log" | head -20; echo "build failed"; exit 1; }
for v in $VALUES; do rm -f "$OUT/ab_$v.jsonl"; done  # runs append to these
for i in $(seq "$REPEAT"); do
  for v in $VALUES; do
    env "$VAR=$v" timeout 150 $BUILD/bench/gpu/bench_gpu --models "$MODELS" --quick --json "$OUT/ab_$v.jsonl" \
      >>"$OUT/ab_run.log" 2>&1 || echo "bench_gpu $VAR=$v exit $?"
  done
done
python3 bench/gpu/ab_table.py "$OUT" ab_ "$VAR" $VALUES
