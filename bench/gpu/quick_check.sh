#!/bin/bash
# A short device round for kernel work, in one call: build the GPU tests and
# bench_gpu (sm_90), run test_cuda_ops (filter QC_FILTER) and test_cuda_model,
# then an A/B of QC_AB_VAR over QC_AB_VALUES (bench/gpu/ab_env.sh) and a
# per-op profile of the batch-1 passes (CLIPFIND_CUDA_PROFILE=graph).
#
#   QC_AB_VAR=CLIPFIND_CUDA_SMALL_ROWS QC_AB_VALUES="16 64" OUT=/tmp/out bench/gpu/quick_check.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source scripts/gpu/gpu_build.sh
BUILD=build-gpu
gpu_configure . $BUILD 90 >"$OUT/qc_build.log" 2>&1
build_targets $BUILD "$OUT/qc_build.log" test_cuda_ops test_cuda_model bench_gpu
stamp "built"
run_gtest "$OUT/qc_ops.log" 200 $BUILD/tests/test_cuda_ops --gtest_filter="${QC_FILTER:-*}"
grep -E "cases" "$OUT/qc_ops.log"
run_gtest "$OUT/qc_model.log" 150 $BUILD/tests/test_cuda_model
stamp "tested"
if [ -n "${QC_AB_VAR:-}" ]; then
  AB_VAR=$QC_AB_VAR AB_VALUES="${QC_AB_VALUES:-0 1}" AB_MODELS=${QC_AB_MODELS:-B/32,L/14} AB_REPEAT=${QC_AB_REPEAT:-2} \
    OUT=$OUT bash bench/gpu/ab_env.sh
  stamp "A/B done"
fi
if [ "${QC_PROFILE:-1}" = 1 ]; then
  CLIPFIND_CUDA_PROFILE=graph timeout 100 $BUILD/bench/gpu/bench_gpu --models B/32 --quick >"$OUT/qc_profile.log" 2>&1
  grep -v "^$" "$OUT/qc_profile.log" | head -120
fi
stamp "done"
