"""clipfind: CLIP embeddings from clipfind's C++ engine, and search over its video index.

    import clipfind
    engine = clipfind.Engine("models/shapes-clip")            # device="auto", precision=None, threads=0
    texts = engine.embed_texts(["a red circle", "a blue star"])  # float32 (2, projection_dim)
    images = engine.embed_images([numpy_rgb_uint8, pil_image])    # any sizes, any batch size
    index = clipfind.Index("clipfind-index")
    index.search(text="a red circle on the left", k=5)           # the records of `search --json`

Embeddings are unnormalised, like transformers' get_text_features / get_image_features
(pass normalize=True for unit rows). Errors the engine reports are clipfind.Error (a
ValueError) with its message; missing files are OSError (FileNotFoundError) naming them.
Calls release the GIL while the engine works.
"""
from ._core import Engine, Error, Index, cuda_usable

__version__ = "0.1.0"
__all__ = ["Engine", "Error", "Index", "cuda_usable", "__version__"]
