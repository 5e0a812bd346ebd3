"""Words of the shapes world, with numpy only: captions for training,
zero-shot prompts, noun phrases for queries.

    noun_phrase(count, colour, shape, size, say_count) -> "two small blue squares"
    captions(scenes, rng)  -> captions and, per caption, the set of attribute
                              values it allows (bitmasks)
    prompts()              -> zero-shot prompts per attribute family
    labels(scenes)         -> ground truth in prompts()' order
"""
import numpy as np

from shapes_geometry import ATTRIBUTES, COLOUR_NAMES, COUNTS, POSITIONS, SHAPES, SIZES

PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles",
           "star": "stars", "cross": "crosses", "shape": "shapes", "object": "objects"}

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
