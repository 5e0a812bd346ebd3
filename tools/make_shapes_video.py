#!/usr/bin/env python3
"""Makes the sample video of the shapes world and its script: shots of
coloured shapes that enter, rest, move between regions and leave, joined by
cuts, for clipfind's demo and end-to-end test (models/shapes-clip knows this
world).

    tools/make_shapes_video.py [-o samples/shapes.mp4] [--seed 1] [--duration 180]

Writes the H.264 video and, beside it, the script (samples/shapes.json): per
interval, start/end seconds and what is on screen (tools/shapes_script.py
says what each state means). Needs numpy and the `ffmpeg` command only.

Frames are 16:9 (640x360 by default); the world's square is the centre
360x360 (what the model sees after its short-side resize and centre crop),
the margins left and right are more background, which objects cross as they
enter or leave. Shapes are drawn with the training world's geometry
(shapes_geometry), anti-aliased 2x2, without noise or blur. Fast: each
shot's background and each object's coverage are computed once; a frame where
nothing moved is the previous frame again.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shapes_geometry import MAX_EXTENT, background, inside_object  # noqa: E402
from shapes_script import make_script, script_json  # noqa: E402

SUPERSAMPLE = 2


def _to_bytes(rgb):
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


class Sprite:
    """One object's coverage (alpha in [0, 1]) in a pixel window around it,
    drawn once at a reference position and shifted by whole pixels after."""

    def __init__(self, x, y, rot, shape, radius, height, margin):
        reach = MAX_EXTENT * radius * height                   # pixels from the centre
        cx, cy = (x + margin) * height, y * height              # centre in frame pixels
        self.x0, self.y0 = int(np.floor(cx - reach)) - 1, int(np.floor(cy - reach)) - 1
        side = int(np.ceil(2 * reach)) + 3
        q = (np.arange(side * SUPERSAMPLE, dtype=np.float64) + 0.5) / SUPERSAMPLE
        gx = (self.x0 + q) / height - margin
        gy = (self.y0 + q) / height
        inside = inside_object(np, gx[None, :], gy[:, None], x, y, rot, shape, radius)
        self.alpha = inside.reshape(side, SUPERSAMPLE, side, SUPERSAMPLE).mean(axis=(1, 3))
        self.alpha = self.alpha.astype(np.float32)[..., None]
        self.ref = np.array([cx, cy])

    def offset(self, x, y, height, margin):
        """Whole-pixel shift from the reference position to the centre (x, y)."""
        d = np.array([(x + margin) * height, y * height]) - self.ref
        return int(np.round(d[0])), int(np.round(d[1]))

    def box(self, dx, dy):
        side = self.alpha.shape[0]
        return self.y0 + dy, self.x0 + dx, side


def render_frames(shots, fps, width, height):
    """Yields the script's frames in order, as RGB24 bytes."""
    margin = (width - height) / (2 * height)
    cols = ((np.arange(width) + 0.5) / height - margin).astype(np.float32)
    rows = ((np.arange(height) + 0.5) / height).astype(np.float32)
    for shot in shots:
        bg = background(cols[None, :], rows[:, None], shot.bg[None].astype(np.float32),
                        shot.gradient[None].astype(np.float32))[0].transpose(1, 2, 0)
        bg_bytes = _to_bytes(bg)
        rest = next(p.xy0 for p in shot.phases if p.kind == "still")
        sprites = [Sprite(rest[j, 0], rest[j, 1], shot.rot[j], shot.shape, shot.radius[j], height, margin)
                   for j in range(shot.count)]
        last_key, frame = None, None
        for f in range(shot.start, shot.end):
            xy = shot.positions(f)
            key = None if xy is None else tuple(s.offset(*xy[j], height, margin) for j, s in enumerate(sprites))
            if frame is not None and key == last_key:
                yield frame                                   # nothing moved
                continue
            last_key = key
            out = bg_bytes.copy()
            if key is not None:
                _composite(out, bg, sprites, key, shot.rgb)
            frame = out.tobytes()
            yield frame


