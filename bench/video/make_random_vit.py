#!/usr/bin/env python3
"""Writes a vision-only CLIP folder of ViT-B/32 shapes with random weights, for
timing `clipfind index` (speed does not depend on the values). Standard library
only: a 1M-float random block is tiled over each tensor, which is fast and keeps
activations finite.

    python3 bench/video/make_random_vit.py OUT_DIR [--patch 32] [--hidden 768] [--layers 12]

With --text-from MODEL_DIR it writes a whole CLIPModel instead: a small text
tower (--text-hidden, --text-layers, --text-heads) using that folder's vocab.json and
merges.txt, so `clipfind search TEXT` works on indexes of --proj dims (the
search benchmark plants 512-dim frames and needs queries of that size).
"""
import argparse
import json
import random
import struct
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--patch", type=int, default=32)
ap.add_argument("--hidden", type=int, default=768)
ap.add_argument("--layers", type=int, default=12)
ap.add_argument("--heads", type=int, default=12)
ap.add_argument("--image", type=int, default=224)
ap.add_argument("--proj", type=int, default=512)
ap.add_argument("--text-from", help="model folder whose vocab.json/merges.txt the text tower uses")
ap.add_argument("--text-hidden", type=int, default=128)
ap.add_argument("--text-layers", type=int, default=2)
ap.add_argument("--text-heads", type=int, default=2)
a = ap.parse_args()
out = Path(a.out)
out.mkdir(parents=True, exist_ok=True)
H, I, P = a.hidden, 4 * a.hidden, a.patch
npos = (a.image // P) ** 2 + 1

tensors = {  # name -> (shape, "rand" | "ones" | "zeros")
    "vision_model.embeddings.class_embedding": ([H], "rand"),
    "vision_model.embeddings.patch_embedding.weight": ([H, 3, P, P], "rand"),
    "vision_model.embeddings.position_embedding.weight": ([npos, H], "rand"),
    "vision_model.pre_layrnorm.weight": ([H], "ones"),
    "vision_model.pre_layrnorm.bias": ([H], "zeros"),
    "vision_model.post_layernorm.weight": ([H], "ones"),
    "vision_model.post_layernorm.bias": ([H], "zeros"),
    "visual_projection.weight": ([a.proj, H], "rand"),
}
for l in range(a.layers):
    p = f"vision_model.encoder.layers.{l}."
    for n in ("layer_norm1", "layer_norm2"):
        tensors[p + n + ".weight"] = ([H], "ones")
        tensors[p + n + ".bias"] = ([H], "zeros")
    for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
        tensors[p + f"self_attn.{n}.weight"] = ([H, H], "rand")
        tensors[p + f"self_attn.{n}.bias"] = ([H], "zeros")
    tensors[p + "mlp.fc1.weight"] = ([I, H], "rand")
    tensors[p + "mlp.fc1.bias"] = ([I], "zeros")
    tensors[p + "mlp.fc2.weight"] = ([H, I], "rand")
    tensors[p + "mlp.fc2.bias"] = ([H], "zeros")

if a.text_from:
    src = Path(a.text_from)
    vocab = json.loads((src / "vocab.json").read_text())
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        if (src / name).exists():
            (out / name).write_bytes((src / name).read_bytes())
    T, V = a.text_hidden, len(vocab)
    tensors["logit_scale"] = ([], "zeros")
    tensors["text_model.embeddings.token_embedding.weight"] = ([V, T], "rand")
    tensors["text_model.embeddings.position_embedding.weight"] = ([77, T], "rand")
    tensors["text_model.final_layer_norm.weight"] = ([T], "ones")
    tensors["text_model.final_layer_norm.bias"] = ([T], "zeros")
    tensors["text_projection.weight"] = ([a.proj, T], "rand")
    for l in range(a.text_layers):
        p = f"text_model.encoder.layers.{l}."
        for n in ("layer_norm1", "layer_norm2"):
            tensors[p + n + ".weight"] = ([T], "ones")
            tensors[p + n + ".bias"] = ([T], "zeros")
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            tensors[p + f"self_attn.{n}.weight"] = ([T, T], "rand")
            tensors[p + f"self_attn.{n}.bias"] = ([T], "zeros")
        tensors[p + "mlp.fc1.weight"] = ([4 * T, T], "rand")
        tensors[p + "mlp.fc1.bias"] = ([4 * T], "zeros")
        tensors[p + "mlp.fc2.weight"] = ([T, 4 * T], "rand")
        tensors[p + "mlp.fc2.bias"] = ([T], "zeros")

rng = random.Random(0)
block = struct.pack("<1048576f", *(rng.gauss(0, 0.02) for _ in range(1048576)))


def data(shape, kind):
    n = 1
    for d in shape:
        n *= d
    if kind == "ones":
        return struct.pack(f"<{n}f", *([1.0] * n))
    if kind == "zeros":
        return bytes(4 * n)
    reps = -(-4 * n // len(block))
    return (block * reps)[: 4 * n]


header, blobs, off = {}, [], 0
for name, (shape, kind) in tensors.items():
    b = data(shape, kind)
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(out / "model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for b in blobs:
        f.write(b)
vision_config = {
    "model_type": "clip_vision_model", "hidden_act": "quick_gelu", "hidden_size": H, "image_size": a.image,
    "intermediate_size": I, "layer_norm_eps": 1e-5, "num_attention_heads": a.heads, "num_channels": 3,
    "num_hidden_layers": a.layers, "patch_size": P, "projection_dim": a.proj}
if a.text_from:
    config = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": a.proj,
              "vision_config": vision_config,
              "text_config": {"model_type": "clip_text_model", "hidden_act": "quick_gelu", "hidden_size": T,
                              "intermediate_size": 4 * T, "layer_norm_eps": 1e-5, "num_attention_heads": a.text_heads,
                              "num_hidden_layers": a.text_layers, "max_position_embeddings": 77,
                              "vocab_size": V, "projection_dim": a.proj,
                              "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"],
                              "pad_token_id": vocab["<|endoftext|>"]}}
else:
    config = {"architectures": ["CLIPVisionModelWithProjection"], **vision_config}
(out / "config.json").write_text(json.dumps(config, indent=2))
(out / "preprocessor_config.json").write_text(json.dumps({
    "crop_size": {"height": a.image, "width": a.image}, "do_center_crop": True, "do_normalize": True,
    "do_rescale": True, "do_resize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "rescale_factor": 1 / 255,
    "size": {"shortest_edge": a.image}}, indent=2))
print(f"wrote {out} ({off / 1e6:.0f} MB of weights)")
