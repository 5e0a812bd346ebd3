#!/bin/bash
# A/B of two source trees on the device machine, in one call: the working
# tree against an older revision packed beforehand with
#   git archive -o ab-old/old.tar REV        (ab-old/ is untracked: it travels)
# builds bench_gpu in both (in parallel), then runs `bench_gpu --quick`
# alternately, AB_REPEAT times each, and prints items/s side by side per
# shape with the ratio new/old (best of each).
#
#   AB_MODELS=B/32 OUT=/tmp/out bench/gpu/ab_trees.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
MODELS=${AB_MODELS:-B/32}
REPEAT=${AB_REPEAT:-3}
TAR=${AB_OLD_TAR:-ab-old/old.tar}
[ -f "$TAR" ] || { echo "no $TAR: pack the old revision with git archive first"; exit 1; }
OLD=/tmp/ab-old-tree
rm -rf "$OLD" && mkdir -p "$OLD" && tar -xf "$TAR" -C "$OLD"
for d in .deps .debs; do [ -e "$d" ] && ln -sfn "$ROOT/$d" "$OLD/$d"; done
source scripts/gpu/gpu_build.sh
build() {  # $1 = source tree
  gpu_configure "$1" "$1/build-gpu" 90 && cmake --build "$1/build-gpu" -j8 --target bench_gpu
}
build "$OLD" >"$OUT/ab_old_build.log" 2>&1 &
build "$ROOT" >"$OUT/ab_new_build.log" 2>&1
wait
for t in old new; do
  b=$([ $t = old ] && echo "$OLD" || echo "$ROOT")/build-gpu/bench/gpu/bench_gpu
  [ -x "$b" ] || { grep -E "error" "$OUT/ab_${t}_build.log" | head; echo "build of the $t tree failed"; exit 1; }
done
rm -f "$OUT"/ab_tree_*.jsonl
for i in $(seq "$REPEAT"); do
  for t in old new; do
    b=$([ $t = old ] && echo "$OLD" || echo "$ROOT")/build-gpu/bench/gpu/bench_gpu
    timeout 150 "$b" --models "$MODELS" --quick --json "$OUT/ab_tree_$t.jsonl" >>"$OUT/ab_tree_run.log" 2>&1 \
      || echo "bench_gpu ($t) exit $?"
  done
done
python3 bench/gpu/ab_table.py "$OUT" ab_tree_ "" old new
