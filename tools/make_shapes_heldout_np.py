#!/usr/bin/env python3
"""Writes tests/data/shapes/heldout_np.json: transformers' fp32
zero-shot answers of models/shapes-clip on the held-out scenes rendered with
numpy (tools/shapes_render_np.py), which CI can render again without torch.

    python3 tools/make_shapes_heldout_np.py [--model models/shapes-clip] [--out FILE]

(needs torch + transformers, e.g. /work/venv-ref/bin/python). The scenes are
train_tiny_clip.py's held-out ones (seed 20261124, 2000 scenes); heldout.json's
answers are on images rendered with torch's noise, which numpy cannot make, so
these are answers on other images of the same scenes. Per image and prompt
family (shapes_words.prompts()): the index of the prompt with the highest
cosine similarity, and, where the runner-up is within CLOSE of it, the margin
(tests/test_shapes_heldout.py forgives disagreement only on such close calls).
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_tiny_clip as T  # noqa: E402
from shapes_render_np import render_np  # noqa: E402
from shapes_words import labels, prompts  # noqa: E402

CLOSE = 0.01   # margins (cosine similarity, top-1 minus top-2) below this are written out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/shapes-clip")
    ap.add_argument("--out", default="tests/data/shapes/heldout_np.json")
    args = ap.parse_args()
    import transformers
    from transformers import AutoTokenizer, CLIPModel
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    model = CLIPModel.from_pretrained(args.model, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(args.model)
    size = model.config.vision_config.image_size
    scenes = T.heldout_scenes()
    images = render_np(scenes, size)                                   # (n, size, size, 3) uint8
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    img = torch.cat([T.embed_images(model, T.normalise(pixels[i:i + 500])) for i in range(0, len(pixels), 500)])
    img = F.normalize(img, dim=-1)
    truth = labels(scenes)

    out = {
        "about": "transformers fp32 zero-shot answers of models/shapes-clip on the held-out scenes rendered "
                 "with numpy; made by tools/make_shapes_heldout_np.py, checked by tests/test_shapes_heldout.py",
        "seed": T.HELDOUT_SEED, "n": T.HELDOUT_N, "image_size": size,
        "renderer": "tools/shapes_render_np.py: render_np(sample_scenes(numpy.random.default_rng(seed), n), "
                    "image_size)",
        "images_sha256": hashlib.sha256(images.tobytes()).hexdigest(),
        "model_sha256": sha256_file(os.path.join(args.model, "model.safetensors")),
        "torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__,
        "close": CLOSE, "prompts": prompts(), "accuracy": {}, "min_margin": {},
        "predictions": {}, "close_calls": {},
    }
    for family, texts in prompts().items():
        enc = tok(texts, padding=True, return_tensors="pt")
        txt = F.normalize(T.embed_texts(model, enc["input_ids"], enc["attention_mask"]), dim=-1)
        top = (img @ txt.t()).topk(2, dim=1)
        pred = top.indices[:, 0].numpy()
        margin = (top.values[:, 0] - top.values[:, 1]).numpy()
        out["predictions"][family] = pred.tolist()
        out["close_calls"][family] = [[int(i), round(float(margin[i]), 6)] for i in np.flatnonzero(margin < CLOSE)]
        out["min_margin"][family] = round(float(margin.min()), 6)
        out["accuracy"][family] = round(float((pred == truth[family]).mean()), 4)
    with open(args.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")
    for family in out["accuracy"]:
        print(f"  {family}: accuracy {out['accuracy'][family]:.4f}, min margin {out['min_margin'][family]:.4f}, "
              f"{len(out['close_calls'][family])} below {CLOSE}")


if __name__ == "__main__":
    main()
