#!/usr/bin/env bash
# Alternates bench_gemm variants process by process for ROUNDS rounds and
# prints the median GFLOP/s of each variant per shape (one table).
# "oblas-skx" is OpenBLAS told it runs on a Skylake-X (OPENBLAS_CORETYPE):
# 0.3.21 does not know Zen 5 and would otherwise pick its AVX2 kernels.
#   bench/cpu/compare_gemm.sh BUILD_DIR [threads=2] [rounds=5]
set -euo pipefail
bin="$1/bench/bench_gemm"
threads="${2:-2}"
rounds="${3:-5}"
variants=(oblas oblas-skx oblas-T dnnl_sgemm dnnl-mm engine)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for ((r = 0; r < rounds; r++)); do
  for v in "${variants[@]}"; do
    if [ "$v" = oblas-skx ]; then
      OPENBLAS_CORETYPE=SkylakeX "$bin" oblas "$threads" 5 | sed 's/^oblas\t/oblas-skx\t/' >>"$tmp"
    else
      "$bin" "$v" "$threads" 5 >>"$tmp"
    fi
  done
done
python3 - "$tmp" "${variants[@]}" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
variants = sys.argv[2:]
shapes = list(dict.fromkeys(r[1] for r in rows))
print(f"{'shape':16}" + "".join(f"{v:>11}" for v in variants))
for s in shapes:
    cells = []
    for v in variants:
        xs = [float(r[2]) for r in rows if r[0] == v and r[1] == s]
        cells.append(f"{statistics.median(xs):11.1f}")
    print(f"{s:16}" + "".join(cells))
PY
