#!/usr/bin/env bash
# Builds bench_search against build-vid's index library and runs it.
# (bench/CMakeLists.txt belongs to the engine's benchmarks; this stays apart.)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-vid}
ninja -C "$BUILD" clipfind_index >/dev/null
g++ -std=c++20 -O2 -march=native -I"$ROOT/src" "$ROOT/bench/video/bench_search.cpp" \
    "$BUILD/src/index/libclipfind_index.a" -lsqlite3 -o "$BUILD/bench_search"
"$BUILD/bench_search" "$@"
