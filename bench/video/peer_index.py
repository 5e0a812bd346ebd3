#!/usr/bin/env python3
"""The peer of `clipfind index` on a GPU machine: the pipeline a user of
PyTorch would write to embed sampled video frames with transformers' CLIP.

- Decoding: one `ffmpeg` process per file, several files at once (--procs),
  each sampling with the fps filter (`-vf fps=1/EVERY`, the same count of
  frames as clipfind's --every) and scaling the short side to 448 px (what
  clipfind's CPU decode path hands CLIP) before piping raw RGB out; with
  --hwaccel, ffmpeg decodes on NVDEC (`-hwaccel cuda`) and downloads frames.
- Preprocessing on the GPU with torch (bicubic antialiased resize of the short
  side to the model's size, centre crop, mean/std), not PIL on the CPU.
- transformers' CLIPVisionModelWithProjection in fp16 with SDPA, batches of
  --batch frames mixing files, under torch.inference_mode.

Prints one JSON line: files, frames, wall seconds, frames/s, video seconds
per second. Used by bench/video/run_gpu_index_bench.sh.

  peer_index.py --model DIR --ffmpeg PATH [--every 1] [--procs 14] [--hwaccel] FILE...
"""
import argparse
import json
import queue
import subprocess
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPVisionModelWithProjection


def probe(ffprobe, path):
    out = subprocess.run([ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height:format=duration", "-of", "json", path],
                         check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    s = info["streams"][0]
    return int(s["width"]), int(s["height"]), float(info["format"].get("duration", 0.0))


def scaled(w, h, short):
    if min(w, h) <= short:
        return w, h
    if w < h:
        return short, 2 * round(h * short / w / 2)
    return 2 * round(w * short / h / 2), short


def decode(args, path, out_q):
    w, h, _ = probe(args.ffprobe, path)
    sw, sh = scaled(w, h, 448)
    cmd = [args.ffmpeg, "-nostdin", "-v", "error"]
    if args.hwaccel:
        cmd += ["-hwaccel", "cuda"]
    cmd += ["-i", path, "-vf", f"fps=1/{args.every},scale={sw}:{sh}:flags=bicubic",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    size = sw * sh * 3
    while True:
        buf = p.stdout.read(size)
        if len(buf) < size:
            break
        out_q.put(np.frombuffer(buf, np.uint8).reshape(sh, sw, 3))
    if p.wait() != 0:
        print(f"peer_index: ffmpeg failed on {path}", file=sys.stderr)


def preprocess(frames, size, mean, std):
    # uint8 HWC frames of one size -> normalised NCHW fp16 crops, on the GPU.
    x = torch.from_numpy(np.stack(frames)).to("cuda", non_blocking=True).permute(0, 3, 1, 2).float()
    h, w = x.shape[2:]
    s = size / min(h, w)
    x = F.interpolate(x, size=(max(size, round(h * s)), max(size, round(w * s))), mode="bicubic",
                      antialias=True, align_corners=False)
    top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
    x = x[:, :, top:top + size, left:left + size] / 255.0
    return ((x - mean) / std).half()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--ffmpeg", default="ffmpeg")
    ap.add_argument("--ffprobe", default="ffprobe")
    ap.add_argument("--every", type=float, default=1.0)
    ap.add_argument("--procs", type=int, default=14)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hwaccel", action="store_true")
    args = ap.parse_args()

    model = CLIPVisionModelWithProjection.from_pretrained(args.model, torch_dtype=torch.float16,
                                                          attn_implementation="sdpa").cuda().eval()
    size = model.config.image_size
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073], device="cuda").view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711], device="cuda").view(1, 3, 1, 1)
    duration = sum(probe(args.ffprobe, f)[2] for f in args.files)

    t0 = time.perf_counter()
    frames_q = queue.Queue(maxsize=4 * args.batch)
    todo = queue.Queue()
    for f in args.files:
        todo.put(f)

    def worker():
        while True:
            try:
                f = todo.get_nowait()
            except queue.Empty:
                return
            decode(args, f, frames_q)

    workers = [threading.Thread(target=worker) for _ in range(min(args.procs, len(args.files)))]
    for t in workers:
        t.start()
    done = threading.Event()
    threading.Thread(target=lambda: ([t.join() for t in workers], done.set())).start()

    n = 0
    pending = []
    with torch.inference_mode():
        while not (done.is_set() and frames_q.empty()):
            try:
                pending.append(frames_q.get(timeout=0.05))
            except queue.Empty:
                pass
            full = len(pending) >= args.batch
            if pending and (full or (done.is_set() and frames_q.empty())):
                # Frames of one batch may differ in size (files of other sizes): group them.
                by_shape = {}
                for fr in pending:
                    by_shape.setdefault(fr.shape, []).append(fr)
                for group in by_shape.values():
                    emb = model(pixel_values=preprocess(group, size, mean, std)).image_embeds
                    emb = F.normalize(emb.float(), dim=-1).cpu()
                    n += emb.shape[0]
                pending = []
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    print(json.dumps({"bench": "peer_index", "files": len(args.files), "frames": n, "every": args.every,
                      "hwaccel": args.hwaccel, "wall_s": round(wall, 3), "frames_per_s": round(n / wall, 1),
                      "realtime": round(duration / wall, 1)}), flush=True)


if __name__ == "__main__":
    main()
