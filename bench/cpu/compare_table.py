#!/usr/bin/env python3
"""The table of bench/cpu/compare.sh: medians over rounds of the lines that
bench_cpu and run_ort.py print (engine, case, batch, seconds, items/s,
GFLOP/s), one row per case and batch, and the ratios issues 26 and 28 ask
for (fp32/ORT: ORT's time over ours, the speed-up).

    compare_table.py LINES_FILE ROUNDS THREADS [MODEL]
"""
import statistics
import sys

ENGINES = ["ours", "ours-bf16", "ours-int8", "ort", "ort-int8"]
# (column title, numerator engine, denominator engine): speed-ups as time ratios.
RATIOS = [("bf16/fp32", "ours", "ours-bf16"), ("int8/fp32", "ours", "ours-int8"),
          ("fp32/ORT", "ort", "ours"), ("bf16/ORTi8", "ort-int8", "ours-bf16"),
          ("int8/ORTi8", "ort-int8", "ours-int8")]


def main():
    path, rounds, threads = sys.argv[1], sys.argv[2], sys.argv[3]
    model = sys.argv[4] if len(sys.argv) > 4 else "clip-b32"
    times, flops = {}, {}
    for line in open(path):
        if not line.strip() or line.startswith("#"):
            continue
        engine, case, batch, sec, _, gflops = line.rstrip("\n").split("\t")[:6]
        times.setdefault((engine, case, int(batch)), []).append(float(sec))
        # Both sides count the same FLOPs per item (bench/model_flops.h).
        flops.setdefault(case, float(gflops) * 1e9 * float(sec) / int(batch))
    med = {k: statistics.median(v) for k, v in times.items()}
    engines = [e for e in ENGINES if any(k[0] == e for k in med)]
    cases = sorted({k[1] for k in med}, key=lambda c: (c != "image", len(c), c))
    print(f"{model}: median of {rounds} alternating rounds, {threads} threads each; ms per call "
          f"(GFLOP/s of the full model in brackets); ratios are speed-ups")
    head = f"{'case':16} {'batch':>5} |" + "".join(f" {e:>16}" for e in engines) + " |"
    head += "".join(f" {t:>10}" for t, a, b in RATIOS if a in engines and b in engines)
    print(head)
    for case in cases:
        label = "image tower" if case == "image" else f"text, {case[4:]} tokens"
        for batch in (1, 8, 32):
            if not any((e, case, batch) in med for e in engines):
                continue
            row = f"{label:16} {batch:5} |"
            for e in engines:
                s = med.get((e, case, batch))
                row += f" {'-':>16}" if s is None else \
                    f" {s * 1e3:8.2f} ({flops[case] * batch / s / 1e9:4.0f})"
            row += " |"
            for _, a, b in RATIOS:
                if a in engines and b in engines:
                    x, y = med.get((a, case, batch)), med.get((b, case, batch))
                    row += f" {'-':>10}" if x is None or y is None else f" {x / y:9.2f}x"
            print(row)


if __name__ == "__main__":
    main()
