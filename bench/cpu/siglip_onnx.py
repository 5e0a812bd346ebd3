"""SigLIP's vision tower as an ONNX graph, written op by op from the weights
of a transformers `SiglipVisionModel` folder (numpy, onnx; no torch).

torch is not on the development machines (PyPI's wheel brings ~3 GB of CUDA
libraries), so rather than torch.onnx.export this writes the ops that export
gives for transformers' eager attention at opset 17: Conv with bias, then per
layer LayerNormalization, MatMul + Add for q/k/v/out, MatMul, Mul by the
scale, Softmax, MatMul, and gelu_pytorch_tanh spelt out as
0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), which ONNX Runtime fuses as it
would an exported graph's; then post_layernorm and the attention-pooling
head (probe query, MLP, residual). Dynamic batch. check_siglip_onnx.py holds
it to transformers' own output (the committed golden of a small folder) and
to clipfind's on the same B/16 weights.

Also writes a random folder of any SigLIP vision shape (random_vision_folder),
so that ONNX Runtime and clipfind can run the same weights.
"""
import json
import math
from pathlib import Path

import numpy as np

OPSET = 17


def read_vision_folder(folder):
    """config.json and the float32 tensors of a SiglipVisionModel folder
    (names without the "vision_model." prefix a full SiglipModel has)."""
    from safetensors.numpy import load_file
    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg = cfg.get("vision_config", cfg)
    tensors = {}
    for path in sorted(folder.glob("*.safetensors")):
        for name, t in load_file(path).items():
            if name.startswith("vision_model."):
                name = name[len("vision_model."):]
            tensors[name] = t.astype(np.float32)
    return cfg, tensors


class _Graph:
    def __init__(self, tensors):
        self.w = tensors
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, value, name=None, dtype=np.float32):
        from onnx import numpy_helper
        name = name or f"const_{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type, inputs, out=None, **attrs):
        from onnx import helper
        self.count += 1
        out = out or f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def param(self, name):
        return self.const(self.w[name], name)

    def linear(self, x, prefix, weight=None, bias=None):
        """x @ W^T + b, with W^T stored as torch.onnx.export stores it."""
        w = self.w[prefix + ".weight"] if weight is None else weight
        b = self.w[prefix + ".bias"] if bias is None else bias
        y = self.op("MatMul", [x, self.const(np.ascontiguousarray(w.T), prefix + ".weight_t")])
        return self.op("Add", [y, self.const(b, prefix + ".bias")])

    def layer_norm(self, x, prefix, eps):
        return self.op("LayerNormalization", [x, self.param(prefix + ".weight"), self.param(prefix + ".bias")],
                       axis=-1, epsilon=eps)

    def gelu_tanh(self, x):
        cube = self.op("Pow", [x, self.const(3.0)])
        inner = self.op("Add", [x, self.op("Mul", [cube, self.const(0.044715)])])
        t = self.op("Tanh", [self.op("Mul", [inner, self.const(math.sqrt(2.0 / math.pi))])])
        return self.op("Mul", [self.op("Mul", [x, self.const(0.5)]), self.op("Add", [t, self.const(1.0)])])

    def heads(self, x, n_heads, head_dim, perm):
        """[B, S, H] -> [B, heads, S, d] (perm 0,2,1,3) or [B, heads, d, S] (0,2,3,1)."""
        r = self.op("Reshape", [x, self.const([0, -1, n_heads, head_dim], dtype=np.int64)])
        return self.op("Transpose", [r], perm=perm)

    def attention(self, q, k, v, n_heads, hidden):
        """Softmax(q·kᵀ·scale)·v over heads, back to [B, Sq, H]."""
        d = hidden // n_heads
        qh = self.heads(q, n_heads, d, [0, 2, 1, 3])
        kt = self.heads(k, n_heads, d, [0, 2, 3, 1])
        vh = self.heads(v, n_heads, d, [0, 2, 1, 3])
        scores = self.op("Mul", [self.op("MatMul", [qh, kt]), self.const(d ** -0.5)])
        o = self.op("MatMul", [self.op("Softmax", [scores], axis=-1), vh])
        o = self.op("Transpose", [o], perm=[0, 2, 1, 3])
        return self.op("Reshape", [o, self.const([0, -1, hidden], dtype=np.int64)])

    def mlp(self, x, prefix):
        return self.linear(self.gelu_tanh(self.linear(x, prefix + ".fc1")), prefix + ".fc2")


