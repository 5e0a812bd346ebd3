#!/bin/bash
# The large GEMMs on the device machine, in one call: builds the engine
# (sm_90), checks every sm90 kernel against the CPU reference
# (CudaOps.Sm90GemmVariants; GX_FILTER for others), then:
#  1. one bench_gpu run per GX_MODELS entry (MODEL:BATCH) with every kernel
#     raced, printing each GEMM shape's first-call race (gemm_table.py) and
#     the SM clock and power bench_gpu sampled over each measurement;
#  2. an A/B of whole passes over GX_AB (space-separated VAR=value settings,
#     "-" for none; e.g. CLIPFIND_CUDA_SM90_SKIP=2x1 leaves those kernels
#     out of the race), GX_REPEAT times, through ab_table.py;
#  3. the per-op profile (CLIPFIND_CUDA_PROFILE=1) of GX_PROFILE_MODEL
#     (MODEL:BATCH, default B/32:1024) under the first and last GX_AB
#     settings.
#
# New kernels to try go into sm90_gemm_kernel.cuh's list for a round; the
# race shows where each would win.
#
#   GX_AB="CLIPFIND_CUDA_CUTLASS=0 -" OUT=/tmp/out bench/gpu/gemm_race.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source scripts/gpu/gpu_build.sh
BUILD=build-gx
MODELS=${GX_MODELS:-B/32:1024 L/14:256}
AB=(${GX_AB:--})
gpu_configure . $BUILD 90 >"$OUT/gx_build.log" 2>&1
build_targets $BUILD "$OUT/gx_build.log" test_cuda_ops bench_gpu || exit 1
stamp "built"
run_gtest "$OUT/gx_ops.log" 300 $BUILD/tests/test_cuda_ops --gtest_filter="${GX_FILTER:-CudaOps.Sm90GemmVariants}"
stamp "tested"

bench() {  # bench() SETTING MODEL:BATCH LOG [extra bench_gpu args]
  local setting=$1 m=$2 log=$3
  shift 3
  local envs=()
  [ "$setting" != "-" ] && envs=("$setting")
  env "${envs[@]}" timeout 200 $BUILD/bench/gpu/bench_gpu --models "${m%%:*}" --batches "${m##*:}" "$@" >"$log" 2>&1 ||
    echo "bench_gpu $setting $m exit $?"
}

for m in $MODELS; do
  tag=${m//\//}; tag=${tag//:/_}
  CLIPFIND_CUDA_GEMM_LOG=1 bench - "$m" "$OUT/gx_race_$tag.log"
  echo "## race $m"
  python3 bench/gpu/gemm_table.py "$OUT/gx_race_$tag.log"
  # The clock and power bench_gpu sampled over each long enough measurement (gpu_clocks.h).
  python3 - "$OUT/gx_race_$tag.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.startswith('{"engine"') and '"watts"' in line:
        r = json.loads(line)
        if "tower" not in r:  # frames and peak-GEMM lines
            continue
        peak = f", {r['of_clock_peak']:.2f} of the fp16 peak at that clock" if "of_clock_peak" in r else ""
        print(f"{r['model']} {r['tower']} {r['batch']}: SM clock {r['sm_mhz']:.0f} MHz, power {r['watts']:.0f} W{peak}")
PY
done
stamp "raced"

for i in $(seq "${GX_REPEAT:-2}"); do
  for k in "${!AB[@]}"; do
    for m in $MODELS; do
      [ "$i" -gt 1 ] && [ "${m%%:*}" != B/32 ] && continue  # the large models once
      bench "${AB[$k]}" "$m" "$OUT/gx_ab_run.log" --json "$OUT/gx_ab_$k.jsonl"
    done
  done
done
echo "## A/B arms: $(for k in "${!AB[@]}"; do echo -n "$k=${AB[$k]}  "; done)"
python3 bench/gpu/ab_table.py "$OUT" gx_ab_ "" $(seq 0 $((${#AB[@]} - 1)))
stamp "A/B done"

if [ "${GX_PROFILE:-1}" = 1 ]; then
  PM=${GX_PROFILE_MODEL:-B/32:1024}
  for k in 0 $((${#AB[@]} - 1)); do
    CLIPFIND_CUDA_PROFILE=1 bench "${AB[$k]}" "$PM" "$OUT/gx_profile.log"
    echo "## profile $PM ${AB[$k]}"
    grep "^#" "$OUT/gx_profile.log" | grep -A12 "vision n=${PM##*:}"
  done
fi
rm -f "$OUT/gx_smi.log" "$OUT/gx_ab_run.log" "$OUT/gx_profile.log"  # summarised above; the fetch takes 8 files
stamp "done"
