#!/usr/bin/env python3
"""Trains models/shapes-clip: a small CLIP (transformers.CLIPModel) on the
synthetic shapes world (tools/shapes_world.py), with a tokenizer of our own.

    python3 tools/train_tiny_clip.py --out models/shapes-clip            # GPU, ~5 min
    python3 tools/train_tiny_clip.py --out /tmp/x --smoke                # CPU, a few steps
    python3 tools/train_tiny_clip.py --export-heldout DIR [--model DIR]  # PNGs + labels
                                                                         # (+ transformers' answers)

Steps: (1) a byte-level BPE in the CLIP format trained on the caption
vocabulary (tools/tokenizer_reference.py's train_small_bpe/write_clip_folder);
(2) contrastive training with a learnable logit scale; captions that also fit
another image of the batch count as positives for it (soft targets), so
"a red circle" is not pushed away from every other red circle; AdamW, warm-up
+ cosine, bf16 autocast; training length chosen from a wall-clock budget
(--seconds) after timing the first steps, or fixed with --steps;
(3) save_pretrained in fp16 + preprocessor_config.json + tokenizer files;
(4) held-out zero-shot accuracy with the saved folder reloaded in fp32
(transformers, TF32 off), written to README.md and heldout.json.
"""
import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_world as W  # noqa: E402
from tokenizer_reference import train_small_bpe, write_clip_folder  # noqa: E402

HELDOUT_SEED = 20261124
HELDOUT_N = 2000
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def preprocessor_config(image_size):
    from make_reference import preprocessor_config as pc
    return pc(image_size)


# ---------------------------------------------------------------- tokenizer

def build_tokenizer(folder, seed=0, n_captions=20000):
    """CLIP-format BPE trained on captions of the shapes world (plus the prompts)."""
    rng = np.random.default_rng(seed)
    texts, _ = W.captions(W.sample_scenes(rng, n_captions), rng)
    for family in W.prompts().values():
        texts += family
    # Every word of the world, including rare phrasings, a few times over.
    words = set()
    for v in W.POSITION_WORDS.values():
        for p in v:
            words.update(p.split())
    for v in W.SIZE_WORDS.values():
        words.update(v)
    words.update(W.PLURALS.values())
    words.update(W.PLURALS)
    texts += [" ".join(sorted(words))] * 20
    merges = train_small_bpe("\n".join(texts), 2000)   # stops once every word is one token
    write_clip_folder(folder, merges)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    with tempfile.TemporaryDirectory() as tmp:           # tokenizer.json as save_pretrained writes it
        tok.save_pretrained(tmp)
        shutil.copy(os.path.join(tmp, "tokenizer.json"), os.path.join(folder, "tokenizer.json"))
        again = AutoTokenizer.from_pretrained(tmp)
    probe = texts[:200] + ["A photo of a Dog!", "two small blue squares", "a red circle on the left"]
    assert tok(probe)["input_ids"] == again(probe)["input_ids"], "tokenizer.json disagrees"
    return tok


# ---------------------------------------------------------------- model

def make_model(tok, args):
    from transformers import CLIPConfig, CLIPModel
    bos, eos = tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    assert (bos, eos) == (len(tok) - 2, len(tok) - 1), (bos, eos, len(tok))
    text = dict(vocab_size=len(tok), hidden_size=args.text_width, intermediate_size=4 * args.text_width,
                num_hidden_layers=args.text_layers, num_attention_heads=args.text_width // 64,
                max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=args.proj,
                bos_token_id=bos, eos_token_id=eos, pad_token_id=eos)
    vision = dict(hidden_size=args.vision_width, intermediate_size=4 * args.vision_width,
                  num_hidden_layers=args.vision_layers, num_attention_heads=args.vision_width // 64,
                  image_size=args.image_size, patch_size=args.patch, hidden_act="quick_gelu",
                  projection_dim=args.proj)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=args.proj,
                        logit_scale_init_value=math.log(1 / 0.07))
    return CLIPModel(config)


def embed_images(model, pixels):
    return model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)


def embed_texts(model, ids, mask):
    return model.text_projection(model.text_model(input_ids=ids, attention_mask=mask).pooler_output)


