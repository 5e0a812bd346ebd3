#!/bin/bash
# Checks, times and profiles a kernel in one device call: builds
# test_cuda_ops and bench_gpu (sm_90); runs the test_cuda_ops cases in
# NP_TEST_FILTER; runs the CudaOpsPerf cases in NP_TIME_FILTER with
# CLIPFIND_OPS_TIME=1; profiles launch NP_SKIP (default 0) of the kernels
# matching NP_KERNEL (a regex) under NP_PROFILE_FILTER with Nsight Compute, at
# the GPU's own clocks, writing its details page and per-SASS-line source
# counters (stall reasons) to $OUT; then times whole passes with the per-op
# profile (CLIPFIND_CUDA_PROFILE=1) for NP_BENCH ("L/14:256", say).
#
#   NP_KERNEL=attn_wgmma NP_PROFILE_FILTER=CudaOpsPerf.AttentionOccupancy OUT=/tmp/out bench/gpu/ncu_probe.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source scripts/gpu/gpu_build.sh
BUILD=build-gpu
gpu_configure . $BUILD 90 >"$OUT/np_build.log" 2>&1
build_targets $BUILD "$OUT/np_build.log" test_cuda_ops bench_gpu || exit 1
stamp "built"
BIN=$BUILD/tests/test_cuda_ops
if [ -n "${NP_TEST_FILTER:-}" ]; then
  run_gtest "$OUT/np_test.log" 200 $BIN --gtest_filter="$NP_TEST_FILTER"
  stamp "tested"
fi
if [ -n "${NP_TIME_FILTER:-}" ]; then
  CLIPFIND_OPS_TIME=1 timeout 200 $BIN --gtest_filter="$NP_TIME_FILTER" 2>&1 | grep -E "^  |OK|FAILED|SKIPPED" | tee "$OUT/np_time.log"
  stamp "timed"
fi
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
if [ -n "${NP_KERNEL:-}" ]; then
  CLIPFIND_OPS_TIME=1 timeout 300 "$NCU" --clock-control none --kernel-name "regex:$NP_KERNEL" --launch-skip "${NP_SKIP:-0}" --launch-count 1 \
    --set full --import-source no -f -o "$OUT/np" $BIN --gtest_filter="${NP_PROFILE_FILTER:-*}" >"$OUT/np_ncu.log" 2>&1
  echo "ncu exit $?"; tail -3 "$OUT/np_ncu.log"
  "$NCU" --import "$OUT/np.ncu-rep" --page details >"$OUT/np_details.txt" 2>&1
  "$NCU" --import "$OUT/np.ncu-rep" --page source --csv --print-source sass >"$OUT/np_source.csv" 2>&1
  grep -E "Duration|SM Frequency|Issue Slots Busy|Warp Cycles Per Issued|Achieved Active Warps|Registers Per|DRAM Throughput|Compute \(SM\)" \
    "$OUT/np_details.txt" | head -20
  stamp "profiled"
fi
if [ -n "${NP_BENCH:-}" ]; then
  for prof in 0 1; do  # the throughput, then the per-op profile
    CLIPFIND_CUDA_PROFILE=$prof timeout 200 $BUILD/bench/gpu/bench_gpu --models "${NP_BENCH%%:*}" \
      --batches "${NP_BENCH##*:}" >"$OUT/np_bench$prof.log" 2>&1
    echo "bench_gpu (profile $prof) exit $?"
    grep -v "^$" "$OUT/np_bench$prof.log" | head -40
  done
  stamp "benched"
fi
