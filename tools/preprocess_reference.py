#!/usr/bin/env python3
"""Writes the image decoding and preprocessing fixtures of tests/test_image.cpp
and tests/test_preprocess.cpp under tests/data/images, with PIL as the
reference (what openai/CLIP does):

    Image.open(f).convert("RGB")                          # decode
    img.resize((w, h), Image.BICUBIC)                     # short side -> N
    torchvision-style center crop (round half to even; zero padding)
    (v / 255 - mean) / std in float32                     # ToTensor + Normalize

Inputs are synthetic (gradients, hard edges, noise) in every PNG flavour the
decoder must handle (grey 1/2/8/16-bit, grey+alpha, palette + tRNS, RGB(A)
8/16-bit, Adam7 interlaced) and a few JPEGs (4:2:0, 4:4:4, progressive, grey,
CMYK). PIL cannot write 16-bit RGB, low-bit grey or interlaced PNGs, so this
file has a tiny PNG writer of its own.

Also prints, without writing anything for it, how far transformers'
CLIPImageProcessor and openai/CLIP's resize-before-convert order land from
this reference.

Usage: preprocess_reference.py [--out tests/data/images] [--clip-png PATH]
Run with a Python that has pillow >= 13 and numpy (transformers and
torchvision optional, for the printed comparison only).
"""
import argparse
import io
import json
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


