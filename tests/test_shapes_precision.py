#!/usr/bin/env python3
"""The CPU's reduced precisions on the demo's model (issue 28): index the
held-out shapes video (test_shapes_e2e.py's, not the demo's) with
models/shapes-clip in fp32 and in each of bf16 and int8, search the same
sentences in each index with its own precision, and require the same top-3
segments as fp32 for at least 95% of them.

"The same segments": each of one list's three segments overlaps one of the
other's, allowing one sampling interval (1 s) of slack. Within a still shot
consecutive frames are near-identical, so their scores tie to ~1e-4 and any
rounding (even bf16's, cosine 0.99999 to fp32) may pick the neighbouring
frame or merge a neighbour into the segment. As in test_shapes_heldout.py, a
close call is forgiven: a segment that enters the top 3 although fp32 ranks
it lower, but whose fp32 score (its best frame's, from the fp32 index) is
within MARGIN of fp32's third. All three figures (identical boundaries, same
moments, same or close call) are printed; the 4-tuples of the other
precision's segments end with fp32's score of them.

A merge frees a place: when one of the other precision's segments spans two
of fp32's top 3 (two tied frames of a still shot joined into one segment,
which fp32 kept apart by a gap of one frame), its third place goes to the
segment fp32 ranks next, so fp32's search for four segments (which may
merge the same two) is compared too.

    python3 tests/test_shapes_precision.py --clipfind build/src/app/clipfind [--precisions bf16,int8]

Exits 77 (skipped) when the CPU cannot run a precision (no AVX512_BF16 or
VNNI: clipfind says so). numpy + the `ffmpeg` command, like test_shapes_e2e.py.
"""
import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))
from shapes_queries import make_queries, search  # noqa: E402
from test_shapes_e2e import DURATION, MODEL, QUERIES, SEED, step  # noqa: E402

TOP = 3
REQUIRED = 0.95  # share of queries whose top-3 segments equal fp32's
SLACK = 1.0      # seconds: the index's sampling interval
MARGIN = 1e-3    # cosine: a segment fp32 scores this close to its third is a close call
SKIP = 77


def top_segments(clipfind, index, text, precision, k=TOP):
    """[(video, start, end, score)] of `clipfind search`, best first."""
    hits = search(clipfind, index, text, k, ["--device", "cpu", "--precision", precision])
    return [(h["video"], h["start"], h["end"], h["score"]) for h in hits]


class Fp32Scores:
    """fp32's score of any segment: the best of its frames' cosines to the
    fp32 query, from the fp32 index's catalog (half-float rows, as search)."""

    def __init__(self, clipfind, index):
        self.clipfind = clipfind
        db = sqlite3.connect(str(index / "catalog.sqlite"))
        rows = db.execute("SELECT v.path, f.time, f.embedding FROM frames f JOIN videos v ON v.id = f.video").fetchall()
        self.paths = [r[0] for r in rows]
        self.times = np.array([r[1] for r in rows])
        self.vectors = np.stack([np.frombuffer(r[2], dtype=np.float16).astype(np.float32) for r in rows])

    def __call__(self, text, segment):
        proc = subprocess.run([self.clipfind, "embed", "--model", str(MODEL), "--device", "cpu", "--json",
                               "--normalize", "--text", text], capture_output=True, text=True, check=True)
        query = np.asarray(json.loads(proc.stdout)["text_embeds"][0], dtype=np.float32)
        inside = [i for i, (p, t) in enumerate(zip(self.paths, self.times))
                  if p == segment[0] and segment[1] <= t <= segment[2]]
        return float((self.vectors[inside] @ query).max())


def close_call(fp32_ranked, other, text, fp32_score):
    """Every segment of `other` missing from fp32's top 3 is one fp32 itself
    scores within MARGIN of its third, or one of fp32's search for four when
    a segment of `other` merged two of fp32's top 3 (module docstring)."""
    fp32_top = fp32_ranked[:TOP]
    third = fp32_top[-1][3]
    merged = any(sum(near(x, y) for y in fp32_top) >= 2 for x in other)
    allowed = fp32_ranked if merged else fp32_top
    return all(any(near(x, y) for y in allowed) or fp32_score(text, x) >= third - MARGIN for x in other)


def near(x, y):
    return x[0] == y[0] and x[1] <= y[2] + SLACK and y[1] <= x[2] + SLACK


def same_moments(a, b):
    """Each segment of a overlaps one of b (within SLACK), and the other way round."""
    return all(any(near(x, y) for y in b) for x in a) and all(any(near(y, x) for x in a) for y in b)


def index_in(clipfind, video, index, precision):
    """Indexes the video; exits 77 when this CPU cannot run the precision."""
    cmd = [str(c) for c in [clipfind, "index", video, "--model", MODEL, "--index", index, "--no-progress",
                            "--device", "cpu", "--precision", precision]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "needs a CPU with" in proc.stderr:
        print(f"skipped: {proc.stderr.strip()}")
        sys.exit(SKIP)
    if proc.returncode != 0:
        sys.exit(f"indexing in {precision} failed ({proc.returncode}): {proc.stderr.strip()}")
    print(f"index in {precision}: {(proc.stdout + proc.stderr).strip()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clipfind", required=True)
    ap.add_argument("--precisions", default="bf16,int8")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clipfind_shapes_precision_"))
    failed = False
    try:
        video = tmp / "shapes.mp4"
        step("generate", [sys.executable, ROOT / "tools/make_shapes_video.py", "-o", video,
                          "--seed", SEED, "--duration", DURATION])
        queries = make_queries(json.loads((tmp / "shapes.json").read_text()), QUERIES, seed=SEED)
        results = {}
        for precision in ["fp32"] + args.precisions.split(","):
            index = tmp / f"index-{precision}"
            index_in(args.clipfind, video, index, precision)
            results[precision] = [top_segments(args.clipfind, str(index), q["text"], precision) for q in queries]
        # fp32's fourth segment (see close_call) from a search for four, whose
        # list may differ from the search for three (segments are built from
        # the best frames asked for, and may merge the same way): all of it.
        four = [top_segments(args.clipfind, str(tmp / "index-fp32"), q["text"], "fp32", TOP + 1) for q in queries]
        fp32_score = Fp32Scores(args.clipfind, tmp / "index-fp32")
        n = len(queries)
        for precision in args.precisions.split(","):
            ranked = {q["text"]: a + f for q, a, f in zip(queries, results["fp32"], four)}
            pairs = list(zip(queries, results["fp32"], results[precision]))
            exact = sum([x[:3] for x in a] == [x[:3] for x in b] for _, a, b in pairs)
            moments = sum(same_moments(a, b) for _, a, b in pairs)
            ok = sum(same_moments(a, b) or close_call(ranked[q["text"]], b, q["text"], fp32_score) for q, a, b in pairs)
            print(f"{precision}: top-{TOP} segments as fp32's for {ok}/{n} queries ({100 * ok / n:.1f}%, required "
                  f"{100 * REQUIRED:.0f}%): identical boundaries {exact}, same moments {moments}, "
                  f"close calls {ok - moments}")
            for q, a, b in pairs:
                if not same_moments(a, b):
                    verdict = "close call" if close_call(ranked[q["text"]], b, q["text"], fp32_score) else "DIFFERENT"
                    print(f"  {verdict}: {q['text']!r}: fp32 {[(x[1], x[2], round(x[3], 4)) for x in a]}, "
                          f"{precision} {[(x[1], x[2], round(x[3], 4), round(fp32_score(q['text'], x), 4)) for x in b]}")
            failed |= ok < REQUIRED * n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
