"""Bad input raises Python exceptions with the engine's message, never crashes."""
import errno

import numpy as np
import pytest

import clipfind
from conftest import MODELS, TINY, rgb


def test_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        clipfind.Engine(tmp_path / "nowhere")
    assert e.value.filename == str(tmp_path / "nowhere")
    assert e.value.errno == errno.ENOENT


def test_model_path_is_a_file(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        clipfind.Engine(f)


def test_folder_without_config_names_the_file(tmp_path):
    with pytest.raises(clipfind.Error, match="config.json") as e:
        clipfind.Engine(tmp_path)
    assert isinstance(e.value, ValueError)
    assert str(tmp_path) in str(e.value)


def test_truncated_weights_name_the_file(tmp_path):
    for f in TINY.iterdir():
        data = f.read_bytes()
        (tmp_path / f.name).write_bytes(data[: len(data) // 3] if f.suffix == ".safetensors" else data)
    with pytest.raises(clipfind.Error, match="model.safetensors"):
        clipfind.Engine(tmp_path)


def test_bad_config_json(tmp_path):
    for f in TINY.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(clipfind.Error, match="config.json"):
        clipfind.Engine(tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "bogus"}, "bad device"),
    ({"device": "cpu", "precision": "fp16"}, "not available on the CPU"),
    ({"device": "cpu", "precision": "fp8"}, "fp8"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(clipfind.Error, match=message):
        clipfind.Engine(TINY, **kwargs)


@pytest.mark.parametrize("texts, exc", [(5, TypeError), ([1, "a"], TypeError), (["a", None], TypeError),
                                        ([b"bytes"], TypeError)])
def test_bad_texts(tiny, texts, exc):
    with pytest.raises(exc):
        tiny.embed_texts(texts)


@pytest.mark.parametrize("images, exc, message", [
    ([np.zeros((4, 4), np.uint8)], ValueError, r"images\[0\]: shape \(4, 4\)"),
    ([rgb(4, 4), np.zeros((4, 4, 4), np.uint8)], ValueError, r"images\[1\]: shape \(4, 4, 4\)"),
    ([np.zeros((4, 4, 3), np.float32)], TypeError, "uint8"),
    ([np.zeros((0, 4, 3), np.uint8)], ValueError, "shape"),
    (["not an image"], TypeError, "PIL image"),
    ([None], TypeError, "PIL image"),
    (np.zeros((2, 4, 4, 1), np.uint8), ValueError, r"\(N, H, W, 3\)"),
    (np.zeros((2, 4, 4, 3), np.int16), TypeError, "uint8"),
])
def test_bad_images(tiny, images, exc, message):
    with pytest.raises(exc, match=message):
        tiny.embed_images(images)


def test_bad_image_files(tiny, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        tiny.embed_image_files([tmp_path / "none.png"])
    assert e.value.filename == str(tmp_path / "none.png")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(clipfind.Error, match="junk.jpg"):
        tiny.embed_image_files([junk])


def test_bad_pixels(tiny):
    with pytest.raises(clipfind.Error, match=r"\[n, 3, 224, 224\]"):
        tiny.embed_pixels(np.zeros((1, 3, 10, 10), np.float32))
    with pytest.raises(TypeError):
        tiny.embed_pixels(np.zeros((3, 224, 224), np.float32))  # not 4-d
    with pytest.raises(TypeError):
        tiny.embed_pixels("pixels")


def test_missing_tower():
    vision = clipfind.Engine(MODELS / "vision_only_p16", device="cpu")
    with pytest.raises(clipfind.Error, match="no text tower"):
        vision.embed_texts(["a dog"])
    with pytest.raises(clipfind.Error, match="no text tower"):
        vision.tokenize("a dog")
    text = clipfind.Engine(MODELS / "text_only", device="cpu")
    with pytest.raises(clipfind.Error, match="no vision tower"):
        text.embed_images([rgb(8, 8)])


def test_engine_still_works_after_errors(tiny):
    want = tiny.embed_texts(["a dog"])
    for _ in range(3):
        with pytest.raises(ValueError):
            tiny.embed_images([np.zeros((4, 4), np.uint8)])
        with pytest.raises(clipfind.Error):
            tiny.embed_pixels(np.zeros((1, 3, 8, 8), np.float32))
    np.testing.assert_array_equal(tiny.embed_texts(["a dog"]), want)
