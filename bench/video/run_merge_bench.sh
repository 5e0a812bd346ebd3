#!/usr/bin/env bash
# Time of `clipfind merge` (issue 30): SHARDS shard indexes of FRAMES/SHARDS
# planted frames each (bench/video/make_planted_index.cpp, DIM wide, under the
# tiny test model's fingerprint), merged into a new index. The shards are
# copies of one planted index, each under its own video paths.
#
#   bench/video/run_merge_bench.sh [BUILD_DIR] [FRAMES] [SHARDS] [DIM]
#
# 2 CPU cores, load ~10 from other builds: 100,000 frames x 512 in 4 shards
# 1.9 s (55 MB max RSS), 1,000,000 in 8 shards 25 s (80 MB), 2.3 GB on disk.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(realpath "${1:-$ROOT/build}")
FRAMES=${2:-100000}
SHARDS=${3:-4}
DIM=${4:-512}
MODEL=$ROOT/tests/data/models/full_fp32_quickgelu_p32
WORK=$(mktemp -d /tmp/clipfind-merge-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
g++ -std=c++20 -O2 -I"$ROOT/src" "$ROOT/bench/video/make_planted_index.cpp" \
    "$BUILD/src/index/libclipfind_index.a" "$BUILD/src/clip/libclip_engine.a" -lsqlite3 -pthread \
    -o "$WORK/make_planted_index"
"$WORK/make_planted_index" "$WORK/base" "$MODEL" $((FRAMES / SHARDS)) "$DIM" >/dev/null
shards=()
for i in $(seq 0 $((SHARDS - 1))); do
  cp -r "$WORK/base" "$WORK/shard$i"
  # Each copy its own videos: merge refuses one video in two shards.
  sqlite3 "$WORK/shard$i/catalog.sqlite" "UPDATE videos SET path = replace(path, '/planted/', '/planted$i/')"
  "$BUILD/src/app/clipfind" merge "$WORK/shard$i" --index "$WORK/tmp$i" >/dev/null 2>&1  # vectors.f16 current
  rm -rf "$WORK/shard$i" && mv "$WORK/tmp$i" "$WORK/shard$i"
  shards+=("$WORK/shard$i")
done
sync
echo "merge: $SHARDS shards, $FRAMES frames x $DIM dims"
/usr/bin/time -f "  %e s wall, %M KB max RSS" "$BUILD/src/app/clipfind" merge "${shards[@]}" --index "$WORK/merged" --json
du -sh "$WORK/merged" | sed 's/^/  merged index: /'
