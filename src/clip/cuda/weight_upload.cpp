#include "clip/cuda/weight_upload.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <utility>

#include "clip/cuda/convert.cuh"
#include "clip/cuda/fold_norm.h"
#include "clip/error.h"

namespace clip::cuda {
namespace {

void expect_shape(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what) {
  if (t.shape != shape || t.data.size() != Tensor::numel_of(shape))
    throw Error("CUDA backend: " + what + " has shape " + dims(t.shape) + ", expected " + dims(shape));
}

// Uploads float32 host tensors and converts them on the GPU into their
// final type; one staging buffer of the largest tensor's size is reused.
// Every copy is cudaMemcpyAsync on the backend's stream: a plain cudaMemcpy
// from pageable memory may return before its DMA has landed, and the
// conversion kernel on our (non-blocking) stream would then read a staging
// buffer still half old (seen: a partly garbage token-embedding table).
class Uploader {
 public:
  Uploader(CudaResources& res, DType act) : res_(res), act_(act) {}

  DeviceBuffer f32(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what) {
    expect_shape(t, shape, what);
    DeviceBuffer b = res_.alloc(t.numel() * 4);
    copy(b.get(), t.ptr(), t.numel() * 4);
    return b;
  }
  // Several tensors stacked along the first dimension, converted to `type`.
  DeviceBuffer stacked(const std::vector<const Tensor*>& parts, DType type) {
    size_t n = 0;
    for (auto* p : parts) n += p->numel();
    if (type == DType::F32) {
      DeviceBuffer b = res_.alloc(n * 4);
      size_t off = 0;
      for (auto* p : parts) {
        copy(b.as<float>() + off, p->ptr(), p->numel() * 4);
        off += p->numel();
      }
      return b;
    }
    if (staging_.bytes() < n * 4) {
      res_.synchronize();  // the old staging buffer may still be read
      staging_.reset();
      staging_ = DeviceBuffer(n * 4, nullptr);  // temporary: not counted
    }
    size_t off = 0;
    for (auto* p : parts) {
      copy(staging_.as<float>() + off, p->ptr(), p->numel() * 4);
      off += p->numel();
    }
    DeviceBuffer b = res_.alloc(n * dtype_size(type));
    convert(res_.exec(), staging_.get(), DType::F32, b.get(), type, n);  // same stream: after the copies
    res_.synchronize();  // the staging buffer is reused by the next call
    return b;
  }
  DeviceBuffer act(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what) {
    expect_shape(t, shape, what);
    return stacked({&t}, act_);
  }
  DevNorm norm(const NormWeights& n, int hidden, const std::string& what) {
    return {f32(n.weight, {hidden}, what + ".weight"), f32(n.bias, {hidden}, what + ".bias")};
  }
  // A norm whose gamma and beta went into the next layer: ones and zeros.
  DevNorm unit_norm(const NormWeights& n, int hidden, const std::string& what) {
    expect_shape(n.weight, {hidden}, what + ".weight");
    expect_shape(n.bias, {hidden}, what + ".bias");
    Tensor ones({hidden}), zeros({hidden});
    std::fill(ones.data.begin(), ones.data.end(), 1.f);
    return {f32(ones, {hidden}, what + ".weight"), f32(zeros, {hidden}, what + ".bias")};
  }

