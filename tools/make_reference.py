#!/usr/bin/env python3
"""Reference CLIP folders and golden embeddings from Hugging Face transformers.

Writes random-initialised CLIP models in the Hugging Face layout
(save_pretrained) and, for each, the embeddings transformers computes:

    tests/data/models/<name>/      config.json, model.safetensors (or shards),
                                   preprocessor_config.json, tokenizer files
    tests/data/golden/<name>.json  texts, ids, text_embeds, image_embeds

Images are given to both sides as a formula (pixel_formula below), so the
golden test checks the model alone; preprocessing has its own tests.

    python3 tools/make_reference.py                 # the small committed set
    python3 tools/make_reference.py --full OUT_DIR  # real shapes (B/32, B/16, L/14), not committed
    python3 tools/make_reference.py --family siglip [--full OUT_DIR]   # SigLIP (make_siglip_reference.py)

Runs wherever torch + transformers are installed (the GPU machine has them;
here: /work/venv-ref). The small set uses the project's own tokenizer
vocabulary (tests/data/tokenizer/small), since the real CLIP vocabulary may
not be copied into the repository.
"""
import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import (AutoTokenizer, CLIPConfig, CLIPModel, CLIPTextConfig,
                          CLIPTextModelWithProjection, CLIPVisionConfig,
                          CLIPVisionModelWithProjection)

ROOT = Path(__file__).resolve().parent.parent
CLIP_PNG = ROOT.parent / "shared/clip-data/CLIP.png"
TOKENIZER_DIR = ROOT / "tests/data/tokenizer/small"

TEXTS = [
    "a photo of a dog",
    "A RED circle on the left!",
    "",
    "two small blue squares, and one green star",
    "it's 3:45pm -- don't   stop\tnow",
    "café naïve coöperate",
    # Longer than the context: truncated with the end token kept last.
    " ".join(["a big yellow ambulance at night"] * 20),
]
NUM_IMAGES = 3


def pixel_formula(n, channels, size):
    """Deterministic pixels both sides compute exactly (integer arithmetic,
    then one float division): values in [-1, 1] like normalised images."""
    c = np.arange(channels).reshape(channels, 1, 1)
    y = np.arange(size).reshape(1, size, 1)
    x = np.arange(size).reshape(1, 1, size)
    out = np.empty((n, channels, size, size), dtype=np.float32)
    for i in range(n):
        v = (x * 7 + y * 13 + c * 29 + i * 31) % 255
        out[i] = (v.astype(np.float32) / np.float32(127.5)) - np.float32(1.0)
    return out


