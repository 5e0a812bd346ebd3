"""SigLIP's towers as ONNX graphs, written op by op from the weights of a
transformers `SiglipVisionModel` / `SiglipTextModel` (or `SiglipModel`)
folder (numpy, onnx; no torch).

torch is not on the development machines (PyPI's wheel brings ~3 GB of CUDA
libraries), so rather than torch.onnx.export this writes the opset-17 ops
that exporter uses for transformers' eager attention (not compared with a
real export, which needs torch): Conv with bias, then per layer
LayerNormalization, MatMul + Add for q/k/v/out, MatMul, Mul by the scale,
Softmax, MatMul, and gelu_pytorch_tanh spelt out as
0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), which ONNX Runtime fuses to
FastGelu; then post_layernorm and the attention-pooling head (probe query,
MLP, residual). The text tower: token and position embeddings, the same
layers (no mask), final_layer_norm, the last token through `head`. Dynamic
batch; texts run at the full context, as SigLIP pads them.
check_siglip_onnx.py holds both to transformers' own output (the committed
goldens of small folders) and to clipfind's on the same B/16 weights.

Also writes random folders of any SigLIP shape (random_vision_folder,
random_text_folder), so that ONNX Runtime and clipfind can run the same
weights.
"""
import json
import math
from pathlib import Path

import numpy as np

OPSET = 17


def read_folder(folder, tower):
    """The tower's config and float32 tensors ("vision" or "text") of a
    SiglipModel folder or of that tower saved alone, names without the
    "vision_model." / "text_model." prefix."""
    from safetensors.numpy import load_file
    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg = cfg.get(f"{tower}_config", cfg)
    prefix, tensors = f"{tower}_model.", {}
    for path in sorted(folder.glob("*.safetensors")):
        for name, t in load_file(path).items():
            if name.startswith(prefix):
                tensors[name[len(prefix):]] = t.astype(np.float32)
            elif "_model." not in name:
                tensors[name] = t.astype(np.float32)
    return cfg, tensors


class _Graph:
    """Nodes and initialisers of one graph, from the folder's tensors."""

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

    def linear(self, x, prefix, weight=None, bias=None, out=None):
        """x @ W^T + b, with W^T stored as torch.onnx.export stores it."""
        w = self.w[prefix + ".weight"] if weight is None else weight
        b = self.w[prefix + ".bias"] if bias is None else bias
        y = self.op("MatMul", [x, self.const(np.ascontiguousarray(w.T), prefix + ".weight_t")])
        return self.op("Add", [y, self.const(b, prefix + ".bias")], out=out)

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

    def encoder(self, x, cfg):
        """SiglipEncoder: pre-norm layers, no mask."""
        hidden, n_heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-6)
        if cfg.get("hidden_act", "gelu_pytorch_tanh") != "gelu_pytorch_tanh":
            raise ValueError(f"hidden_act {cfg['hidden_act']!r}: only gelu_pytorch_tanh is written")
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layers.{i}"
            h = self.layer_norm(x, p + ".layer_norm1", eps)
            a = self.attention(self.linear(h, p + ".self_attn.q_proj"), self.linear(h, p + ".self_attn.k_proj"),
                               self.linear(h, p + ".self_attn.v_proj"), n_heads, hidden)
            x = self.op("Add", [x, self.linear(a, p + ".self_attn.out_proj")])
            x = self.op("Add", [x, self.mlp(self.layer_norm(x, p + ".layer_norm2", eps), p + ".mlp")])
        return x

    def model(self, name, input_info, output_info):
        from onnx import helper
        graph = helper.make_graph(self.nodes, name, [input_info], [output_info], self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def vision_graph(cfg, tensors):
    """The onnx.ModelProto of SiglipVisionModel(...).pooler_output:
    pixel_values [batch, 3, size, size] -> image_embeds [batch, hidden]."""
    from onnx import TensorProto, helper
    hidden, n_heads = cfg["hidden_size"], cfg["num_attention_heads"]
    patch, size = cfg["patch_size"], cfg["image_size"]
    eps = cfg.get("layer_norm_eps", 1e-6)
    g = _Graph(tensors)

    x = g.op("Conv", ["pixel_values", g.param("embeddings.patch_embedding.weight"),
                      g.param("embeddings.patch_embedding.bias")],
             kernel_shape=[patch, patch], strides=[patch, patch])
    x = g.op("Transpose", [g.op("Reshape", [x, g.const([0, hidden, -1], dtype=np.int64)])], perm=[0, 2, 1])
    x = g.op("Add", [x, g.param("embeddings.position_embedding.weight")])
    x = g.layer_norm(g.encoder(x, cfg), "post_layernorm", eps)

    # The pooling head: nn.MultiheadAttention with the probe as its one query.
    w_in, b_in = tensors["head.attention.in_proj_weight"], tensors["head.attention.in_proj_bias"]
    q = g.linear(g.param("head.probe"), "head.attention.q", w_in[:hidden], b_in[:hidden])
    k = g.linear(x, "head.attention.k", w_in[hidden:2 * hidden], b_in[hidden:2 * hidden])
    v = g.linear(x, "head.attention.v", w_in[2 * hidden:], b_in[2 * hidden:])
    a = g.linear(g.attention(q, k, v, n_heads, hidden), "head.attention.out_proj")
    a = g.op("Add", [a, g.mlp(g.layer_norm(a, "head.layernorm", eps), "head.mlp")])
    g.op("Squeeze", [a, g.const([1], dtype=np.int64)], out="image_embeds")
    return g.model("siglip_vision",
                   helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, size, size]),
                   helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", hidden]))