  DevLinear linear(const LinearWeights& l, int out, int in, const std::string& what, bool need_bias) {
    DevLinear d;
    d.out = out;
    d.in = in;
    d.w = act(l.weight, {out, in}, what + ".weight");
    if (!l.bias.empty())
      d.bias = f32(l.bias, {out}, what + ".bias");
    else if (need_bias)
      throw Error("CUDA backend: " + what + ".bias is missing");
    return d;
  }
  DevLayer layer(const LayerWeights& w, const TowerConfig& c, const std::string& what) {
    const int H = c.hidden_size, I = c.intermediate_size;
    DevLayer d;
    d.ln1 = unit_norm(w.ln1, H, what + ".layer_norm1");
    d.ln2 = unit_norm(w.ln2, H, what + ".layer_norm2");
    LinearWeights qkv[3];
    int part = 0;
    for (auto [lin, name] : {std::pair{&w.q, "q_proj"}, {&w.k, "k_proj"}, {&w.v, "v_proj"}}) {
      const std::string lw = what + ".self_attn." + name;
      expect_shape(lin->weight, {H, H}, lw + ".weight");
      expect_shape(lin->bias, {H}, lw + ".bias");
      qkv[part++] = fold_norm(*lin, w.ln1, lw);
    }
    d.qkv.out = 3 * H;
    d.qkv.in = H;
    d.qkv.w = stacked({&qkv[0].weight, &qkv[1].weight, &qkv[2].weight}, act_);
    d.qkv.bias = stacked({&qkv[0].bias, &qkv[1].bias, &qkv[2].bias}, DType::F32);
    // The QKV output is 16-bit in fp16/bf16 mode; cuBLASLt's bias epilogue
    // then wants the bias in that type too.
    if (act_ != DType::F32) d.qkv.bias_t = stacked({&qkv[0].bias, &qkv[1].bias, &qkv[2].bias}, act_);
    d.out = linear(w.out, H, H, what + ".self_attn.out_proj", true);
    expect_shape(w.fc1.weight, {I, H}, what + ".mlp.fc1.weight");
    expect_shape(w.fc1.bias, {I}, what + ".mlp.fc1.bias");
    d.fc1 = linear(fold_norm(w.fc1, w.ln2, what + ".mlp.fc1"), I, H, what + ".mlp.fc1", true);
    d.fc2 = linear(w.fc2, H, I, what + ".mlp.fc2", true);
    return d;
  }
  // A tower's encoder layers (`prefix`.encoder.layers.i) and its projection
  // (none when projection_name is empty).
  void layers_and_projection(DevTower& t, const std::vector<LayerWeights>& layers, const TowerConfig& c,
                             const std::string& prefix, const LinearWeights& projection, int projection_dim,
                             const std::string& projection_name) {
    if (static_cast<int>(layers.size()) != c.num_layers)
      throw Error("CUDA backend: " + prefix + " has " + std::to_string(layers.size()) + " layers, config says " +
                  std::to_string(c.num_layers));
    for (int i = 0; i < c.num_layers; ++i)
      t.layers.push_back(layer(layers[i], c, prefix + ".encoder.layers." + std::to_string(i)));
    if (!projection_name.empty())
      t.projection = linear(projection, projection_dim, c.hidden_size, projection_name, false);
  }

  // SigLIP's pooling head, with `post_ln` (the tower's post_layernorm) folded
  // into k and v.
  DevPoolHead pool_head(const AttentionPoolWeights& w, const NormWeights& post_ln, const TowerConfig& c) {
    const int H = c.hidden_size, I = c.intermediate_size;
    const std::string what = "vision_model.head";
    DevPoolHead d;
    expect_shape(w.probe, {H}, what + ".probe");
    expect_shape(w.q.weight, {H, H}, what + ".attention.in_proj_weight (q)");
    expect_shape(w.q.bias, {H}, what + ".attention.in_proj_bias (q)");
    Tensor query({H});
    for (int o = 0; o < H; ++o) {  // in double: no more rounding than torch's float32 product
      double acc = w.q.bias.data[o];
      for (int i = 0; i < H; ++i) acc += double(w.q.weight.data[size_t(o) * H + i]) * w.probe.data[i];
      query.data[o] = static_cast<float>(acc);
    }
    d.query = f32(query, {H}, what + ".probe (projected)");
    const LinearWeights k = fold_norm(w.k, post_ln, what + ".attention.in_proj (k)");
    const LinearWeights v = fold_norm(w.v, post_ln, what + ".attention.in_proj (v)");
    d.kv.out = 2 * H;
    d.kv.in = H;
    d.kv.w = stacked({&k.weight, &v.weight}, act_);
    d.kv.bias = stacked({&k.bias, &v.bias}, DType::F32);
    if (act_ != DType::F32) d.kv.bias_t = stacked({&k.bias, &v.bias}, act_);
    d.out = linear(w.out, H, H, what + ".attention.out_proj", true);
    d.ln = unit_norm(w.ln, H, what + ".layernorm");
    if (w.fc1.weight.shape.size() != 2 || w.fc1.weight.dim(1) != H)
      throw Error("CUDA backend: " + what + ".mlp.fc1.weight has shape " + dims(w.fc1.weight.shape) +
                  ", expected [intermediate, " + std::to_string(H) + "]");
    const int HI = static_cast<int>(w.fc1.weight.dim(0));
    (void)I;  // the head's MLP has the tower's width in every checkpoint, but its own shape decides
    d.fc1 = linear(fold_norm(w.fc1, w.ln, what + ".mlp.fc1"), HI, H, what + ".mlp.fc1", true);
    d.fc2 = linear(w.fc2, H, HI, what + ".mlp.fc2", true);
    return d;
  }

