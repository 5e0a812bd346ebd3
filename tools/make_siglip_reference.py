#!/usr/bin/env python3
"""Reference SigLIP / SigLIP 2 folders and golden embeddings from transformers.

The SigLIP side of tools/make_reference.py (`make_reference.py --family
siglip` runs this): random-initialised `SiglipModel` folders (and towers saved
alone) in the Hugging Face layout, with the SentencePiece tokenizers trained
here (tests/data/siglip-tokenizer: a unigram model like SigLIP's spiece.model;
tests/data/gemma-tokenizer: a BPE model with byte fallback like SigLIP 2's
Gemma tokenizer; tools/make_spm_tokenizers.py makes both), and what
transformers computes for them, in the golden format test_golden_model reads:

    tests/data/models/siglip_<name>/      config.json, model.safetensors (or shards),
                                          preprocessor_config.json, tokenizer files
    tests/data/golden/siglip_<name>.json  texts, ids, text_embeds, image_embeds

SigLIP 2's fixed-resolution checkpoints are `SiglipModel`s with the Gemma
tokenizer, so "siglip2" here means that tokenizer (and bilinear resizing).
Texts are tokenised as SiglipProcessor does: padding="max_length",
truncation, max_length = the text tower's max_position_embeddings.

    python3 tools/make_reference.py --family siglip                # the small committed set
    python3 tools/make_reference.py --family siglip --full OUT_DIR  # SO400M/14-224, B/16-384
"""
import json
import math
import shutil
from pathlib import Path

import torch
import transformers
from transformers import (AutoTokenizer, SiglipConfig, SiglipModel, SiglipTextConfig, SiglipTextModel,
                          SiglipVisionConfig, SiglipVisionModel)

from make_reference import CLIP_PNG, NUM_IMAGES, ROOT, TEXTS, pixel_formula, save_rounded, unit_scale_init

TOKENIZERS = {
    "siglip": ROOT / "tests/data/siglip-tokenizer",
    "siglip2": ROOT / "tests/data/gemma-tokenizer",
}
TOKENIZER_FILES = ("spiece.model", "tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")
# Trained SigLIP checkpoints end near these (exp(4.7) ~ 110); the init's
# random values would make every probability 0.5 or 0.
LOGIT_SCALE, LOGIT_BIAS = 4.7, -16.5


def text_cfg(tok, hidden=64, layers=2, heads=4, positions=64, proj=None):
    cfg = dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers,
               num_attention_heads=heads, max_position_embeddings=positions, pad_token_id=tok.pad_token_id,
               eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    if proj is not None:
        cfg["projection_size"] = proj
    return cfg


def vision_cfg(image=64, patch=16, hidden=64, layers=2, heads=4, inter=None):
    return dict(image_size=image, patch_size=patch, hidden_size=hidden, intermediate_size=inter or hidden * 4,
                num_hidden_layers=layers, num_attention_heads=heads)


# name -> (kind, tokenizer, text config, vision config, save dtype, save kwargs, resample)
def small_models(toks):
    sp, gm = toks["siglip"], toks["siglip2"]
    return {
        # fp32, patch 16 at 64 px (16 patches), head size 16.
        "siglip_full_fp32_p16": ("full", "siglip", text_cfg(sp), vision_cfg(), torch.float32, {}, 3),
        # fp16 weights, patch 14 at 98 px (49 patches), 3 heads of 16, a 16-token context.
        "siglip_full_fp16_p14": ("full", "siglip", text_cfg(sp, hidden=48, heads=3, positions=16),
                                 vision_cfg(image=98, patch=14, hidden=48, heads=3), torch.float16, {}, 3),
        # SigLIP 2 style: Gemma tokenizer, bilinear, head size 72 (as SO400M), bf16, sharded.
        "siglip2_full_bf16_p16_sharded": ("full", "siglip2", text_cfg(gm, hidden=144, heads=2, layers=2),
                                          vision_cfg(image=64, patch=16, hidden=144, heads=2, layers=2),
                                          torch.bfloat16, {"max_shard_size": "1MB"}, 2),
        # Towers saved alone (no text_model./vision_model. prefix in transformers 5).
        "siglip_vision_only": ("vision", None, None, vision_cfg(image=48, patch=16, hidden=32, heads=2),
                               torch.float32, {}, 3),
        "siglip2_text_only": ("text", "siglip2", text_cfg(gm, hidden=32, heads=2, positions=24), None,
                              torch.float32, {}, 2),
    }


def full_size_models(toks):
    sp = toks["siglip"]
    so400m = dict(hidden=1152, inter=4304, layers=27, heads=16)

    def text(t, hidden, inter, layers, heads):
        return dict(text_cfg(t, hidden=hidden, layers=layers, heads=heads), intermediate_size=inter,
                    vocab_size=32000)

    return {
        "siglip_so400m_p14_224": ("full", "siglip", text(sp, 1152, 4304, 27, 16),
                                  vision_cfg(image=224, patch=14, **so400m), torch.float16, {}, 3),
        "siglip_b16_384": ("full", "siglip", text(sp, 768, 3072, 12, 12),
                           vision_cfg(image=384, patch=16, hidden=768, layers=12, heads=12), torch.float16, {}, 3),
    }


