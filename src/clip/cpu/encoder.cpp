#include "clip/cpu/encoder.h"

#include <algorithm>
#include <thread>

#include "clip/cpu/cpu_precision.h"
#include "clip/cpu/ops.h"
#include "clip/error.h"

namespace clip::cpu {

namespace {

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

std::vector<float> copy_of(const Tensor& t) { return t.data; }

}  // namespace

Epilogue activation_epilogue(Activation a) {
  switch (a) {
    case Activation::Gelu: return Epilogue::Gelu;
    case Activation::GeluTanh: return Epilogue::GeluTanh;
    case Activation::QuickGelu: break;
  }
  return Epilogue::QuickGelu;
}

AttentionProducts attention_products(Precision p) {
  if (p == Precision::BF16 || (p == Precision::INT8 && cpu_has_native_bf16())) return AttentionProducts::Bf16;
  return AttentionProducts::Fp32;
}

void expect_shape(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what) {
  if (t.shape != shape)
    throw Error("cpu backend: " + what + " has shape " + shape_str(t.shape) + ", expected " + shape_str(shape));
}

CpuContext::CpuContext(int threads) : pool(resolve_threads(threads), gemm_thread_init), gemm(pool.size()) {}

float* grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

Encoder::Encoder(CpuContext& ctx, const std::vector<LayerWeights>& layers, const TowerConfig& config, int hidden,
                 const std::string& tower, Precision precision)
    : hidden_(hidden), heads_(config.num_heads), eps_(config.layer_norm_eps), products_(attention_products(precision)) {
  if (heads_ <= 0 || hidden_ % heads_ != 0)
    throw Error("cpu backend: " + tower + " hidden size " + std::to_string(hidden_) +
                " is not divisible by num_attention_heads " + std::to_string(heads_));
  act_ = activation_epilogue(config.activation);
  if (!layers.empty() && layers[0].fc1.weight.shape.size() != 2)
    throw Error("cpu backend: " + tower + " layer 0 fc1.weight has shape " + shape_str(layers[0].fc1.weight.shape) +
                ", expected [intermediate, hidden]");
  intermediate_ = layers.empty() ? 0 : static_cast<int>(layers[0].fc1.weight.dim(0));
  const int64_t h = hidden_, inter = intermediate_;

  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerWeights& w = layers[i];
    const std::string name = tower + " layer " + std::to_string(i) + " ";
    for (auto [t, what] : {std::pair{&w.ln1.weight, "layer_norm1.weight"},
                           {&w.ln1.bias, "layer_norm1.bias"},
                           {&w.ln2.weight, "layer_norm2.weight"},
                           {&w.ln2.bias, "layer_norm2.bias"},
                           {&w.q.bias, "q_proj.bias"},
                           {&w.k.bias, "k_proj.bias"},
                           {&w.v.bias, "v_proj.bias"},
                           {&w.out.bias, "out_proj.bias"},
                           {&w.fc2.bias, "fc2.bias"}})
      expect_shape(*t, {h}, name + what);
    for (auto [t, what] : {std::pair{&w.q.weight, "q_proj.weight"},
                           {&w.k.weight, "k_proj.weight"},
                           {&w.v.weight, "v_proj.weight"},
                           {&w.out.weight, "out_proj.weight"}})
      expect_shape(*t, {h, h}, name + what);
    expect_shape(w.fc1.weight, {inter, h}, name + "fc1.weight");
    expect_shape(w.fc1.bias, {inter}, name + "fc1.bias");
    expect_shape(w.fc2.weight, {h, inter}, name + "fc2.weight");

    Layer l;
    l.ln1_w = copy_of(w.ln1.weight);
    l.ln1_b = copy_of(w.ln1.bias);
    l.ln2_w = copy_of(w.ln2.weight);
    l.ln2_b = copy_of(w.ln2.bias);
    std::vector<float> qkv_w, qkv_b;
    for (const LinearWeights* p : {&w.q, &w.k, &w.v}) {
      qkv_w.insert(qkv_w.end(), p->weight.data.begin(), p->weight.data.end());
      qkv_b.insert(qkv_b.end(), p->bias.data.begin(), p->bias.data.end());
    }
    l.qkv = Linear(ctx.gemm, qkv_w.data(), qkv_b.data(), 3 * h, h, precision);
    l.out = Linear(ctx.gemm, w.out.weight.ptr(), w.out.bias.ptr(), h, h, precision);
    l.fc1 = Linear(ctx.gemm, w.fc1.weight.ptr(), w.fc1.bias.ptr(), inter, h, precision);
    l.fc2 = Linear(ctx.gemm, w.fc2.weight.ptr(), w.fc2.bias.ptr(), h, inter, precision);
    layers_.push_back(std::move(l));
  }
}

void Encoder::forward(CpuContext& ctx, float* h, int batch, int seq, bool causal, const int32_t* pool_pos,
                      float* pooled) const {
  ThreadPool& pool = ctx.pool;
  const int64_t rows = int64_t(batch) * seq, H = hidden_;
  float* x = grow(ctx.x, rows * H);
  float* qkv = grow(ctx.qkv, rows * 3 * H);
  float* attn = grow(ctx.attn, rows * H);
  float* mlp = grow(ctx.mlp, rows * intermediate_);
  const AttentionShape shape{batch, seq, heads_, hidden_ / heads_, causal};

  // Without pooled positions every row runs through every layer (SigLIP's
  // vision tower: its pooling head reads all of them).
  const size_t full_layers = !pool_pos ? layers_.size() : layers_.empty() ? 0 : layers_.size() - 1;
  for (size_t i = 0; i < full_layers; ++i) {
    const Layer& l = layers_[i];
    layer_norm(h, rows, H, l.ln1_w.data(), l.ln1_b.data(), eps_, x, pool);
    l.qkv.forward(ctx.gemm, pool, x, rows, qkv, Epilogue::Store);
    attention(qkv, shape, nullptr, attn, pool, ctx.attention, products_);
    // The residual add is the GEMM's epilogue: h += attn W^T + b.
    l.out.forward(ctx.gemm, pool, attn, rows, h, Epilogue::Accumulate);
    layer_norm(h, rows, H, l.ln2_w.data(), l.ln2_b.data(), eps_, x, pool);
    l.fc1.forward(ctx.gemm, pool, x, rows, mlp, act_);
    l.fc2.forward(ctx.gemm, pool, mlp, rows, h, Epilogue::Accumulate);
  }

  if (!pool_pos) return;
  // Only the pooled tokens' rows leave the encoder.
  for (int b = 0; b < batch; ++b) std::copy_n(h + (int64_t(b) * seq + pool_pos[b]) * H, H, pooled + b * H);
  if (layers_.empty()) return;

  // Last layer: every token still provides keys and values, but queries,
  // out_proj, the MLP and the residuals run for the pooled rows alone.
  const Layer& l = layers_.back();
  layer_norm(h, rows, H, l.ln1_w.data(), l.ln1_b.data(), eps_, x, pool);
  l.qkv.forward(ctx.gemm, pool, x, rows, qkv, Epilogue::Store);
  attention(qkv, shape, pool_pos, attn, pool, ctx.attention, products_);  // [batch, H]
  l.out.forward(ctx.gemm, pool, attn, batch, pooled, Epilogue::Accumulate);
  layer_norm(pooled, batch, H, l.ln2_w.data(), l.ln2_b.data(), eps_, x, pool);
  l.fc1.forward(ctx.gemm, pool, x, batch, mlp, act_);
  l.fc2.forward(ctx.gemm, pool, mlp, batch, pooled, Epilogue::Accumulate);
}

}  // namespace clip::cpu
