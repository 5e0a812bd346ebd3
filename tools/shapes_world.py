"""The synthetic "shapes world" that models/shapes-clip is trained on.

A scene is one kind of object (shape, colour, size) drawn 1-3 times in one
region of a square image (left/right/top/bottom/center), over a plain,
slightly tinted background with a gentle gradient, a little noise and blur.

    sample_scenes(rng, n)        -> dict of numpy arrays (attributes + geometry)
    render(scenes, size, device) -> float tensor (n, 3, size, size) in [0, 1],
                                    quantised to 1/255 like an 8-bit image
    captions(scenes, rng)        -> captions and, per caption, the set of
                                    attribute values it allows (bitmasks)

Everything random comes from the numpy Generator (and, for pixel noise, a
torch Generator seeded from it), so a seed gives the same scenes anywhere.
Rendering is vectorised torch (GPU when training, CPU for exports).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

COLOURS = {  # name -> nominal sRGB in [0, 1]
    "red": (0.86, 0.10, 0.10),
    "green": (0.10, 0.66, 0.16),
    "blue": (0.12, 0.28, 0.88),
    "yellow": (0.95, 0.86, 0.10),
    "purple": (0.55, 0.15, 0.68),
    "orange": (0.98, 0.55, 0.06),
    "white": (0.97, 0.97, 0.97),
    "black": (0.05, 0.05, 0.05),
}
COLOUR_NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle", "star", "cross"]
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles",
           "star": "stars", "cross": "crosses", "shape": "shapes", "object": "objects"}
SIZES = ["small", "big"]
POSITIONS = ["left", "right", "top", "bottom", "center"]
COUNTS = ["one", "two", "three"]
ATTRIBUTES = {"colour": COLOUR_NAMES, "shape": SHAPES, "size": SIZES,
              "position": POSITIONS, "count": COUNTS}

# Geometry, in units of the image side (y grows downwards).
RADIUS = {"small": (0.07, 0.09), "big": (0.12, 0.15)}   # bounding radius
REGION_CENTRE = {"left": (0.2, 0.5), "right": (0.8, 0.5), "top": (0.5, 0.2),
                 "bottom": (0.5, 0.8), "center": (0.5, 0.5)}
MIN_BG_DISTANCE = 0.45   # RGB distance between object and background colours

# Words used in captions.
SIZE_WORDS = {"small": ["small", "little"], "big": ["big", "large"]}
POSITION_WORDS = {
    "left": ["on the left", "on the left side", "at the left"],
    "right": ["on the right", "on the right side", "at the right"],
    "top": ["at the top", "near the top", "on the top"],
    "bottom": ["at the bottom", "near the bottom", "on the bottom"],
    "center": ["in the center", "in the middle", "in the centre"],
}
PREFIXES = ["", "", "a photo of ", "a photo of ", "an image of ", "a picture of ",
            "a drawing of ", "a frame showing ", "a video frame with "]


def sample_scenes(rng, n):
    """n scenes: integer attributes plus per-object geometry and colours."""
    s = {name: rng.integers(0, len(values), n) for name, values in ATTRIBUTES.items()}
    k = s["count"] + 1                                           # objects per scene
    lo = np.where(s["size"] == 0, RADIUS["small"][0], RADIUS["big"][0])
    hi = np.where(s["size"] == 0, RADIUS["small"][1], RADIUS["big"][1])
    r = rng.uniform(lo, hi)                                      # (n,)
    gap = rng.uniform(0.02, 0.06, n)
    step = 2 * r + gap
    centre = np.array([REGION_CENTRE[p] for p in POSITIONS])[s["position"]]  # (n, 2)
    vertical = np.isin(s["position"], [0, 1])                    # left/right: a column
    i = np.arange(3)[None, :] - (k[:, None] - 1) / 2             # slot offsets
    along = i * step[:, None]                                    # (n, 3)
    xy = np.repeat(centre[:, None, :], 3, axis=1).astype(np.float64)
    xy[..., 0] += np.where(vertical[:, None], 0.0, along)
    xy[..., 1] += np.where(vertical[:, None], along, 0.0)
    # Three objects in the center: a small triangle cluster rather than a row.
    tri = (s["position"] == 4) & (k == 3)
    ang = np.deg2rad(np.array([-90.0, 30.0, 150.0]))
    rad = step / math.sqrt(3)
    xy[tri, :, 0] = 0.5 + rad[tri, None] * np.cos(ang)[None]
    xy[tri, :, 1] = 0.5 + rad[tri, None] * np.sin(ang)[None]
    # Jitter: the group, then each object a little.
    single = k == 1
    group = rng.uniform(-1, 1, (n, 2)) * np.where(single, 0.08, 0.04)[:, None]
    xy += group[:, None, :] + rng.uniform(-0.015, 0.015, (n, 3, 2))
    radius = r[:, None] * rng.uniform(0.95, 1.05, (n, 3))
    xy = np.clip(xy, radius[..., None] + 0.005, 1 - radius[..., None] - 0.005)
    present = np.arange(3)[None, :] < k[:, None]
    max_rot = np.array([0.0, 15.0, 20.0, 36.0, 15.0])[s["shape"]]  # degrees
    rot = np.deg2rad(rng.uniform(-1, 1, (n, 3)) * max_rot[:, None])

    base = np.array([COLOURS[c] for c in COLOUR_NAMES])[s["colour"]]           # (n, 3)
    rgb = base[:, None, :] * rng.uniform(0.88, 1.08, (n, 3, 1)) + rng.uniform(-0.05, 0.05, (n, 3, 3))
    rgb = np.clip(rgb, 0, 1)

    # Backgrounds: tinted greys, sometimes a muted colour, far from the objects' colour.
    cand = 16
    grey = rng.uniform(0, 1, (n, cand, 1)) + rng.uniform(-0.08, 0.08, (n, cand, 3))
    muted = 0.65 * rng.uniform(0, 1, (n, cand, 1)) + 0.35 * rng.uniform(0, 1, (n, cand, 3))
    bg = np.where(rng.uniform(0, 1, (n, cand, 1)) < 0.25, muted, grey).clip(0, 1)
    ok = np.linalg.norm(bg - base[:, None, :], axis=-1) >= MIN_BG_DISTANCE
    first = np.argmax(ok, axis=1)
    chosen = bg[np.arange(n), first]
    fallback = np.where(base.mean(-1, keepdims=True) > 0.5, 0.15, 0.85) * np.ones((1, 3))
    bg = np.where(ok.any(axis=1)[:, None], chosen, fallback)

    s.update(xy=xy, radius=radius, rot=rot, present=present, rgb=rgb, bg=bg,
             gradient=rng.uniform(-0.12, 0.12, (n, 2)),
             noise=rng.uniform(0, 0.035, n), blur=rng.uniform(0, 1, n) * (rng.uniform(0, 1, n) < 0.6),
             noise_seed=rng.integers(0, 2**62, 1)[0])
    return s


def _masks(shape, u, v, r):
    """Inside masks of the shape given by index for points (u, v) in the object's
    frame (v up), for bounding radius r. All arguments broadcast."""
    rho = torch.sqrt(u * u + v * v)
    phi = torch.atan2(u, v)                                       # 0 = pointing up
    circle = rho <= 0.92 * r
    square = torch.maximum(u.abs(), v.abs()) <= 0.78 * r
    v_tri = v + 0.12 * r                                          # centre the triangle's box
    rho_t = torch.sqrt(u * u + v_tri * v_tri)
    phi_t = torch.atan2(u, v_tri)
    b = torch.remainder(phi_t, 2 * math.pi / 3) - math.pi / 3        # a vertex up
    triangle = rho_t * torch.cos(b) <= 1.12 * r * math.cos(math.pi / 3)
    # Five-pointed star: fold into the sector around one tip, then one half-plane test.
    R, ri = 1.08 * r, 0.45 * 1.08 * r
    a = (torch.remainder(phi + math.pi / 5, 2 * math.pi / 5) - math.pi / 5).abs()
    px, py = rho * torch.cos(a), rho * torch.sin(a)
    ex, ey = ri * math.cos(math.pi / 5) - R, ri * math.sin(math.pi / 5)
    star = ex * py - ey * (px - R) >= 0
    arm, half = 0.95 * r, 0.3 * r
    cross = ((u.abs() <= half) & (v.abs() <= arm)) | ((v.abs() <= half) & (u.abs() <= arm))
    out = torch.where(shape == 0, circle, square)
    out = torch.where(shape == 2, triangle, out)
    out = torch.where(shape == 3, star, out)
    out = torch.where(shape == 4, cross, out)
    return out


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
        bg = t(scenes["bg"])                                         # (m, 3)
        grad = t(scenes["gradient"])
        img = bg[:, :, None, None] + (grad[:, 0, None, None] * (gx - 0.5)
                                      + grad[:, 1, None, None] * (gy - 0.5))[:, None]
        xy, rad, rot = t(scenes["xy"]), t(scenes["radius"]), t(scenes["rot"])
        shape = t(scenes["shape"], torch.long)
        present, rgb = t(scenes["present"], torch.bool), t(scenes["rgb"])
        for j in range(3):
            dx = gx[None] - xy[:, j, 0, None, None]
            dy = gy[None] - xy[:, j, 1, None, None]
            c, s = torch.cos(rot[:, j])[:, None, None], torch.sin(rot[:, j])[:, None, None]
            u = c * dx - s * dy
            v = -(s * dx + c * dy)                                    # up is +v
            mask = _masks(shape[:, None, None], u, v, rad[:, j, None, None])
            mask = (mask & present[:, j, None, None]).float()[:, None]
            img = img * (1 - mask) + rgb[:, j, :, None, None] * mask
        img = F.avg_pool2d(img, supersample)                         # anti-aliasing
        # Blur: blend towards a Gaussian-blurred copy (sigma 1 px).
        k1 = torch.tensor([1, 4, 6, 4, 1], dtype=torch.float32, device=device) / 16
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


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def noun_phrase(count, colour=None, shape=None, size=None, say_count=False, noun="shape"):
    """'two small blue squares', 'an orange star', 'a shape', ... (count 1..3)."""
    words = [w for w in (size, colour) if w]
    head = shape or noun
    if count > 1:
        head = PLURALS[head]
    words.append(head)
    if count == 1:
        det = "one" if say_count else _article(words[0])
    else:
        det = COUNTS[count - 1] if say_count else ""
    return " ".join(([det] if det else []) + words)


def captions(scenes, rng, p_colour=0.8, p_shape=0.8, p_size=0.4, p_position=0.5, p_count=0.5):
    """One caption per scene, and the values each caption allows: an (n, 5)
    array of bitmasks over ATTRIBUTES' values, in ATTRIBUTES' order.

    A caption that leaves an attribute out allows all of its values; the
    grammatical number always tells one object from several."""
    n = len(scenes["shape"])
    keep = rng.uniform(0, 1, (n, 5)) < np.array([p_colour, p_shape, p_size, p_position, p_count])
    choice = rng.integers(0, 1 << 30, (n, 4))
    texts, masks = [], np.zeros((n, 5), dtype=np.int64)
    full = [(1 << len(v)) - 1 for v in ATTRIBUTES.values()]
    for i in range(n):
        col, shp, siz, pos, cnt = (int(scenes[a][i]) for a in ATTRIBUTES)
        k = cnt + 1
        size_word = SIZE_WORDS[SIZES[siz]][choice[i, 0] % 2] if keep[i, 2] else None
        np_text = noun_phrase(k, COLOUR_NAMES[col] if keep[i, 0] else None,
                              SHAPES[shp] if keep[i, 1] else None, size_word, bool(keep[i, 4]),
                              noun="shape" if choice[i, 1] % 3 else "object")
        prefix = PREFIXES[choice[i, 2] % len(PREFIXES)]
        if keep[i, 3]:
            pos_words = POSITION_WORDS[POSITIONS[pos]]
            pw = pos_words[choice[i, 3] % len(pos_words)]
            if choice[i, 3] % 7 == 0:
                text = f"{pw}, {prefix}{np_text}"
            else:
                text = f"{prefix}{np_text} {pw}"
                if choice[i, 3] % 5 == 0:
                    text += " of the image"
        else:
            text = prefix + np_text
        if choice[i, 1] % 11 == 0:
            text = text.capitalize()
        texts.append(text)
        vals = (col, shp, siz, pos, cnt)
        for a in range(5):
            masks[i, a] = (1 << vals[a]) if keep[i, a] else full[a]
        if not keep[i, 4]:
            masks[i, 4] = 0b001 if k == 1 else 0b110
    return texts, masks


def match_matrix(values, masks):
    """M[i, j] = image i (attribute values (n, 5)) fits caption j (masks (n, 5))."""
    ok = (masks[None, :, :] >> values[:, None, :]) & 1
    return ok.all(dim=-1)


def prompts():
    """Zero-shot prompts, per attribute, in ATTRIBUTES' value order; plus
    colour+shape (colour-major: index = colour * len(SHAPES) + shape)."""
    return {
        "colour": [f"a photo of {noun_phrase(1, colour=c)}" for c in COLOUR_NAMES],
        "shape": [f"a photo of {noun_phrase(1, shape=s)}" for s in SHAPES],
        "size": [f"a photo of {noun_phrase(1, size=s)}" for s in SIZES],
        "position": [f"a photo of a shape {POSITION_WORDS[p][0]}" for p in POSITIONS],
        "count": [f"a photo of {noun_phrase(k, say_count=True)}" for k in (1, 2, 3)],
        "colour+shape": [f"a photo of {noun_phrase(1, colour=c, shape=s)}"
                         for c in COLOUR_NAMES for s in SHAPES],
    }


def labels(scenes):
    """Ground truth per prompt family, matching prompts()."""
    out = {a: np.asarray(scenes[a]) for a in ATTRIBUTES}
    out["colour+shape"] = out["colour"] * len(SHAPES) + out["shape"]
    return out
