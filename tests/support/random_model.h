// Random CLIP models of real and tiny shapes, for the GPU tests and the GPU
// benchmark (speed does not depend on the values; correctness checks want
// "unit-scale" values: every linear layer's weights have standard deviation
// 1/sqrt(fan_in), so activations stay of order 1 through the towers and an
// absolute tolerance means the same thing at every depth).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "clip/backend.h"
#include "clip/error.h"
#include "clip/model/config.h"
#include "clip/model/weights.h"

namespace clip::testing {

// splitmix64: fast, seedable, good enough for test data.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return (next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
  // Uniform with standard deviation `std` (range +-std*sqrt(3)).
  float sym(float std) { return (2.f * uniform() - 1.f) * std * 1.7320508f; }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
};

inline Tensor random_tensor(Rng& rng, std::vector<int64_t> shape, float std, float mean = 0.f) {
  Tensor t(std::move(shape));
  for (float& v : t.data) v = mean + rng.sym(std);
  return t;
}

struct ModelShape {
  std::string name;
  int v_hidden, v_layers, v_heads, v_mlp, image, patch;
  int t_hidden, t_layers, t_heads, t_mlp, vocab, positions;
  int projection;
  Activation act = Activation::QuickGelu;
  ModelFamily family = ModelFamily::Clip;  // Siglip: no class token, pooling head, text pooled last
};

// Named shapes: "tiny" (fast tests), "B/32", "B/16", "L/14" (OpenAI CLIP);
// SigLIP: "siglip-tiny" (head size 72, as SO400M), "siglip-long" (1,024
// patches of head size 72), "SO400M/14" (224 px, 256 patches),
// "B/16-384" (576 patches), "B/16-SigLIP" (224 px).
inline ModelShape model_shape(const std::string& name) {
  constexpr Activation tanh = Activation::GeluTanh;
  constexpr ModelFamily sig = ModelFamily::Siglip;
  if (name == "siglip-tiny") return {name, 144, 2, 2, 288, 64, 16, 144, 2, 2, 288, 300, 16, 144, tanh, sig};
  if (name == "siglip-long") return {name, 144, 1, 2, 288, 512, 16, 144, 1, 2, 288, 300, 64, 144, tanh, sig};
  if (name == "SO400M/14") return {name, 1152, 27, 16, 4304, 224, 14, 1152, 27, 16, 4304, 32000, 64, 1152, tanh, sig};
  if (name == "B/16-384") return {name, 768, 12, 12, 3072, 384, 16, 768, 12, 12, 3072, 32000, 64, 768, tanh, sig};
  if (name == "B/16-SigLIP") return {name, 768, 12, 12, 3072, 224, 16, 768, 12, 12, 3072, 32000, 64, 768, tanh, sig};
  if (name == "tiny") return {name, 64, 2, 4, 256, 32, 8, 32, 2, 2, 128, 100, 16, 24, Activation::QuickGelu};
  // head_dim 64: the tensor-core attention (causal for text) in a small model.
  if (name == "tiny64") return {name, 128, 2, 2, 256, 64, 16, 128, 2, 2, 256, 300, 24, 32, Activation::QuickGelu};
  if (name == "tiny-gelu") return {name, 96, 2, 3, 160, 30, 6, 64, 2, 4, 96, 90, 20, 32, Activation::Gelu};
  if (name == "B/32") return {name, 768, 12, 12, 3072, 224, 32, 512, 12, 8, 2048, 49408, 77, 512};
  if (name == "B/16") return {name, 768, 12, 12, 3072, 224, 16, 512, 12, 8, 2048, 49408, 77, 512};
  if (name == "L/14") return {name, 1024, 24, 16, 4096, 224, 14, 768, 12, 12, 3072, 49408, 77, 768};
  throw Error("unknown model shape " + name);
}

inline ClipConfig make_config(const ModelShape& m) {
  ClipConfig c;
  VisionConfig v;
  v.hidden_size = m.v_hidden;
  v.num_layers = m.v_layers;
  v.num_heads = m.v_heads;
  v.intermediate_size = m.v_mlp;
  v.image_size = m.image;
  v.patch_size = m.patch;
  v.num_channels = 3;
  v.activation = m.act;
  TextConfig t;
  t.hidden_size = m.t_hidden;
  t.num_layers = m.t_layers;
  t.num_heads = m.t_heads;
  t.intermediate_size = m.t_mlp;
  t.vocab_size = m.vocab;
  t.max_positions = m.positions;
  t.activation = m.act;
  t.eos_token_id = m.vocab - 1;
  t.bos_token_id = m.vocab - 2;
  c.family = m.family;
  if (m.family == ModelFamily::Siglip) {
    v.class_token = false;
    v.attention_pool = true;
    v.layer_norm_eps = t.layer_norm_eps = 1e-6f;
    t.causal = false;
    t.pool_last = true;
  }
  c.vision = v;
  c.text = t;
  c.projection_dim = m.projection;
  return c;
}

