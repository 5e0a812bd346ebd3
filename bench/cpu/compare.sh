#!/usr/bin/env bash
# Our CPU backend (fp32, bf16, int8) against ONNX Runtime (fp32, and its own
# dynamic int8 quantisation of the same export) on ViT-B/32 shapes (or, with
# MODEL=siglip-b16, SigLIP B/16-224's: texts of 64 tokens), same machine,
# same thread count, alternating process by process (the order rotates every
# round) so that load from other users hits all alike; prints the median of
# each case over the rounds and the ratios, then the CPU's fp32 / bf16 / int8
# arithmetic ceilings (bench_peak, best of three).
#
#   bench/cpu/compare.sh BUILD_DIR [rounds=3] [threads=2]
#
# BUILD_DIR holds bench/bench_cpu. PYTHON (default /work/venv-ref/bin/python)
# needs torch, transformers, onnx and onnxruntime (siglip-b16: numpy,
# safetensors, onnx and onnxruntime, no torch); the ONNX files are written
# once to bench/out/ (git-ignored). MODEL (default clip-b32, or siglip-b16)
# is run_ort.py's --model; bench_cpu runs the same shape. CASES (default
# image,query,text; siglip-b16 has no query case) narrows what both sides
# run; ENGINES (default "ours ours-bf16 ours-int8 ort ort-int8") which
# engines. MIN_SECONDS (default 2) is each case's timing floor on both sides.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: compare.sh BUILD_DIR [rounds] [threads]}"
rounds="${2:-3}"
threads="${3:-2}"
python="${PYTHON:-/work/venv-ref/bin/python}"
model="${MODEL:-clip-b32}"
case "$model" in
  clip-b32) ours_model=B/32 ;;
  siglip-b16) ours_model=B/16-SigLIP ;;
  *) echo "compare.sh: MODEL=$model: expected clip-b32 or siglip-b16" >&2; exit 2 ;;
esac
cases="${CASES:-image,query,text}"
min_seconds="${MIN_SECONDS:-2}"
read -r -a engines <<<"${ENGINES:-ours ours-bf16 ours-int8 ort ort-int8}"
ours="$build/bench/bench_cpu"
[ -x "$ours" ] || { echo "compare.sh: $ours not found; build the bench_cpu target" >&2; exit 1; }

"$python" "$here/run_ort.py" --model "$model" --export-only
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
run() {
  local common=(--threads "$threads" --min-seconds "$min_seconds" --cases "$cases")
  case "$1" in
    ours) "$ours" --model "$ours_model" "${common[@]}" ;;
    ours-*) "$ours" --model "$ours_model" "${common[@]}" --precision "${1#ours-}" ;;
    ort) "$python" "$here/run_ort.py" --model "$model" "${common[@]}" ;;
    ort-int8) "$python" "$here/run_ort.py" --model "$model" "${common[@]}" --int8 ;;
  esac >>"$tmp"
}
echo "# load before: $(uptime)" >&2
for ((r = 0; r < rounds; r++)); do
  n=${#engines[@]}
  for ((i = 0; i < n; i++)); do run "${engines[$(((i + r) % n))]}"; done
  echo "# round $((r + 1))/$rounds done; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

"$python" "$here/compare_table.py" "$tmp" "$rounds" "$threads" "$model"
# The arithmetic ceilings each precision's GEMMs work against, right after
# (best of three: other users' load only lowers them).
peak="$build/bench/bench_peak"
if [ -x "$peak" ]; then
  echo
  for i in 1 2 3; do "$peak" "$threads"; done | awk -F'\t' '
    /^#/ && !head++ { print; next }
    /^precision/ { if (!cols++) print; next }
    NF == 3 { if (!($1 in best) || $3 > best[$1]) { best[$1] = $3; one[$1] = $2 }; if (!seen[$1]++) order[++n] = $1 }
    END { for (i = 1; i <= n; i++) printf "%s\t%s\t%s\n", order[i], one[order[i]], best[order[i]] }'
fi
