#!/usr/bin/env python3
"""The demo's path end to end on another video (issue 5): generate a scripted
shapes video, index it with models/shapes-clip, search sentences drawn from
the script, and require a right segment in the top 3 for at least 90% of them.

    python3 tests/test_shapes_e2e.py --clipfind build/src/app/clipfind

The video is tools/make_shapes_video.py's with seed SEED (the demo uses the
default seed 1); queries and judging are tools/shapes_queries.py's: a hit is
right when its segment overlaps a still interval of the script where the
query holds. numpy + the `ffmpeg` command: CI runs it through ctest.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from shapes_queries import make_queries, run_queries  # noqa: E402

MODEL = ROOT / "models/shapes-clip"
SEED = 2            # not the demo's
DURATION = 180      # seconds: ~25 still intervals to ask about
QUERIES = 30
MIN_QUERIES = 20
TOP = 3
REQUIRED = 0.9      # share of queries with a right hit in the top TOP


def step(what, cmd):
    t = time.time()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stdout}{proc.stderr}")
    print(f"{what}: {time.time() - t:.1f} s")
    for line in (proc.stdout + proc.stderr).strip().splitlines():
        print("  " + line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clipfind", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the video and index (prints where)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clipfind_shapes_e2e_"))
    try:
        video, index = tmp / "shapes.mp4", tmp / "index"
        step("generate", [sys.executable, ROOT / "tools/make_shapes_video.py", "-o", video,
                          "--seed", SEED, "--duration", DURATION])
        step("index", [args.clipfind, "index", video, "--model", MODEL, "--index", index, "--no-progress"])
        script = json.loads((tmp / "shapes.json").read_text())
        queries = make_queries(script, QUERIES, seed=SEED)
        if len(queries) < MIN_QUERIES:
            sys.exit(f"only {len(queries)} distinct queries from the script (want {MIN_QUERIES})")
        t = time.time()
        in_top, first = run_queries(args.clipfind, str(index), script, queries, TOP)
        n = len(queries)
        print(f"search: {n} queries in {time.time() - t:.1f} s")
        print(f"right hit in the top {TOP}: {in_top}/{n} queries ({100 * in_top / n:.1f}%, "
              f"required {100 * REQUIRED:.0f}%); right first hit: {first}/{n}")
        if in_top < REQUIRED * n:
            sys.exit(1)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