def build(kind, tcfg, vcfg):
    if kind == "full":
        return SiglipModel(SiglipConfig(text_config=tcfg, vision_config=vcfg))
    if kind == "vision":
        return SiglipVisionModel(SiglipVisionConfig(**vcfg))
    return SiglipTextModel(SiglipTextConfig(**tcfg))


def preprocessor_config(image_size, resample):
    """What SiglipImageProcessor's save_pretrained writes for the real checkpoints."""
    return {
        "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
        "image_std": [0.5, 0.5, 0.5], "processor_class": "SiglipProcessor",
        "resample": resample, "rescale_factor": 0.00392156862745098,
        "size": {"height": image_size, "width": image_size},
    }


def pil_pixels(path, size, resample):
    """SiglipImageProcessor with PIL: convert("RGB"), resize to size x size
    (no crop) with the folder's filter, /255, (x - 0.5) / 0.5."""
    import numpy as np
    from PIL import Image
    img = Image.open(path).convert("RGB").resize((size, size), resample)
    x = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    x = (x - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(x.transpose(2, 0, 1)[None].copy())


def vision_of(model, kind):
    return model if kind == "vision" else model.vision_model


def text_of(model, kind):
    return model if kind == "text" else model.text_model


@torch.no_grad()
def embed(model, kind, tok, context, vision_size, resample):
    out = {}
    if kind in ("full", "text"):
        enc = tok(TEXTS, padding="max_length", truncation=True, max_length=context)
        ids = enc["input_ids"]
        emb = text_of(model, kind)(input_ids=torch.tensor(ids)).pooler_output
        out.update(texts=TEXTS, ids=ids, text_embeds=emb.double().tolist())
    if kind in ("full", "vision"):
        pixels = torch.from_numpy(pixel_formula(NUM_IMAGES, 3, vision_size))
        emb = vision_of(model, kind)(pixel_values=pixels).pooler_output
        out.update(num_images=NUM_IMAGES, image_size=vision_size, image_embeds=emb.double().tolist())
        if CLIP_PNG.exists():
            emb = vision_of(model, kind)(pixel_values=pil_pixels(CLIP_PNG, vision_size, resample)).pooler_output
            out.update(clip_png_embeds=emb.double().tolist())
    if kind == "full":
        out.update(logit_scale=float(model.logit_scale), logit_bias=float(model.logit_bias))
    return out


def write_model(name, spec, toks, models_dir, golden_dir, seed):
    kind, tok_kind, tcfg, vcfg, dtype, save_kwargs, resample = spec
    torch.manual_seed(seed)
    model = build(kind, tcfg, vcfg).eval()
    unit_scale_init(model, seed)
    if kind == "full":
        with torch.no_grad():
            model.logit_scale.fill_(LOGIT_SCALE)
            model.logit_bias.fill_(LOGIT_BIAS)
    folder = models_dir / name
    model = save_rounded(model, dtype, folder, save_kwargs)
    vision_size = vcfg["image_size"] if vcfg else None
    if vcfg:
        (folder / "preprocessor_config.json").write_text(
            json.dumps(preprocessor_config(vision_size, resample), indent=2))
    tok = toks[tok_kind] if tok_kind else None
    if tok is not None:
        for f in TOKENIZER_FILES:
            if (TOKENIZERS[tok_kind] / f).exists():
                shutil.copy(TOKENIZERS[tok_kind] / f, folder / f)
    context = tcfg["max_position_embeddings"] if tcfg else 0
    golden = embed(model, kind, tok, context, vision_size, resample)
    golden.update(model=name, seed=seed, transformers=transformers.__version__, torch=torch.__version__)
    if golden_dir is not None:
        golden_dir.mkdir(parents=True, exist_ok=True)
        (golden_dir / f"{name}.json").write_text(json.dumps(golden))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {folder}")


def main(full_dir, seed, only):
    toks = {k: AutoTokenizer.from_pretrained(d) for k, d in TOKENIZERS.items()}
    if full_dir:
        out = Path(full_dir)
        specs, models_dir, golden_dir = full_size_models(toks), out / "models", out / "golden"
    else:
        specs, models_dir, golden_dir = small_models(toks), ROOT / "tests/data/models", ROOT / "tests/data/golden"
    for i, (name, spec) in enumerate(specs.items()):
        if only and name not in only:
            continue
        write_model(name, spec, toks, models_dir, golden_dir, seed + 100 + i)


if __name__ == "__main__":
    import sys
    main(sys.argv[1] if len(sys.argv) > 1 else None, 1234, None)
