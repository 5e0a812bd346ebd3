#!/usr/bin/env python3
"""PyTorch baseline for bench/gpu: transformers' CLIPVisionModelWithProjection /
CLIPTextModelWithProjection with random weights of real CLIP shapes, fp16,
SDPA attention; eager, or torch.compile(mode="max-autotune-no-cudagraphs").

Same method as bench_gpu.cpp: inputs on the GPU (two sets, alternated),
warm-up, CUDA events around each call, median. Writes one JSON line per
measurement (flushed at once, so a run cut short keeps what it measured).

  torch_bench.py --mode eager|compile [--models B/32,B/16,L/14] [--json F] [--budget S]

--budget (compile mode): seconds this process may spend; cases are taken in
priority order and one is skipped when too little time is left for it.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from transformers import (CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig,
                          CLIPVisionModelWithProjection)

SHAPES = {  # vision: hidden, layers, heads, mlp, patch; text: hidden, layers, heads, mlp; projection
    "B/32": dict(v=(768, 12, 12, 3072, 32), t=(512, 12, 8, 2048), proj=512),
    "B/16": dict(v=(768, 12, 12, 3072, 16), t=(512, 12, 8, 2048), proj=512),
    "L/14": dict(v=(1024, 24, 16, 4096, 14), t=(768, 12, 12, 3072), proj=768),
}


def flops_tower(hidden, layers, mlp, seq):
    return layers * (2 * seq * hidden * (4 * hidden + 2 * mlp) + 4 * seq * seq * hidden)


def make_models(name):
    s = SHAPES[name]
    vh, vl, vn, vm, patch = s["v"]
    th, tl, tn, tm = s["t"]
    vcfg = CLIPVisionConfig(hidden_size=vh, num_hidden_layers=vl, num_attention_heads=vn, intermediate_size=vm,
                            patch_size=patch, image_size=224, projection_dim=s["proj"], hidden_act="quick_gelu")
    tcfg = CLIPTextConfig(hidden_size=th, num_hidden_layers=tl, num_attention_heads=tn, intermediate_size=tm,
                          vocab_size=49408, max_position_embeddings=77, projection_dim=s["proj"],
                          hidden_act="quick_gelu")
    models = []
    for cls, cfg in ((CLIPVisionModelWithProjection, vcfg), (CLIPTextModelWithProjection, tcfg)):
        cfg._attn_implementation = "sdpa"
        with torch.device("cuda"):
            m = cls(cfg)
        models.append(m.half().eval())
    vflops = flops_tower(vh, vl, vm, (224 // patch) ** 2 + 1) + 2 * (224 // patch) ** 2 * 3 * patch * patch * vh \
        + 2 * vh * s["proj"]
    return models[0], models[1], vflops, (th, tl, tm, s["proj"])


def time_fn(fn, est_ms):
    for i in range(3):
        fn(i)
    torch.cuda.synchronize()
    reps = max(7, min(200, int(1500 / max(est_ms, 0.01))))
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(reps + 1)]
    ev[0].record()
    for i in range(reps):
        fn(i)
        ev[i + 1].record()
    torch.cuda.synchronize()
    gpu = [ev[i].elapsed_time(ev[i + 1]) for i in range(reps)]
    wall = []
    for i in range(min(reps, 30)):
        t0 = time.perf_counter()
        fn(i)
        torch.cuda.synchronize()
        wall.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(gpu), statistics.median(wall)


def emit(out, rec):
    line = json.dumps(rec)
    print(line, flush=True)
    if out:
        out.write(line + "\n")
        out.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--models", default="B/32,B/16,L/14")
    ap.add_argument("--json", default="")
    ap.add_argument("--budget", type=float, default=1e9)
    args = ap.parse_args()
    t_start = time.time()
    out = open(args.json, "a") if args.json else None
    torch.backends.cuda.matmul.allow_tf32 = True
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name()}", flush=True)
    engine = "torch-" + args.mode

    if args.mode == "eager":
        cases = []
        for name in args.models.split(","):
            batches = [1, 64, 256] if name == "L/14" else [1, 64, 256, 1024]
            cases += [(name, "vision", b, 0) for b in batches]
            cases += [(name, "text", 1, 7), (name, "text", 2, 8), (name, "text", 1, 77), (name, "text", 256, 77)]
    else:  # priority order: what the targets compare against first
        cases = [("B/32", "vision", 256, 0), ("B/32", "vision", 1, 0), ("L/14", "vision", 256, 0),
                 ("B/32", "text", 256, 77), ("B/32", "vision", 1024, 0), ("B/32", "text", 1, 7),
                 ("B/32", "vision", 64, 0)]
        cases = [c for c in cases if c[0] in args.models.split(",")]

    cache = {}
    est = {}
    for name, tower, batch, seq in cases:
        elapsed = time.time() - t_start
        # A max-autotune compile of one new shape has taken ~1-2 minutes here.
        need = 85 if args.mode == "compile" else 15
        if elapsed + need > args.budget:
            print(f"# skip {name} {tower} b{batch}: {elapsed:.0f} s used of a {args.budget:.0f} s budget", flush=True)
            continue
        if name not in cache:
            cache.clear()
            torch.cuda.empty_cache()
            cache[name] = make_models(name)
        vmodel, tmodel, vflops, (th, tl, tm, proj) = cache[name]
        torch.cuda.reset_peak_memory_stats()
        if tower == "vision":
            model = vmodel
            xs = [torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.float16) for _ in range(2)]
            flops = vflops * batch
            seq_out = (224 // SHAPES[name]["v"][4]) ** 2 + 1  # tokens, as bench_gpu reports them
        else:
            model = tmodel
            xs = [torch.randint(0, 49406, (batch, seq), device="cuda") for _ in range(2)]
            flops = (flops_tower(th, tl, tm, seq) + 2 * th * proj) * batch
            seq_out = seq
        if args.mode == "compile":
            model = torch.compile(model, mode="max-autotune-no-cudagraphs")
        with torch.inference_mode():
            if tower == "vision":
                fn = lambda i: model(pixel_values=xs[i & 1]).image_embeds
            else:
                fn = lambda i: model(input_ids=xs[i & 1]).text_embeds
            t0 = time.time()
            fn(0)
            torch.cuda.synchronize()
            first_s = time.time() - t0
            ms, wall = time_fn(fn, est.get((name, tower), 1.0) * batch)
        est[(name, tower)] = ms / batch
        emit(out, dict(engine=engine, model=name, tower=tower, precision="fp16", batch=batch, seq=seq_out,
                       ms=round(ms, 4), wall_ms=round(wall, 4), items_per_s=round(batch / ms * 1e3, 1),
                       tflops=round(flops / ms * 1e-9, 1),
                       gpu_mem_mb=round(torch.cuda.max_memory_allocated() / 2**20),
                       first_call_s=round(first_s, 1)))
        if args.mode == "compile":
            torch._dynamo.reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
