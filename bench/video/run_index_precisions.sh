#!/usr/bin/env bash
# `clipfind index --every 1 --device cpu` of the 10-minute 1080p video in fp32, bf16 and int8,
# alternating for ROUNDS rounds (issue 28). WORKDIR holds what run_index_bench.sh makes
# (1080p_10min.mp4 and the random ViT-B/32 vitb32/); run that once first.
#   bench/video/run_index_precisions.sh [WORKDIR] [ROUNDS]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${CLIPFIND:-$ROOT/build/src/app/clipfind}
W=${1:-/tmp/clipfind-index-bench}
ROUNDS=${2:-2}
for round in $(seq 1 "$ROUNDS"); do
  for p in fp32 bf16 int8; do
    rm -rf $W/index
    echo "== round $round precision $p load $(cut -d' ' -f1-3 /proc/loadavg)"
    /usr/bin/time -f "  process: wall %e s, user %U s, system %S s" $B index --index $W/index --model $W/vitb32 --no-progress --device cpu --precision $p --every 1 $W/1080p_10min.mp4 2>&1 | grep -v '^indexed '
  done
done