def normalise(images):
    mean = torch.tensor(CLIP_MEAN, device=images.device)[None, :, None, None]
    std = torch.tensor(CLIP_STD, device=images.device)[None, :, None, None]
    return (images - mean) / std


# ---------------------------------------------------------------- training

def batch(rng, tok, args, device):
    scenes = W.sample_scenes(rng, args.batch)
    texts, masks = W.captions(scenes, rng)
    enc = tok(texts, padding="longest", return_tensors="pt")
    values = np.stack([scenes[a] for a in W.ATTRIBUTES], axis=1)
    pixels = W.render(scenes, args.image_size, device, seeded_noise=False, chunk=args.batch)
    return (normalise(pixels), enc["input_ids"].to(device, non_blocking=True),
            enc["attention_mask"].to(device, non_blocking=True),
            torch.as_tensor(values, device=device), torch.as_tensor(masks, device=device))


def loss_fn(model, pixels, ids, mask, values, masks, amp):
    with torch.autocast(device_type=pixels.device.type, dtype=torch.bfloat16, enabled=amp):
        img = embed_images(model, pixels)
        txt = embed_texts(model, ids, mask)
    img = F.normalize(img.float(), dim=-1)
    txt = F.normalize(txt.float(), dim=-1)
    logits = model.logit_scale.exp() * img @ txt.t()
    match = W.match_matrix(values, masks).float()               # (images, captions)
    t_img = match / match.sum(1, keepdim=True)
    t_txt = match.t() / match.t().sum(1, keepdim=True)
    loss = -(t_img * F.log_softmax(logits, 1)).sum(1).mean() - (t_txt * F.log_softmax(logits.t(), 1)).sum(1).mean()
    return loss / 2


