#!/usr/bin/env python3
"""C++ vs transformers: zero-shot answers of models/shapes-clip on the 2000
held-out scenes of the shapes world (issue 5).

    python3 tests/test_shapes_heldout.py --clipfind build/src/app/clipfind

Renders the held-out scenes with numpy (tools/shapes_render_np.py), writes
them as PNG (exactly the model's 96 px, so preprocessing is only /255 and
mean/std), embeds them and the prompts with `clipfind embed --json
--normalize`, and picks each family's best prompt per image. The answers
must equal transformers' fp32 answers on the same images
(tests/data/shapes/heldout_np.json, made by
tools/make_shapes_heldout_np.py) for every image and family, except where
transformers' top-1/top-2 cosine margin is below MARGIN: there, float
rounding may legitimately pick the runner-up. Also prints the C++ held-out
accuracy. numpy + the standard library: CI runs it through ctest.
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from shapes_geometry import sample_scenes  # noqa: E402
from shapes_render_np import render_np  # noqa: E402
from shapes_words import labels  # noqa: E402

MODEL = ROOT / "models/shapes-clip"
GOLDEN = ROOT / "tests/data/shapes/heldout_np.json"
MARGIN = 1e-3    # cosine similarity: C++ and transformers agree to ~1e-5 on these
BATCH = 500      # images per `clipfind embed` call


def write_png(path, rgb):
    """An 8-bit RGB PNG (filter 0 on every row), from an (h, w, 3) uint8 array."""
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def embed(clipfind, args):
    proc = subprocess.run([clipfind, "embed", "--model", str(MODEL), "--json", "--normalize", *args],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        sys.exit(f"clipfind embed failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clipfind", required=True)
    args = ap.parse_args()
    golden = json.loads(GOLDEN.read_text())
    model_sha = hashlib.sha256((MODEL / "model.safetensors").read_bytes()).hexdigest()
    if model_sha != golden["model_sha256"]:
        sys.exit(f"{GOLDEN} was made with another {MODEL}/model.safetensors: "
                 "regenerate it with tools/make_shapes_heldout_np.py (torch + transformers)")

    t0 = time.time()
    scenes = sample_scenes(np.random.default_rng(golden["seed"]), golden["n"])
    images = render_np(scenes, golden["image_size"])
    same_pixels = hashlib.sha256(images.tobytes()).hexdigest() == golden["images_sha256"]
    print(f"rendered {len(images)} held-out scenes with numpy {np.__version__} in {time.time() - t0:.1f} s; "
          f"pixels {'identical to' if same_pixels else 'DIFFERENT from'} the reference's "
          f"(numpy {golden['numpy']})")

    families = list(golden["prompts"])
    texts = [t for f in families for t in golden["prompts"][f]]
    t1 = time.time()
    with tempfile.TemporaryDirectory(prefix="clipfind_heldout_") as tmp:
        paths = []
        for i, im in enumerate(images):
            paths.append(os.path.join(tmp, f"{i:04d}.png"))
            write_png(paths[-1], im)
        img = np.concatenate([
            np.asarray(embed(args.clipfind, [a for p in paths[lo:lo + BATCH] for a in ("--image", p)])["image_embeds"])
            for lo in range(0, len(paths), BATCH)])
    txt = np.asarray(embed(args.clipfind, [a for t in texts for a in ("--text", t)])["text_embeds"])
    print(f"clipfind embed: {len(img)} images + {len(texts)} prompts in {time.time() - t1:.1f} s")

    truth = labels(scenes)
    close = {f: {i: m for i, m in golden["close_calls"][f]} for f in families}
    total = same = forgiven = 0
    failures = []
    start = 0
    print(f"{'family':<14}{'identical':>12}{'C++ accuracy':>14}{'transformers':>14}")
    for f in families:
        k = len(golden["prompts"][f])
        pred = (img @ txt[start:start + k].T).argmax(axis=1)
        start += k
        ref = np.asarray(golden["predictions"][f])
        differ = np.flatnonzero(pred != ref)
        for i in differ:
            margin = close[f].get(int(i))
            if margin is not None and margin < MARGIN:
                forgiven += 1
            else:
                failures.append(f"{f} image {i}: C++ says {golden['prompts'][f][pred[i]]!r}, transformers "
                                f"{golden['prompts'][f][ref[i]]!r} (margin {margin if margin is not None else '>= ' + str(golden['close'])})")
        total += len(ref)
        same += len(ref) - len(differ)
        print(f"{f:<14}{len(ref) - len(differ):>7}/{len(ref):<4}{100 * (pred == truth[f]).mean():>13.2f}%"
              f"{100 * golden['accuracy'][f]:>13.2f}%")
    print(f"identical answers: {same}/{total}; {forgiven} differ with a transformers margin below {MARGIN}; "
          f"{len(failures)} differ beyond it")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures[:20]))
        if not same_pixels:
            print("(the numpy rendering differs from the reference's: see the pixels line above)")
        sys.exit(1)


if __name__ == "__main__":
    main()