def text_graph(cfg, tensors):
    """The onnx.ModelProto of SiglipTextModel(...).pooler_output:
    input_ids [batch, context] (int64) -> text_embeds [batch, projection]."""
    from onnx import TensorProto, helper
    context, eps = cfg["max_position_embeddings"], cfg.get("layer_norm_eps", 1e-6)
    g = _Graph(tensors)
    x = g.op("Gather", [g.param("embeddings.token_embedding.weight"), "input_ids"])
    x = g.op("Add", [x, g.param("embeddings.position_embedding.weight")])
    x = g.layer_norm(g.encoder(x, cfg), "final_layer_norm", eps)
    last = g.op("Gather", [x, g.const(context - 1, dtype=np.int64)], axis=1)
    g.linear(last, "head", out="text_embeds")
    return g.model("siglip_text",
                   helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", context]),
                   helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT,
                                                 ["batch", tensors["head.weight"].shape[0]]))


GRAPHS = {"vision": vision_graph, "text": text_graph}


def save_onnx(folder, tower, onnx_path):
    """Writes the graph of the folder's tower ("vision" or "text") to
    onnx_path (weights inline: B/16's towers are 0.35 and 0.45 GB, under
    protobuf's 2 GB)."""
    import onnx
    model = GRAPHS[tower](*read_folder(folder, tower))
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


class _RandomTensors(dict):
    """Unit-scale random weights, drawn as tests/support/random_model.h draws
    them: uniform, standard deviation 1/sqrt(fan_in) for matrices, norms
    1 +- 0.1, biases +- 0.1, embeddings 0.5 to 1."""

    def __init__(self, seed):
        super().__init__()
        self.rng = np.random.default_rng(seed)

    def sym(self, name, shape, std, mean=0.0):
        u = self.rng.random(shape, dtype=np.float32) * 2 - 1
        self[name] = (mean + u * np.float32(std * math.sqrt(3))).astype(np.float32)

    def linear(self, name, out, inp):
        self.sym(name + ".weight", (out, inp), 1 / math.sqrt(inp))
        self.sym(name + ".bias", (out,), 0.1)

    def norm(self, name, hidden):
        self.sym(name + ".weight", (hidden,), 0.1, 1.0)
        self.sym(name + ".bias", (hidden,), 0.1)

    def encoder(self, cfg):
        hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
        for i in range(cfg["num_hidden_layers"]):
            layer = f"encoder.layers.{i}"
            self.norm(layer + ".layer_norm1", hidden)
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                self.linear(f"{layer}.self_attn.{proj}", hidden, hidden)
            self.norm(layer + ".layer_norm2", hidden)
            self.linear(layer + ".mlp.fc1", inter, hidden)
            self.linear(layer + ".mlp.fc2", hidden, inter)


def _write_folder(folder, config, tensors):
    """A tower saved alone, as transformers 5 saves it (no tower prefix)."""
    from safetensors.numpy import save_file
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(config, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    save_file(dict(tensors), str(folder / "model.safetensors"), metadata={"format": "pt"})


def random_vision_folder(folder, cfg, seed):
    """A random SiglipVisionModel folder (config.json, model.safetensors,
    preprocessor_config.json) of cfg's shape, which clipfind loads too."""
    t = _RandomTensors(seed)
    hidden, inter, size, patch = cfg["hidden_size"], cfg["intermediate_size"], cfg["image_size"], cfg["patch_size"]
    t.sym("embeddings.patch_embedding.weight", (hidden, 3, patch, patch), 1 / math.sqrt(3 * patch * patch))
    t.sym("embeddings.patch_embedding.bias", (hidden,), 0.1)
    t.sym("embeddings.position_embedding.weight", ((size // patch) ** 2, hidden), 0.5)
    t.encoder(cfg)
    t.norm("post_layernorm", hidden)
    t.sym("head.probe", (1, 1, hidden), 1.0)
    t.sym("head.attention.in_proj_weight", (3 * hidden, hidden), 1 / math.sqrt(hidden))
    t.sym("head.attention.in_proj_bias", (3 * hidden,), 0.1)
    t.linear("head.attention.out_proj", hidden, hidden)
    t.norm("head.layernorm", hidden)
    t.linear("head.mlp.fc1", inter, hidden)
    t.linear("head.mlp.fc2", hidden, inter)
    _write_folder(folder, dict(cfg, model_type="siglip_vision_model", architectures=["SiglipVisionModel"],
                               num_channels=3, vision_use_head=True), t)
    # SiglipImageProcessor's: an exact size x size bicubic resize, mean = std = 0.5.
    (Path(folder) / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "SiglipImageProcessor", "do_resize": True, "resample": 3,
        "size": {"height": size, "width": size}, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, indent=2))


def random_text_folder(folder, cfg, seed):
    """A random SiglipTextModel folder (config.json, model.safetensors; no
    tokenizer: ONNX Runtime takes ids) of cfg's shape."""
    t = _RandomTensors(seed)
    hidden = cfg["hidden_size"]
    t.sym("embeddings.token_embedding.weight", (cfg["vocab_size"], hidden), 1.0)
    t.sym("embeddings.position_embedding.weight", (cfg["max_position_embeddings"], hidden), 0.5)
    t.encoder(cfg)
    t.norm("final_layer_norm", hidden)
    t.linear("head", cfg.get("projection_size", hidden), hidden)
    _write_folder(folder, dict(cfg, model_type="siglip_text_model", architectures=["SiglipTextModel"]), t)
