#!/usr/bin/env python3
"""How accurate would fp8 (e4m3) GEMMs be for CLIP's vision tower?

Measured with transformers' own CLIPVisionModelWithProjection, randomly
initialised with the real shapes (ViT-B/32 or ViT-L/14, as in
tools/make_reference.py), nothing downloaded. The float32 forward of N random
images is the reference. Each variant runs the same float32 model with every
nn.Linear under vision_model.encoder (q/k/v/out_proj, fc1, fc2) fake-quantised:
its input and weight are rounded to the low-precision format and back
(scale, cast, cast back, unscale), then multiplied in float32. LayerNorm,
softmax, the attention matmuls and the residual adds stay float32, so each row
shows what the GEMM operand rounding alone costs:

    fp16             operands cast to float16 (what an fp16 GEMM loses; sanity row)
    bf16             operands cast to bfloat16 (for scale: the engine's bf16 passes, which
                     keep their activations in bf16 too, reach cosine 0.99997)
    fp8 per-tensor   one amax/448 scale for the whole weight, one per input tensor per call
    fp8 per-channel  one scale per weight output channel, one per input token (row)
    fp8 MLP only     as per-channel, for fc1/fc2 only (~2/3 of the encoder's GEMM FLOPs)

It answers whether fp8 GEMMs would meet the project's fp16/bf16 accuracy bar:
cosine >= 0.9999 to the fp32 reference for every image embedding, and a
median relative error (median over all elements of |a-b|/(|b|+1e-5), the
figure the project reports) well under 9e-3.

Caveat: random weights lack the outlier activation channels of trained CLIP
models, which are what makes per-tensor fp8 hard in practice; --init unit
(make_reference.py's unit-scale init) gives larger, less uniform signals than
transformers' default init.

    python3 tools/fp8_accuracy.py                        # L/14, 16 images
    python3 tools/fp8_accuracy.py --model B/32 --images 2 --device cpu --json
"""
import argparse
import json
from contextlib import contextmanager

import torch
import torch.nn.functional as F
import transformers
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from make_reference import full_size_models, unit_scale_init

ATTN = "eager"  # every attention op explicit, in float32
E4M3_MAX = torch.finfo(torch.float8_e4m3fn).max  # 448
BAR = 0.9999


def vision_config(model):
    # make_reference's real-shape vision configs (quick_gelu, image 224).
    specs = full_size_models(49408, 2)
    return specs[{"B/32": "vit_b32", "L/14": "vit_l14"}[model]][2]


def fake_fp16(x):
    return x.to(torch.float16).to(torch.float32)


def fake_bf16(x):
    return x.to(torch.bfloat16).to(torch.float32)


def fake_fp8(x, dim=None):
    """Round to e4m3 with amax/448 scales: one scale for the tensor
    (dim=None), or one per slice along the other dims (amax over dim)."""
    amax = x.abs().amax() if dim is None else x.abs().amax(dim=dim, keepdim=True)
    scale = amax.clamp(min=1e-30) / E4M3_MAX
    return (x / scale).to(torch.float8_e4m3fn).to(torch.float32) * scale


# name -> (which Linear layers, activation rounding, weight rounding)
ALL = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
SCHEMES = {
    "fp16": (ALL, fake_fp16, fake_fp16),
    "bf16": (ALL, fake_bf16, fake_bf16),
    "fp8 e4m3 per-tensor": (ALL, fake_fp8, fake_fp8),
    # weight [out, in]: amax over in = per output channel; input [..., in]: per token
    "fp8 e4m3 per-channel/token": (ALL, lambda x: fake_fp8(x, -1), lambda w: fake_fp8(w, -1)),
    "fp8 e4m3 per-channel/token, MLP only": (("fc1", "fc2"), lambda x: fake_fp8(x, -1),
                                             lambda w: fake_fp8(w, -1)),
}


@contextmanager
def quantised_linears(model, layers, act_q, weight_q):
    patched = []
    for name, mod in model.vision_model.encoder.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.rsplit(".", 1)[-1] in layers:
            wq = weight_q(mod.weight.detach())  # rounded once per variant
            mod.forward = lambda x, wq=wq, b=mod.bias: F.linear(act_q(x), wq, b)
            patched.append(mod)
    assert patched, "no Linear layers matched"
    try:
        yield len(patched)
    finally:
        for mod in patched:
            del mod.forward  # back to nn.Linear.forward


def median(t):
    """Element n//2 of the sorted values, as tests/test_cuda_model.cpp takes it."""
    t = t.flatten()
    return t.sort().values[t.numel() // 2].item()


def compare(out, ref):
    a, b = out.double(), ref.double()
    cos = F.cosine_similarity(a, b, dim=-1)
    return dict(cos_min=cos.min().item(), cos_median=median(cos),
                max_abs=(a - b).abs().max().item(),
                median_rel=median((a - b).abs() / (b.abs() + 1e-5)),
                passes=bool(cos.min().item() >= BAR))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("B/32", "L/14"), default="L/14")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--init", choices=("hf", "unit"), default="hf",
                    help="hf: transformers' default init; unit: make_reference.py's unit-scale init")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object per row, nothing else")
    args = ap.parse_args()

    # A true float32 reference: no TF32 in matmuls or the patch convolution.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    torch.manual_seed(args.seed)
    cfg = CLIPVisionConfig(**vision_config(args.model), attn_implementation=ATTN)
    model = CLIPVisionModelWithProjection(cfg).eval()
    if args.init == "unit":
        unit_scale_init(model, args.seed)
    model = model.to(args.device, torch.float32)
    g = torch.Generator().manual_seed(args.seed + 1)
    pixels = torch.randn(args.images, 3, cfg.image_size, cfg.image_size, generator=g).to(args.device)

    @torch.no_grad()
    def embeds():
        return model(pixel_values=pixels).image_embeds.float()

    meta = dict(model=args.model, init=args.init, images=args.images, device=args.device,
                attn=ATTN, torch=torch.__version__, transformers=transformers.__version__)
    if not args.json:
        dev = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
        print(f"torch {torch.__version__}, transformers {transformers.__version__}, device {args.device} ({dev})")
        print(f"CLIP {args.model} vision tower, {args.init} init, seed {args.seed}, attn {ATTN}, "
              f"{args.images} image{'s' * (args.images != 1)}, image_embeds {cfg.projection_dim}-d; bar: cosine >= {BAR}\n")
        print(f"{'scheme':38s} {'linears':>7s} {'cos min':>10s} {'cos median':>10s} "
              f"{'max |a-b|':>10s} {'median rel':>10s}  pass")

    ref = embeds()
    for scheme, (layers, act_q, weight_q) in SCHEMES.items():
        with quantised_linears(model, layers, act_q, weight_q) as n:
            row = dict(scheme=scheme, linears=n, **compare(embeds(), ref))
        if args.json:
            print(json.dumps(dict(meta, **row)), flush=True)
        else:
            print(f"{scheme:38s} {n:7d} {row['cos_min']:10.7f} {row['cos_median']:10.7f} "
                  f"{row['max_abs']:10.3e} {row['median_rel']:10.3e}  {'yes' if row['passes'] else 'NO'}",
                  flush=True)
    assert torch.equal(embeds(), ref), "restoring the Linear forwards did not give back the fp32 result"
    if not args.json:
        print("\nfp32 forward after the variants equals the reference exactly (Linear forwards restored).")


if __name__ == "__main__":
    main()
