"""The script of a sample video of the shapes world: shots, and what is on
screen when. Numpy only; tools/make_shapes_video.py renders it.

    make_script(seed, duration, fps, aspect) -> list of Shot
    script_json(shots, fps)                  -> the JSON written beside the video

A shot shows one kind of object (colour, shape, size) 1-3 times over its own
background, as the training world does (shapes_geometry.place_scenes lays the
objects out, so sizes and spacing are the training world's). Within a shot the
objects may slide in from outside the frame, rest in a region, move to
another region, and slide out; shots are joined by cuts.

Coordinates are world units: fractions of the frame's height, x measured from
the left edge of the centre square (the part the model sees after its
short-side resize and centre crop), so a wide frame spans x in
[-margin, 1 + margin] with margin = (aspect - 1) / 2.

Only "still" intervals (objects fully visible, at rest in a region) say where
the objects are; "entering", "moving" and "leaving" ones are in transit and
"empty" ones show the background alone, so queries should not count them.
"""
from dataclasses import dataclass, field

import numpy as np

from shapes_geometry import ATTRIBUTES, COLOUR_NAMES, MAX_EXTENT, POSITIONS, SHAPES, SIZES, place_scenes

# Phase sequences a shot may follow, and the seconds each kind of phase lasts.
TEMPLATES = [
    ["still"],
    ["entering", "still"],
    ["empty", "entering", "still"],
    ["still", "leaving", "empty"],
    ["still", "moving", "still"],
    ["entering", "still", "moving", "still"],
    ["still", "moving", "still", "leaving", "empty"],
    ["entering", "still", "leaving", "empty"],
]
SECONDS = {"still": (3.0, 6.0), "entering": (1.5, 2.5), "moving": (1.5, 2.5),
           "leaving": (1.5, 2.5), "empty": (1.0, 2.0)}
LONE_STILL = (5.0, 8.0)        # a shot that is one still phase lasts a bit longer
# The frame edge objects enter from / leave by, per region (center: any).
EDGE = {"left": "left", "right": "right", "top": "top", "bottom": "bottom"}


@dataclass
class Phase:
    kind: str                 # still, entering, moving, leaving, empty
    start: int                # first frame
    end: int                  # one past the last frame
    xy0: np.ndarray = None    # (k, 2) object centres at the start (None: empty)
    xy1: np.ndarray = None    # ... and at the end
    origin: str = None        # region or frame edge the objects come from
    target: str = None        # region or frame edge they go to


@dataclass
class Shot:
    colour: int
    shape: int
    size: int
    count: int                # 1..3
    radius: np.ndarray        # (k,) bounding radii
    rot: np.ndarray           # (k,) radians
    rgb: np.ndarray           # (k, 3) in [0, 1]
    bg: np.ndarray            # (3,)
    gradient: np.ndarray      # (2,)
    phases: list = field(default_factory=list)

    @property
    def start(self):
        return self.phases[0].start

    @property
    def end(self):
        return self.phases[-1].end

    def positions(self, frame):
        """(k, 2) object centres at a frame of this shot, None when none is on screen."""
        for p in self.phases:
            if p.start <= frame < p.end:
                if p.xy0 is None:
                    return None
                t = (frame - p.start) / (p.end - p.start)
                ease = t * t * (3 - 2 * t)                   # smooth start and stop
                return p.xy0 + (p.xy1 - p.xy0) * ease
        raise ValueError(f"frame {frame} is outside the shot [{self.start}, {self.end})")


def _layout(rng, colour, shape, size, count, region):
    """place_scenes for one scene: object geometry of the training world."""
    attrs = {"colour": [colour], "shape": [shape], "size": [size], "count": [count - 1],
             "position": [POSITIONS.index(region)]}
    return place_scenes(rng, {k: np.asarray(v) for k, v in attrs.items()})


def _off_frame(xy, radius, edge, margin):
    """The positions xy shifted along one axis until every object is just past
    the given edge of the frame."""
    reach = MAX_EXTENT * radius.max() + 0.01
    shift = {"left": (-(xy[:, 0].max() + margin + reach), 0.0),
             "right": (1 + margin - xy[:, 0].min() + reach, 0.0),
             "top": (0.0, -(xy[:, 1].max() + reach)),
             "bottom": (0.0, 1 - xy[:, 1].min() + reach)}[edge]
    return xy + np.asarray(shift)


def _edge_of(rng, region):
    return EDGE.get(region) or str(rng.choice(list(EDGE.values())))


