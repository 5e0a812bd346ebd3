#!/usr/bin/env python3
"""Sharded indexing end to end (issue 30): `clipfind index --shard`, `merge`, and
`search --index A --index B`, and the README's Slurm and Kubernetes examples.

    CLIPFIND_BIN=build/src/app/clipfind python3 -m pytest -q tests/test_shard_cli.py
    python3 tests/test_shard_cli.py --clipfind build/src/app/clipfind   (as ctest runs it)

N shard processes run at once over small generated videos; their merge must
equal one process's index: the same videos, times and embedding bytes.
Every process runs the CPU engine on one thread, so embeddings agree to the bit.
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml  # PyYAML (scripts/install-deps.sh)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests/data/models/full_fp32_quickgelu_p32"
CLIPFIND = Path(os.environ["CLIPFIND_BIN"]).resolve() if os.environ.get("CLIPFIND_BIN") else None
TMP = None
LIB = None
SINGLE = None
ENGINE = ["--device", "cpu", "--threads", "1", "--decoders", "1", "--no-progress", "--every", "0.5"]


def run(*args, env=None, timeout=300):
    return subprocess.run([str(CLIPFIND), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def start(*args, env=None):
    return subprocess.Popen([str(CLIPFIND), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def setUpModule():
    global TMP, LIB, SINGLE
    assert CLIPFIND, "set CLIPFIND_BIN or pass --clipfind"
    TMP = Path(tempfile.mkdtemp(prefix="clipfind_shard_cli_"))
    LIB = TMP / "archive"
    for i in range(9):  # nested folders: shares are computed from the path below the archive
        path = LIB / ["", "2024", "2024/06"][i % 3] / f"clip{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        src = ["testsrc2", "testsrc", "smptebars"][i % 3]
        ffmpeg("-f", "lavfi", "-i", f"{src}=s={['160x120', '192x144', '128x96'][i // 3]}:r=25:d={1 + i % 2}",
               "-pix_fmt", "yuv420p", path)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=200x200:d=1", "-frames:v", "1", LIB / "still.png")
    SINGLE = TMP / "single"
    r = run("index", LIB, "--model", MODEL, "--index", SINGLE, *ENGINE)
    assert r.returncode == 0, r.stderr


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def catalog(index):
    """Every video by path: its record and its frames (time, embedding bytes) in time order."""
    with sqlite3.connect(index / "catalog.sqlite") as db:
        out = {}
        for vid, path, *rec in db.execute("SELECT id, path, size, mtime_ns, duration, fps, width, height, model,"
                                          " status, error, frames FROM videos"):
            frames = db.execute("SELECT time, embedding FROM frames WHERE video=? ORDER BY time", (vid,))
            out[path] = (tuple(rec), [(t, bytes(e)) for t, e in frames])
        return out


def meta(index, key):
    with sqlite3.connect(index / "catalog.sqlite") as db:
        row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None


def fnv1a64(text):
    h = 0xcbf29ce484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def wait_all(procs):
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        out.append((p.returncode, stdout, stderr))
    return out


def readme_block(language, marker):
    """The README's ```language block that contains `marker`."""
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```" + language + r"\n(.*?)```", text, re.S) if marker in b]
    assert len(blocks) == 1, f"one ```{language} block with {marker!r} in README.md, found {len(blocks)}"
    return blocks[0]


