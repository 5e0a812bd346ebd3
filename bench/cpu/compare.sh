#!/usr/bin/env bash
# Our CPU backend (fp32, bf16, int8) against ONNX Runtime (fp32, and its own
# dynamic int8 quantisation of the same export) on ViT-B/32 shapes, same
# machine, same thread count, alternating process by process (the order
# rotates every round) so that load from other users hits all alike; prints
# the median of each case over the rounds and the ratios.
#
#   bench/cpu/compare.sh BUILD_DIR [rounds=3] [threads=2]
#
# BUILD_DIR holds bench/bench_cpu. PYTHON (default /work/venv-ref/bin/python)
# needs torch, transformers, onnx and onnxruntime; the ONNX files are written
# once to bench/out/ (git-ignored). CASES (default image,query,text) narrows
# what both sides run; ENGINES (default "ours ours-bf16 ours-int8 ort
# ort-int8") which engines.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: compare.sh BUILD_DIR [rounds] [threads]}"
rounds="${2:-3}"
threads="${3:-2}"
python="${PYTHON:-/work/venv-ref/bin/python}"
cases="${CASES:-image,query,text}"
read -r -a engines <<<"${ENGINES:-ours ours-bf16 ours-int8 ort ort-int8}"
ours="$build/bench/bench_cpu"
[ -x "$ours" ] || { echo "compare.sh: $ours not found; build the bench_cpu target" >&2; exit 1; }

"$python" "$here/run_ort.py" --export-only
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
run() {
  local common=(--threads "$threads" --min-seconds 2 --cases "$cases")
  case "$1" in
    ours) "$ours" "${common[@]}" ;;
    ours-*) "$ours" "${common[@]}" --precision "${1#ours-}" ;;
    ort) "$python" "$here/run_ort.py" "${common[@]}" ;;
    ort-int8) "$python" "$here/run_ort.py" "${common[@]}" --int8 ;;
  esac >>"$tmp"
}
echo "# load before: $(uptime)" >&2
for ((r = 0; r < rounds; r++)); do
  n=${#engines[@]}
  for ((i = 0; i < n; i++)); do run "${engines[$(((i + r) % n))]}"; done
  echo "# round $((r + 1))/$rounds done; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

"$python" "$here/compare_table.py" "$tmp" "$rounds" "$threads"
