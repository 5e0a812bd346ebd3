# shellcheck shell=bash
# Sourced by the device-machine scripts, from the repository root: unpacks
# the carried Debian packages (carried_debs.sh), fetches the CUTLASS headers
# (carry .deps/cutlass, or the wheel in .deps/), and defines gpu_configure,
# the one CMake configure line for the engine on that machine, with
# build_targets and run_gtest for building and testing after it. Also sets up
# what every script writes with: OUT (default bench/out, created) and stamp,
# which prints a line with the seconds since this file was sourced.
OUT=${OUT:-$ROOT/bench/out}
mkdir -p "$OUT"
T0=$(date +%s)
stamp() { echo "=== [$(($(date +%s) - T0)) s] $*"; }
source scripts/gpu/carried_debs.sh
scripts/fetch-cutlass.sh >/dev/null 2>&1 || echo "no CUTLASS headers: building with cuBLASLt alone"

# gpu_configure SRC BUILD ARCHS [CMAKE_ARGS...]: the engine with CUDA for
# ARCHS ("90", or "80;90"), Release, without the application (the GPU
# machine lacks its libraries), with Ninja where it is installed.
gpu_configure() {
  local src=$1 build=$2 archs=$3
  shift 3
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCLIPFIND_BUILD_APP=OFF -DCLIPFIND_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" -DCMAKE_CUDA_ARCHITECTURES="$archs" "$@"
}

# build_targets BUILD LOG TARGET...: builds each target on its own (so one
# failure does not hide the others), appending to LOG; for each that fails
# prints the first errors and "BUILD FAILED: target". Fails if any did.
build_targets() {
  local build=$1 log=$2 rc=0
  shift 2
  for t in "$@"; do
    cmake --build "$build" -j16 --target "$t" >>"$log" 2>&1 || {
      grep -E "error|Error" "$log" | head -20
      echo "BUILD FAILED: $t"
      rc=1
    }
  done
  return $rc
}

# run_gtest LOG SECONDS BINARY [ARGS...]: runs a gtest binary into LOG under
# a time limit and prints its exit status, the first failures and gtest's
# PASSED/FAILED lines (callers grep LOG for more).
run_gtest() {
  local log=$1 secs=$2 bin=$3
  shift 3
  timeout "$secs" "$bin" "$@" >"$log" 2>&1
  echo "$(basename "$bin") exit $?"
  grep -E -A3 "Failure" "$log" | head -30
  grep -E "^\[  FAILED|^\[  PASSED" "$log"
}
