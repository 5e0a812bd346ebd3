#!/usr/bin/env bash
# Indexing throughput on a 10-minute 1080p H.264 video with a ViT-B/32-shaped
# random model (speed does not depend on the weights), --every 1 and --keyframes,
# plus pure-decode references from the ffmpeg command on the same file.
#   bench/video/run_index_bench.sh [WORKDIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLIPFIND=${CLIPFIND:-$ROOT/build-vid/src/app/clipfind}
W=${1:-/tmp/clipfind-index-bench}
mkdir -p "$W"
[ -f "$W/1080p_10min.mp4" ] || ffmpeg -nostdin -v error -f lavfi -i testsrc2=s=1920x1080:r=25:d=600 \
  -c:v libx264 -preset ultrafast -g 250 -pix_fmt yuv420p "$W/1080p_10min.mp4"
[ -d "$W/vitb32" ] || python3 "$ROOT/bench/video/make_random_vit.py" "$W/vitb32"
echo "== decode only (ffmpeg, all frames / key frames)"
( time ffmpeg -nostdin -v error -i "$W/1080p_10min.mp4" -f null - ) 2>&1 | grep real
( time ffmpeg -nostdin -v error -skip_frame nokey -i "$W/1080p_10min.mp4" -f null - ) 2>&1 | grep real
for mode in "--every 1" "--keyframes"; do
  rm -rf "$W/index"
  echo "== clipfind index $mode"
  "$CLIPFIND" index --index "$W/index" --model "$W/vitb32" --no-progress $mode "$W/1080p_10min.mp4" 2>&1 | tail -1
done