# ---------------------------------------------------------------- hashing
def fnv1a64(data: bytes) -> str:
    """FNV-1a 64-bit, as hex: the tests recompute it in C++."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def fnv1a64_np(arr: np.ndarray) -> str:
    # Pure-Python loop over a few hundred KB is fine; keep one definition.
    return fnv1a64(arr.astype(np.uint8).tobytes())


# ---------------------------------------------------------------- PNG writer
def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _filter_rows(rows: list, bpp: int) -> bytes:
    """Filters each row with type (row index mod 5), so the decoder meets all
    five PNG filters (None, Sub, Up, Average, Paeth)."""
    out = bytearray()
    prev = np.zeros(len(rows[0]) if rows else 0, dtype=np.int32)
    for i, raw in enumerate(rows):
        x = np.frombuffer(raw, dtype=np.uint8).astype(np.int32)
        a = np.concatenate([np.zeros(bpp, np.int32), x])[: len(x)]  # left neighbour
        b = prev  # above
        c = np.concatenate([np.zeros(bpp, np.int32), prev])[: len(x)]  # above-left
        ftype = i % 5
        if ftype == 0:
            f = x
        elif ftype == 1:
            f = x - a
        elif ftype == 2:
            f = x - b
        elif ftype == 3:
            f = x - (a + b) // 2
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
            f = x - pred
        out.append(ftype)
        out += (f & 0xFF).astype(np.uint8).tobytes()
        prev = x
    return bytes(out)


def _pack_rows(samples: np.ndarray, bit_depth: int) -> list:
    """samples: (h, w, channels) integers -> list of packed row bytes."""
    h = samples.shape[0]
    rows = []
    for y in range(h):
        s = samples[y].reshape(-1)
        if bit_depth == 16:
            rows.append(s.astype(">u2").tobytes())
        elif bit_depth == 8:
            rows.append(s.astype(np.uint8).tobytes())
        else:
            per = 8 // bit_depth
            padded = np.zeros(-(-len(s) // per) * per, dtype=np.int32)
            padded[: len(s)] = s
            packed = np.zeros(len(padded) // per, dtype=np.int32)
            for k in range(per):
                packed |= padded[k::per] << (8 - bit_depth * (k + 1))
            rows.append(packed.astype(np.uint8).tobytes())
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(samples: np.ndarray, color_type: int, bit_depth: int, interlace=False,
              plte: bytes = b"", trns: bytes = b"") -> bytes:
    """samples: (h, w) or (h, w, c) array of sample values."""
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, ch = samples.shape
    bpp = max(1, ch * bit_depth // 8)
    if interlace:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                data += _filter_rows(_pack_rows(sub, bit_depth), bpp)
    else:
        data = _filter_rows(_pack_rows(samples, bit_depth), bpp)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    if plte:
        out += _chunk(b"PLTE", plte)
    if trns:
        out += _chunk(b"tRNS", trns)
    return out + _chunk(b"IDAT", zlib.compress(data, 9)) + _chunk(b"IEND", b"")


# ---------------------------------------------------------------- content
def photo(w: int, h: int, seed: int, noise: float = 4.0) -> np.ndarray:
    """Photo-like RGB: smooth gradients and waves, hard-edged shapes (which
    make bicubic overshoot and exercise clipping), mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / (w / 7 + 1)) * np.cos(y / (h / 5 + 1))
    g = 255 * (x + y) / (w + h)
    b = 255 * np.hypot(x - w / 3, y - h / 2) / np.hypot(w, h)
    img = np.stack([r, g, b], axis=-1)
    img[(x > w * 0.55) & (x < w * 0.8) & (y > h * 0.2) & (y < h * 0.45)] = [255, 255, 255]
    img[(x > w * 0.6) & (x < w * 0.7) & (y > h * 0.3) & (y < h * 0.4)] = [0, 0, 0]
    disc = np.hypot(x - w * 0.25, y - h * 0.7) < min(w, h) * 0.18
    img[disc] = [220, 30, 40]
    img += rng.normal(0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_inputs(d: Path) -> dict:
    """Writes every input image; returns name -> file name."""
    files = {}

    def put(name: str, data: bytes):
        (d / name).write_bytes(data)
        stem, ext = name.rsplit(".", 1)
        files[stem + ("_jpg" if ext == "jpg" else "")] = name

    def pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        return buf.getvalue()

    big = photo(160, 120, 1, 3.0)
    put("photo.png", pil_bytes(Image.fromarray(big), "PNG", optimize=True))
    put("tall_37x1000.png", pil_bytes(Image.fromarray(photo(37, 1000, 2, 1.0)), "PNG", optimize=True))
    put("wide_1000x37.png", pil_bytes(Image.fromarray(photo(1000, 37, 3, 1.0)), "PNG", optimize=True))
    put("tiny_5x7.png", pil_bytes(Image.fromarray(photo(5, 7, 4, 20.0)), "PNG"))
    put("tiny_1x1.png", pil_bytes(Image.fromarray(np.array([[[200, 100, 50]]], np.uint8)), "PNG"))

    small = photo(33, 25, 5, 8.0)  # odd sizes: partial Adam7 blocks, odd rows
    grey = (small.astype(np.int32) @ np.array([299, 587, 114]) // 1000).astype(np.uint8)
    alpha = np.tile(np.linspace(0, 255, 33).astype(np.uint8), (25, 1))
    put("rgb8_small.png", pil_bytes(Image.fromarray(small), "PNG"))
    put("grey.png", pil_bytes(Image.fromarray(grey, "L"), "PNG"))
    put("grey_alpha.png", pil_bytes(Image.fromarray(np.dstack([grey, alpha]), "LA"), "PNG"))
    put("rgba.png", pil_bytes(Image.fromarray(np.dstack([small, alpha]), "RGBA"), "PNG"))
    pal_im = Image.fromarray(small).quantize(colors=50)
    put("palette.png", pil_bytes(pal_im, "PNG", transparency=bytes(range(0, 250, 5))))
    wide16 = small.astype(np.uint16) * 257 + np.random.default_rng(6).integers(0, 257, small.shape).astype(np.uint16)
    put("rgb16.png", write_png(wide16, 2, 16))
    put("rgba16.png", write_png(np.dstack([wide16, alpha.astype(np.uint16) * 257]), 6, 16))
    grey16 = np.random.default_rng(7).integers(0, 600, grey.shape).astype(np.uint16)  # PIL clamps >255
    grey16[::3] = grey[::3].astype(np.uint16) * 257
    put("grey16.png", write_png(grey16, 0, 16))
    put("grey_alpha16.png", write_png(np.dstack([grey.astype(np.uint16) * 257, alpha.astype(np.uint16) * 257]), 4, 16))
    put("grey2.png", write_png(grey >> 6, 0, 2))
    put("bilevel.png", write_png((grey > 128).astype(np.uint8), 0, 1))
    put("grey_trns.png", write_png(grey, 0, 8, trns=struct.pack(">H", int(grey[0, 0]))))
    put("interlaced.png", write_png(small, 2, 8, interlace=True))
    put("interlaced_grey16.png", write_png(grey16, 0, 16, interlace=True))
    pal4 = np.arange(33 * 25).reshape(25, 33) % 13  # 4-bit palette; 13 entries, tRNS on 3
    plte = bytes(np.random.default_rng(8).integers(0, 256, 13 * 3).astype(np.uint8))
    put("palette4_interlaced.png", write_png(pal4, 3, 4, interlace=True, plte=plte, trns=b"\x00\x80\xff"))

    photo_j = Image.fromarray(photo(64, 48, 9, 3.0))
    put("photo.jpg", pil_bytes(photo_j, "JPEG", quality=90))  # 4:2:0
    put("photo444.jpg", pil_bytes(photo_j, "JPEG", quality=90, subsampling=0))
    put("photo422.jpg", pil_bytes(photo_j, "JPEG", quality=85, subsampling=1))
    put("progressive.jpg", pil_bytes(photo_j, "JPEG", quality=80, progressive=True))
    put("grey.jpg", pil_bytes(photo_j.convert("L"), "JPEG", quality=90))
    put("cmyk.jpg", pil_bytes(photo_j.convert("CMYK"), "JPEG", quality=90))
    put("odd_37x29.jpg", pil_bytes(Image.fromarray(photo(37, 29, 10, 3.0)), "JPEG", quality=95))
    return files


# ---------------------------------------------------------------- reference
def pil_center_crop(img: Image.Image, cw: int, ch: int) -> Image.Image:
    """torchvision.transforms.functional.center_crop on a PIL image (pad with
    zeros to at least the crop size, then crop at int(round((size - crop) / 2)),
    Python's round being half-to-even)."""
    w, h = img.size
    if cw > w or ch > h:
        left = (cw - w) // 2 if cw > w else 0
        top = (ch - h) // 2 if ch > h else 0
        padded = Image.new(img.mode, (max(w, cw), max(h, ch)), 0)
        padded.paste(img, (left, top))
        img = padded
        w, h = img.size
        if (w, h) == (cw, ch):
            return img
    top = int(round((h - ch) / 2.0))
    left = int(round((w - cw) / 2.0))
    return img.crop((left, top, left + cw, top + ch))


def short_side(w: int, h: int, size: int):
    """torchvision's _compute_resized_output_size for an int size."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def reference(rgb: Image.Image, edge: int, cw: int, ch: int) -> Image.Image:
    return pil_center_crop(rgb.resize(short_side(*rgb.size, edge), Image.BICUBIC), cw, ch)


def normalise(arr: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 CHW like ToTensor + Normalize."""
    x = arr.astype(np.float32) / np.float32(255.0)
    return ((x - MEAN) / STD).transpose(2, 0, 1)


def samples(chw: np.ndarray, rng) -> list:
    c, h, w = chw.shape
    pts = [(0, 0, 0), (2, h - 1, w - 1), (1, h // 2, w // 2)]
    pts += [(int(rng.integers(c)), int(rng.integers(h)), int(rng.integers(w))) for _ in range(5)]
    return [[ci, y, x, float(chw[ci, y, x])] for ci, y, x in pts]


def lcg_image(w: int, h: int, seed: int, binary: bool) -> np.ndarray:
    """Pseudo-random RGB the C++ test regenerates bit for bit: bytes are the
    top 8 bits of s = s * 1103515245 + 12345 (mod 2^32). `binary` maps them to
    0/255, the worst case for overshoot and clipping."""
    out = np.empty(w * h * 3, dtype=np.uint8)
    s = seed
    for i in range(out.size):
        s = (s * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = s >> 24
    if binary:
        out = np.where(out > 127, 255, 0).astype(np.uint8)
    return out.reshape(h, w, 3)


def resize_sweep() -> list:
    """resize_bicubic alone over many size pairs: shrinking and enlarging
    each axis, both of Pillow 13's pass orders, extreme ratios, 1-pixel
    sides. Only hashes are stored."""
    rng = np.random.default_rng(99)
    pairs = [(97, 61, 31, 20), (61, 97, 20, 31), (37, 200, 32, 173), (200, 37, 173, 32),
             (200, 150, 3, 2), (3, 2, 200, 150), (1, 1, 17, 9), (150, 1, 7, 1), (1, 150, 1, 7),
             (120, 90, 119, 91), (64, 64, 65, 33), (33, 77, 200, 12), (190, 7, 11, 190)]
    for _ in range(27):
        w, h, ow, oh = (int(v) for v in rng.integers(1, 160, 4))
        pairs.append((w, h, ow, oh))
    sweep = []
    for i, (w, h, ow, oh) in enumerate(pairs):
        seed, binary = 1000 + i, i % 3 == 0
        out = np.asarray(Image.fromarray(lcg_image(w, h, seed, binary)).resize((ow, oh), Image.BICUBIC))
        sweep.append([w, h, ow, oh, seed, binary, fnv1a64_np(out)])
    return sweep


# Which resize/crop settings each input is checked at: (shortest_edge, crop_w, crop_h).
RESIZES = {
    "photo": [(224, 224, 224), (64, 64, 64), (61, 50, 40), (32, 40, 36)],
    "tall_37x1000": [(32, 32, 32), (224, 224, 224)],
    "wide_1000x37": [(32, 32, 32), (224, 224, 224)],
    "tiny_5x7": [(224, 224, 224), (24, 24, 24)],
    "tiny_1x1": [(224, 224, 224), (3, 3, 3)],
    "photo_jpg": [(48, 48, 48)],
    "odd_37x29_jpg": [(24, 24, 24)],
}
SMALL_DEFAULT = [(24, 24, 24)]


def main():
    # PIL suggests converting palette images with byte transparency to RGBA;
    # we convert to RGB on purpose, like openai/CLIP.
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--out", type=Path, default=root / "tests/data/images")
    ap.add_argument("--clip-png", type=Path, default=root.parent / "shared/clip-data/CLIP.png")
    args = ap.parse_args()
    out = args.out
    if int(Image.__version__.split(".")[0]) < 13:
        # Pillow 13 resizes very tall images (height shrinking by more than
        # twice the width) vertical pass first; older Pillow always went
        # horizontal first, which differs in the last bits. resize_bicubic
        # follows 13, so fixtures from an older Pillow would not match.
        print(f"warning: Pillow {Image.__version__} < 13: tall-image fixtures will differ")
    (out / "input").mkdir(parents=True, exist_ok=True)
    (out / "expected").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)

    files = make_inputs(out / "input")
    cases = []
    for key, fname in sorted(files.items()):
        path = out / "input" / fname
        src = Image.open(path)
        rgb = src.convert("RGB")
        arr = np.asarray(rgb)
        case_id = key
        case = {"name": case_id, "input": f"input/{fname}", "pil_mode": src.mode,
                "width": rgb.width, "height": rgb.height, "decode_fnv1a64": fnv1a64_np(arr)}
        # The exact decoded pixels, where they are not the input itself.
        if fname.endswith(".jpg") or src.mode != "RGB" or key == "rgb8_small":
            dec = f"expected/{case_id}.decoded.png"
            rgb.save(out / dec)
            case["decoded"] = dec
        if key == "rgb8_small":  # one raw file: checks the RGB8 PNG path without PNG
            (out / "expected/rgb8_small.rgb").write_bytes(arr.tobytes())
            case["decoded_raw"] = "expected/rgb8_small.rgb"
        case["resizes"] = []
        for edge, cw, ch in RESIZES.get(case_id, SMALL_DEFAULT):
            ref = reference(rgb, edge, cw, ch)
            exp = f"expected/{case_id}_{edge}_{cw}x{ch}.png"
            ref.save(out / exp, optimize=True)
            ref_arr = np.asarray(ref)
            case["resizes"].append({
                "shortest_edge": edge, "crop_width": cw, "crop_height": ch,
                "resized_size": list(short_side(rgb.width, rgb.height, edge)),
                "expected": exp, "fnv1a64": fnv1a64_np(ref_arr),
                "normalised_samples": samples(normalise(ref_arr), rng)})
        cases.append(case)

    shared = []
    if args.clip_png.exists():
        # Not copied into the repository: only a hash, channel sums and a few
        # pixels of PIL's output are kept.
        rgb = Image.open(args.clip_png).convert("RGB")
        for edge, cw, ch in [(224, 224, 224), (336, 336, 336)]:
            ref_arr = np.asarray(reference(rgb, edge, cw, ch))
            shared.append({
                "file": "CLIP.png", "width": rgb.width, "height": rgb.height,
                "decode_fnv1a64": fnv1a64_np(np.asarray(rgb)),
                "shortest_edge": edge, "crop_width": cw, "crop_height": ch,
                "fnv1a64": fnv1a64_np(ref_arr),
                "channel_sums": [int(s) for s in ref_arr.reshape(-1, 3).sum(0)],
                "pixels": [[y, x, *map(int, ref_arr[y, x])] for y, x in
                           [(0, 0), (111, 111), (223, 223), (50, 170), (200, 30)]],
                "normalised_samples": samples(normalise(ref_arr), rng)})
    else:
        print(f"note: {args.clip_png} not found; no shared-image reference written")

    ref = {"generator": "tools/preprocess_reference.py", "pillow": Image.__version__,
           "mean": MEAN.tolist(), "std": STD.tolist(), "cases": cases, "shared": shared,
           "resize_sweep_columns": ["width", "height", "out_width", "out_height", "seed", "binary", "fnv1a64"],
           "resize_sweep": resize_sweep()}
    text = json.dumps(ref, indent=1)
    # Keep short lists of numbers on one line: readable diffs, smaller file.
    atom = r'(?:[-0-9.e]+|true|false|"\w*")'
    text = re.sub(rf"\[\s+({atom}(?:,\s+{atom})*)\s+\]",
                  lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    (out / "reference.json").write_text(text + "\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(cases)} cases to {out} ({total / 1024:.0f} KiB)")

    compare_other_pipelines(out, files, args.clip_png)


# ---------------------------------------------------------------- report only
def _steps(a: np.ndarray, b: np.ndarray) -> str:
    """Max difference of two normalised CHW arrays, in 1/255 pixel steps."""
    d = np.abs(a - b) * STD[:, None, None] * 255
    return f"{d.max():5.1f} (mean {d.mean():.3f})"


def _processors() -> list:
    """transformers' CLIP image processors available here, by backend name."""
    procs = []
    try:
        import transformers
        from transformers import CLIPImageProcessor
    except Exception as e:  # noqa: BLE001 - optional dependency
        print(f"transformers not usable ({e}); skipping that comparison")
        return procs
    default = CLIPImageProcessor()
    procs.append((f"HF {transformers.__version__} {type(default).__name__}", default))
    try:
        from transformers import CLIPImageProcessorPil
        if not isinstance(default, CLIPImageProcessorPil):
            procs.append(("HF CLIPImageProcessorPil", CLIPImageProcessorPil()))
    except ImportError:
        pass
    return procs


def _openai_pipeline():
    """openai/CLIP's _transform(224) when torchvision is installed, else our
    emulation of it: Resize and CenterCrop in the file's own mode, RGB last."""
    try:
        import torchvision.transforms as T
        tf = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
                        lambda im: im.convert("RGB"), T.ToTensor(), T.Normalize(MEAN.tolist(), STD.tolist())])
        return "openai (torchvision)", lambda im: tf(im).numpy()
    except ImportError:
        return "openai order (emulated)", lambda im: normalise(np.asarray(reference(im, 224, 224, 224).convert("RGB")))


def compare_other_pipelines(out: Path, files: dict, clip_png: Path):
    """Prints how far transformers' CLIPImageProcessor (each backend present)
    and openai/CLIP's own pipeline (resize and crop before converting to RGB)
    land from the reference at 224, in 1/255 steps."""
    paths = [out / "input" / f for f in sorted(files.values())]
    if clip_png.exists():
        paths.append(clip_png)
    procs = _processors()
    oa_name, openai = _openai_pipeline()
    print("max |other - reference| at 224, in 1/255 steps: " + " | ".join([n for n, _ in procs] + [oa_name]))
    for p in paths:
        src = Image.open(p)
        ref = normalise(np.asarray(reference(src.convert("RGB"), 224, 224, 224)))
        cols = [_steps(proc(images=src, return_tensors="np")["pixel_values"][0], ref) for _, proc in procs]
        cols.append(_steps(openai(src), ref))
        print(f"  {p.name:26s} " + " | ".join(cols))


if __name__ == "__main__":
    main()
