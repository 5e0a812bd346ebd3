#!/usr/bin/env bash
# The ANN index benchmark (issue 30) over planted clustered frames: builds
# bench_ann against $BUILD's index library and FAISS, then runs it per size,
# search pinned to CORES (default: the first two, the 2-core target).
#   bench/video/run_ann_bench.sh [FRAMES...]     (default: 1000000 3000000)
# Environment: DIM (512), QUERIES (200), NPROBES (16,32,64,128), RERANKS (2,4), QUERY_NOISE (0.5),
# CORES (0,1), OUT (a file for the JSON lines), and, read by bench_ann itself:
#   TABLE_FILE  a path: the fp16 rows live in that file, mapped shared, so the page cache holds them
#               (as clipfind maps vectors.f16); needed where FRAMES x DIM x 2 bytes exceed memory
#               (30M x 512 = 31 GB). A file of an earlier run with the same FRAMES, DIM and generator
#               (PATH.meta says so) is reused without planting; else it is truncated and planted anew.
#               Unset: the rows are in memory. One file serves one size: with several FRAMES each
#               size plants it again.
#   EXACT_TIMED number of queries per noise level whose exact search latency is timed (20; 0: none);
#               each is a full scan. The exact answers of all queries come from one pass regardless.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DIM=${DIM:-512}
ninja -C "$BUILD" clipfind_index clip_engine >/dev/null
BIN=$BUILD/bench_ann
g++ -std=c++20 -O2 -march=native -I"$ROOT/src" "$ROOT/bench/video/bench_ann.cpp" \
  "$BUILD/src/index/libclipfind_index.a" "$BUILD/src/clip/libclip_engine.a" -lsqlite3 -lfaiss -fopenmp \
  -lblas -llapack -pthread -o "$BIN"
[ $# -gt 0 ] || set -- 1000000 3000000
for n in "$@"; do
  echo "== $n frames x $DIM, search on cores ${CORES:-0,1}${TABLE_FILE:+, rows in $TABLE_FILE}; load: $(uptime)"
  # A passive OpenMP wait: spinning threads cost a loaded machine dearly.
  OMP_WAIT_POLICY=passive taskset -c "${CORES:-0,1}" "$BIN" "$n" "$DIM" "${QUERIES:-200}" \
    "${NPROBES:-16,32,64,128}" "${RERANKS:-2,4}" | tee -a "${OUT:-/dev/null}"
done
