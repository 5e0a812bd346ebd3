#!/usr/bin/env bash
# Search latency over planted frames: the in-memory search alone
# (bench_search), then whole `clipfind search` calls over an index of the same
# size (clustered CLIP-like frames, planted_clusters.h) with its ANN index
# (vectors.ann), with --exact, and with the frames read from SQLite.
# bench/video/run_ann_bench.sh measures the ANN index itself.
#   bench/video/run_search_bench.sh [FRAMES] [DIM] [WORKDIR]
# (bench/CMakeLists.txt belongs to the engine's benchmarks; these two small
# programs are built here against $BUILD's libraries.)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-index}
N=${1:-1000000}
DIM=${2:-512}
W=${3:-/tmp/clipfind-search-bench}
CLIPFIND=${CLIPFIND:-$BUILD/src/app/clipfind}
ninja -C "$BUILD" clipfind clipfind_index >/dev/null
LIBS=("$BUILD/src/index/libclipfind_index.a" "$BUILD/src/clip/libclip_engine.a" -lsqlite3 -lfaiss -fopenmp -lblas
  -llapack -pthread)
for b in bench_search make_planted_index; do
  g++ -std=c++20 -O2 -march=native -I"$ROOT/src" "$ROOT/bench/video/$b.cpp" "${LIBS[@]}" -o "$BUILD/$b"
done
echo "== in-memory search (top-k + merge), $N x $DIM"
"$BUILD/bench_search" "$N" "$DIM"

mkdir -p "$W"
MODEL=$W/model-$DIM
[ -d "$MODEL" ] || python3 "$ROOT/bench/video/make_random_vit.py" "$MODEL" --hidden 64 --layers 1 --heads 2 \
  --proj "$DIM" --text-from "$ROOT/models/shapes-clip" >/dev/null
INDEX=$W/planted-clustered-$N-$DIM
[ -f "$INDEX/catalog.sqlite" ] || "$BUILD/make_planted_index" "$INDEX" "$MODEL" "$N" "$DIM" clustered ann

# Median wall time of 7 calls (after one warm-up call), and the last call's split.
time_search() {
  "$CLIPFIND" search --index "$INDEX" "a red circle" -k 10 "$@" >/dev/null 2>&1
  local times=()
  for _ in 1 2 3 4 5 6 7; do
    local t0 t1
    t0=$(date +%s%N)
    "$CLIPFIND" search --index "$INDEX" "a red circle" -k 10 --timings "$@" >/dev/null 2>"$W/last.err"
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 4p | xargs printf "  median wall %s ms of 7 calls; "
  grep -E "timings|ann:" "$W/last.err"
}
echo "== clipfind search, $N frames mapped from vectors.f16, candidates from vectors.ann"
time_search
echo "== clipfind search --exact, $N frames mapped from vectors.f16"
time_search --exact
echo "== clipfind search, $N frames read from SQLite (vectors.f16 moved away)"
mv "$INDEX/vectors.f16" "$INDEX/vectors.f16.away"
time_search
mv "$INDEX/vectors.f16.away" "$INDEX/vectors.f16"
