#!/usr/bin/env python3
"""What a user reads when something is off (issue 27): usage errors in one
style with documented exit codes, searches that find nothing saying why (CLI
and HTTP API), `--video` matching the names users see, the segment in plain
output, the device in --timings, `frame --at` past the end, the skip
summary of scripts/test.sh, and a model of another family (CLIP / SigLIP)
refused by `index` and `search` (issue 26).

    python3 tests/test_cli_messages.py --clipfind build/src/app/clipfind

Videos are generated with the `ffmpeg` command; the model has random weights
(tests/data), so only the mechanics are checked. Standard library only.
"""
import argparse
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
import server_fixture  # noqa: E402
import skip_summary  # noqa: E402

MODEL = ROOT / "tests/data/models/full_fp32_quickgelu_p32"
SIGLIP = ROOT / "tests/data/models/siglip_vision_only"  # a SigLIP vision tower: image queries only
CLIPFIND = None  # set from the command line
BUILD_DIR = None
TMP = None
EXIT_HELP = "Exit status: 0 done (also when nothing matches), 1 failed, 2 usage error"


def run(*args, timeout=120):
    return subprocess.run([str(CLIPFIND), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def testsrc(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    server_fixture.ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=160x120:r=25:d={seconds}", "-pix_fmt", "yuv420p", path)


def index(index_dir, *inputs):
    r = run("index", "--index", index_dir, "--model", MODEL, "--no-progress", *inputs)
    return r


def setUpModule():
    global TMP
    TMP = Path(tempfile.mkdtemp(prefix="clipfind_messages_"))
    testsrc(TMP / "lib/a.mp4", 3)
    testsrc(TMP / "lib/trips/b.mp4", 2)
    r = index(TMP / "idx", TMP / "lib")
    assert r.returncode == 0, r.stderr
    # An index whose only video failed: indexed fine, then replaced by a broken file and indexed again.
    testsrc(TMP / "broken/c.mp4", 1)
    assert index(TMP / "idx-failed", TMP / "broken").returncode == 0
    (TMP / "broken/c.mp4").write_text("not a video any more\n")
    index(TMP / "idx-failed", TMP / "broken")  # exits 1: the failure is recorded
    # An index with no video left: its only video deleted and forgotten.
    testsrc(TMP / "gone/d.mp4", 1)
    assert index(TMP / "idx-empty", TMP / "gone").returncode == 0
    (TMP / "gone/d.mp4").unlink()
    index(TMP / "idx-empty", TMP / "gone")


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


class UsageErrors(unittest.TestCase):
    def assert_usage_error(self, r, *needles):
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("clipfind: error: "), r.stderr)
        for n in needles:
            self.assertIn(n, lines[0])

    def test_missing_command_names_them(self):
        self.assert_usage_error(run(), "missing command", "search", "index", "serve")

    def test_misspelled_command_suggests_the_nearest(self):
        self.assert_usage_error(run("serach", "a red circle"), "unknown command 'serach'; did you mean 'search'?")
        r = run("frobnicate")
        self.assert_usage_error(r, "unknown command 'frobnicate'", "commands: embed, tokenize")
        self.assertNotIn("did you mean", r.stderr)

    def test_typo_option_is_reported_not_the_swallowed_query(self):
        r = run("search", "--indx", TMP / "idx", "a red circle")
        self.assert_usage_error(r, "unknown option '--indx' for 'search'; did you mean '--index'?")
        self.assertNotIn("a red circle", r.stderr)
        self.assert_usage_error(run("search", "--jsn", "x"), "unknown option '--jsn'", "'--json'")

    def test_parser_errors_share_the_prefix_and_status(self):
        self.assert_usage_error(run("search", "-k", "0", "x", "--index", TMP / "idx"), "search: ", "-k")
        self.assert_usage_error(run("frame"), "frame: ")
        self.assert_usage_error(run("search", "x", "y", "--index", TMP / "idx"), "unexpected argument 'y'")

    def test_failures_exit_1_with_the_prefix(self):
        r = run("search", "--index", TMP / "nowhere", "x")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(r.stderr.startswith("clipfind: error: "), r.stderr)

    def test_a_bad_gpu_list_fails_naming_it_and_leaves_no_index(self):
        # Issue 31: index and serve take --device cuda:all or cuda:N,M; the
        # list's form is checked before the GPUs, so these hold anywhere.
        for device, why in (("cuda:0,x", "'x' is not a GPU number"), ("cuda:1,1", "GPU 1 is named twice")):
            r = run("index", "--index", TMP / "gpu-list", "--model", MODEL, "--device", device, TMP / "lib")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertTrue(r.stderr.startswith(f"clipfind: error: --device {device}: {why}"), r.stderr)
            self.assertFalse((TMP / "gpu-list").exists())
            r = run("serve", "--index", TMP / "idx", "--device", device, "--port", "0")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(f"--device {device}: {why}", r.stderr)
        self.assertIn("cuda:all", run("index", "--help").stdout)
        self.assertIn("cuda:all", run("serve", "--help").stdout)

    def test_help_documents_exit_statuses(self):
        for cmd in ([], ["embed"], ["tokenize"], ["index"], ["search"], ["info"], ["frame"], ["serve"]):
            r = run(*cmd, "--help")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(EXIT_HELP, r.stdout, cmd)
        self.assertIn("file name", run("search", "--help").stdout)


def catalog_state(index_dir):
    """Everything an index holds: its meta, videos and frames, and its vector file's bytes."""
    with sqlite3.connect(index_dir / "catalog.sqlite") as db:
        state = [sorted(db.execute(f"SELECT * FROM {table}")) for table in ("meta", "videos", "frames")]
    return state, (index_dir / "vectors.f16").read_bytes()


class ModelFamily(unittest.TestCase):
    """A CLIP index and a SigLIP one (indexed with the SigLIP vision tower):
    neither takes the other family's model, to index into or to search."""

    @classmethod
    def setUpClass(cls):
        cls.clip_index = TMP / "idx"
        cls.siglip_index = TMP / "idx-siglip"
        r = run("index", "--index", cls.siglip_index, "--model", SIGLIP, "--no-progress", TMP / "lib")
        assert r.returncode == 0, r.stderr
        cls.png = TMP / "query.png"
        server_fixture.ffmpeg("-i", TMP / "lib/a.mp4", "-frames:v", "1", cls.png)

    def assert_family_error(self, r, index_dir, index_family, model, model_family, advice):
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith(f"clipfind: error: {index_dir}: built with a {index_family} model ("),
                        lines[0])
        self.assertIn(f" but {model} is a {model_family} model. Embeddings of different model families", lines[0])
        self.assertIn(advice, lines[0])

    def test_search_with_a_model_of_another_family_fails_naming_both(self):
        advice = "leave out --model to search with the index's own model, or rebuild the index with " \
                 "`clipfind index --reindex --model "
        r = run("search", "--index", self.clip_index, "--model", SIGLIP, "--image", self.png)
        self.assert_family_error(r, self.clip_index, "clip", SIGLIP, "siglip", advice + f"{SIGLIP}`")
        for query in (["a red circle"], ["--image", self.png]):
            r = run("search", "--index", self.siglip_index, "--model", MODEL, *query, "--json")
            self.assert_family_error(r, self.siglip_index, "siglip", MODEL, "clip", advice + f"{MODEL}`")
        # Each with its own model: fine.
        for index_dir in (self.clip_index, self.siglip_index):
            r = run("search", "--index", index_dir, "--image", self.png, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(json.loads(r.stdout)["results"])

    def test_index_with_a_model_of_another_family_fails_and_changes_nothing(self):
        for index_dir, family, model, other in ((self.clip_index, "clip", SIGLIP, "siglip"),
                                                (self.siglip_index, "siglip", MODEL, "clip")):
            before = catalog_state(index_dir)
            testsrc(TMP / "more/e.mp4", 1)  # something new to index, and the old files
            r = run("index", "--index", index_dir, "--model", model, "--no-progress", TMP / "lib", TMP / "more")
            self.assert_family_error(r, index_dir, family, model, other,
                                     "cannot be mixed: re-run with --reindex to rebuild the index with this model")
            self.assertEqual(catalog_state(index_dir), before, index_dir)

    def test_info_says_the_family(self):
        for index_dir, family in ((self.clip_index, "clip"), (self.siglip_index, "siglip")):
            r = run("info", "--index", index_dir)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"\nfamily: {family}\n", r.stdout)
            r = run("info", "--index", index_dir, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(r.stdout)
            self.assertEqual(info["family"], family)
            self.assertEqual(info["index"], str(index_dir.resolve()))
            self.assertEqual(info["videos"], 2)
            self.assertEqual(info["model"], str((MODEL if family == "clip" else SIGLIP).resolve()))
            # A vision tower alone has no logit_scale/logit_bias: no probabilities.
            self.assertNotIn("logit_bias", info)
            self.assertFalse(info["probabilities"])
        # An index from before families were recorded reads as CLIP, and searches as before.
        old = TMP / "idx-old"
        shutil.copytree(self.clip_index, old)
        with sqlite3.connect(old / "catalog.sqlite") as db:
            db.execute("DELETE FROM meta WHERE key = 'family'")
        db.close()
        self.assertEqual(json.loads(run("info", "--index", old, "--json").stdout)["family"], "clip")
        r = run("search", "--index", old, "a red circle", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(json.loads(r.stdout)["results"])
        # An empty index has no model yet; no index is the usual failure.
        info = json.loads(run("info", "--index", TMP / "idx-empty", "--json").stdout)
        self.assertEqual((info["videos"], info["videos_failed"]), (0, 0))
        r = run("info", "--index", TMP / "nowhere")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("clipfind: error: "), r.stderr)

    def test_help_says_what_the_probability_is_and_when(self):
        for cmd in ("search", "serve"):
            text = " ".join(run(cmd, "--help").stdout.split())
            self.assertIn("SigLIP indexes only", text, cmd)
            self.assertIn("sigmoid(exp(logit_scale) * score + logit_bias)", text, cmd)
        self.assertIn("ranked by score", " ".join(run("search", "--help").stdout.split()))


class NothingFound(unittest.TestCase):
    def assert_nothing(self, index_dir, reason_re, *args):
        r = run("search", "--index", index_dir, "a red circle", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertRegex(lines[0], "^clipfind: no results: " + reason_re)
        r = run("search", "--index", index_dir, "a red circle", "--json", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["results"], [])
        self.assertRegex(out["reason"], "^" + reason_re)
        return out["reason"]

    def test_empty_index(self):
        self.assert_nothing(TMP / "idx-empty", r"the index is empty")

    def test_only_video_failed(self):
        reason = self.assert_nothing(TMP / "idx-failed", r"the only video has no frames to search: c\.mp4 failed")
        self.assertIn("c.mp4 failed to index", reason)

    def test_video_filter_matching_nothing_lists_the_names(self):
        reason = self.assert_nothing(TMP / "idx", r"--video 'nope\*' matches none of the indexed videos", "--video",
                                     "nope*")
        self.assertIn("a.mp4, b.mp4", reason)

    def test_video_matches_file_name_relative_and_absolute_paths(self):
        for glob, want in [("a.mp4", {"a.mp4"}), ("trips/*", {"b.mp4"}), ("b.*", {"b.mp4"}),
                           (str(TMP / "lib/a.mp4"), {"a.mp4"}), ("*.mp4", {"a.mp4", "b.mp4"})]:
            r = run("search", "--index", TMP / "idx", "x", "--json", "-k", "5", "--video", glob)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual({Path(x["video"]).name for x in json.loads(r.stdout)["results"]}, want, glob)

    def test_plain_output_has_the_segment_and_timings_the_device(self):
        r = run("search", "--index", TMP / "idx", "x", "--json", "-k", "3", "--device", "cpu")
        results = json.loads(r.stdout)["results"]
        r = run("search", "--index", TMP / "idx", "x", "-k", "3", "--timings", "--device", "cpu")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), len(results))
        for line, res in zip(lines, results):
            path, best, segment, score = line.split()
            self.assertEqual(path, res["video"])
            start, end = segment.split("-")
            for stamp, seconds in ((best, res["time"]), (start, res["start"]), (end, res["end"])):
                h, m, s = stamp.split(":")
                self.assertAlmostEqual(int(h) * 3600 + int(m) * 60 + float(s), seconds, places=3)
        self.assertRegex(r.stderr, r"timings: .* over \d+ frames on cpu")


class ServerReasons(unittest.TestCase):
    def test_empty_results_say_why_like_the_cli(self):
        query = "/api/search?q=a+red+circle"
        with server_fixture.Server(CLIPFIND, TMP / "idx-failed") as s:
            status, out = s.json(query)
            self.assertEqual(status, 200, out)
            self.assertEqual(out["results"], [])
            self.assertRegex(out["reason"], r"^the only video has no frames to search: c\.mp4 failed to index")
            _, listing = s.json("/api/videos")
            vid = listing["videos"][0]["id"]
            _, out = s.json(f"{query}&video={vid}")
            self.assertEqual(out["results"], [])
            self.assertIn(f"the only video matching video={vid} has no frames", out["reason"])
        with server_fixture.Server(CLIPFIND, TMP / "idx") as s:
            status, out = s.json(query)
            self.assertEqual(status, 200, out)
            self.assertTrue(out["results"])
            self.assertNotIn("reason", out)


class FrameAt(unittest.TestCase):
    def test_past_the_end_warns_and_writes_the_last_frame(self):
        out = TMP / "last.jpg"
        r = run("frame", TMP / "lib/a.mp4", "--at", "00:01:00", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"^clipfind: warning: --at 00:01:00 is past the end of .*a\.mp4 "
                                   r"\(00:00:03\.000 long\): writing its last frame, at 00:00:02\.960\n$")
        self.assertTrue(out.exists())
        r = run("frame", TMP / "lib/a.mp4", "--at", "2.5", "-o", out)
        self.assertEqual((r.returncode, r.stderr), (0, ""))


class SkipSummary(unittest.TestCase):
    JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="Linux" tests="5" failures="0" disabled="0" skipped="2">
  <testcase name="Tokenizer.RealVocabulary" classname="Tokenizer.RealVocabulary" time="0" status="notrun">
    <skipped message="SKIP_REGULAR_EXPRESSION_MATCHED"/>
    <system-out>Note: Google Test filter = Tokenizer.RealVocabulary
../tests/test_tokenizer.cpp:374: Skipped
bpe_simple_vocab_16e6.txt.gz not found: real-vocabulary tests skipped

[  SKIPPED ] Tokenizer.RealVocabulary (0 ms)</system-out>
  </testcase>
  <testcase name="Golden.Cuda" classname="Golden.Cuda" time="0" status="notrun">
    <skipped message="SKIP_REGULAR_EXPRESSION_MATCHED"/>
    <system-out>../tests/test_golden_model.cpp:154: Skipped
CUDA: no CUDA in this build
[  SKIPPED ] Golden.Cuda (0 ms)</system-out>
  </testcase>
  <testcase name="cli" classname="cli" time="3" status="run">
    <system-out>test_image (__main__.Embed.test_image) ... skipped '/x/CLIP.png not present'
test_text (__main__.Embed.test_text) ... ok</system-out>
  </testcase>
  <testcase name="Index.Fine" classname="Index.Fine" time="0" status="run"><system-out>[ OK ]</system-out></testcase>
</testsuite>
"""

    def test_summary_groups_reasons(self):
        path = TMP / "junit.xml"
        path.write_text(self.JUNIT)
        line = skip_summary.summary(skip_summary.skipped(path))
        self.assertEqual(line, "skipped 3: GPU absent 1 (CUDA: no CUDA in this build), data absent 2 "
                               "(bpe_simple_vocab_16e6.txt.gz not found: real-vocabulary tests skipped; "
                               "/x/CLIP.png not present)")
        r = subprocess.run([sys.executable, ROOT / "scripts/skip_summary.py", path], capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), line)
        self.assertEqual(skip_summary.summary([]), "")


class Installing(unittest.TestCase):
    def test_install_puts_the_program_and_model_under_the_prefix(self):
        build = BUILD_DIR or CLIPFIND.parents[2]  # build/src/app/clipfind
        prefix = TMP / "prefix"
        r = subprocess.run(["cmake", "--install", build, "--prefix", prefix], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        model = prefix / "share/clipfind/models/shapes-clip"
        self.assertTrue((model / "model.safetensors").is_file())
        r = subprocess.run([prefix / "bin/clipfind", "tokenize", "--model", model, "a red circle"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = json.loads(r.stdout)  # start token, the words' ids, end token
        self.assertGreaterEqual(len(ids), 5)
        self.assertTrue(all(isinstance(i, int) for i in ids))

    def test_readme_names_files_of_this_repository_only(self):
        self.assertNotIn("../shared", (ROOT / "README.md").read_text())


def main():
    global CLIPFIND, BUILD_DIR
    ap = argparse.ArgumentParser()
    ap.add_argument("--clipfind", required=True)
    ap.add_argument("--build-dir", help="the CMake build folder to install from (default: beside --clipfind)")
    args, rest = ap.parse_known_args()
    CLIPFIND = Path(args.clipfind).resolve()
    BUILD_DIR = args.build_dir
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
