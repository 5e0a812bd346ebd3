#!/usr/bin/env python3
"""Writes tests/data/images/resample.json: what PIL's Image.resize gives with
each of its filters, for tests/test_preprocess.cpp to reproduce byte for byte.

    Image.resize((w, h), resample)   # resample: PIL's number, as in
                                     # preprocessor_config.json's "resample"

Two kinds of cases, stored as hashes (FNV-1a 64 of the RGB bytes) and
channel sums so the file stays small:

  - "sweep": synthetic images the C++ test regenerates bit for bit (see
    pattern()) resized to exact sizes with every filter: SigLIP's shapes
    (640x480 -> 224x224, 100x37 -> 384x384, 1920x1080 -> 512x512, ...),
    up- and downscaling, odd sizes, both of Pillow 13's pass orders, one
    axis unchanged, 1-pixel sides, and random size pairs;
  - "pipeline": SigLIP preprocessing (exact H x W resize, no crop, /255,
    mean = std = 0.5) of files: tests/data/images inputs and, when present,
    ../shared/clip-data/CLIP.png (not copied). Each keeps PIL's resized
    bytes (hash, sums) and a few normalised floats. When transformers is
    importable, the floats come from its SiglipImageProcessorPil (the PIL
    backend: PIL's resize, numpy's rescale/normalise) and this script checks
    that they equal numpy's (v / 255 - 0.5) / 0.5 of PIL's bytes; otherwise
    from that numpy expression.

Usage: make_resample_fixtures.py [--out tests/data/images] [--clip-png PATH]
Run with a Python that has pillow >= 13 and numpy (transformers optional).
"""
import argparse
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

