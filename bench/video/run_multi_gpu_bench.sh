#!/usr/bin/env bash
# Issue 31: `clipfind index --every 1` on every GPU of one host against one
# GPU, in one device call on a kind with several GPUs (nvidia-h100-x8, ...):
#   1. --device cuda:0 on COPIES copies of each clip in CLIPS;
#   2. --device cuda:all on GPUS x COPIES copies (the same work per GPU);
# then the scaling: frames embedded per second with all GPUs over one GPU's
# rate (target: at least 0.875 x GPUS), and each GPU's share from the
# summary's lane lines (frames, embed busy %, starved). Both runs go through
# run_gpu_index_bench.sh (ViT-B/32 fp16, NVDEC and CPU decoders), without
# its ceilings and peer. RESULT lines and $OUT/{one,all}/gpu_index.jsonl as
# there; "SCALING" gives the ratio.
#   CLIPFIND=build/app-gpu/src/app/clipfind bench/video/run_multi_gpu_bench.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
COPIES=${COPIES:-24}
BUDGET=${BUDGET:-480}
OUT=${OUT:-$ROOT/bench/out}
T0=$(date +%s)
echo "== $GPUS GPUs: one GPU on $COPIES copies of each clip, then all on $((GPUS * COPIES))"
run() {  # run NAME DEVICE COPIES BUDGET
  RUNS=every1 PEER=0 CEILING=0 DEVICE=$2 COPIES=$3 BUDGET=$4 OUT=$OUT/$1 W=/tmp/multi-gpu-$1 \
    "$ROOT/bench/video/run_gpu_index_bench.sh"
}
run one cuda:0 "$COPIES" $((BUDGET / 3))
run all cuda:all $((GPUS * COPIES)) $((BUDGET - ($(date +%s) - T0)))
rate() { grep -o '"embedded_per_s":[0-9.]*' "$OUT/$1/gpu_index.jsonl" | head -1 | cut -d: -f2; }
one=$(rate one) all=$(rate all)
if [ -n "$one" ] && [ -n "$all" ]; then
  awk -v one="$one" -v all="$all" -v g="$GPUS" 'BEGIN {
    printf "SCALING {\"gpus\":%d,\"one_gpu_frames_per_s\":%.1f,\"all_gpus_frames_per_s\":%.1f,\"speedup\":%.2f,\"per_gpu_efficiency\":%.3f}\n",
      g, one, all, all / one, all / one / g }'
else
  echo "SCALING: a run did not finish (see above)"
fi
