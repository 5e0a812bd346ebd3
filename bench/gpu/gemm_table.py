"""Per GEMM shape, every kernel's time from the runner's first-call race.

    gemm_table.py LOG

reads the CLIPFIND_CUDA_GEMM_LOG=1 lines of LOG ("gemm M=.. N=.. K=.. EPI:
NAME T us (cublasLt B us)", or "(cublasLt not a contender)" for a folded
LayerNorm's products) and prints one table per shape, fastest first, with
TFLOP/s and the ratio to cuBLASLt, or else to the fastest kernel. Then, for
each bench_gpu JSON line in LOG that carries them (gpu_clocks.h), the SM clock
and board power sampled over that measurement, with the share of the fp16
peak at that clock (gpu_lab.sh gemm-race)."""
import json
import re
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head

pat = re.compile(r"gemm M=(\d+) N=(\d+) K=(\d+) (\S+): (.+) (-?[\d.]+) us \(cublasLt (?:([\d.]+) us|not a contender)\)")
shapes = {}
for line in open(sys.argv[1], errors="replace"):
    m = pat.match(line.strip())
    if m:
        M, N, K, epi, name, t, base = m.groups()
        first = {"cublasLt": float(base)} if base else {}
        shapes.setdefault((int(M), int(N), int(K), epi), first)[name] = float(t)
for (M, N, K, epi), times in shapes.items():
    if M < 1024:
        continue
    print(f"\n{M}x{N}x{K} {epi}")
    ref = "cublasLt" if "cublasLt" in times else "fastest"
    base = times.get("cublasLt", min((t for t in times.values() if t > 0), default=0))
    for name, t in sorted(times.items(), key=lambda kv: kv[1] if kv[1] > 0 else 1e30):
        tf = 2.0 * M * N * K / (t * 1e-6) / 1e12 if t > 0 else 0
        print(f"  {name:34s} {t:8.1f} us {tf:6.0f} TFLOP/s  {base / t if t > 0 else 0:5.3f}x {ref}")

# The clock and power bench_gpu sampled over each long enough measurement.
for line in open(sys.argv[1], errors="replace"):
    if line.startswith('{"engine"') and '"watts"' in line:
        r = json.loads(line)
        if "tower" not in r:  # frames and peak-GEMM lines
            continue
        peak = f", {r['of_clock_peak']:.2f} of the fp16 peak at that clock" if "of_clock_peak" in r else ""
        print(f"{r['model']} {r['tower']} {r['batch']}: SM clock {r['sm_mhz']:.0f} MHz, power {r['watts']:.0f} W{peak}")
