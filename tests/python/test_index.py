"""clipfind.Index against `clipfind search --json` on an index that the
clipfind program built from generated videos (ffmpeg's testsrc2), and while
`clipfind index` writes to it."""
import json
import subprocess
import threading

import numpy as np
import pytest

import clipfind
from conftest import MODELS, TINY

QUERIES = ["a test pattern", "a red circle on the left", "numbers counting up", ""]


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def make_video(path, seconds, size="320x240", source="testsrc2"):
    ffmpeg("-f", "lavfi", "-i", f"{source}=s={size}:r=25:d={seconds}", "-pix_fmt", "yuv420p", path)


def run(binary, *args):
    r = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory, clipfind_bin):
    tmp = tmp_path_factory.mktemp("index")
    lib = tmp / "library"
    lib.mkdir()
    make_video(lib / "a.mp4", 6)
    make_video(lib / "b.mkv", 4, source="smptebars")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=200x200:d=1", "-frames:v", "1", tmp / "query.png")
    index = tmp / "idx"
    run(clipfind_bin, "index", "--index", index, "--model", TINY, "--no-progress", lib)
    return tmp, index


def cli_results(binary, index, *args):
    return json.loads(run(binary, "search", "--index", index, *args, "--json"))["results"]


@pytest.mark.parametrize("k", [1, 3, 20])
def test_text_search_matches_the_cli(built, clipfind_bin, k):
    _, index = built
    idx = clipfind.Index(index)
    for q in QUERIES:
        got = idx.search(text=q, k=k)
        want = cli_results(clipfind_bin, index, q, "-k", k) if q else None
        if want is not None:
            assert got == want, q
        assert len(got) <= k and all(set(r) == {"video", "start", "end", "time", "score"} for r in got)
        assert [r["score"] for r in got] == sorted((r["score"] for r in got), reverse=True)


def test_image_search_matches_the_cli(built, clipfind_bin):
    tmp, index = built
    idx = clipfind.Index(index)
    png = tmp / "query.png"
    want = cli_results(clipfind_bin, index, "--image", png, "-k", 5)
    assert idx.search(image=png, k=5) == want
    assert idx.search(image=str(png), k=5) == want
    PIL = pytest.importorskip("PIL.Image")
    with PIL.open(png) as im:
        assert idx.search(image=im, k=5) == want
        assert idx.search(image=np.asarray(im.convert("RGB")), k=5) == want


def test_video_glob_matches_the_cli(built, clipfind_bin):
    _, index = built
    idx = clipfind.Index(index)
    got = idx.search(text="a test pattern", k=10, video="*.mkv")
    assert got == cli_results(clipfind_bin, index, "a test pattern", "-k", 10, "--video", "*.mkv")
    assert got and all(r["video"].endswith("b.mkv") for r in got)
    assert idx.search(text="a test pattern", video="*.nothing") == []


def test_embedding_query_and_given_engine(built):
    _, index = built
    engine = clipfind.Engine(TINY, device="cpu")
    idx = clipfind.Index(index, engine=engine)
    assert idx.engine is engine
    by_text = idx.search(text="a test pattern", k=4)
    q = engine.embed_texts(["a test pattern"])
    assert idx.search(embedding=q, k=4) == by_text
    scaled = idx.search(embedding=q[0] * 3.0, k=4)  # normalised inside
    assert [(r["video"], r["time"]) for r in scaled] == [(r["video"], r["time"]) for r in by_text]
    assert [r["score"] for r in scaled] == pytest.approx([r["score"] for r in by_text], abs=1e-6)


def test_videos(built):
    _, index = built
    vids = clipfind.Index(index).videos()
    assert sorted(v["path"].rsplit("/", 1)[1] for v in vids) == ["a.mp4", "b.mkv"]
    for v in vids:
        assert v["status"] == "ok" and v["frames"] > 0 and v["width"] == 320 and v["duration"] > 3


def test_bad_queries(built):
    tmp, index = built
    idx = clipfind.Index(index)
    with pytest.raises(ValueError, match="exactly one"):
        idx.search()
    with pytest.raises(ValueError, match="exactly one"):
        idx.search(text="a", image=tmp / "query.png")
    with pytest.raises(ValueError, match="k must"):
        idx.search(text="a", k=0)
    with pytest.raises(FileNotFoundError):
        idx.search(image=tmp / "missing.png")
    with pytest.raises(clipfind.Error, match="dim"):
        idx.search(embedding=np.ones(7, np.float32))
    with pytest.raises(FileNotFoundError):
        clipfind.Index(tmp / "nowhere")
    with pytest.raises(clipfind.Error, match="no index here"):
        clipfind.Index(tmp)
    with pytest.raises(clipfind.Error, match="fingerprint"):  # another model's engine
        clipfind.Index(index, engine=clipfind.Engine(MODELS / "full_fp32_eos2", device="cpu"))


def test_search_while_the_index_grows(built, clipfind_bin, tmp_path):
    """Searches during `clipfind index` succeed, and see the new videos once written."""
    tmp, _ = built
    lib = tmp_path / "lib"
    lib.mkdir()
    make_video(lib / "first.mp4", 3)
    index = tmp_path / "idx"
    run(clipfind_bin, "index", "--index", index, "--model", TINY, "--no-progress", lib)
    idx = clipfind.Index(index)
    assert {r["video"].rsplit("/", 1)[1] for r in idx.search(text="a test pattern", k=50)} == {"first.mp4"}
    for i in range(4):
        make_video(lib / f"more{i}.mp4", 8, size="640x480")
    writer = subprocess.Popen([str(clipfind_bin), "index", "--index", index, "--model", TINY, "--no-progress",
                               "--every", "0.2", lib], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    searches, errors = 0, []
    while writer.poll() is None:
        try:
            idx.search(text="a test pattern", k=5)
            idx.videos()
            searches += 1
        except Exception as e:  # reported below
            errors.append(repr(e))
    assert writer.returncode == 0, writer.stderr.read()
    print(f"[index] {searches} searches while `clipfind index` wrote")
    assert not errors, errors[:3]
    names = {r["video"].rsplit("/", 1)[1] for r in idx.search(text="a test pattern", k=50)}
    assert {"more0.mp4", "more3.mp4"} <= names