class ShardedIndex(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(dir=TMP))

    def shards(self, n):
        procs = [start("index", LIB, "--model", MODEL, "--index", self.dir / f"shard{i}", "--shard", f"{i}/{n}",
                       *ENGINE) for i in range(n)]
        results = wait_all(procs)
        for i, (rc, _, err) in enumerate(results):
            self.assertEqual(rc, 0, err)
            self.assertIn(f"shard {i}/{n}:", err)
        return [self.dir / f"shard{i}" for i in range(n) if (self.dir / f"shard{i}").exists()]

    def test_parallel_shards_merge_to_the_single_index(self):
        shards = self.shards(3)
        self.assertEqual(len(shards), 3)
        single = catalog(SINGLE)
        self.assertEqual(len(single), 10)
        seen = set()
        for i, s in enumerate(shards):
            self.assertEqual(meta(s, "shard"), f"{i}/3")
            info = run("info", "--index", s, "--json")
            self.assertEqual(json.loads(info.stdout)["shard"], f"{i}/3", info.stderr)
            paths = set(catalog(s))
            self.assertTrue(paths, f"shard {i} is empty")
            self.assertFalse(paths & seen)
            seen |= paths
            # The documented share: FNV-1a 64 of the path below the archive folder, modulo N.
            for p in paths:
                self.assertEqual(fnv1a64(Path(p).relative_to(LIB).as_posix()) % 3, i, p)
        self.assertEqual(seen, set(single))

        merged = self.dir / "merged"
        r = run("merge", *shards, "--index", merged, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stdout)
        self.assertEqual(summary["videos"], 10)
        self.assertEqual(summary["frames"], sum(len(f) for _, f in single.values()))
        self.assertEqual([s["shard"] for s in summary["sources"]], ["0/3", "1/3", "2/3"])
        self.assertEqual(summary["missing_shards"], [])
        self.assertFalse(summary["appended"])
        self.assertEqual(catalog(merged), single)  # same videos, times and embedding bytes
        self.assertEqual(meta(merged, "shard"), "")
        self.assertIsNone(json.loads(run("info", "--index", merged, "--json").stdout)["shard"])

        # Several indexes searched at once: the merged index's answer, text and JSON.
        png = TMP / "query.png"
        ffmpeg("-i", LIB / "clip3.mp4", "-vf", "select=eq(n\\,30)", "-frames:v", "1", png)
        several = [a for s in shards for a in ("--index", s)]
        for fmt in (["--json"], []):
            a = run("search", "--image", png, "-k", "50", *several, *ENGINE[:4], *fmt)
            b = run("search", "--image", png, "-k", "50", "--index", merged, *ENGINE[:4], *fmt)
            self.assertEqual(a.returncode, 0, a.stderr)
            self.assertEqual(a.stdout, b.stdout)
            self.assertNotIn("note:", a.stderr)
            self.assertGreater(len(a.stdout.splitlines()), 0)
        results = json.loads(run("search", "--image", png, "--index", merged, "--json").stdout)["results"]
        self.assertEqual(Path(results[0]["video"]).name, "clip3.mp4")  # the query is a frame of it

        # Merging again into the merged index: every video is there already.
        r = run("merge", shards[0], "--index", merged)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is in both", r.stderr)
        self.assertEqual(catalog(merged), single)

    def test_more_shards_than_files_and_a_missing_one(self):
        shards = self.shards(12)  # 10 files: some shards draw none, write nothing and succeed
        self.assertLess(len(shards), 12)
        merged = self.dir / "merged"
        r = run("merge", *shards, "--index", merged, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(catalog(merged), catalog(SINGLE))
        self.assertTrue(json.loads(r.stdout)["missing_shards"])  # the empty ones: named
        self.assertIn("warning: shards", r.stderr)

    def test_append_to_an_index(self):
        shards = self.shards(2)
        merged = self.dir / "merged"
        self.assertEqual(run("merge", shards[0], "--index", merged).returncode, 0)
        self.assertFalse((merged / "vectors.ann").exists())  # auto: too few frames for one
        # --ann on: the merged index gets the approximate index `clipfind index` would give it.
        r = run("merge", shards[1], "--index", merged, "--ann", "on", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(json.loads(r.stdout)["appended"])
        self.assertEqual(catalog(merged), catalog(SINGLE))
        if "ann: FAISS" not in run("doctor").stdout:  # a build without FAISS says so, and scans
            self.assertIn("ANN not built", r.stderr)
            return
        self.assertIn("vectors.ann built", r.stderr)
        frames = json.loads(run("info", "--index", merged, "--json").stdout)["frames"]
        ann = json.loads(run("info", "--index", merged, "--json").stdout)["ann"]
        self.assertTrue(ann.startswith(f"{frames} frames"), ann)

    def test_bad_shard_specs_and_misuse(self):
        idx = self.dir / "idx"
        for spec, message in [("0/0", "count 0 is not between 1"), ("3/2", "index 3 is not below the count 2"),
                              ("junk", "expected I/N")]:
            r = run("index", LIB, "--model", MODEL, "--index", idx, "--shard", spec)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(message, r.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k != "JOB_COMPLETION_INDEX"}
        r = run("index", LIB, "--model", MODEL, "--index", idx, "--shard", "auto", env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("neither SLURM_ARRAY_TASK_ID", r.stderr)
        r = run("index", LIB, "--model", MODEL, "--index", idx, "--shard", "auto",
                env={**env, "JOB_COMPLETION_INDEX": "1"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("pass --shard-count N", r.stderr)
        r = run("index", LIB, "--model", MODEL, "--index", idx, "--shard", "1/2", "--shard-count", "2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--shard-count goes with --shard auto", r.stderr)
        self.assertFalse(idx.exists())
        # A shard's folder takes no other share.
        r = run("index", LIB, "--model", MODEL, "--index", idx, "--shard", "0/2", *ENGINE)
        self.assertEqual(r.returncode, 0, r.stderr)
        before = catalog(idx)
        r = run("index", LIB, "--model", MODEL, "--index", idx, "--shard", "1/2", *ENGINE)
        self.assertEqual(r.returncode, 1)
        self.assertIn("holds shard 0/2, this run is --shard 1/2", r.stderr)
        self.assertEqual(catalog(idx), before)
        # merge: no index, or a folder of other files.
        r = run("merge", self.dir / "none", "--index", self.dir / "m")
        self.assertEqual(r.returncode, 2)
        other = self.dir / "other"
        other.mkdir()
        (other / "notes.txt").write_text("mine\n")
        r = run("merge", idx, "--index", other)
        self.assertEqual(r.returncode, 1)
        self.assertIn("a folder with files in it and no index", r.stderr)
        self.assertEqual(sorted(p.name for p in other.iterdir()), ["notes.txt"])


class SchedulerExamples(unittest.TestCase):
    """The README's Slurm script and Kubernetes manifest, run here with their variables set."""

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(dir=TMP))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k != "JOB_COMPLETION_INDEX"}
        self.env["PATH"] = f"{CLIPFIND.parent}{os.pathsep}{os.environ.get('PATH', '')}"

    def test_slurm_job_array(self):
        script = readme_block("bash", "#SBATCH")
        self.assertRegex(script, r"#SBATCH --array=0-\d+")
        self.assertIn("--shard auto", script)
        script_file = self.dir / "index-shards.sbatch"
        # The engine and sampling of the single index it is compared with (one CPU thread: bit-exact).
        script_file.write_text(script.replace("--no-progress", " ".join(ENGINE)))
        shards = self.dir / "shards"
        env = {**self.env, "ARCHIVE": str(LIB), "SHARDS": str(shards), "MODEL": str(MODEL),
               "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "2"}
        procs = [subprocess.Popen(["bash", script_file], env={**env, "SLURM_ARRAY_TASK_ID": str(i)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
        for i, (rc, _, err) in enumerate(wait_all(procs)):
            self.assertEqual(rc, 0, err)
            self.assertIn(f"shard {i}/3:", err)
        # The merge job the script's comment submits.
        wrap = re.search(r"--wrap '([^']*)'", script)
        self.assertIsNotNone(wrap, "the merge command in the script's comment")
        merged = self.dir / "index"
        r = subprocess.run(["bash", "-c", wrap.group(1)], env={**env, "INDEX": str(merged)}, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(catalog(merged), catalog(SINGLE))

    def test_kubernetes_indexed_job(self):
        job = yaml.safe_load(readme_block("yaml", "completionMode"))
        self.assertEqual((job["apiVersion"], job["kind"]), ("batch/v1", "Job"))
        spec = job["spec"]
        self.assertEqual(spec["completionMode"], "Indexed")
        container = spec["template"]["spec"]["containers"][0]
        self.assertEqual(container["command"][:2], ["sh", "-c"])
        command = container["command"][2]
        n = spec["completions"]
        self.assertIn(f"--shard auto --shard-count {n}", command)
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        self.assertEqual(mounts, {"/archive", "/models", "/shards"})
        # The pod's command here: its volumes are folders of this machine.
        shards = self.dir / "shards"
        command = (command.replace("/archive", str(LIB)).replace("/models/clip-vit-base-patch32", str(MODEL))
                   .replace("/shards", str(shards)))
        command = command.replace("--no-progress", " ".join(ENGINE))
        results = []
        for first in range(0, n, 4):  # 4 pods at a time on this small machine
            procs = [subprocess.Popen(["sh", "-c", command], env={**self.env, "JOB_COMPLETION_INDEX": str(i)},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for i in range(first, min(n, first + 4))]
            results += wait_all(procs)
        for i, (rc, _, err) in enumerate(results):
            self.assertEqual(rc, 0, err)
            self.assertIn(f"shard {i}/{n}:", err)
        merged = self.dir / "index"
        r = run("merge", *sorted(shards.iterdir()), "--index", merged)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(catalog(merged), catalog(SINGLE))


def main():
    global CLIPFIND
    ap = argparse.ArgumentParser()
    ap.add_argument("--clipfind", required=True)
    args, rest = ap.parse_known_args()
    CLIPFIND = Path(args.clipfind).resolve()
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
