"""Renders shapes-world scenes with numpy only (no torch), for CI and for
the sample-video generator's checks.

    render_np(scenes, size) -> uint8 array (n, size, size, 3)

The same pipeline as shapes_world.render — shapes_geometry's background and
shapes on a grid supersampled 2x (each object evaluated only in a window
around it, which is 7x fewer points and the same answer point by point as
shapes_geometry.paint), box-filter down, blend towards the 5-tap binomial blur,
Gaussian pixel noise, 8-bit quantisation — except that the noise comes from
numpy.random.default_rng(scenes["noise_seed"]) instead of a torch Generator
(which numpy cannot reproduce). So render_np's images are not render's: their
references (tests/data/shapes/heldout_np.json) are made from render_np.
"""
import numpy as np

from shapes_geometry import BLUR_TAPS, MAX_EXTENT, background, inside_object


def _paint_objects(img, g, xy, radius, rot, shape, present, rgb):
    """Draws the objects onto img (m, 3, S, S), the grid being g x g (g: (S,)),
    in place; as shapes_geometry.paint, later objects cover earlier ones."""
    m, _, S, _ = img.shape
    B = min(S, int(np.ceil(2 * MAX_EXTENT * radius.max() * S)) + 2)   # window side
    steps = np.arange(B)
    image, channel = np.arange(m)[:, None, None, None], np.arange(3)[None, :, None, None]
    for j in range(3):
        x, y, r = xy[:, j, 0], xy[:, j, 1], radius[:, j]
        x0 = np.clip(np.floor((x - MAX_EXTENT * r) * S).astype(np.int64), 0, S - B)
        y0 = np.clip(np.floor((y - MAX_EXTENT * r) * S).astype(np.int64), 0, S - B)
        cols, rows = x0[:, None] + steps, y0[:, None] + steps            # (m, B)
        inside = inside_object(np, g[cols][:, None, :], g[rows][:, :, None], x[:, None, None],
                               y[:, None, None], rot[:, j, None, None], shape[:, None, None],
                               r[:, None, None])
        inside &= present[:, j, None, None]
        at = (image, channel, rows[:, None, :, None], cols[:, None, None, :])
        img[at] = np.where(inside[:, None], rgb[:, j, :, None, None], img[at])


def _box_down(img, factor):
    """(m, 3, H*f, W*f) -> (m, 3, H, W): the mean of each f x f block."""
    m, c, h, w = img.shape
    return img.reshape(m, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5), dtype=np.float32)


def _binomial_blur(img):
    """The 5x5 binomial blur (separable), edges replicated, as render's conv2d."""
    taps = np.asarray(BLUR_TAPS, dtype=np.float32)
    pad = np.pad(img, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    h, w = img.shape[2:]
    rows = sum(t * pad[:, :, i:i + h, :] for i, t in enumerate(taps))
    return sum(t * rows[:, :, :, i:i + w] for i, t in enumerate(taps))


def render_np(scenes, size, supersample=2, chunk=128):
    """Images (n, size, size, 3), uint8, of the scenes from sample_scenes."""
    n = len(scenes["shape"])
    noise_rng = np.random.default_rng(int(scenes["noise_seed"]))
    S = size * supersample
    g = (np.arange(S, dtype=np.float32) + np.float32(0.5)) / np.float32(S)
    gy, gx = np.meshgrid(g, g, indexing="ij")
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        f = lambda key: np.asarray(scenes[key][sl], dtype=np.float32)
        img = background(gx, gy, f("bg"), f("gradient"))
        _paint_objects(img, g, f("xy"), f("radius"), f("rot"), np.asarray(scenes["shape"][sl]),
                       np.asarray(scenes["present"][sl]), f("rgb"))
        img = _box_down(img, supersample)                             # anti-aliasing
        w = f("blur")[:, None, None, None]
        img = img * (1 - w) + _binomial_blur(img) * w
        noise = noise_rng.standard_normal(img.shape, dtype=np.float32)
        img = img + noise * f("noise")[:, None, None, None]
        out[sl] = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return out