def vision_graph(cfg, tensors):
    """The onnx.ModelProto of SiglipVisionModel(...).pooler_output:
    pixel_values [batch, 3, size, size] -> image_embeds [batch, hidden]."""
    from onnx import TensorProto, helper
    hidden, n_heads = cfg["hidden_size"], cfg["num_attention_heads"]
    patch, size = cfg["patch_size"], cfg["image_size"]
    eps = cfg.get("layer_norm_eps", 1e-6)
    if cfg.get("hidden_act", "gelu_pytorch_tanh") != "gelu_pytorch_tanh":
        raise ValueError(f"hidden_act {cfg['hidden_act']!r}: only gelu_pytorch_tanh is written")
    g = _Graph(tensors)

    x = g.op("Conv", ["pixel_values", g.param("embeddings.patch_embedding.weight"),
                      g.param("embeddings.patch_embedding.bias")],
             kernel_shape=[patch, patch], strides=[patch, patch])
    x = g.op("Transpose", [g.op("Reshape", [x, g.const([0, hidden, -1], dtype=np.int64)])], perm=[0, 2, 1])
    x = g.op("Add", [x, g.param("embeddings.position_embedding.weight")])
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layers.{i}"
        h = g.layer_norm(x, p + ".layer_norm1", eps)
        a = g.attention(g.linear(h, p + ".self_attn.q_proj"), g.linear(h, p + ".self_attn.k_proj"),
                        g.linear(h, p + ".self_attn.v_proj"), n_heads, hidden)
        x = g.op("Add", [x, g.linear(a, p + ".self_attn.out_proj")])
        x = g.op("Add", [x, g.mlp(g.layer_norm(x, p + ".layer_norm2", eps), p + ".mlp")])
    x = g.layer_norm(x, "post_layernorm", eps)

    # The pooling head: nn.MultiheadAttention with the probe as its one query.
    w_in, b_in = tensors["head.attention.in_proj_weight"], tensors["head.attention.in_proj_bias"]
    q = g.linear(g.param("head.probe"), "head.attention.q", w_in[:hidden], b_in[:hidden])
    k = g.linear(x, "head.attention.k", w_in[hidden:2 * hidden], b_in[hidden:2 * hidden])
    v = g.linear(x, "head.attention.v", w_in[2 * hidden:], b_in[2 * hidden:])
    a = g.linear(g.attention(q, k, v, n_heads, hidden), "head.attention.out_proj")
    a = g.op("Add", [a, g.mlp(g.layer_norm(a, "head.layernorm", eps), "head.mlp")])
    g.op("Squeeze", [a, g.const([1], dtype=np.int64)], out="image_embeds")

    graph = helper.make_graph(
        g.nodes, "siglip_vision",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", hidden])], g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def save_vision_onnx(folder, onnx_path):
    """Writes the graph of the folder's weights to onnx_path (weights inline:
    B/16 is 0.35 GB, under protobuf's 2 GB)."""
    import onnx
    model = vision_graph(*read_vision_folder(folder))
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


def random_vision_folder(folder, cfg, seed):
    """A SiglipVisionModel folder (config.json, model.safetensors,
    preprocessor_config.json) with unit-scale random weights, drawn as
    tests/support/random_model.h draws them: uniform, standard deviation
    1/sqrt(fan_in) for matrices, norms 1 ± 0.1, biases ± 0.1."""
    from safetensors.numpy import save_file
    rng = np.random.default_rng(seed)
    hidden, inter, size, patch = cfg["hidden_size"], cfg["intermediate_size"], cfg["image_size"], cfg["patch_size"]

    def sym(shape, std, mean=0.0):
        return (mean + (rng.random(shape, dtype=np.float32) * 2 - 1) * np.float32(std * math.sqrt(3))).astype(
            np.float32)

    t = {}

    def linear(name, out, inp):
        t[name + ".weight"] = sym((out, inp), 1 / math.sqrt(inp))
        t[name + ".bias"] = sym((out,), 0.1)

    def norm(name):
        t[name + ".weight"] = sym((hidden,), 0.1, 1.0)
        t[name + ".bias"] = sym((hidden,), 0.1)

    t["embeddings.patch_embedding.weight"] = sym((hidden, 3, patch, patch), 1 / math.sqrt(3 * patch * patch))
    t["embeddings.patch_embedding.bias"] = sym((hidden,), 0.1)
    t["embeddings.position_embedding.weight"] = sym(((size // patch) ** 2, hidden), 0.5)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layers.{i}"
        norm(p + ".layer_norm1")
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(f"{p}.self_attn.{proj}", hidden, hidden)
        norm(p + ".layer_norm2")
        linear(p + ".mlp.fc1", inter, hidden)
        linear(p + ".mlp.fc2", hidden, inter)
    norm("post_layernorm")
    t["head.probe"] = sym((1, 1, hidden), 1.0)
    t["head.attention.in_proj_weight"] = sym((3 * hidden, hidden), 1 / math.sqrt(hidden))
    t["head.attention.in_proj_bias"] = sym((3 * hidden,), 0.1)
    linear("head.attention.out_proj", hidden, hidden)
    norm("head.layernorm")
    linear("head.mlp.fc1", inter, hidden)
    linear("head.mlp.fc2", hidden, inter)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(cfg, model_type="siglip_vision_model", architectures=["SiglipVisionModel"],
                  hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, num_channels=3, vision_use_head=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    # SiglipImageProcessor's: an exact size x size bicubic resize, mean = std = 0.5.
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "SiglipImageProcessor", "do_resize": True, "resample": 3,
        "size": {"height": size, "width": size}, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, indent=2))
    save_file(t, str(folder / "model.safetensors"), metadata={"format": "pt"})