FILTERS = {  # PIL's numbers (PIL.Image.Resampling), checked in main()
    "nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


def fnv1a64(data: bytes) -> str:
    """FNV-1a 64-bit, as hex (the C++ tests' fnv1a64)."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def digest(arr: np.ndarray) -> dict:
    a = np.ascontiguousarray(arr, dtype=np.uint8)
    return {"fnv1a64": fnv1a64(a.tobytes()), "channel_sums": [int(s) for s in a.reshape(-1, 3).sum(0)]}


def pattern(w: int, h: int, seed: int, kind: str) -> np.ndarray:
    """Synthetic RGB the C++ test regenerates exactly (uint32 arithmetic):
    hash(i) for byte i = (y * w + x) * 3 + c is
        v = i * 0x9E3779B1 + seed; v ^= v >> 15; v *= 0x85EBCA77; v ^= v >> 13
    and the byte is
        "noise":  v >> 24
        "binary": 255 if v >> 24 > 127 else 0  (worst case for overshoot)
        "smooth": v >> 24 where v & 7 == 0, else
                  (x * 255 // max(w - 1, 1) + y * 127 // max(h - 1, 1) + c * 50) % 256
    """
    i = np.arange(w * h * 3, dtype=np.uint64)
    v = (i * np.uint64(0x9E3779B1) + np.uint64(seed)) & np.uint64(0xFFFFFFFF)
    v ^= v >> np.uint64(15)
    v = (v * np.uint64(0x85EBCA77)) & np.uint64(0xFFFFFFFF)
    v ^= v >> np.uint64(13)
    top = (v >> np.uint64(24)).astype(np.int64)
    if kind == "noise":
        out = top
    elif kind == "binary":
        out = np.where(top > 127, 255, 0)
    elif kind == "smooth":
        c = (i % 3).astype(np.int64)
        x = (i // 3 % w).astype(np.int64)
        y = (i // 3 // w).astype(np.int64)
        smooth = (x * 255 // max(w - 1, 1) + y * 127 // max(h - 1, 1) + c * 50) % 256
        out = np.where((v & np.uint64(7)) == 0, top, smooth)
    else:
        raise ValueError(kind)
    return out.astype(np.uint8).reshape(h, w, 3)


# (width, height, out_width, out_height, kind): named shapes first.
NAMED = [
    (640, 480, 224, 224, "smooth"),    # SigLIP 224 from VGA: horizontal pass first
    (480, 640, 224, 224, "smooth"),    # portrait
    (100, 37, 384, 384, "smooth"),     # upscaling, odd sizes
    (37, 100, 384, 384, "noise"),
    (1920, 1080, 512, 512, "smooth"),  # 1080p frame
    (1080, 1920, 512, 512, "smooth"),  # height shrinks > 2x the width: vertical first
    (1920, 1080, 224, 224, "noise"),
    (640, 480, 256, 256, "binary"),
    (384, 384, 224, 224, "binary"),
    (224, 224, 384, 384, "noise"),     # pure upscale
    (224, 300, 224, 224, "smooth"),    # only the height changes
    (300, 224, 224, 224, "smooth"),    # only the width changes
    (1, 1, 224, 224, "noise"),
    (3, 500, 224, 224, "smooth"),
    (500, 3, 224, 224, "smooth"),
    (97, 61, 31, 20, "binary"),
    (61, 97, 20, 31, "binary"),
    (200, 150, 3, 2, "noise"),
    (3, 2, 200, 150, "noise"),
    (150, 1, 7, 1, "smooth"),
    (120, 90, 119, 91, "smooth"),      # one pixel less / more
    (64, 64, 65, 33, "binary"),
    (190, 7, 11, 190, "noise"),
]


def sweep_pairs() -> list:
    rng = np.random.default_rng(2026)
    kinds = ["smooth", "noise", "binary"]
    pairs = list(NAMED)
    for k in range(12):
        w, h, ow, oh = (int(v) for v in rng.integers(1, 200, 4))
        pairs.append((w, h, ow, oh, kinds[k % 3]))
    return pairs


def make_sweep() -> dict:
    pairs = sweep_pairs()
    out = {}
    for name, number in FILTERS.items():
        rows = []
        for n, (w, h, ow, oh, kind) in enumerate(pairs):
            seed = 7000 + 31 * n + number
            img = Image.fromarray(pattern(w, h, seed, kind))
            got = np.asarray(img.resize((ow, oh), number))
            d = digest(got)
            rows.append([w, h, ow, oh, seed, kind, d["fnv1a64"], *d["channel_sums"]])
        out[name] = rows
    return out


# SigLIP preprocessing cases: (input, resample, height, width). Non-square
# sizes check the plan, although SigLIP models themselves are square.
PIPELINE = [
    ("input/photo.png", 2, 224, 224),
    ("input/photo.png", 3, 224, 224),
    ("input/photo.png", 2, 64, 96),
    ("input/odd_37x29.jpg", 2, 384, 384),
    ("input/tall_37x1000.png", 2, 256, 256),
    ("input/wide_1000x37.png", 3, 256, 256),
    ("input/rgba.png", 2, 48, 40),
    ("CLIP.png", 2, 224, 224),
    ("CLIP.png", 3, 384, 384),
    ("CLIP.png", 2, 512, 512),
]


def siglip_processor(resample: int, height: int, width: int):
    try:
        import transformers
        try:
            from transformers import SiglipImageProcessorPil as cls
        except ImportError:  # transformers 4: the PIL pipeline is the default
            from transformers import SiglipImageProcessor as cls
    except Exception as e:  # noqa: BLE001 - optional
        return None, f"transformers not usable ({e})"
    proc = cls(size={"height": height, "width": width}, resample=resample, do_center_crop=False)
    return proc, f"transformers {transformers.__version__} {cls.__name__}"


def normalise(arr: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 CHW: (v / 255 - 0.5) / 0.5 in float32."""
    x = arr.astype(np.float32) / np.float32(255.0)
    return ((x - np.float32(0.5)) / np.float32(0.5)).transpose(2, 0, 1)


def make_pipeline(images: Path, clip_png: Path) -> list:
    rng = np.random.default_rng(4321)
    cases = []
    for rel, resample, height, width in PIPELINE:
        path = clip_png if rel == "CLIP.png" else images / rel
        if not path.exists():
            print(f"note: {path} not found; its case is left out")
            continue
        rgb = Image.open(path).convert("RGB")
        resized = np.asarray(rgb.resize((width, height), resample))
        ours = normalise(resized)
        proc, source = siglip_processor(resample, height, width)
        if proc is not None:
            theirs = proc(images=rgb, return_tensors="np")["pixel_values"][0]
            assert theirs.shape == ours.shape, (theirs.shape, ours.shape)
            diff = float(np.abs(theirs.astype(np.float64) - ours).max())
            same = int((theirs == ours).sum())
            print(f"  {rel:24s} resample {resample} -> {height}x{width}: {source} vs PIL bytes normalised: "
                  f"max |diff| {diff:.3g}, {same} of {ours.size} floats identical")
            if diff > 1e-6:
                raise SystemExit(f"{rel}: transformers' SigLIP pixels are not PIL's resize normalised")
            values = theirs
        else:
            print(f"  {rel}: {source}; floats from numpy")
            values, source = ours, "numpy (v / 255 - 0.5) / 0.5 of PIL's bytes"
        c, h, w = values.shape
        pts = [(0, 0, 0), (2, h - 1, w - 1), (1, h // 2, w // 2)]
        pts += [(int(rng.integers(c)), int(rng.integers(h)), int(rng.integers(w))) for _ in range(9)]
        cases.append({"input": rel, "shared": rel == "CLIP.png", "width": rgb.width, "height": rgb.height,
                      "resample": resample, "resize_height": height, "resize_width": width, **digest(resized),
                      "normalised_by": source,
                      "normalised_samples": [[ci, y, x, float(values[ci, y, x])] for ci, y, x in pts]})
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--out", type=Path, default=root / "tests/data/images")
    ap.add_argument("--clip-png", type=Path, default=root.parent / "shared/clip-data/CLIP.png")
    args = ap.parse_args()
    for name, number in FILTERS.items():
        assert int(Image.Resampling[name.upper()]) == number, name
    if int(Image.__version__.split(".")[0]) < 13:
        # Pillow 13 changed the pass order of tall downscales (see
        # image_resize.cpp); the C++ code follows 13.
        raise SystemExit(f"Pillow {Image.__version__} < 13: the fixtures would not match Pillow 13's order")

    ref = {"generator": "tools/make_resample_fixtures.py", "pillow": Image.__version__,
           "filters": FILTERS,
           "sweep_columns": ["width", "height", "out_width", "out_height", "seed", "pattern", "fnv1a64",
                             "sum_r", "sum_g", "sum_b"],
           "sweep": make_sweep(),
           "pipeline": make_pipeline(args.out, args.clip_png)}
    text = json.dumps(ref, indent=1)
    # Short lists of numbers on one line: readable diffs, smaller file.
    atom = r'(?:[-0-9.e]+|true|false|"[\w ./()+-]*")'
    text = re.sub(rf"\[\s+({atom}(?:,\s+{atom})*)\s+\]",
                  lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    out = args.out / "resample.json"
    out.write_text(text + "\n")
    rows = sum(len(v) for v in ref["sweep"].values())
    print(f"wrote {out} ({rows} resizes, {len(ref['pipeline'])} pipeline cases, {out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