def _make_shot(rng, kinds, start, fps, colour, shape, margin, stretch_to=None):
    """A shot of phases `kinds` from frame `start`; with stretch_to, its last
    phase ends at that frame."""
    size = int(rng.integers(0, len(SIZES)))
    count = int(rng.integers(1, 4))
    region = str(rng.choice(POSITIONS))
    first = _layout(rng, colour, shape, size, count, region)
    radius, rot, rgb = first["radius"][0, :count], first["rot"][0, :count], first["rgb"][0, :count]
    shot = Shot(colour, shape, size, count, radius, rot, rgb, first["bg"][0], first["gradient"][0])
    xy = first["xy"][0, :count]
    frame = start
    for i, kind in enumerate(kinds):
        lo, hi = LONE_STILL if kinds == ["still"] else SECONDS[kind]
        frames = max(1, round(rng.uniform(lo, hi) * fps))
        if stretch_to is not None and i == len(kinds) - 1:
            frames = stretch_to - frame
        end = frame + frames
        if kind == "still":
            shot.phases.append(Phase(kind, frame, end, xy, xy, region, region))
        elif kind == "empty":
            shot.phases.append(Phase(kind, frame, end))
        elif kind == "entering":
            edge = _edge_of(rng, region)
            shot.phases.append(Phase(kind, frame, end, _off_frame(xy, radius, edge, margin), xy, edge, region))
        elif kind == "leaving":
            edge = _edge_of(rng, region)
            shot.phases.append(Phase(kind, frame, end, xy, _off_frame(xy, radius, edge, margin), region, edge))
        elif kind == "moving":
            target = str(rng.choice([p for p in POSITIONS if p != region]))
            # The same objects, laid out in the new region (only their positions are taken).
            there = _layout(rng, colour, shape, size, count, target)["xy"][0, :count]
            there = np.clip(there, radius[:, None] + 0.005, 1 - radius[:, None] - 0.005)
            shot.phases.append(Phase(kind, frame, end, xy, there, region, target))
            xy, region = there, target
        frame = end
    return shot


def make_script(seed, duration=180.0, fps=12, aspect=16 / 9):
    """Shots filling `duration` seconds (to the frame) of a video `aspect`
    times as wide as high. Each shot shows another colour+shape while there
    are unused ones (40 of them)."""
    rng = np.random.default_rng(seed)
    margin = (aspect - 1) / 2
    total = round(duration * fps)
    kinds_pool = [(c, s) for c in range(len(COLOUR_NAMES)) for s in range(len(SHAPES))]
    order = rng.permutation(len(kinds_pool))
    shots, frame = [], 0
    while frame < total:
        colour, shape = kinds_pool[order[len(shots) % len(order)]]
        left = total - frame
        if left < round(10 * fps):
            # The rest: one still shot, or a longer last phase when too short for one.
            if left < round(3 * fps) and shots:
                shots[-1].phases[-1].end = total
                break
            shots.append(_make_shot(rng, ["still"], frame, fps, colour, shape, margin, stretch_to=total))
        else:
            kinds = TEMPLATES[int(rng.integers(0, len(TEMPLATES)))]
            shot = _make_shot(rng, kinds, frame, fps, colour, shape, margin)
            if shot.end > total - round(3 * fps):
                # No room for another shot after this one: it ends with the video,
                # its last phase cut or lengthened (still phases keep 3 s at least).
                last = shot.phases[-1]
                if total - last.start >= round((3 if last.kind == "still" else 1) * fps):
                    last.end = total
                else:
                    shot = _make_shot(rng, ["still"], frame, fps, colour, shape, margin, stretch_to=total)
            shots.append(shot)
        frame = shots[-1].end
    return shots


def script_json(shots, fps, width, height, extra=None):
    """What the video shows, for queries and for people: shots and intervals,
    times in seconds (start inclusive, end exclusive, on frame boundaries)."""
    sec = lambda f: round(f / fps, 6)
    kind = lambda s: {"colour": COLOUR_NAMES[s.colour], "shape": SHAPES[s.shape], "size": SIZES[s.size],
                      "count": s.count}
    out = dict(extra or {})
    out.update({
        "fps": fps, "width": width, "height": height, "frames": shots[-1].end,
        "duration": sec(shots[-1].end),
        "view": {"x": (width - height) / 2 if width >= height else 0.0, "y": 0.0, "size": min(width, height),
                 "note": "the centre square the model sees (short-side resize, centre crop)"},
        "attributes": {k: v for k, v in ATTRIBUTES.items() if k != "count"} | {"count": [1, 2, 3]},
        "shots": [], "intervals": []})
    for i, s in enumerate(shots):
        out["shots"].append({"start": sec(s.start), "end": sec(s.end), **kind(s),
                             "background": [round(float(c), 3) for c in s.bg]})
        for p in s.phases:
            item = {"start": sec(p.start), "end": sec(p.end), "shot": i, "state": p.kind}
            if p.kind == "still":
                item.update(kind(s), position=p.target)
            elif p.kind != "empty":
                item.update(kind(s), **{"from": p.origin, "to": p.target})
            out["intervals"].append(item)
    return out
