#!/usr/bin/env python3
"""ONNX Runtime side of the CPU comparison (bench/cpu/compare.sh).

--model clip-b32 (the default) exports transformers'
CLIPVisionModelWithProjection / CLIPTextModelWithProjection with ViT-B/32
shapes and random weights to ONNX (fp32, dynamic batch and sequence; needs
torch) under bench/out/. --model siglip-b16 writes a random SigLIP B/16-224
tower folders (bench/out/siglip_b16_{vision,text}/, transformers' layout,
which clipfind loads too) and their graphs (siglip_onnx.py: no torch); its
texts run at the 64-token context, as SigLIP pads them, so it has no 7-token
query case. Then times them with ONNX Runtime on the cases bench_cpu
times, printing the same tab-separated lines:
    engine  case  batch  seconds_per_call(median)  items_per_s  GFLOP/s

--int8 times ORT's own dynamic quantisation of the same export instead
(engine "ort-int8"): onnxruntime.quantization.quantize_dynamic with its
defaults (int8 weights per tensor, uint8 activations quantised at run time),
which is what an ORT user reaches for; written once beside the fp32 files.

    run_ort.py [--model clip-b32|siglip-b16] [--out DIR] [--threads 2] [--min-seconds 2]
               [--cases image,query,text] [--int8] [--export-only]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

# ViT-B/32 (openai/clip-vit-base-patch32); the same numbers as bench_cpu.cpp.
VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, image_size=224, patch_size=32,
              projection_dim=512, hidden_act="quick_gelu")
TEXT = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
            num_attention_heads=8, vocab_size=49408, max_position_embeddings=77,
            projection_dim=512, hidden_act="quick_gelu",
            bos_token_id=49406, eos_token_id=49407, pad_token_id=1)


def tower_macs(tokens, h, inter, layers, proj=512):
    return layers * (tokens * (4.0 * h * h + 2.0 * h * inter) + 2.0 * tokens * tokens * h) + h * proj


IMAGE_MACS = tower_macs(50, 768, 3072, 12) + 49 * 768 * 3 * 32 * 32

# SigLIP B/16-224 (google/siglip-base-patch16-224's vision tower), the shape
# bench_cpu --model B/16-SigLIP runs.
SIGLIP_B16 = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  image_size=224, patch_size=16)
SIGLIP_B16_TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       vocab_size=32000, max_position_embeddings=64)
SIGLIP_SEED = 42
# As bench/model_flops.h: patches (no class token), no projection; the pooling
# head's k|v over every token, the one query's attention, out_proj and MLP.
SIGLIP_IMAGE_MACS = (tower_macs(196, 768, 3072, 12, proj=0) + 196 * 768 * 3 * 16 * 16
                     + 196 * 768 * 2 * 768 + 2 * 196 * 768 + 768 * 768 + 2 * 768 * 3072)


def text_macs(tokens):
    return tower_macs(tokens, 512, 2048, 12)


SIGLIP_TEXT_MACS = tower_macs(64, 768, 3072, 12, proj=768)


def export_siglip(out_dir):
    """The random SigLIP B/16 tower folders and their ONNX graphs, made once:
    (vision path, text path)."""
    import siglip_onnx
    paths = []
    for tower, cfg, write in (("vision", SIGLIP_B16, siglip_onnx.random_vision_folder),
                              ("text", SIGLIP_B16_TEXT, siglip_onnx.random_text_folder)):
        folder = os.path.join(out_dir, f"siglip_b16_{tower}")
        path = os.path.join(out_dir, f"siglip_b16_{tower}.onnx")
        if not os.path.exists(os.path.join(folder, "model.safetensors")):
            write(folder, cfg, SIGLIP_SEED)
            print(f"# wrote random weights to {folder}", file=sys.stderr)
        if not os.path.exists(path):
            siglip_onnx.save_onnx(folder, tower, path)
            print(f"# exported {path}", file=sys.stderr)
        paths.append(path)
    return tuple(paths)


def export(out_dir):
    vision_path = os.path.join(out_dir, "clip_b32_vision.onnx")
    text_path = os.path.join(out_dir, "clip_b32_text.onnx")
    if os.path.exists(vision_path) and os.path.exists(text_path):
        return vision_path, text_path
    import torch
    from transformers import (CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    with torch.no_grad():
        vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**VISION)).eval()
        pixels = torch.randn(2, 3, 224, 224)
        torch.onnx.export(vision, (pixels,), vision_path, input_names=["pixel_values"],
                          output_names=["image_embeds"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
                          opset_version=17, dynamo=False)
        text = CLIPTextModelWithProjection(CLIPTextConfig(**TEXT)).eval()
        ids = torch.randint(0, 49000, (2, 9))
        ids[:, -1] = 49407
        torch.onnx.export(text, (ids,), text_path, input_names=["input_ids"],
                          output_names=["text_embeds"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "text_embeds": {0: "batch"}},
                          opset_version=17, dynamo=False)
    print(f"# exported {vision_path} and {text_path}", file=sys.stderr)
    return vision_path, text_path


def quantized(path):
    """ORT's dynamic int8 model of the fp32 export at `path`, made once."""
    out = path.replace(".onnx", "_int8.onnx")
    if not os.path.exists(out):
        from onnxruntime.quantization import quantize_dynamic
        quantize_dynamic(path, out)
        print(f"# quantised {path} to {out}", file=sys.stderr)
    return out