def _composite(out, bg, sprites, offsets, rgb):
    """Draws the sprites at their offsets over bg into out (uint8, in place)."""
    h, w = out.shape[:2]
    boxes = [s.box(dx, dy) for s, (dx, dy) in zip(sprites, offsets)]
    top = max(0, min(b[0] for b in boxes))
    left = max(0, min(b[1] for b in boxes))
    bottom = min(h, max(b[0] + b[2] for b in boxes))
    right = min(w, max(b[1] + b[2] for b in boxes))
    if top >= bottom or left >= right:
        return                                               # all off frame
    region = bg[top:bottom, left:right].copy()
    for s, (y0, x0, side), colour in zip(sprites, boxes, rgb):
        ys, xs = max(y0, top), max(x0, left)
        ye, xe = min(y0 + side, bottom), min(x0 + side, right)
        if ys >= ye or xs >= xe:
            continue
        a = s.alpha[ys - y0:ye - y0, xs - x0:xe - x0]
        r = region[ys - top:ye - top, xs - left:xe - left]
        r *= 1 - a
        r += a * colour.astype(np.float32)
    out[top:bottom, left:right] = _to_bytes(region)


def encode(frames, path, fps, width, height, crf=20, preset="veryfast"):
    """Pipes RGB24 frames to ffmpeg (libx264, yuv420p); returns the frame count."""
    if not shutil.which("ffmpeg"):
        sys.exit("make_shapes_video.py: the `ffmpeg` command is not installed (apt-get install ffmpeg)")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", preset,
           "-crf", str(crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", path]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    n = 0
    try:
        for frame in frames:
            proc.stdin.write(frame)
            n += 1
        proc.stdin.close()
    except BrokenPipeError:
        pass
    if proc.wait() != 0:
        sys.exit(f"make_shapes_video.py: ffmpeg failed writing {path} (exit status {proc.returncode})")
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default="samples/shapes.mp4", help="video to write (.mp4)")
    ap.add_argument("--script", help="script JSON to write (default: the video's path with .json)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=180.0, help="seconds")
    ap.add_argument("--fps", type=int, default=12)
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT, width >= height, both even")
    ap.add_argument("--crf", type=int, default=20, help="x264 quality (lower: better, bigger)")
    args = ap.parse_args()
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 640x360")
    if width < height or width % 2 or height % 2 or height < 96:
        ap.error(f"--size {args.size}: need width >= height >= 96, both even")
    if args.duration < 3 or args.fps < 1:
        ap.error("need --duration >= 3 and --fps >= 1")
    script_path = args.script or os.path.splitext(args.output)[0] + ".json"

    t0 = time.time()
    shots = make_script(args.seed, args.duration, args.fps, width / height)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    # Write beside the targets and rename at the end: no half-written video or script.
    tmp_video = args.output + ".partial"
    try:
        n = encode(render_frames(shots, args.fps, width, height), tmp_video, args.fps, width, height, args.crf)
        spec = script_json(shots, args.fps, width, height, extra={
            "video": os.path.basename(args.output), "seed": args.seed,
            "generator": "tools/make_shapes_video.py " + " ".join(sys.argv[1:])})
        with open(script_path + ".partial", "w") as f:
            json.dump(spec, f, indent=1)
        os.replace(tmp_video, args.output)
        os.replace(script_path + ".partial", script_path)
    finally:
        for p in (tmp_video, script_path + ".partial"):
            if os.path.exists(p):
                os.remove(p)
    still = sum(1 for i in spec["intervals"] if i["state"] == "still")
    print(f"{args.output}: {n} frames ({n / args.fps:.1f} s, {width}x{height} @ {args.fps} fps), "
          f"{len(shots)} shots, {still} still intervals; script {script_path}; {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
