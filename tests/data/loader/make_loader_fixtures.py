#!/usr/bin/env python3
"""Writes the tiny transformers-saved CLIP folders that tests/test_config_weights.cpp
loads (tests/data/loader/*, under 100 KB together), each with expected.json:
the sizes load_model must report and, for every tensor, its shape, first
values and float64 sum.

Run from the repository root with torch + transformers + safetensors:
    python3 tests/data/loader/make_loader_fixtures.py
Needs only the CPU. Re-running rewrites the folders (values change with the
transformers version's initialisers; the tests read expected.json, so any
version's output is self-consistent).
"""
import json
import os
import shutil

import torch
from safetensors.torch import load_file
from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig,
                          CLIPTextModelWithProjection, CLIPVisionConfig,
                          CLIPVisionModelWithProjection)
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))

TEXT = dict(hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
            vocab_size=24, max_position_embeddings=10)
VISION = dict(hidden_size=12, intermediate_size=20, num_hidden_layers=1, num_attention_heads=3,
              image_size=10, patch_size=5)


def expected(model, folder):
    """Sizes and per-tensor checksums of what save_pretrained wrote."""
    tensors = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(folder, name)))
    out = {"transformers_version": transformers.__version__}
    out["tensors"] = {
        name: {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
               "first": t.float().flatten()[:2].tolist(),
               "sum": float(t.double().sum())}
        for name, t in sorted(tensors.items())}
    return out


def save(model, name, expect, **kw):
    folder = os.path.join(HERE, name)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, **kw)
    CLIPImageProcessor(size={"shortest_edge": VISION["image_size"]},
                       crop_size={"height": VISION["image_size"], "width": VISION["image_size"]}
                       ).save_pretrained(folder)
    e = expected(model, folder)
    e.update(expect)
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(e, f, separators=(",", ":"))


def main():
    torch.manual_seed(0)
    text_sizes = dict(TEXT, hidden_act="gelu")
    vision_sizes = dict(VISION, hidden_act="gelu")
    cfg = CLIPConfig(text_config=text_sizes, vision_config=vision_sizes, projection_dim=8)
    save(CLIPModel(cfg).to(torch.float16), "hf_clip_fp16",
         {"text": TEXT, "vision": VISION, "projection_dim": 8, "hidden_act": "gelu"})

    vcfg = CLIPVisionConfig(projection_dim=8, **VISION)
    save(CLIPVisionModelWithProjection(vcfg), "hf_vision_sharded",
         {"vision": VISION, "projection_dim": 8, "hidden_act": "quick_gelu"},
         max_shard_size="6KB")

    tcfg = CLIPTextConfig(projection_dim=8, **TEXT)
    save(CLIPTextModelWithProjection(tcfg).to(torch.bfloat16), "hf_text_bf16",
         {"text": TEXT, "projection_dim": 8, "hidden_act": "quick_gelu"})


if __name__ == "__main__":
    main()
