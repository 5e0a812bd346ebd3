#!/usr/bin/env bash
# One device call that checks the whole program on the GPU machine (issues 29
# and 32): builds FFmpeg, clipfind, its tests and the Python extension
# (scripts/gpu/build-app.sh), runs the GPU and video tests, the GPU indexing
# benchmark, and the Python package against transformers on the GPU.
#
# Here, once: scripts/gpu/fetch-debs.sh && scripts/gpu/fetch-ffmpeg.sh &&
#   scripts/gpu/make-test-videos.sh .media/videos &&
#   scripts/gpu/make-bench-videos.sh .media/bench-videos && scripts/fetch-cutlass.sh &&
#   python3 -m pip download nanobind==3.1.0 --no-deps -d .debs/whl
# Device call (carry .debs, .media and .deps/nvidia_cutlass-4.2.0.0-py3-none-any.whl;
# the three with the tracked files must stay under the 64 MiB a call carries:
# 63.7 MiB on 2026-12-07, so no --rate clip; without the wheel the build
# takes cuBLASLt alone, faster, where the GEMM speed does not matter):
#   OUT=$OUT scripts/gpu/app_round.sh [STEP...]
# STEPs (default all): build tests python index (run in that order). Logs and JSON lines go to $OUT.
# PY_BENCH=0: the python step checks the imports only, without the benchmark;
# the index step passes RUNS, PEER, COPIES and BUDGET to run_gpu_index_bench.sh.
# TARGETS (e.g. "clipfind test_gpu_index _core") builds only those, and the
# tests step then runs the test_* among them directly instead of ctest.
# APP_CMAKE_ARGS: more CMake options (-DCLIPFIND_EXPERIMENTS=ON for A/B runs).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/app-round}
mkdir -p "$OUT"
BUILD=build/app-gpu
steps=${*:-build tests python index}
T0=$(date +%s)
stamp() { echo "=== [$(($(date +%s) - T0)) s] $*"; }
has() { [[ " $steps " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader

# nanobind for the Python extension, from the carried wheel (no network there).
PYLIB=/tmp/pylib
if [ ! -d $PYLIB/nanobind ]; then
  python3 -m pip install -q --no-index --no-deps --target $PYLIB .debs/whl/nanobind-*.whl ||
    echo "no nanobind wheel in .debs/whl: the Python step will be skipped"
fi
NB_DIR=$(PYTHONPATH=$PYLIB python3 -m nanobind --cmake_dir 2>/dev/null || true)

if has build; then
  py_args=""
  [ -n "$NB_DIR" ] && py_args="-DCLIPFIND_BUILD_PYTHON=ON -Dnanobind_DIR=$NB_DIR"
  CMAKE_ARGS="$py_args ${APP_CMAKE_ARGS:-}" scripts/gpu/build-app.sh $BUILD ${TARGETS:-} >"$OUT/build.log" 2>&1 ||
    { tail -40 "$OUT/build.log"; grep -B2 -A12 -E "error|undefined|FAILED" $BUILD.build.log | head -80
      echo "BUILD FAILED"; exit 1; }
  grep "^===" "$OUT/build.log"
fi
export PATH=/tmp/ffmpeg/bin:$PATH LD_LIBRARY_PATH=/tmp/ffmpeg/lib:${LD_LIBRARY_PATH:-}

if has tests && [ -n "${TARGETS:-}" ]; then
  stamp "tests among TARGETS"
  for t in $TARGETS; do
    [[ $t == test_* ]] || continue
    CLIPFIND_GPU_TEST_VIDEOS=$PWD/.media/videos timeout 200 $BUILD/tests/$t >"$OUT/$t.log" 2>&1
    echo "$t exit $?: $(grep -E '^\[ *(PASSED|FAILED|SKIPPED) *\] [0-9]' "$OUT/$t.log" | tr '\n' ' ')"
    grep -iE "FAILED|cosine|frames/s|^(FAULTS|RESUME|LANES|PARTS)|^\[golden\].*cuda" "$OUT/$t.log" | head -40
  done
elif has tests; then
  stamp "GPU, video and index tests"
  # DecodeColour encodes its clips with libx264, which the FFmpeg built there
  # lacks (it runs in CI, and compares CPU decoding only).
  CLIPFIND_GPU_TEST_VIDEOS=$PWD/.media/videos ctest --test-dir $BUILD -j4 --timeout 300 --output-on-failure \
    -R 'cuda|golden|gpu|decode|video|indexer|yuv|preprocess' -E DecodeColour >"$OUT/ctest.log" 2>&1
  echo "ctest exit $?"
  grep -E "tests passed|tests failed|\(Failed\)|\(SEGFAULT\)|Not Run|\*\*\*" "$OUT/ctest.log" | head -30
  # The figures the GPU tests print (accuracy of GPU against CPU decoding, decode rates).
  grep -hE "^\[(gpu|decode|accuracy|nvdec)[^]]*\]|cosine|frames/s" "$OUT/ctest.log" | head -40
fi

if has python && [ -n "$NB_DIR" ]; then
  stamp "Python package on the GPU against transformers"
  cmake --build $BUILD --target _core >"$OUT/python_build.log" 2>&1 ||
    grep -B2 -A20 -E "error|undefined|FAILED" "$OUT/python_build.log" | head -60
  so=$(ls $BUILD/python/_core*.so 2>/dev/null | head -1)
  if [ -z "$so" ]; then
    echo "no _core extension in $BUILD/python"
  else
    rm -rf $PYLIB/clipfind && mkdir -p $PYLIB/clipfind && cp python/clipfind/*.py "$so" $PYLIB/clipfind/
    # A module that links libstdc++ statically, or exports C++ runtime
    # symbols, is what crashed there (python/CMakeLists.txt).
    echo "_core: libstdc++.so NEEDED: $(readelf -d "$so" | grep -c 'libstdc++'), std:: symbols exported:" \
      "$(nm -D --defined-only "$so" | grep -c ' _ZNS[tsb]'), all exported: $(nm -D --defined-only "$so" | wc -l)"
    # Issue 29: the extension crashed on import there after numpy or torch
    # until 35dc216; kept as a check. Each order in a child; for a crash,
    # the libraries loaded and the last initialiser called (LD_DEBUG) and
    # Python's own trace go to $OUT.
    # Then both used in one process, torch first and clipfind first (a GPU
    # engine on the tiny reference model beside a CUDA tensor).
    use="e = clipfind.Engine('tests/data/models/full_fp32_quickgelu_p32', device='cuda'); \
import torch; x = torch.ones(4, device='cuda') * 2; print(e.embed_texts(['a dog']).shape, float(x.sum()))"
    for first in "" numpy torch torch_use clipfind_use; do
      case $first in
        torch_use) code="import torch; torch.zeros(1, device='cuda'); import clipfind; $use" ;;
        clipfind_use) code="import clipfind; $use" ;;
        *) code="${first:+import $first; }import clipfind; print('import ok')" ;;
      esac
      log="$OUT/import_after_${first:-nothing}.log"
      if PYTHONPATH=$PYLIB timeout 120 python3 -X faulthandler -c "$code" >"$log" 2>&1; then
        echo "import clipfind after ${first:-nothing}: ok: $(tail -1 "$log")"
      else
        echo "import clipfind after ${first:-nothing}: FAILED (rc $?), $log:"; tail -5 "$log"
        command -v gdb >/dev/null &&
          PYTHONPATH=$PYLIB timeout 120 gdb -batch -ex run -ex bt --args python3 -c "$code" 2>&1 | grep -E "^#" | head -15
        PYTHONPATH=$PYLIB LD_DEBUG=files,bindings LD_DEBUG_OUTPUT="$OUT/ld_after_${first:-nothing}" \
          timeout 120 python3 -c "$code" >/dev/null 2>&1 || true
        ld="$OUT/ld_after_${first:-nothing}"
        grep -h "calling init" "$ld".* 2>/dev/null | tail -3
        grep -h "binding file" "$ld".* 2>/dev/null | tail -3
        # What the extension and the libraries it brings bound to (the
        # whole log of a torch import is hundreds of MB), and what loaded.
        grep -hE "calling init|file=.*\[0\]|binding file [^ ]*(_core|dnnl|sentencepiece|protobuf|cublas|utf8proc|gomp)" \
          "$ld".* 2>/dev/null | gzip >"$ld.filtered.gz"
        rm -f "$ld".[0-9]*
      fi
    done
    if [ "${PY_BENCH:-1}" = 1 ]; then
      python3 bench/video/make_random_vit.py /tmp/b32 --text-from models/shapes-clip --text-hidden 512 \
        --text-layers 12 --text-heads 8 >/dev/null
      PYTHONPATH=$PYLIB timeout 300 python3 bench/python/bench_python.py --model /tmp/b32 --device cuda \
        --precision fp16 --image-size 224 --rounds 3 --imports 2 2>&1 | tee "$OUT/python_gpu.log" | tail -30
    fi
  fi
fi
if has index; then
  stamp "GPU indexing benchmark"
  # BUDGET: seconds for the benchmark; by default what is left of ROUND_LIMIT
  # (the device call's limit, less a margin) after the steps before it.
  budget=${BUDGET:-$((${ROUND_LIMIT:-560} - ($(date +%s) - T0)))}
  CLIPFIND=$BUILD/src/app/clipfind COPIES=${COPIES:-48} CLIPS=.media/bench-videos BUDGET=$budget OUT="$OUT" \
    bench/video/run_gpu_index_bench.sh >"$OUT/gpu_index.log" 2>&1
  grep -E "^RESULT|ceiling|SKIP" "$OUT/gpu_index.log" | head -30
fi

stamp "done"
