#!/usr/bin/env python3
"""Is the SigLIP comparison of compare.sh (MODEL=siglip-b16) a fair one?

1. The ONNX graphs that siglip_onnx.py writes against transformers itself:
   the committed small SigLIP folders and their golden image and text
   embeddings (tools/make_reference.py --family siglip), on the same pixels
   and ids.
2. ONNX Runtime against clipfind on the very weights they are timed on:
   the random B/16-224 folders run_ort.py --model siglip-b16 writes (made
   here if absent). Vision: one 224 x 224 PNG through `clipfind embed
   --device cpu`, and the same image's pixels as SiglipImageProcessor makes
   them through ORT. Text: a few texts through `clipfind embed`, with the
   committed SentencePiece tokenizer beside the weights (the folder has
   none), and their ids from `clipfind tokenize` through ORT.
Prints the largest absolute difference of each and exits 1 past the
tolerance.

    check_siglip_onnx.py [--clipfind build/src/app/clipfind] [--out bench/out]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import run_ort
import siglip_onnx

ROOT = Path(__file__).resolve().parents[2]
# (folder, tower) of the committed fp32 folders.
GOLDEN = (("siglip_vision_only", "vision"), ("siglip_full_fp32_p16", "vision"), ("siglip_full_fp32_p16", "text"),
          ("siglip2_text_only", "text"))
# fp32 in both, summed in another order: transformers vs clipfind agree to
# ~3e-6 on these folders (bench/RESULTS.md, accuracy).
GOLDEN_TOLERANCE = 1e-4
# Relative to the largest embedding value: 12 layers of 768-wide fp32 sums.
SHARED_TOLERANCE = 1e-4


def session(model):
    import onnxruntime as ort
    return ort.InferenceSession(model.SerializeToString() if hasattr(model, "SerializeToString") else str(model),
                                providers=["CPUExecutionProvider"])


def pixel_formula(n, size):
    """tools/make_reference.py's golden pixels (that file needs torch)."""
    c = np.arange(3).reshape(3, 1, 1)
    y = np.arange(size).reshape(1, size, 1)
    x = np.arange(size).reshape(1, 1, size)
    return np.stack([((x * 7 + y * 13 + c * 29 + i * 31) % 255).astype(np.float32) / np.float32(127.5) -
                     np.float32(1.0) for i in range(n)])


def check_golden(name, tower):
    golden = json.loads((ROOT / "tests/data/golden" / f"{name}.json").read_text())
    model = siglip_onnx.GRAPHS[tower](*siglip_onnx.read_folder(ROOT / "tests/data/models" / name, tower))
    if tower == "vision":
        feed = {"pixel_values": pixel_formula(golden["num_images"], golden["image_size"])}
    else:
        feed = {"input_ids": np.array(golden["ids"], dtype=np.int64)}
    ours = session(model).run(None, feed)[0]
    diff = float(np.abs(ours - np.array(golden[f"{'image' if tower == 'vision' else 'text'}_embeds"])).max())
    print(f"ONNX graph vs transformers, {name} {tower}: max abs diff {diff:.2e} "
          f"(tolerance {GOLDEN_TOLERANCE:.0e})")
    return diff <= GOLDEN_TOLERANCE


def clipfind_json(clipfind, *args):
    """What `clipfind ARGS` prints: one JSON value a line, as a list."""
    run = subprocess.run([clipfind, *args], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"check_siglip_onnx: clipfind {args[0]} failed: {run.stderr.strip()}")
    return [json.loads(line) for line in run.stdout.splitlines()]


def report_shared(tower, ours, theirs):
    ours = np.asarray(ours, dtype=np.float64)
    scale = float(np.abs(theirs).max())
    diff = float(np.abs(ours - theirs).max())
    cos = float(((ours * theirs).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)).min())
    print(f"clipfind vs ONNX Runtime, random SigLIP B/16-224 {tower}, same weights: max abs diff {diff:.2e} "
          f"(largest value {scale:.3g}, tolerance {SHARED_TOLERANCE:.0e} of it), min cosine {cos:.9f}")
    return diff <= SHARED_TOLERANCE * scale


def check_shared_text(clipfind, out_dir, onnx_path):
    folder = Path(out_dir) / "siglip_b16_text"
    texts = ["a photo of a dog", "two red circles on a blue square", "x"]
    with tempfile.TemporaryDirectory() as tmp:
        for f in ("config.json", "model.safetensors"):
            os.symlink((folder / f).resolve(), os.path.join(tmp, f))
        for f in ("spiece.model", "tokenizer_config.json"):
            os.symlink(ROOT / "tests/data/siglip-tokenizer" / f, os.path.join(tmp, f))
        ids = clipfind_json(clipfind, "tokenize", "--model", tmp, *texts)
        args = ["embed", "--model", tmp, "--json", "--device", "cpu", "--threads", "2"]
        ours = clipfind_json(clipfind, *args, *[a for t in texts for a in ("--text", t)])[0]["text_embeds"]
    theirs = session(onnx_path).run(None, {"input_ids": np.array(ids, dtype=np.int64)})[0]
    return report_shared("text", ours, theirs)


def check_shared(clipfind, out_dir):
    from PIL import Image
    onnx_path, text_onnx_path = run_ort.export_siglip(out_dir)
    folder = os.path.join(out_dir, "siglip_b16_vision")
    size = run_ort.SIGLIP_B16["image_size"]
    y, x = np.mgrid[0:size, 0:size]
    rgb = np.stack([(x * 7 + y * 13 + c * 29) % 256 for c in range(3)], axis=-1).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "pattern.png")
        Image.fromarray(rgb).save(png)
        ours = clipfind_json(clipfind, "embed", "--model", folder, "--image", png, "--json", "--device", "cpu",
                             "--threads", "2")[0]["image_embeds"]
    # SiglipImageProcessor on an image already at its size: /255, then (x - 0.5) / 0.5.
    pixels = ((rgb.astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5))
    theirs = session(onnx_path).run(None, {"pixel_values": pixels.transpose(2, 0, 1)[None].copy()})[0]
    vision_ok = report_shared("vision", ours, theirs)
    return check_shared_text(clipfind, out_dir, text_onnx_path) and vision_ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clipfind", default=os.environ.get("CLIPFIND_BIN", str(ROOT / "build/src/app/clipfind")))
    ap.add_argument("--out", default=str(ROOT / "bench/out"))
    args = ap.parse_args()
    ok = all([check_golden(name, tower) for name, tower in GOLDEN])
    ok = check_shared(args.clipfind, args.out) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
