#!/usr/bin/env bash
# Configures and builds clipfind into ./build (Release). Extra arguments go to
# CMake, e.g. scripts/build.sh -DCLIPFIND_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
cuda=()
if [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  cuda=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda[@]}" "$@" >/dev/null
cmake --build build -j"$(nproc)"