inline NormWeights random_norm(Rng& r, int h) {
  return {random_tensor(r, {h}, 0.1f, 1.f), random_tensor(r, {h}, 0.1f)};
}
inline LinearWeights random_linear(Rng& r, int out, int in, bool bias) {
  LinearWeights l;
  l.weight = random_tensor(r, {out, in}, 1.f / std::sqrt(float(in)));
  if (bias) l.bias = random_tensor(r, {out}, 0.1f);
  return l;
}
inline LayerWeights random_layer(Rng& r, const TowerConfig& c) {
  const int H = c.hidden_size, I = c.intermediate_size;
  LayerWeights w;
  w.ln1 = random_norm(r, H);
  w.q = random_linear(r, H, H, true);
  w.k = random_linear(r, H, H, true);
  w.v = random_linear(r, H, H, true);
  w.out = random_linear(r, H, H, true);
  w.ln2 = random_norm(r, H);
  w.fc1 = random_linear(r, I, H, true);
  w.fc2 = random_linear(r, H, I, true);
  return w;
}

inline ModelWeights random_weights(const ClipConfig& c, uint64_t seed) {
  Rng r(seed);
  ModelWeights w;
  if (c.vision) {
    const VisionConfig& v = *c.vision;
    VisionWeights vw;
    const int H = v.hidden_size;
    if (v.class_token) vw.class_embedding = random_tensor(r, {H}, 1.f);
    vw.patch_embedding = random_tensor(r, {H, v.num_channels, v.patch_size, v.patch_size},
                                       1.f / std::sqrt(float(v.num_channels * v.patch_size * v.patch_size)));
    if (!v.class_token) vw.patch_bias = random_tensor(r, {H}, 0.1f);
    vw.position_embedding = random_tensor(r, {v.num_positions(), H}, 0.5f);
    if (v.class_token) vw.pre_ln = random_norm(r, H);
    for (int i = 0; i < v.num_layers; ++i) vw.layers.push_back(random_layer(r, v));
    vw.post_ln = random_norm(r, H);
    if (v.attention_pool) {
      AttentionPoolWeights& hw = vw.head.emplace();
      hw.probe = random_tensor(r, {H}, 1.f);
      hw.q = random_linear(r, H, H, true);
      hw.k = random_linear(r, H, H, true);
      hw.v = random_linear(r, H, H, true);
      hw.out = random_linear(r, H, H, true);
      hw.ln = random_norm(r, H);
      hw.fc1 = random_linear(r, v.intermediate_size, H, true);
      hw.fc2 = random_linear(r, H, v.intermediate_size, true);
    } else {
      vw.projection = random_linear(r, c.projection_dim, H, false);
    }
    w.vision = std::move(vw);
  }
  if (c.text) {
    const TextConfig& t = *c.text;
    TextWeights tw;
    tw.token_embedding = random_tensor(r, {t.vocab_size, t.hidden_size}, 1.f);
    tw.position_embedding = random_tensor(r, {t.max_positions, t.hidden_size}, 0.5f);
    for (int i = 0; i < t.num_layers; ++i) tw.layers.push_back(random_layer(r, t));
    tw.final_ln = random_norm(r, t.hidden_size);
    tw.projection = random_linear(r, c.projection_dim, t.hidden_size, t.pool_last);  // SigLIP's head has a bias
    w.text = std::move(tw);
  }
  return w;
}

// Normalised-looking pixels: unit variance per value.
inline Tensor random_pixels(const VisionConfig& v, int n, uint64_t seed) {
  Rng r(seed);
  return random_tensor(r, {n, v.num_channels, v.image_size, v.image_size}, 1.f);
}

// count texts of seq_len tokens; text i is pooled at a position drawn in
// [seq_len/2, seq_len) and the last text at seq_len - 1 (as the engine cuts
// seq_len to the longest end-of-text position).
inline TextBatch random_texts(const TextConfig& t, int count, int seq_len, uint64_t seed) {
  Rng r(seed);
  TextBatch b;
  b.count = count;
  b.seq_len = seq_len;
  b.ids.resize(size_t(count) * seq_len);
  for (auto& id : b.ids) id = r.below(t.vocab_size);
  b.pool_at.resize(count);
  for (int i = 0; i < count; ++i) {
    // SigLIP: every text runs padded to the full length, pooled at the end.
    b.pool_at[i] = (i == count - 1 || t.pool_last) ? seq_len - 1 : seq_len / 2 + r.below(seq_len - seq_len / 2);
    b.ids[size_t(i) * seq_len + b.pool_at[i]] = t.eos_token_id;
  }
  return b;
}

}  // namespace clip::testing
