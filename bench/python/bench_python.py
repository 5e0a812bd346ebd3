#!/usr/bin/env python3
"""The Python package against the C++ engine it wraps (issue 29).

    python3 bench/python/bench_python.py [--model models/shapes-clip] [--threads 2] [--rounds 5]
    python3 bench/python/bench_python.py --model B32_FOLDER --device cuda --precision fp16 --image-size 224

On the GPU both engines run fp16 on the same device (transformers with SDPA,
`model.half().cuda()`); images are --image-size squares of random pixels,
prepared the way each user would (clipfind takes the uint8 arrays,
transformers its CLIPImageProcessor's tensors, moved to the GPU).

Prints, in one run on one machine:
  1. `import clipfind` cold start: a fresh interpreter's `import clipfind`
     (median of --imports runs), beside `import numpy` alone and `pass`.
  2. Per-call overhead: the median of the Python call (argument conversion,
     GIL release, the engine, the numpy result) minus the median of the same
     engine call timed inside C++ on the same inputs (Engine._cpp_seconds_per_call),
     for one short text, one small image, and batches of 32 and 256 texts and
     images; and the Python package's speed as a share of the C++ engine's.
     The two alternate round by round so that load from other users hits both.
  3. Where torch and transformers import: CLIPModel.get_text_features /
     get_image_features on the same model, batch 32 and 256, in the same run,
     and clipfind's speed-up over them (PyTorch gets the same thread count).
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def median_seconds(fn, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def cold_start(runs):
    def one(code):
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    base = one("pass")
    numpy_only = one("import numpy")
    ours = one("import clipfind")
    # Inside the interpreter: what the import itself costs (numpy included, as
    # clipfind's results need it).
    inner = subprocess.run(
        [sys.executable, "-c",
         "import time; t=time.perf_counter(); import clipfind, numpy; print(time.perf_counter()-t)"],
        check=True, capture_output=True, text=True).stdout
    print(f"cold start (median of {runs} fresh interpreters): python -c pass {base * 1e3:.0f} ms, "
          f"import numpy {numpy_only * 1e3:.0f} ms, import clipfind {ours * 1e3:.0f} ms "
          f"(the import alone, numpy included: {float(inner) * 1e3:.0f} ms; target <= 300 ms)")


def images_of(n, size, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def overhead(engine, rounds, size):
    texts1 = ["a red circle on the left"]
    px = f"{size}x{size}"
    cases = [
        ("1 text", "texts", texts1, lambda: engine.embed_texts(texts1), 300),
        (f"1 image {px}", "images", images_of(1, size), None, 40),
        ("32 texts", "texts", [f"{i} small blue squares and a green star" for i in range(32)], None, 20),
        ("256 texts", "texts", [f"{i} small blue squares and a green star" for i in range(256)], None, 4),
        (f"32 images {px}", "images", images_of(32, size), None, 4),
        (f"256 images {px}", "images", images_of(256, size), None, 2),
    ]
    print(f"\nper call, model {engine.model_dir.name} on {engine.backend} ({engine.precision}); "
          f"median over {rounds} alternating rounds")
    print(f"{'case':18} | {'C++ call ms':>11} | {'Python ms':>11} | {'overhead us':>11} | {'Python/C++ speed':>16}")
    for name, kind, inputs, call, repeats in cases:
        if call is None:
            call = (lambda x=inputs: engine.embed_texts(x)) if kind == "texts" else (lambda x=inputs: engine.embed_images(x))
        call()  # warm up
        cpp, py = [], []
        for r in range(rounds):
            order = [0, 1] if r % 2 == 0 else [1, 0]
            for o in order:
                if o == 0:
                    cpp.append(engine._cpp_seconds_per_call(inputs, kind, repeats))
                else:
                    py.append(median_seconds(call, repeats))
        c, p = statistics.median(cpp), statistics.median(py)
        print(f"{name:18} | {c * 1e3:11.3f} | {p * 1e3:11.3f} | {(p - c) * 1e6:+11.1f} | {c / p:15.3f}x")


CASES = [(batch, kind) for batch in (32, 256) for kind in ("texts", "images")]


def texts_of(n):
    return [f"{i} small blue squares and a green star" for i in range(n)]


def transformers_seconds(model_dir, threads, rounds, device, size):
    """Runs in a child process (--peer), so that neither engine's memory,
    threads or CUDA context weigh on the other's timings. Prints one JSON
    object: the versions, and the median seconds of each case."""
    import torch
    from transformers import CLIPModel, CLIPTokenizer, CLIPImageProcessor
    torch.set_num_threads(threads)
    gpu = device.startswith("cuda")
    model = CLIPModel.from_pretrained(model_dir, attn_implementation="sdpa").eval()
    if gpu:
        model = model.half().to(device)
    tok = CLIPTokenizer.from_pretrained(model_dir)
    proc = CLIPImageProcessor.from_pretrained(model_dir)
    out = {"what": f"fp16 SDPA on {torch.cuda.get_device_name()}" if gpu else f"fp32, {threads} threads",
           "versions": f"transformers {__import__('transformers').__version__} / torch {torch.__version__}"}
    for batch, kind in CASES:
        texts, images = texts_of(batch), images_of(batch, size)

        def features(out):  # a tensor, or (newer transformers) an output whose pooler_output is it
            return getattr(out, "pooler_output", out).float().cpu()

        def hf_text():
            with torch.no_grad():
                return features(model.get_text_features(**tok(texts, padding=True, return_tensors="pt").to(device)))

        def hf_image():
            with torch.no_grad():
                pixels = proc(images=images, return_tensors="pt")["pixel_values"].to(device)
                return features(model.get_image_features(pixel_values=pixels.half() if gpu else pixels))

        fn = hf_text if kind == "texts" else hf_image
        fn()
        out[f"{batch} {kind}"] = statistics.median(median_seconds(fn, 1) for _ in range(rounds))
    print(json.dumps(out))


def against_transformers(engine, model_dir, threads, rounds, device, size):
    cmd = [sys.executable, __file__, "--peer", "--model", model_dir, "--threads", str(threads), "--rounds",
           str(rounds), "--device", device, "--image-size", str(size)]
    child = subprocess.run(cmd, capture_output=True, text=True)
    if child.returncode != 0:
        print(f"\ntransformers comparison skipped: {child.stderr.strip()[-300:]} (pip install torch transformers)")
        return
    theirs = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"\nagainst {theirs['versions']} ({theirs['what']}, in its own process just before), "
          f"inputs prepared the way each user would")
    print(f"{'case':16} | {'clipfind':>10} | {'transformers':>12} | {'ratio':>6}")
    for batch, kind in CASES:
        texts, images = texts_of(batch), images_of(batch, size)
        ours = (lambda: engine.embed_texts(texts)) if kind == "texts" else (lambda: engine.embed_images(images))
        ours()
        a = statistics.median(median_seconds(ours, 1) for _ in range(rounds))
        b = theirs[f"{batch} {kind}"]
        print(f"{batch} {kind:13} | {a * 1e3:7.1f} ms | {b * 1e3:9.1f} ms | {b / a:5.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models/shapes-clip"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--imports", type=int, default=15)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both engines run there)")
    ap.add_argument("--precision", default=None, help="clipfind's precision (default: the engine's choice)")
    ap.add_argument("--image-size", type=int, default=96, help="side of the random square images")
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)  # the transformers child
    args = ap.parse_args()
    if args.peer:
        return transformers_seconds(args.model, args.threads, args.rounds, args.device, args.image_size)
    cold_start(args.imports)
    import clipfind
    engine = clipfind.Engine(args.model, device=args.device, precision=args.precision, threads=args.threads)
    overhead(engine, args.rounds, args.image_size)
    against_transformers(engine, args.model, args.threads, args.rounds, args.device, args.image_size)


if __name__ == "__main__":
    main()
