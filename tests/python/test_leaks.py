"""Reference counting: 10,000 calls leave the process's memory where it was."""
import gc

import numpy as np
import pytest

import clipfind
from conftest import rgb


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def grows(fn, calls=10_000):
    for _ in range(200):  # warm up: allocator pools, caches
        fn()
    gc.collect()
    before = rss_bytes()
    for _ in range(calls):
        fn()
    gc.collect()
    return rss_bytes() - before


def raises(exc, fn):
    def call():
        try:
            fn()
        except exc:
            return
        raise AssertionError("no exception")
    return call


@pytest.mark.parametrize("what", ["embed_texts", "embed_images", "embed_pixels", "tokenize", "errors"])
def test_no_leak_over_10000_calls(tiny, what):
    image = [rgb(16, 16)]
    pixels = np.zeros((1, 3, 224, 224), np.float32)
    fns = {
        "embed_texts": lambda: tiny.embed_texts(["a dog"]),
        "embed_images": lambda: tiny.embed_images(image),
        "embed_pixels": lambda: tiny.embed_pixels(pixels),
        "tokenize": lambda: tiny.tokenize(["a dog", "a cat"]),
        "errors": raises(ValueError, lambda: tiny.embed_images([np.zeros((4, 4), np.uint8)])),
    }
    growth = grows(fns[what])
    print(f"[leak] {what}: RSS {growth / 1024:+.0f} KiB over 10,000 calls")
    # A leaked 128-byte result per call alone would be 1.3 MB.
    assert growth < 1 << 20


def test_results_are_freed(tiny):
    """Each result array holds one reference to its buffer and frees it with the array."""
    import sys
    a = tiny.embed_texts(["a dog"] * 1000)
    base = a.base
    assert sys.getrefcount(base) == 3  # a.base, `base`, getrefcount's argument
    big = 0
    gc.collect()
    before = rss_bytes()
    for _ in range(50):
        big += tiny.embed_texts(["a dog"] * 1000).nbytes
    gc.collect()
    assert rss_bytes() - before < big // 4