def median_seconds(fn, min_seconds):
    fn(0)
    fn(1)
    times = []
    start = time.perf_counter()
    i = 0
    while len(times) < 5 or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
        i += 1
    return statistics.median(times)


ENGINE = "ort"


def report(case, batch, seconds, macs):
    print(f"{ENGINE}\t{case}\t{batch}\t{seconds:.6f}\t{batch / seconds:.2f}\t"
          f"{2.0 * macs * batch / seconds / 1e9:.1f}", flush=True)


def texts(count, seq, variant, vocab=49408):
    """bench_cpu's ids: CLIP's start and end tokens, or random_model.h's for
    other vocabularies (vocab - 2, vocab - 1)."""
    bos, eos = (49406, 49407) if vocab == 49408 else (vocab - 2, vocab - 1)
    ids = np.empty((count, seq), dtype=np.int64)
    for i in range(count):
        ids[i, 0] = bos
        for t in range(1, seq - 1):
            ids[i, t] = (variant * 7919 + i * 104729 + t * 31) % min(49000, vocab)
        ids[i, seq - 1] = eos
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["clip-b32", "siglip-b16"], default="clip-b32")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "out"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--cases", default="image,query,text")
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    args = ap.parse_args()
    siglip = args.model == "siglip-b16"
    vision_path, text_path = export_siglip(args.out) if siglip else export(args.out)
    image_macs = SIGLIP_IMAGE_MACS if siglip else IMAGE_MACS
    int8_paths = quantized(vision_path), quantized(text_path)
    if args.export_only:
        return
    if args.int8:
        global ENGINE
        ENGINE = "ort-int8"
        vision_path, text_path = int8_paths

    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    print(f"# onnxruntime {ort.__version__}, {args.threads} intra-op threads", file=sys.stderr)

    if "image" in args.cases:
        sess = ort.InferenceSession(vision_path, opts, providers=["CPUExecutionProvider"])
        for batch in (1, 8, 32):
            rng = np.random.default_rng(batch)
            pix = [rng.standard_normal((batch, 3, 224, 224), dtype=np.float32) for _ in range(2)]
            s = median_seconds(lambda i: sess.run(None, {"pixel_values": pix[i % 2]}), args.min_seconds)
            report("image", batch, s, image_macs)
    if "query" in args.cases or "text" in args.cases:
        sess = ort.InferenceSession(text_path, opts, providers=["CPUExecutionProvider"])
        # SigLIP pads every text to its context: a query is the batch-1 text.
        if "query" in args.cases and not siglip:
            q = [texts(1, 7, 0), texts(1, 7, 1)]
            s = median_seconds(lambda i: sess.run(None, {"input_ids": q[i % 2]}), args.min_seconds / 2)
            report("text7", 1, s, text_macs(7))
        if "text" in args.cases:
            seq, vocab, macs = (64, 32000, SIGLIP_TEXT_MACS) if siglip else (77, 49408, text_macs(77))
            for batch in (1, 8, 32):
                b = [texts(batch, seq, 0, vocab), texts(batch, seq, 1, vocab)]
                s = median_seconds(lambda i: sess.run(None, {"input_ids": b[i % 2]}), args.min_seconds)
                report(f"text{seq}", batch, s, macs)


if __name__ == "__main__":
    main()
