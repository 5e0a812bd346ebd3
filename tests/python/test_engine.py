"""clipfind.Engine against transformers' outputs (tests/data/golden, made by
tools/make_reference.py), and the shapes of its inputs and outputs."""
import gc
import threading

import numpy as np
import pytest

import clipfind
from conftest import CLIP_PNG, MODELS, TINY, TOL, formula_pixels, golden, golden_files, golden_model_dir, rgb


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: p.stem)
def test_matches_transformers(path):
    g = golden(path.stem)
    engine = clipfind.Engine(golden_model_dir(g), device="cpu")
    assert engine.device == "cpu" and engine.precision == "fp32"
    if "texts" in g:
        assert engine.tokenize(g["texts"]) == g["ids"]
        assert engine.tokenize(g["texts"][0]) == g["ids"][0]
        got = engine.embed_texts(g["texts"])
        assert got.dtype == np.float32 and got.shape == (len(g["texts"]), engine.projection_dim)
        err = np.abs(got - np.array(g["text_embeds"])).max()
        print(f"[python] {path.stem} text max|a-b| {err:.3g}")
        assert err < TOL
    else:
        assert not engine.has_text
    if "image_embeds" in g:
        pixels = formula_pixels(g["num_images"], 3, g["image_size"])
        err = np.abs(engine.embed_pixels(pixels) - np.array(g["image_embeds"])).max()
        print(f"[python] {path.stem} image max|a-b| {err:.3g}")
        assert err < TOL
    else:
        assert not engine.has_vision


@pytest.mark.skipif(not CLIP_PNG.exists(), reason=f"{CLIP_PNG} not present")
@pytest.mark.parametrize("name", ["full_fp32_quickgelu_p32", "full_bf16_p16_sharded", "vision_only_p16"])
def test_image_inputs_match_transformers(name):
    """A file, a numpy array and a PIL image of CLIP.png: transformers' numbers
    (PIL-exact preprocessing inside the engine)."""
    g = golden(name)
    engine = clipfind.Engine(MODELS / name, device="cpu")
    want = np.array(g["clip_png_embeds"])
    assert np.abs(engine.embed_image_files([CLIP_PNG]) - want).max() < TOL
    assert np.abs(engine.embed_image_files(str(CLIP_PNG)) - want).max() < TOL
    PIL = pytest.importorskip("PIL.Image")
    with PIL.open(CLIP_PNG) as im:
        assert np.abs(engine.embed_images([im]) - want).max() < TOL  # RGBA or P: converted to RGB
        arr = np.asarray(im.convert("RGB"))
    assert np.abs(engine.embed_images([arr]) - want).max() < TOL
    assert np.abs(engine.embed_images(arr) - want).max() < TOL  # one image alone


def test_mixed_sizes_and_batches_agree(tiny):
    images = [rgb(40, 60, 1), rgb(300, 90, 2), rgb(64, 64, 3), rgb(7, 500, 4)]
    batch = tiny.embed_images(images)
    assert batch.shape == (4, tiny.projection_dim)
    for i, im in enumerate(images):
        np.testing.assert_allclose(tiny.embed_images([im])[0], batch[i], atol=1e-5)
    # Non-contiguous views are copied, not misread.
    big = rgb(80, 120, 5)
    np.testing.assert_allclose(tiny.embed_images([big[:, ::2]]), tiny.embed_images([big[:, ::2].copy()]), atol=1e-6)
    # One (N, H, W, 3) array is a batch.
    same = np.stack([rgb(50, 70, s) for s in range(3)])
    np.testing.assert_allclose(tiny.embed_images(same), tiny.embed_images(list(same)), atol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 3, 70, 300])
def test_any_batch_size(tiny, n):
    texts = [f"photo number {i}" for i in range(n)]
    t = tiny.embed_texts(texts)
    assert t.shape == (n, tiny.projection_dim)
    if n:
        np.testing.assert_allclose(t[-1], tiny.embed_texts([texts[-1]])[0], atol=1e-5)
    assert tiny.embed_images([rgb(20, 30, i) for i in range(n)]).shape == (n, tiny.projection_dim)
    assert tiny.embed_pixels(formula_pixels(n, 3, tiny.image_size)).shape == (n, tiny.projection_dim)


def test_normalize(tiny):
    raw = tiny.embed_texts(["a dog", "a cat"])
    unit = tiny.embed_texts(["a dog", "a cat"], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)


def test_result_owns_its_buffer():
    """The array keeps the engine's tensor alive after the engine is gone, and
    each call gives a new, writable array."""
    engine = clipfind.Engine(TINY, device="cpu")
    a = engine.embed_texts(["a dog"])
    b = engine.embed_texts(["a dog"])
    want = a.copy()
    del engine
    gc.collect()
    np.testing.assert_array_equal(a, want)
    a[:] = 0
    np.testing.assert_array_equal(b, want)
    assert a.flags.c_contiguous and a.flags.writeable


def test_properties(tiny):
    assert tiny.projection_dim == 32
    assert tiny.device == "cpu" and tiny.precision == "fp32"
    assert tiny.image_size == 224 and tiny.has_text and tiny.has_vision
    assert tiny.model_dir == TINY
    assert "clipfind.Engine(" in repr(tiny)
    assert clipfind.__version__
    ok, why = clipfind.cuda_usable()
    assert ok or why


def test_one_engine_shared_by_threads(tiny):
    """Calls from several threads on one engine queue up and give the same numbers."""
    want = tiny.embed_texts(["a red circle"])
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(tiny.embed_texts(["a red circle"]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 80
    for r in results:
        np.testing.assert_array_equal(r, want)
