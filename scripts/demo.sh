#!/usr/bin/env bash
# The main job: find the moments of a video from a sentence. On a fresh Debian
# machine, in a few minutes:
#   1. installs what building clipfind needs (scripts/install-deps.sh --build),
#   2. builds the clipfind program alone (Release, CPU, no tests) in build-demo/,
#   3. generates the sample video of the shapes world and its script
#      (samples/shapes.mp4 + samples/shapes.json, tools/make_shapes_video.py),
#   4. indexes it with models/shapes-clip (samples/shapes-index),
#   5. searches sentences drawn from the script ("two blue squares", "a yellow
#      star on the left") and prints each hit's time and whether its segment
#      overlaps a time the script says the sentence holds ("transit": the shapes
#      it names are moving in, across or out; tools/shapes_queries.py),
#   6. installs clipfind and the model (cmake --install) into ~/.local.
#
#   scripts/demo.sh ["your own sentence"...]
#
# DEMO_SEED picks another video (default 1), DEMO_QUERIES how many sentences
# are drawn (default 8), DEMO_PREFIX where clipfind is installed (default
# ~/.local; DEMO_PREFIX= installs nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${DEMO_SEED:-1}
n_queries=${DEMO_QUERIES:-8}
build=build-demo
bin=$build/src/app/clipfind
model=models/shapes-clip
video=samples/shapes.mp4
index=samples/shapes-index
prefix=${DEMO_PREFIX-$HOME/.local}

now() { date +%s.%N; }
start=$(now); last=$start; laps=()
lap() {  # lap NAME: time since the previous lap
  local t; t=$(now)
  laps+=("$1 $(awk -v a="$last" -v b="$t" 'BEGIN { printf "%.1f", b - a }') s")
  last=$t
}

echo "== 1. dependencies"
scripts/install-deps.sh --build
lap deps
# A python3 that has numpy (python3-numpy is Debian's; pyenv or a venv may come first on PATH).
py=python3
"$py" -c "import numpy" 2>/dev/null || py=/usr/bin/python3
"$py" -c "import numpy" 2>/dev/null || { echo "demo.sh: no python3 with numpy (apt-get install python3-numpy)" >&2; exit 1; }

echo "== 2. build clipfind ($build)"
# A build folder of its own: scripts/build.sh's ./build keeps the tests and the options it was given.
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLIPFIND_CUDA=OFF \
        -DCLIPFIND_BUILD_TESTS=OFF -DCLIPFIND_BUILD_BENCH=OFF >/dev/null
fi
if ! cmake --build "$build" --target clipfind -j"$(nproc)" >"$build/build.log" 2>&1; then
  tail -n 40 "$build/build.log" >&2
  echo "demo.sh: building clipfind failed (whole log: $build/build.log)" >&2
  exit 1
fi
lap build

echo "== 3. sample video"
"$py" tools/make_shapes_video.py -o "$video" --seed "$seed"
lap video

echo "== 4. index ($index)"
"$bin" index "$video" --model "$model" --index "$index" --no-progress
lap index

echo "== 5. search"
queries=()
for q in "$@"; do queries+=(--query "$q"); done
"$py" tools/shapes_queries.py --clipfind "$bin" --index "$index" --script "${video%.mp4}.json" \
      -n "$n_queries" --top 3 "${queries[@]}"
lap search

if [ -n "$prefix" ]; then
  echo "== 6. install ($prefix)"
  cmake --install "$build" --prefix "$prefix" >"$build/install.log"
  bin=$prefix/bin/clipfind
  echo "clipfind installed as $bin, its model as $prefix/share/clipfind/models/shapes-clip"
  case ":$PATH:" in
    *":$prefix/bin:"*) bin=clipfind ;;
    *) echo "$prefix/bin is not on your PATH: add it (export PATH=\"$prefix/bin:\$PATH\") to type just 'clipfind'" ;;
  esac
  lap install
fi

echo "== done in $(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s (${laps[*]})"
echo "Try: $bin search --index $index \"a yellow star on the left\""
echo "     $bin frame $video --at 00:00:10 -o frame.jpg"
