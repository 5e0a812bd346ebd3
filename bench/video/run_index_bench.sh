#!/usr/bin/env bash
# Indexing throughput with a ViT-B/32-shaped random model (speed does not
# depend on the weights):
#   1. a 10-minute 1080p H.264 video, --every 1 and --keyframes, plus
#      pure-decode references from the ffmpeg command on the same file;
#   2. 20 short 1080p clips (3 s, x264 veryfast: B-frames), one file at a
#      time (--decoders 1) and several in flight (the default).
#   bench/video/run_index_bench.sh [WORKDIR] [CLIPFIND_ARGS...]
# CLIPFIND=path/to/clipfind picks the binary (BEFORE=another one runs it too,
# for before/after tables; it gets no --decoders). `time` adds process CPU.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLIPFIND=${CLIPFIND:-$ROOT/build-index/src/app/clipfind}
W=${1:-/tmp/clipfind-index-bench}
shift || true
mkdir -p "$W/clips"
[ -f "$W/1080p_10min.mp4" ] || ffmpeg -nostdin -v error -f lavfi -i testsrc2=s=1920x1080:r=25:d=600 \
  -c:v libx264 -preset ultrafast -g 250 -pix_fmt yuv420p "$W/1080p_10min.mp4"
for i in $(seq 1 20); do
  n=$(printf %02d "$i")
  [ -f "$W/clips/c$n.mp4" ] || ffmpeg -nostdin -v error -f lavfi -i "testsrc2=s=1920x1080:r=25:d=3,hue=h=$((i * 17))" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p "$W/clips/c$n.mp4"
done
[ -d "$W/vitb32" ] || python3 "$ROOT/bench/video/make_random_vit.py" "$W/vitb32"

# clipfind index BINARY INPUT ARGS...: the summary lines and the process's wall/CPU.
index() {
  local bin=$1 input=$2
  shift 2
  rm -rf "$W/index"
  /usr/bin/time -f "  process: wall %e s, user %U s, system %S s" \
    "$bin" index --index "$W/index" --model "$W/vitb32" --no-progress "$@" "$input" 2>&1 | grep -v '^indexed '
}
echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== decode only (ffmpeg, all frames / key frames)"
( time ffmpeg -nostdin -v error -i "$W/1080p_10min.mp4" -f null - ) 2>&1 | grep real
( time ffmpeg -nostdin -v error -skip_frame nokey -i "$W/1080p_10min.mp4" -f null - ) 2>&1 | grep real
for mode in "--every 1" "--keyframes"; do
  [ -n "${BEFORE:-}" ] && { echo "== before: clipfind index $mode"; index "$BEFORE" "$W/1080p_10min.mp4" $mode; }
  echo "== clipfind index $mode $*"
  index "$CLIPFIND" "$W/1080p_10min.mp4" $mode "$@"
done
echo "== 20 x 3 s 1080p clips"
[ -n "${BEFORE:-}" ] && { echo "-- before"; index "$BEFORE" "$W/clips"; }
echo "-- one at a time (--decoders 1) $*"
index "$CLIPFIND" "$W/clips" --decoders 1 "$@"
echo "-- in flight (default) $*"
index "$CLIPFIND" "$W/clips" "$@"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
