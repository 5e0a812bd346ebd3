#!/bin/bash
# Correctness round on the device machine (run before calling a GPU change
# done): builds the engine with CUDA and every engine test, runs them all
# (CPU and CUDA golden checks against the committed transformers outputs, the
# CUDA op and model tests), then makes real-shape ViT-B/32 and ViT-L/14
# references with the machine's own transformers and checks the CPU backend
# and CUDA fp32/fp16/bf16 against them.
#
#   OUT=/tmp/out scripts/gpu/verify_round.sh
set -uo pipefail
case "${1:-}" in
  -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
source scripts/gpu/gpu_build.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"

BUILD="build-verify"
gpu_configure . $BUILD "80;90" -DCLIPFIND_BUILD_BENCH=ON >"$OUT/verify_build.log" 2>&1 \
  || { tail -30 "$OUT/verify_build.log"; exit 1; }
cmake --build $BUILD -j16 >>"$OUT/verify_build.log" 2>&1 || { grep -E "error" "$OUT/verify_build.log" | head -30; exit 1; }
echo "=== build ok (sm_80 + sm_90)"

ctest --test-dir $BUILD -j8 --timeout 300 --output-on-failure >"$OUT/verify_ctest.log" 2>&1
echo "=== ctest exit $?"
grep -E "tests passed|tests failed|Failed|\*\*\*" "$OUT/verify_ctest.log" | head -30
$BUILD/tests/test_golden_model 2>&1 | grep -E "^\[golden\].*cuda|SKIPPED|FAILED|PASSED" | head -60

python3 tools/make_reference.py --full /tmp/fullref --only vit_b32 vit_l14 >"$OUT/verify_ref.log" 2>&1 \
  || { tail -20 "$OUT/verify_ref.log"; exit 1; }
CLIPFIND_GOLDEN_ROOT=/tmp/fullref timeout 300 $BUILD/tests/test_golden_model >"$OUT/verify_full.log" 2>&1
echo "=== real shapes vs transformers on this machine: exit $?"
grep -E "^\[golden\]|FAILED|PASSED" "$OUT/verify_full.log"

echo "=== frames: 1080p uint8 from host memory -> GPU preprocessing -> ViT-B/32 fp16"
timeout 120 $BUILD/bench/gpu/bench_frames --frames 256 --json "$OUT/frames.jsonl" 2>&1 | tail -6
