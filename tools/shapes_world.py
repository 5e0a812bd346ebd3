"""The synthetic "shapes world" that models/shapes-clip is trained on.

A scene is one kind of object (shape, colour, size) drawn 1-3 times in one
region of a square image (left/right/top/bottom/center), over a plain,
slightly tinted background with a gentle gradient, a little noise and blur.

    sample_scenes(rng, n)        -> dict of numpy arrays (attributes + geometry)
    render(scenes, size, device) -> float tensor (n, 3, size, size) in [0, 1],
                                    quantised to 1/255 like an 8-bit image
    captions(scenes, rng)        -> captions and, per caption, the set of
                                    attribute values it allows (bitmasks)

This module is the torch side (rendering for training, match_matrix for the
loss); the world itself lives in two numpy-only modules it re-exports:
shapes_geometry (vocabulary, scene sampling, shape geometry) and shapes_words
(captions, prompts). tools/shapes_render_np.py renders the same scenes without
torch (its pixel noise differs: it comes from a numpy Generator).

Everything random comes from the numpy Generator (and, for pixel noise, a
torch Generator seeded from it), so a seed gives the same scenes anywhere.
Rendering is vectorised torch (GPU when training, CPU for exports).
"""
import numpy as np
import torch
import torch.nn.functional as F

from shapes_geometry import *  # noqa: F401,F403  (the world's vocabulary and geometry)
from shapes_geometry import BLUR_TAPS, paint
from shapes_words import *  # noqa: F401,F403  (captions, prompts, labels)


def render(scenes, size, device="cpu", supersample=2, chunk=256, seeded_noise=True):
    """Images (n, 3, size, size), float32 in [0, 1], quantised to 8 bits.

    seeded_noise: pixel noise from a CPU generator seeded by the scenes (the
    same images on any device); False draws it on the device (fast, training)."""
    n = len(scenes["shape"])
    gen = torch.Generator(device="cpu").manual_seed(int(scenes["noise_seed"]))
    out = []
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        m = sl.stop - sl.start
        t = lambda a, dt=torch.float32: torch.as_tensor(np.asarray(a[sl]), dtype=dt, device=device)
        S = size * supersample
        g = (torch.arange(S, device=device, dtype=torch.float32) + 0.5) / S
        gy, gx = torch.meshgrid(g, g, indexing="ij")                 # (S, S)
        img = paint(torch, gx, gy, t(scenes["bg"]), t(scenes["gradient"]), t(scenes["xy"]),
                    t(scenes["radius"]), t(scenes["rot"]), t(scenes["shape"], torch.long),
                    t(scenes["present"], torch.bool), t(scenes["rgb"]))
        img = F.avg_pool2d(img, supersample)                         # anti-aliasing
        # Blur: blend towards a Gaussian-blurred copy (sigma 1 px).
        k1 = torch.tensor(BLUR_TAPS, dtype=torch.float32, device=device)
        k2 = (k1[:, None] * k1[None, :]).expand(3, 1, 5, 5).contiguous()
        blurred = F.conv2d(F.pad(img, (2, 2, 2, 2), mode="replicate"), k2, groups=3)
        w = t(scenes["blur"])[:, None, None, None]
        img = img * (1 - w) + blurred * w
        if seeded_noise:
            noise = torch.randn((m, 3, size, size), generator=gen).to(device)
        else:
            noise = torch.randn((m, 3, size, size), device=device)
        img = img + noise * t(scenes["noise"])[:, None, None, None]
        out.append(torch.round(img.clamp(0, 1) * 255) / 255)
    return torch.cat(out)


def match_matrix(values, masks):
    """M[i, j] = image i (attribute values (n, 5)) fits caption j (masks (n, 5))."""
    ok = (masks[None, :, :] >> values[:, None, :]) & 1
    return ok.all(dim=-1)
