#!/usr/bin/env python3
"""The table of bench/cpu/compare.sh: medians over rounds of the lines that
bench_cpu and run_ort.py print (engine, case, batch, seconds, items/s,
GFLOP/s), one row per case and batch, and the ratios issue 28 asks for.

    compare_table.py LINES_FILE ROUNDS THREADS
"""
import statistics
import sys

# Multiply-accumulates per item: ViT-B/32 image, B/32 text of 7 and 77 tokens.
MACS = {"image": 4.4095e9,
        "text7": 12 * (7 * (4 * 512**2 + 2 * 512 * 2048) + 2 * 49 * 512) + 512 * 512,
        "text77": 12 * (77 * (4 * 512**2 + 2 * 512 * 2048) + 2 * 77**2 * 512) + 512 * 512}
LABEL = {"image": "image tower", "text7": "text, 7 tokens", "text77": "text, 77 tokens"}
ENGINES = ["ours", "ours-bf16", "ours-int8", "ort", "ort-int8"]
# (column title, numerator engine, denominator engine): speed-ups as time ratios.
RATIOS = [("bf16/fp32", "ours", "ours-bf16"), ("int8/fp32", "ours", "ours-int8"),
          ("fp32/ORT", "ort", "ours"), ("bf16/ORTi8", "ort-int8", "ours-bf16"),
          ("int8/ORTi8", "ort-int8", "ours-int8")]


def main():
    path, rounds, threads = sys.argv[1], sys.argv[2], sys.argv[3]
    times = {}
    for line in open(path):
        if not line.strip() or line.startswith("#"):
            continue
        engine, case, batch, sec = line.rstrip("\n").split("\t")[:4]
        times.setdefault((engine, case, int(batch)), []).append(float(sec))
    med = {k: statistics.median(v) for k, v in times.items()}
    engines = [e for e in ENGINES if any(k[0] == e for k in med)]
    print(f"median of {rounds} alternating rounds, {threads} threads each; ms per call "
          f"(GFLOP/s of the full model in brackets); ratios are speed-ups")
    head = f"{'case':16} {'batch':>5} |" + "".join(f" {e:>16}" for e in engines) + " |"
    head += "".join(f" {t:>10}" for t, a, b in RATIOS if a in engines and b in engines)
    print(head)
    for case in ("image", "text7", "text77"):
        for batch in (1, 8, 32):
            if not any((e, case, batch) in med for e in engines):
                continue
            row = f"{LABEL[case]:16} {batch:5} |"
            for e in engines:
                s = med.get((e, case, batch))
                row += f" {'-':>16}" if s is None else \
                    f" {s * 1e3:8.2f} ({2 * MACS[case] * batch / s / 1e9:4.0f})"
            row += " |"
            for _, a, b in RATIOS:
                if a in engines and b in engines:
                    x, y = med.get((a, case, batch)), med.get((b, case, batch))
                    row += f" {'-':>10}" if x is None or y is None else f" {x / y:9.2f}x"
            print(row)


if __name__ == "__main__":
    main()
