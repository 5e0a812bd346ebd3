#!/usr/bin/env python3
"""PyTorch baseline for SigLIP in bench/gpu (issue 26): transformers'
SiglipVisionModel / SiglipTextModel with random weights of real shapes, fp16,
SDPA attention; eager, or torch.compile(mode="max-autotune-no-cudagraphs").
The same method and JSON lines as torch_bench.py (and bench_gpu's "model"
names: SO400M/14, B/16-384, B/16-SigLIP), so the tables put them side by side.

  torch_bench_siglip.py --mode eager|compile [--models SO400M/14,B/16-384] [--json F] [--budget S]
"""
import argparse
import time

import torch
from transformers import SiglipTextConfig, SiglipTextModel, SiglipVisionConfig, SiglipVisionModel

from torch_bench import emit, flops_tower, time_fn

SHAPES = {  # vision: hidden, layers, heads, mlp, patch, image; text: hidden, layers, heads, mlp
    "SO400M/14": dict(v=(1152, 27, 16, 4304, 14, 224), t=(1152, 27, 16, 4304)),
    "B/16-384": dict(v=(768, 12, 12, 3072, 16, 384), t=(768, 12, 12, 3072)),
    "B/16-SigLIP": dict(v=(768, 12, 12, 3072, 16, 224), t=(768, 12, 12, 3072)),
}
CONTEXT = 64


def vision_flops(h, layers, mlp, patch, image):
    s = (image // patch) ** 2
    head = 2 * s * h * 2 * h + 4 * s * h + 2 * h * h + 4 * h * mlp
    return flops_tower(h, layers, mlp, s) + 2 * s * 3 * patch * patch * h + head


def make_models(name):
    s = SHAPES[name]
    vh, vl, vn, vm, patch, image = s["v"]
    th, tl, tn, tm = s["t"]
    vcfg = SiglipVisionConfig(hidden_size=vh, num_hidden_layers=vl, num_attention_heads=vn, intermediate_size=vm,
                              patch_size=patch, image_size=image)
    tcfg = SiglipTextConfig(hidden_size=th, num_hidden_layers=tl, num_attention_heads=tn, intermediate_size=tm,
                            vocab_size=32000, max_position_embeddings=CONTEXT)
    models = []
    for cls, cfg in ((SiglipVisionModel, vcfg), (SiglipTextModel, tcfg)):
        cfg._attn_implementation = "sdpa"
        with torch.device("cuda"):
            m = cls(cfg)
        models.append(m.half().eval())
    return models[0], models[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--models", default="SO400M/14,B/16-384")
    ap.add_argument("--json", default="")
    ap.add_argument("--budget", type=float, default=1e9)
    args = ap.parse_args()
    t_start = time.time()
    out = open(args.json, "a") if args.json else None
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name()}", flush=True)
    engine = "torch-" + args.mode
    names = args.models.split(",")
    if args.mode == "eager":
        cases = [(n, "vision", b) for n in names for b in (256, 1)] + \
                [(n, "text", b) for n in names for b in (1, 256)]
    else:  # the targets first: vision and text at batch 256
        cases = [(n, "vision", 256) for n in names] + [(n, "text", 256) for n in names] + \
                [(n, "vision", 1) for n in names]
    cache = {}
    for name, tower, batch in cases:
        elapsed = time.time() - t_start
        need = 120 if args.mode == "compile" else 20
        if elapsed + need > args.budget:
            print(f"# skip {name} {tower} b{batch}: {elapsed:.0f} s used of {args.budget:.0f} s", flush=True)
            continue
        if name not in cache:
            cache.clear()
            torch.cuda.empty_cache()
            cache[name] = make_models(name)
        vmodel, tmodel = cache[name]
        vh, vl, vn, vm, patch, image = SHAPES[name]["v"]
        th, tl, tn, tm = SHAPES[name]["t"]
        if tower == "vision":
            model = vmodel
            xs = [torch.randn(batch, 3, image, image, device="cuda", dtype=torch.float16) for _ in range(2)]
            flops, seq = vision_flops(vh, vl, vm, patch, image) * batch, (image // patch) ** 2
        else:
            model = tmodel
            xs = [torch.randint(0, 32000, (batch, CONTEXT), device="cuda") for _ in range(2)]
            flops, seq = (flops_tower(th, tl, tm, CONTEXT) + 2 * th * th) * batch, CONTEXT
        if args.mode == "compile":
            model = torch.compile(model, mode="max-autotune-no-cudagraphs")
        with torch.inference_mode():
            if tower == "vision":
                fn = lambda i: model(pixel_values=xs[i & 1]).pooler_output
            else:
                fn = lambda i: model(input_ids=xs[i & 1]).pooler_output
            t0 = time.time()
            fn(0)
            torch.cuda.synchronize()
            first = time.time() - t0
            ms, wall = time_fn(fn, max(first * 1e3 / 10, 0.05))
        emit(out, dict(engine=engine, model=name, tower=tower, precision="fp16", batch=batch, seq=seq, ms=round(ms, 4),
                       wall_ms=round(wall, 4), items_per_s=round(batch / ms * 1e3, 1),
                       tflops=round(flops / ms * 1e-9, 1), first_call_s=round(first, 1)))


if __name__ == "__main__":
    main()