def train(model, tok, args, device, log):
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    amp = device.type == "cuda"
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embedding" in name or "logit_scale" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-6, fused=amp)
    total = args.steps or 10 ** 9                                 # set after timing when --seconds
    warmup = args.warmup
    step, t0, losses = 0, time.time(), []
    timed_from = None
    while step < total:
        if step < warmup:
            lr = args.lr * (step + 1) / warmup
        else:
            lr = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_fn(model, *batch(rng, tok, args, device), amp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        step += 1
        if not args.steps and step == 10:
            if device.type == "cuda":
                torch.cuda.synchronize()
            timed_from = time.time()
        if not args.steps and step == 40:
            if device.type == "cuda":
                torch.cuda.synchronize()
            per_step = (time.time() - timed_from) / 30
            total = max(100, int((args.seconds - (time.time() - t0)) / per_step) + step)
            log(f"timing: {per_step * 1000:.1f} ms/step -> {total} steps in total")
        if step % args.log_every == 0 or step == total:
            losses.append(loss.item())
            log(f"step {step}/{total if total < 10 ** 9 else '?'} loss {losses[-1]:.4f} "
                f"scale {model.logit_scale.exp().item():.1f} lr {lr:.2e} t {time.time() - t0:.0f}s")
    return step, time.time() - t0, losses


# ---------------------------------------------------------------- evaluation

def heldout_scenes():
    return W.sample_scenes(np.random.default_rng(HELDOUT_SEED), HELDOUT_N)


@torch.no_grad()
def zero_shot(folder, device, scenes=None, images=None, batch_size=500):
    """Accuracy per prompt family of the saved folder, fp32 transformers.
    Returns (accuracy dict, predictions dict)."""
    from transformers import AutoTokenizer, CLIPModel
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = CLIPModel.from_pretrained(folder, dtype=torch.float32).to(device).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    scenes = scenes if scenes is not None else heldout_scenes()
    if images is None:
        images = W.render(scenes, model.config.vision_config.image_size, "cpu")   # seeded, device-independent
    img = torch.cat([embed_images(model, normalise(images[i:i + batch_size].to(device)))
                     for i in range(0, len(images), batch_size)])
    img = F.normalize(img, dim=-1)
    truth = W.labels(scenes)
    acc, pred = {}, {}
    for family, texts in W.prompts().items():
        enc = tok(texts, padding=True, return_tensors="pt").to(device)
        txt = F.normalize(embed_texts(model, enc["input_ids"], enc["attention_mask"]), dim=-1)
        p = (img @ txt.t()).argmax(1).cpu().numpy()
        pred[family] = p
        acc[family] = float((p == truth[family]).mean())
    return acc, pred


# ---------------------------------------------------------------- output

def write_readme(folder, info):
    acc = info["accuracy"]
    rows = "\n".join(f"| {k} | {len(W.prompts()[k])} | {100 * v:.1f}% |" for k, v in acc.items())
    a = info["args"]
    text = f"""# shapes-clip

A small CLIP model trained here, from scratch, on a synthetic world of coloured
shapes (`tools/shapes_world.py`), for clipfind's default demo and end-to-end
tests. Hugging Face CLIP layout; weights in fp16 (`model.safetensors`); a
tokenizer of our own (byte-level BPE in the CLIP format, trained on the caption
vocabulary: {info["vocab_size"]} tokens; `<|startoftext|>`/`<|endoftext|>` are the last two ids).
No pretrained weights or the original CLIP vocabulary were used.

## The world

One kind of object per image — shape ({", ".join(W.SHAPES)}), colour
({", ".join(W.COLOUR_NAMES)}), size (small/big), 1-3 copies, placed
left/right/top/bottom/center — on a tinted grey or muted background with a gentle
gradient, a little noise and blur. Captions come from varied templates
("two small blue squares", "a photo of a green star on the left", "in the middle,
a frame showing one purple cross"), leaving attributes out at random.
Images are {a["image_size"]}x{a["image_size"]}; the model sees a square centre crop, so put
the interesting part of a wide frame in its middle.

## Model

CLIPModel: vision ViT {a["image_size"]} px, patch {a["patch"]}, width {a["vision_width"]}, {a["vision_layers"]} layers,
{a["vision_width"] // 64} heads; text width {a["text_width"]}, {a["text_layers"]} layers, {a["text_width"] // 64} heads, 77 positions;
QuickGELU; projection {a["proj"]}; {info["params"] / 1e6:.2f} M parameters.

## Training

    {info["command"]}

seed {a["seed"]}; {info["steps"]} steps of batch {a["batch"]} ({info["steps"] * a["batch"] / 1e6:.1f} M rendered images,
never repeated) in {info["train_seconds"]:.0f} s on {info["device"]}; torch {info["torch"]},
transformers {info["transformers"]}. Contrastive loss with a learnable logit scale,
soft targets where a caption fits several images of the batch; AdamW (lr {a["lr"]},
weight decay {a["wd"]}, betas 0.9/0.98), {a["warmup"]} warm-up steps, cosine to zero,
bf16 autocast. Final training loss {info["final_loss"]:.4f}, logit scale {info["logit_scale"]:.1f}.
Training is not bit-reproducible across GPUs (atomics, the timing-chosen length):
pass `--steps {info["steps"]}` to repeat this length.

## Held-out zero-shot accuracy

{HELDOUT_N} held-out images (`numpy.random.default_rng({HELDOUT_SEED})`, rendered on the CPU), classified
by the prompt with the highest cosine similarity among each family's candidates
(prompts in `heldout.json`, e.g. "a photo of a red shape", "a photo of a star",
"a photo of a shape on the left", "a photo of two shapes", "a photo of a red star").
This folder reloaded with `CLIPModel.from_pretrained(..., dtype=float32)`, TF32 off:

| family | candidates | accuracy |
| --- | --- | --- |
{rows}

Target: colour+shape ≥ 95%.

To reproduce on another implementation: `python3 tools/train_tiny_clip.py
--export-heldout DIR --model models/shapes-clip` writes the held-out images as PNG
(exactly {a["image_size"]} px: preprocessing is then only /255 and mean/std), their labels, the
prompts and transformers' answers.
"""
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(text)


def heldout_json(acc, pred=None):
    scenes = heldout_scenes()
    truth = W.labels(scenes)
    out = {"seed": HELDOUT_SEED, "n": HELDOUT_N,
           "generator": "tools/shapes_world.py: sample_scenes(numpy.random.default_rng(seed), n), render(scenes, size)",
           "attributes": W.ATTRIBUTES, "prompts": W.prompts(),
           "labels": {k: v.tolist() for k, v in truth.items()},
           "accuracy": acc}
    if pred is not None:
        out["predictions"] = {k: v.tolist() for k, v in pred.items()}
    return out


def export_heldout(out_dir, model_dir, image_size):
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    scenes = heldout_scenes()
    if model_dir:
        image_size = json.load(open(os.path.join(model_dir, "config.json")))["vision_config"]["image_size"]
    images = W.render(scenes, image_size, "cpu")
    names = []
    for i, im in enumerate((images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)):
        names.append(f"{i:04d}.png")
        Image.fromarray(im).save(os.path.join(out_dir, names[-1]))
    acc, pred = (zero_shot(model_dir, torch.device("cpu"), scenes, images) if model_dir else (None, None))
    spec = heldout_json(acc, pred)
    spec["images"] = names
    with open(os.path.join(out_dir, "heldout.json"), "w") as f:
        json.dump(spec, f)
    print(json.dumps(acc, indent=1) if acc else f"{len(names)} images in {out_dir}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/shapes-clip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=240, help="training wall-clock budget")
    ap.add_argument("--steps", type=int, default=0, help="fixed number of steps (overrides --seconds)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--vision-width", type=int, default=192)
    ap.add_argument("--vision-layers", type=int, default=6)
    ap.add_argument("--text-width", type=int, default=128)
    ap.add_argument("--text-layers", type=int, default=4)
    ap.add_argument("--proj", type=int, default=128)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--smoke", action="store_true", help="CPU check: tiny batch, few steps")
    ap.add_argument("--export-heldout", metavar="DIR")
    ap.add_argument("--model", metavar="DIR", help="with --export-heldout: also write its answers")
    args = ap.parse_args()
    if args.export_heldout:
        return export_heldout(args.export_heldout, args.model, args.image_size)
    if args.smoke:
        args.batch, args.steps, args.warmup, args.log_every = 64, args.steps or 40, 5, 5

    import transformers
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    log = lambda m: print(m, flush=True)
    command = "python3 tools/train_tiny_clip.py " + " ".join(sys.argv[1:])
    log(f"{command}\ndevice {device}, torch {torch.__version__}, transformers {transformers.__version__}")

    tmp_out = args.out.rstrip("/") + ".partial"
    shutil.rmtree(tmp_out, ignore_errors=True)
    t = time.time()
    tok = build_tokenizer(tmp_out, args.seed)
    log(f"tokenizer: {len(tok)} tokens in {time.time() - t:.1f}s; "
        f"{tok.tokenize('two small blue squares on the left')}")
    model = make_model(tok, args).to(device)
    params = sum(p.numel() for p in model.parameters())
    log(f"model: {params / 1e6:.2f} M parameters")
    model.train()
    steps, seconds, losses = train(model, tok, args, device, log)

    model.eval()
    scale = model.logit_scale.exp().item()
    model.half().save_pretrained(tmp_out)
    with open(os.path.join(tmp_out, "preprocessor_config.json"), "w") as f:
        json.dump(preprocessor_config(args.image_size), f, indent=2)
    t = time.time()
    acc, pred = zero_shot(tmp_out, device)
    log(f"evaluation: {time.time() - t:.1f}s")
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "CPU"
    info = dict(args=vars(args), command=command, steps=steps, train_seconds=seconds,
                device=gpu, torch=torch.__version__, transformers=transformers.__version__,
                final_loss=float(np.mean(losses[-3:])), logit_scale=scale, params=params,
                vocab_size=len(tok), accuracy=acc)
    with open(os.path.join(tmp_out, "heldout.json"), "w") as f:
        json.dump(heldout_json(acc, pred), f, separators=(",", ":"))
    write_readme(tmp_out, info)
    with open(os.path.join(tmp_out, "training_log.json"), "w") as f:
        json.dump({k: v for k, v in info.items() if k != "args"} | {"args": vars(args), "losses": losses},
                  f, indent=1)
    shutil.rmtree(args.out, ignore_errors=True)
    os.replace(tmp_out, args.out)
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    log(f"wrote {args.out} ({size / 1e6:.1f} MB): {sorted(os.listdir(args.out))}")
    log("\n| family | accuracy |\n| --- | --- |\n" + "\n".join(f"| {k} | {100 * v:.1f}% |" for k, v in acc.items()))


if __name__ == "__main__":
    main()
