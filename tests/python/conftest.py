"""Shared fixtures of the Python package's tests (pytest tests/python).

The package must be installed (`pip install .`); scripts/test.sh does that and
sets CLIPFIND_BIN to the clipfind program it built, which the index tests use.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests/data"
MODELS = DATA / "models"
TINY = MODELS / "full_fp32_quickgelu_p32"  # 32-d, image size 64: fast
CLIP_PNG = ROOT.parent / "shared/clip-data/CLIP.png"
TOL = 1e-4  # fp32 against transformers (DESIGN.md)


def golden_files():
    return sorted((DATA / "golden").glob("*.json"))


def golden(name):
    return json.loads((DATA / "golden" / f"{name}.json").read_text())


def golden_model_dir(g):
    """Models kept outside tests/data (models/shapes-clip) name their folder from the root."""
    return ROOT / g["model_dir"] if "model_dir" in g else MODELS / g["model"]


def formula_pixels(n, channels, size):
    """tools/make_reference.py's pixel_formula: integers, then one float32 division."""
    i = np.arange(n).reshape(n, 1, 1, 1)
    c = np.arange(channels).reshape(1, channels, 1, 1)
    y = np.arange(size).reshape(1, 1, size, 1)
    x = np.arange(size).reshape(1, 1, 1, size)
    v = (x * 7 + y * 13 + c * 29 + i * 31) % 255
    return (v.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def tiny():
    import clipfind
    return clipfind.Engine(TINY, device="cpu")


@pytest.fixture(scope="session")
def clipfind_bin():
    """The clipfind program: $CLIPFIND_BIN (scripts/test.sh sets it: a missing
    program then fails), else build/src/app/clipfind, else the test skips."""
    given = os.environ.get("CLIPFIND_BIN")
    if given:
        assert Path(given).is_file(), f"CLIPFIND_BIN={given}: no such program"
        return Path(given)
    built = ROOT / "build/src/app/clipfind"
    if built.is_file():
        return built
    found = shutil.which("clipfind")
    if found:
        return Path(found)
    pytest.skip("no clipfind program (set CLIPFIND_BIN or build into ./build)")
