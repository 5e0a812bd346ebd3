#!/usr/bin/env python3
"""Queries about a sample video of the shapes world (tools/make_shapes_video.py),
answered by `clipfind search` and checked against the video's script.

    tools/shapes_queries.py --clipfind BIN --index DIR --script samples/shapes.json [-n 8] [--top 3]

prints each query's top hits (hh:mm:ss.mmm) with a verdict from the script,
and how many queries had an "overlaps" hit in the top N. Verdicts (LEGEND):
"overlaps" when the hit's segment overlaps a "still" interval of the script
where the query holds (it may also reach past it); "transit" when it overlaps
only a time when the shapes the query names slide in, move between regions or
leave (counted neither way); else "wrong".

Queries are drawn from the script's still intervals with the training
world's words ("two blue squares", "a yellow star on the left", "three small
purple triangles"). As in training, the grammatical number counts: "a red
circle" holds for one red circle, "red circles" for two or three.
Standard library + numpy (shapes_words); used by scripts/demo.sh and
tests/test_shapes_e2e.py.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shapes_words import POSITION_WORDS, noun_phrase  # noqa: E402

# How often a query mentions each attribute (it always names a colour or a shape).
P_MENTION = {"colour": 0.85, "shape": 0.85, "size": 0.3, "position": 0.5, "count": 0.4}
TRANSIT = ("entering", "moving", "leaving")


def hms(seconds):
    ms = round(max(seconds, 0.0) * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def describe(interval):
    """'2 small purple stars on the left', 'empty', '3 big red circles moving left->top'."""
    if interval["state"] == "empty":
        return "nothing (empty)"
    what = f"{interval['count']} {interval['size']} {interval['colour']} {interval['shape']}"
    if interval["state"] == "still":
        return f"{what} at {interval['position']}"
    return f"{what} {interval['state']} {interval['from']}->{interval['to']}"


def make_query(interval, rng):
    """A query that holds for this still interval: its text and what it asks."""
    mention = {k: rng.uniform() < p for k, p in P_MENTION.items()}
    if not (mention["colour"] or mention["shape"]):
        mention["colour"] = mention["shape"] = True
    count = interval["count"]
    text = noun_phrase(count, interval["colour"] if mention["colour"] else None,
                       interval["shape"] if mention["shape"] else None,
                       interval["size"] if mention["size"] else None, say_count=mention["count"])
    if mention["position"]:
        text += " " + POSITION_WORDS[interval["position"]][0]
    query = {"text": text}
    for k in ("colour", "shape", "size", "position"):
        query[k] = interval[k] if mention[k] else None
    # Without a number word the grammatical number still says one or several.
    query["counts"] = [count] if mention["count"] else ([1] if count == 1 else [2, 3])
    return query


def holds(query, interval):
    if interval["state"] != "still":
        return False
    if any(query[k] is not None and query[k] != interval[k] for k in ("colour", "shape", "size", "position")):
        return False
    return interval["count"] in query["counts"]


def make_queries(script, n, seed=0):
    """Up to n distinct queries, drawn from the still intervals in a random order."""
    rng = np.random.default_rng(seed)
    still = [iv for iv in script["intervals"] if iv["state"] == "still"]
    if not still:
        raise ValueError("the script has no still interval to ask about")
    out, seen = [], set()
    for attempt in range(20 * n):
        if len(out) == n:
            break
        if attempt % len(still) == 0:
            order = rng.permutation(len(still))
        q = make_query(still[order[attempt % len(still)]], rng)
        if q["text"] not in seen:
            seen.add(q["text"])
            out.append(q)
    return out


def search(clipfind, index, text, k, extra=()):
    """The top k hits of `clipfind search` (extra: more of its options)."""
    proc = subprocess.run([clipfind, "search", "--index", index, text, "-k", str(k), "--json", *extra],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"clipfind search {text!r} failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)["results"]


LEGEND = ("overlaps: the hit's segment overlaps a time the sentence is true; "
          "transit: the shapes it names are moving in, across or out (not counted); wrong: neither")


def judge(query, hit, script):
    """'overlaps' when a search hit's segment overlaps a still interval where
    the query holds; 'transit' when it does not but overlaps a transit interval
    of objects the query describes (not counted either way); else 'wrong'."""
    def overlaps(iv):
        return hit["start"] < iv["end"] and hit["end"] >= iv["start"]
    if any(holds(query, iv) and overlaps(iv) for iv in script["intervals"]):
        return "overlaps"
    anywhere = dict(query, position=None)
    if any(iv["state"] in TRANSIT and overlaps(iv) and holds(anywhere, dict(iv, state="still", position=None))
           for iv in script["intervals"]):
        return "transit"
    return "wrong"


def on_screen(script, seconds):
    at = next((iv for iv in script["intervals"] if iv["start"] <= seconds < iv["end"]), None)
    return describe(at) if at else "past the end"


def print_hits(hits, script, verdicts, out):
    for rank, hit in enumerate(hits, 1):
        span = f"{hms(hit['start'])}-{hms(hit['end'])}"
        verdict = f"  {verdicts[rank - 1]:<8}" if verdicts else ""
        print(f"  {rank}. {hms(hit['time'])} (segment {span})  score {hit['score']:.3f}{verdict}"
              f"  [{on_screen(script, hit['time'])}]", file=out)


def run_queries(clipfind, index, script, queries, top=3, out=sys.stdout):
    """Searches each query; prints its hits; returns (queries with an
    "overlaps" hit in the top `top`, queries whose first hit overlaps)."""
    in_top = first = 0
    for q in queries:
        spans = [f"{hms(iv['start'])}-{hms(iv['end'])}" for iv in script["intervals"] if holds(q, iv)]
        print(f'"{q["text"]}"  (true in {", ".join(spans)})', file=out)
        hits = search(clipfind, index, q["text"], top)
        verdicts = [judge(q, h, script) for h in hits]
        print_hits(hits, script, verdicts, out)
        in_top += "overlaps" in verdicts
        first += verdicts[:1] == ["overlaps"]
    return in_top, first


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clipfind", required=True, help="the clipfind program")
    ap.add_argument("--index", required=True, help="index folder holding the video")
    ap.add_argument("--script", required=True, help="the video's script (make_shapes_video.py's JSON)")
    ap.add_argument("-n", type=int, default=8, help="number of queries")
    ap.add_argument("--top", type=int, default=3, help="hits per query")
    ap.add_argument("--seed", type=int, default=0, help="seed for drawing the queries")
    ap.add_argument("--query", action="append", default=[], metavar="TEXT",
                    help="search this too (repeatable); its hits are shown with what is on screen, unjudged")
    args = ap.parse_args()
    with open(args.script) as f:
        script = json.load(f)
    for text in args.query:
        print(f'"{text}"  (your query)')
        print_hits(search(args.clipfind, args.index, text, args.top), script, None, sys.stdout)
    if args.n == 0:
        return
    queries = make_queries(script, args.n, args.seed)
    print(LEGEND)
    in_top, first = run_queries(args.clipfind, args.index, script, queries, args.top)
    n = len(queries)
    print(f"a hit that overlaps the truth in the top {args.top}: {in_top}/{n} queries ({100 * in_top / n:.0f}%); "
          f"first hit overlaps: {first}/{n}")


if __name__ == "__main__":
    main()
