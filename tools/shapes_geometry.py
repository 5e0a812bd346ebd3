"""The shapes world's vocabulary and geometry, with numpy only.

What is where in a scene, shared by every renderer of the world: the torch
renderer used for training (tools/shapes_world.py), the numpy renderer
(tools/shapes_render_np.py) and the sample-video generator
(tools/make_shapes_video.py), so that all of them draw the same shapes.

    sample_scenes(rng, n)          -> dict of numpy arrays (attributes + geometry)
    place_scenes(rng, attributes)  -> the same, for attributes chosen by the caller
    background(xp, gx, gy, ...)    -> tinted background with its gradient
    shape_masks(xp, shape, u, v, r)-> inside masks of the five shapes
    inside_object(xp, gx, gy, ...) -> the same for grid points and a placed object
    paint(xp, gx, gy, ...)         -> background + objects on a sample grid

`xp` is the array module (numpy or torch): both have the few functions used
here (sqrt, arctan2, maximum, remainder, cos, sin, abs, where), so the shape
geometry has one implementation. Coordinates are in units of the image side,
y grows downwards; a grid may extend past [0, 1] (a wide video frame).
"""
import math

import numpy as np

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
# Farthest point of any shape from its centre, in bounding radii (the square's
# corner: 0.78 * sqrt(2)): windows this big around an object hold all of it.
MAX_EXTENT = 1.12
# The blur both renderers blend towards: a 5-tap binomial (sigma ~1 px of the output).
BLUR_TAPS = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def sample_scenes(rng, n):
    """n scenes: integer attributes plus per-object geometry and colours."""
    s = {name: rng.integers(0, len(values), n) for name, values in ATTRIBUTES.items()}
    return place_scenes(rng, s)


def place_scenes(rng, s):
    """Completes scenes whose attributes (ATTRIBUTES' keys, integer arrays) are
    given: object positions, radii, rotations, colours, background, gradient,
    noise and blur, all drawn from rng (in sample_scenes' order, so a seed gives
    the same scenes as ever)."""
    n = len(s["shape"])
    s = dict(s)
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


def shape_masks(xp, shape, u, v, r):
    """Inside masks of the shape given by index for points (u, v) in the object's
    frame (v up), for bounding radius r. All arguments broadcast."""
    rho = xp.sqrt(u * u + v * v)
    phi = xp.arctan2(u, v)                                        # 0 = pointing up
    circle = rho <= 0.92 * r
    square = xp.maximum(xp.abs(u), xp.abs(v)) <= 0.78 * r
    v_tri = v + 0.12 * r                                          # centre the triangle's box
    rho_t = xp.sqrt(u * u + v_tri * v_tri)
    phi_t = xp.arctan2(u, v_tri)
    b = xp.remainder(phi_t, 2 * math.pi / 3) - math.pi / 3        # a vertex up
    triangle = rho_t * xp.cos(b) <= 1.12 * r * math.cos(math.pi / 3)
    # Five-pointed star: fold into the sector around one tip, then one half-plane test.
    R, ri = 1.08 * r, 0.45 * 1.08 * r
    a = xp.abs(xp.remainder(phi + math.pi / 5, 2 * math.pi / 5) - math.pi / 5)
    px, py = rho * xp.cos(a), rho * xp.sin(a)
    ex, ey = ri * math.cos(math.pi / 5) - R, ri * math.sin(math.pi / 5)
    star = ex * py - ey * (px - R) >= 0
    arm, half = 0.95 * r, 0.3 * r
    cross = ((xp.abs(u) <= half) & (xp.abs(v) <= arm)) | ((xp.abs(v) <= half) & (xp.abs(u) <= arm))
    out = xp.where(shape == 0, circle, square)
    out = xp.where(shape == 2, triangle, out)
    out = xp.where(shape == 3, star, out)
    out = xp.where(shape == 4, cross, out)
    return out


def object_frame(xp, gx, gy, x, y, rot):
    """Grid points (gx, gy) in the frame of an object centred at (x, y) and
    turned by rot radians: (u, v) with v pointing up. All arguments broadcast."""
    dx, dy = gx - x, gy - y
    c, s = xp.cos(rot), xp.sin(rot)
    return c * dx - s * dy, -(s * dx + c * dy)


def background(gx, gy, bg, gradient):
    """(m, 3, *grid) background colours: bg (m, 3) plus a linear gradient
    (m, 2) across the grid, zero at the image centre."""
    ramp = gradient[:, 0, None, None] * (gx - 0.5) + gradient[:, 1, None, None] * (gy - 0.5)
    return bg[:, :, None, None] + ramp[:, None]


def inside_object(xp, gx, gy, x, y, rot, shape, radius):
    """Whether grid points (gx, gy) fall inside an object of the given shape
    index and bounding radius, centred at (x, y), turned by rot radians. All
    arguments broadcast; a grid may be a window around the object."""
    u, v = object_frame(xp, gx, gy, x, y, rot)
    return shape_masks(xp, shape, u, v, radius)


def paint(xp, gx, gy, bg, gradient, xy, radius, rot, shape, present, rgb):
    """Scenes (m of them, as arrays of xp) drawn on the grid (gx, gy) (each
    (H, W)), without anti-aliasing: (m, 3, H, W). Later objects cover earlier ones."""
    img = background(gx, gy, bg, gradient)
    for j in range(3):
        inside = inside_object(xp, gx[None], gy[None], xy[:, j, 0, None, None], xy[:, j, 1, None, None],
                               rot[:, j, None, None], shape[:, None, None], radius[:, j, None, None])
        inside = inside & present[:, j, None, None]
        img = xp.where(inside[:, None], rgb[:, j, :, None, None], img)
    return img
