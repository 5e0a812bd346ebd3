#!/usr/bin/env bash
# Our CPU backend against ONNX Runtime on ViT-B/32 shapes, same machine, same
# thread count, alternating process by process (the order flips every round)
# so that load from other users hits both alike; prints the median of each
# case over the rounds and the ratio.
#
#   bench/cpu/compare.sh BUILD_DIR [rounds=3] [threads=2]
#
# BUILD_DIR holds bench/bench_cpu. PYTHON (default /work/venv-ref/bin/python)
# needs torch, transformers, onnx and onnxruntime; the ONNX files are written
# once to bench/out/ (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: compare.sh BUILD_DIR [rounds] [threads]}"
rounds="${2:-3}"
threads="${3:-2}"
python="${PYTHON:-/work/venv-ref/bin/python}"
ours="$build/bench/bench_cpu"
[ -x "$ours" ] || { echo "compare.sh: $ours not found; build the bench_cpu target" >&2; exit 1; }

"$python" "$here/run_ort.py" --export-only
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
run_ours() { "$ours" --threads "$threads" --min-seconds 2 >>"$tmp"; }
run_ort() { "$python" "$here/run_ort.py" --threads "$threads" --min-seconds 2 >>"$tmp"; }
for ((r = 0; r < rounds; r++)); do
  if ((r % 2 == 0)); then run_ours; run_ort; else run_ort; run_ours; fi
  echo "# round $((r + 1))/$rounds done" >&2
done

"$python" - "$tmp" "$rounds" "$threads" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
med = {}
for eng, case, batch, sec, _, _ in rows:
    med.setdefault((eng, case, int(batch)), []).append(float(sec))
med = {k: statistics.median(v) for k, v in med.items()}
macs = {"image": 4.4095e9, "text7": 12 * (7 * (4 * 512**2 + 2 * 512 * 2048) + 2 * 49 * 512) + 512 * 512,
        "text77": 12 * (77 * (4 * 512**2 + 2 * 512 * 2048) + 2 * 77**2 * 512) + 512 * 512}
label = {"image": "image tower", "text7": "text, 7 tokens", "text77": "text, 77 tokens"}
print(f"median of {sys.argv[2]} alternating rounds, {sys.argv[3]} threads each")
print(f"{'case':17} {'batch':>5} | {'ours ms':>9} {'ours/s':>8} {'GFLOP/s':>8} | {'ORT ms':>9} {'ORT/s':>8} | {'ours/ORT':>8}")
for case in ("image", "text7", "text77"):
    for batch in (1, 8, 32):
        if ("ours", case, batch) not in med or ("ort", case, batch) not in med:
            continue
        a, b = med[("ours", case, batch)], med[("ort", case, batch)]
        print(f"{label[case]:17} {batch:5} | {a * 1e3:9.2f} {batch / a:8.1f} {2 * macs[case] * batch / a / 1e9:8.0f} |"
              f" {b * 1e3:9.2f} {batch / b:8.1f} | {b / a:7.2f}x")
PY