 private:
  // Ordered on the backend's stream; the host memory stays valid until the
  // final synchronize of upload_vision/upload_text, and every staging reuse
  // synchronises first.
  void copy(void* dst, const void* src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, res_.stream()));
  }

  CudaResources& res_;
  DType act_;
  DeviceBuffer staging_;
};

}  // namespace

std::string dims(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

DevVision upload_vision(CudaResources& res, DType act, const VisionConfig& c, const VisionWeights& w,
                        int projection_dim) {
  const int H = c.hidden_size, C = c.num_channels, p = c.patch_size, S = c.num_positions();
  if (H <= 0 || c.num_heads <= 0 || H % c.num_heads || p <= 0 || c.image_size < p)
    throw Error("CUDA backend: bad vision configuration");
  Uploader up(res, act);
  DevVision v;
  v.patch_w = up.act(w.patch_embedding, {H, C, p, p}, "vision_model.embeddings.patch_embedding.weight");
  if (c.class_token) {
    v.cls = up.f32(w.class_embedding, {H}, "vision_model.embeddings.class_embedding");
    v.pos = up.f32(w.position_embedding, {S, H}, "vision_model.embeddings.position_embedding.weight");
    v.pre_ln = up.norm(w.pre_ln, H, "vision_model.pre_layrnorm");
  } else {  // SigLIP: the conv's bias joins the positions, the patch GEMM then needs none
    expect_shape(w.position_embedding, {S, H}, "vision_model.embeddings.position_embedding.weight");
    Tensor pos = w.position_embedding;
    if (!w.patch_bias.empty()) {
      expect_shape(w.patch_bias, {H}, "vision_model.embeddings.patch_embedding.bias");
      for (int t = 0; t < S; ++t)
        for (int i = 0; i < H; ++i) pos.data[size_t(t) * H + i] += w.patch_bias.data[i];
    }
    v.pos = up.f32(pos, {S, H}, "vision_model.embeddings.position_embedding.weight");
  }
  if (c.attention_pool) {
    if (!w.head) throw Error("CUDA backend: the SigLIP vision tower has no attention pooling head");
    v.post_ln = up.unit_norm(w.post_ln, H, "vision_model.post_layernorm");
    v.head = up.pool_head(*w.head, w.post_ln, c);
    up.layers_and_projection(v, w.layers, c, "vision_model", w.projection, projection_dim, "");
  } else {
    v.post_ln = up.norm(w.post_ln, H, "vision_model.post_layernorm");
    up.layers_and_projection(v, w.layers, c, "vision_model", w.projection, projection_dim, "visual_projection");
  }
  res.synchronize();
  return v;
}

DevText upload_text(CudaResources& res, DType act, const TextConfig& c, const TextWeights& w, int projection_dim) {
  const int H = c.hidden_size;
  if (H <= 0 || c.num_heads <= 0 || H % c.num_heads) throw Error("CUDA backend: bad text configuration");
  Uploader up(res, act);
  DevText t;
  t.tok = up.act(w.token_embedding, {c.vocab_size, H}, "text_model.embeddings.token_embedding.weight");
  t.pos = up.f32(w.position_embedding, {c.max_positions, H}, "text_model.embeddings.position_embedding.weight");
  t.final_ln = up.norm(w.final_ln, H, "text_model.final_layer_norm");
  up.layers_and_projection(t, w.layers, c, "text_model", w.projection, projection_dim,
                           c.pool_last ? "text_model.head" : "text_projection");
  res.synchronize();
  return t;
}

}  // namespace clip::cuda
