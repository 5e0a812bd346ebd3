#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, engine instrumented too)
# in a build directory of their own and runs each for a bounded time from the
# seeds in fuzz/corpus/<name>/. Exits non-zero if any fuzzer finds a crash,
# leak, UB or timeout; the reproducer is left in <build>/fuzz/artifacts/.
#
#   scripts/fuzz.sh [SECONDS_PER_FUZZER]     (default 30)
#   FUZZ_BUILD_DIR=... FUZZ_JOBS=2 scripts/fuzz.sh 60
#
# Fuzzers whose source (fuzz/fuzz_<name>.cpp) does not exist yet are skipped.
# Reproduce a crash: <build>/fuzz/fuzz_<name> <artifact file>
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-${FUZZ_SECONDS:-30}}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-2}

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang)" >&2; exit 2; }

# Tests, app and benchmarks stay out: only the engine and the fuzzers build.
cmake -S "$root" -B "$build" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCLIPFIND_FUZZ=ON -DCLIPFIND_BUILD_TESTS=OFF -DCLIPFIND_BUILD_APP=OFF \
  -DCLIPFIND_BUILD_BENCH=OFF -DCLIPFIND_CUDA=OFF \
  -DCLIPFIND_FUZZ_SECONDS="$seconds" >/dev/null

targets=()
for name in safetensors tokenizer spm_tokenizer image; do
  if [[ -f $root/fuzz/fuzz_$name.cpp ]]; then
    targets+=("fuzz_$name")
  else
    echo "fuzz.sh: skipping fuzz_$name (fuzz/fuzz_$name.cpp not written yet)"
  fi
done
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz.sh: no fuzzers to run" >&2; exit 2; }

cmake --build "$build" -j"$jobs" --target "${targets[@]}"

# One ctest test per fuzzer (defined in fuzz/CMakeLists.txt): the arguments
# live in one place. Run one at a time: the fuzzers would fight over 2 cores.
regex="^($(IFS='|'; echo "${targets[*]}"))\$"
echo "fuzz.sh: running ${targets[*]} for ${seconds}s each"
if ctest --test-dir "$build/fuzz" -R "$regex" --output-on-failure; then
  echo "fuzz.sh: no crashes"
else
  echo "fuzz.sh: FAILED; reproducers in $build/fuzz/artifacts/" >&2
  exit 1
fi