def unit_scale_init(model, seed):
    """transformers' CLIP init gives tiny projections; use unit-scale weights
    (std 0.02 like the real models for matrices, plus non-trivial norms and
    biases) so every parameter influences the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm1.weight") or name.endswith("layer_norm2.weight") or \
               "layernorm.weight" in name or "layrnorm.weight" in name or name.endswith("final_layer_norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):  # also nn.MultiheadAttention's in_proj_bias (SigLIP)
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif "embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1] if p.dim() == 2 else int(np.prod(p.shape[1:])) if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(fan_in))


def text_cfg(tok, hidden=64, layers=2, heads=4, act="quick_gelu", proj=32, eos=None):
    cfg = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id,
               hidden_size=hidden, intermediate_size=hidden * 4,
               num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
               hidden_act=act, projection_dim=proj)
    if eos is not None:
        cfg["eos_token_id"] = eos
    return cfg


def vision_cfg(image=224, patch=32, hidden=64, layers=2, heads=4, act="quick_gelu", proj=32):
    return dict(image_size=image, patch_size=patch, hidden_size=hidden, intermediate_size=hidden * 4,
                num_hidden_layers=layers, num_attention_heads=heads, hidden_act=act,
                projection_dim=proj)


# name -> (kind, text config, vision config, save dtype, extra save kwargs)
def small_models(tok):
    eos = tok.eos_token_id
    return {
        # Full model, fp32, quick_gelu, patch 32 at 224.
        "full_fp32_quickgelu_p32": ("full", text_cfg(tok, eos=eos), vision_cfg(), torch.float32, {}),
        # Full model, fp16 weights, exact gelu, patch 14, image 98 (not 224).
        "full_fp16_gelu_p14": ("full", text_cfg(tok, act="gelu", hidden=48, heads=3, eos=eos),
                               vision_cfg(image=98, patch=14, act="gelu", hidden=48, heads=3),
                               torch.float16, {}),
        # bf16 weights, patch 16, image 64, sharded into several files.
        "full_bf16_p16_sharded": ("full", text_cfg(tok, layers=3, eos=eos),
                                  vision_cfg(image=64, patch=16, layers=3),
                                  torch.bfloat16, {"max_shard_size": "40KB"}),
        # Old configs (eos_token_id 2): transformers pools the argmax of the ids.
        "full_fp32_eos2": ("full", text_cfg(tok, eos=2), vision_cfg(image=64, patch=16),
                           torch.float32, {}),
        "vision_only_p16": ("vision", None, vision_cfg(image=80, patch=16, hidden=32, heads=2, proj=24),
                            torch.float32, {}),
        "text_only": ("text", text_cfg(tok, hidden=32, heads=2, proj=24, eos=eos), None,
                      torch.float32, {}),
    }


def full_size_models(vocab, eos):
    b32_text = dict(vocab_size=vocab, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                    num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu",
                    projection_dim=512, eos_token_id=eos)
    l14_text = dict(b32_text, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                    projection_dim=768)
    def vit(patch, hidden, layers, heads, proj):
        return dict(image_size=224, patch_size=patch, hidden_size=hidden, intermediate_size=hidden * 4,
                    num_hidden_layers=layers, num_attention_heads=heads, hidden_act="quick_gelu",
                    projection_dim=proj)
    return {
        "vit_b32": ("full", b32_text, vit(32, 768, 12, 12, 512), torch.float32, {}),
        "vit_b16": ("full", b32_text, vit(16, 768, 12, 12, 512), torch.float16, {}),
        "vit_l14": ("full", l14_text, vit(14, 1024, 24, 16, 768), torch.float16, {}),
    }


def build(kind, tcfg, vcfg):
    if kind == "full":
        proj = (tcfg or vcfg)["projection_dim"]
        cfg = CLIPConfig(text_config=tcfg, vision_config=vcfg, projection_dim=proj)
        return CLIPModel(cfg)
    if kind == "vision":
        return CLIPVisionModelWithProjection(CLIPVisionConfig(**vcfg))
    return CLIPTextModelWithProjection(CLIPTextConfig(**tcfg))


def preprocessor_config(image_size):
    return {
        "crop_size": {"height": image_size, "width": image_size},
        "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True,
        "do_rescale": True, "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "CLIPImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3, "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": image_size},
    }


def pil_pixels(path, size, mean, std):
    """openai/CLIP-style preprocessing with PIL, as the engine does it:
    convert("RGB"), bicubic resize of the short side (long side
    int(size * long / short)), center crop at round((h - size) / 2), /255,
    mean/std. (Needs Pillow >= 13 for byte-exact agreement on images taller
    than wide; CLIP.png is wide.)"""
    from PIL import Image
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nw, nh = int(size * w / h), size
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = round((nw - size) / 2), round((nh - size) / 2)
    img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    return torch.from_numpy(x.transpose(2, 0, 1)[None].copy())


@torch.no_grad()
def embed(model, kind, tok, context, eos_token_id, vision_size):
    out = {}
    if kind in ("full", "text"):
        ids = [tok(t, truncation=True, max_length=context)["input_ids"] for t in TEXTS]
        # Padded with the end token, as CLIP's tokenizer pads: with it the
        # old argmax pooling (eos_token_id == 2) still finds the real end.
        padded = torch.full((len(ids), context), tok.eos_token_id, dtype=torch.long)
        for i, row in enumerate(ids):
            padded[i, :len(row)] = torch.tensor(row)
        if kind == "full":
            pooled = model.text_model(input_ids=padded).pooler_output
            emb = model.text_projection(pooled)
        else:
            emb = model.text_projection(model.text_model(input_ids=padded).pooler_output)
        out.update(texts=TEXTS, ids=ids, text_embeds=emb.double().tolist())
    if kind in ("full", "vision"):
        pixels = torch.from_numpy(pixel_formula(NUM_IMAGES, 3, vision_size))
        emb = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        out.update(num_images=NUM_IMAGES, image_size=vision_size, image_embeds=emb.double().tolist())
        if CLIP_PNG.exists():
            pp = preprocessor_config(vision_size)
            pixels = pil_pixels(CLIP_PNG, vision_size, pp["image_mean"], pp["image_std"])
            emb = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
            out.update(clip_png_embeds=emb.double().tolist())
    return out


def save_rounded(model, dtype, folder, save_kwargs):
    """Saves `model` in `dtype` to `folder` (replacing it) and returns it in
    float32 with the weights as saved (rounded to fp16/bf16 where the
    checkpoint is): golden values are computed in fp32 from those, as the
    engine computes them."""
    model = model.to(dtype).to(torch.float32)
    if folder.exists():
        shutil.rmtree(folder)
    model.to(dtype).save_pretrained(folder, **save_kwargs)
    return model.to(torch.float32)


def write_model(name, spec, tok, tok_dir, models_dir, golden_dir, seed):
    kind, tcfg, vcfg, dtype, save_kwargs = spec
    torch.manual_seed(seed)
    model = build(kind, tcfg, vcfg).eval()
    unit_scale_init(model, seed)
    folder = models_dir / name
    model = save_rounded(model, dtype, folder, save_kwargs)
    vision_size = vcfg["image_size"] if vcfg else None
    if vcfg:
        (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(vision_size), indent=2))
    if tcfg:
        for f in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
            if (tok_dir / f).exists():
                shutil.copy(tok_dir / f, folder / f)
    context = tcfg["max_position_embeddings"] if tcfg else 0
    eos = tcfg.get("eos_token_id") if tcfg else None
    golden = embed(model, kind, tok, context, eos, vision_size)
    golden.update(model=name, seed=seed, transformers=transformers.__version__, torch=torch.__version__)
    if golden_dir is not None:
        golden_dir.mkdir(parents=True, exist_ok=True)
        (golden_dir / f"{name}.json").write_text(json.dumps(golden))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {folder}")
    return golden


def write_existing(folder):
    """Golden values for a model folder kept elsewhere in the repository; the
    test finds it through "model_dir" (relative to the repository root)."""
    model = CLIPModel.from_pretrained(folder, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    tcfg, vcfg = model.config.text_config, model.config.vision_config
    golden = embed(model, "full", tok, tcfg.max_position_embeddings, tcfg.eos_token_id, vcfg.image_size)
    name = folder.name.replace("-", "_")
    golden.update(model=name, model_dir=str(folder.relative_to(ROOT)),
                  transformers=transformers.__version__, torch=torch.__version__)
    (ROOT / "tests/data/golden" / f"{name}.json").write_text(json.dumps(golden))
    print(f"{name}: golden values for {folder}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", metavar="OUT_DIR", help="write real-shape models (not for the repository)")
    ap.add_argument("--tokenizer", default=str(TOKENIZER_DIR),
                    help="folder with vocab.json + merges.txt + tokenizer_config.json")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--only", nargs="*", help="names of the models to write (default: all)")
    ap.add_argument("--existing", metavar="MODEL_DIR",
                    help="write tests/data/golden/<folder name>.json for a saved CLIPModel folder "
                         "(e.g. models/shapes-clip) instead of making random models")
    ap.add_argument("--family", choices=("clip", "siglip"), default="clip",
                    help="siglip: SigLIP / SigLIP 2 folders (tools/make_siglip_reference.py)")
    args = ap.parse_args()
    if args.family == "siglip":
        import make_siglip_reference
        make_siglip_reference.main(args.full, args.seed, args.only)
        return
    if args.existing:
        write_existing(Path(args.existing).resolve())
        return
    tok_dir = Path(args.tokenizer)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    if args.full:
        out = Path(args.full)
        specs = full_size_models(max(len(tok), 49408), tok.eos_token_id)
        models_dir, golden_dir = out / "models", out / "golden"
    else:
        specs = small_models(tok)
        models_dir, golden_dir = ROOT / "tests/data/models", ROOT / "tests/data/golden"
    for i, (name, spec) in enumerate(specs.items()):
        if args.only and name not in args.only:
            continue
        write_model(name, spec, tok, tok_dir, models_dir, golden_dir, args.seed + i)


if __name__ == "__main__":
    main()
