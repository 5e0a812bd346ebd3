#include "clip/cpu/attention_pool.h"

#include "clip/cpu/ops.h"
#include "clip/error.h"

namespace clip::cpu {

AttentionPool::AttentionPool(CpuContext& ctx, const AttentionPoolWeights& w, const TowerConfig& config, int hidden,
                             Precision precision)
    : hidden_(hidden), heads_(config.num_heads), eps_(config.layer_norm_eps), products_(attention_products(precision)) {
  const int64_t h = hidden;
  if (heads_ <= 0 || hidden % heads_ != 0)
    throw Error("cpu backend: vision hidden size " + std::to_string(hidden) +
                " is not divisible by num_attention_heads " + std::to_string(heads_));
  expect_shape(w.probe, {h}, "vision head.probe");
  for (auto [t, what] : {std::pair{&w.q.weight, "q"}, {&w.k.weight, "k"}, {&w.v.weight, "v"}})
    expect_shape(*t, {h, h}, std::string("vision head.attention.in_proj_weight (") + what + ")");
  for (auto [t, what] : {std::pair{&w.q.bias, "q"}, {&w.k.bias, "k"}, {&w.v.bias, "v"}})
    expect_shape(*t, {h}, std::string("vision head.attention.in_proj_bias (") + what + ")");
  expect_shape(w.out.weight, {h, h}, "vision head.attention.out_proj.weight");
  expect_shape(w.out.bias, {h}, "vision head.attention.out_proj.bias");
  expect_shape(w.ln.weight, {h}, "vision head.layernorm.weight");
  expect_shape(w.ln.bias, {h}, "vision head.layernorm.bias");
  if (w.fc1.weight.shape.size() != 2 || w.fc1.weight.dim(1) != h)
    throw Error("cpu backend: vision head.mlp.fc1.weight has shape " + shape_str(w.fc1.weight.shape) +
                ", expected [intermediate, " + std::to_string(h) + "]");
  intermediate_ = static_cast<int>(w.fc1.weight.dim(0));
  const int64_t inter = intermediate_;
  expect_shape(w.fc1.bias, {inter}, "vision head.mlp.fc1.bias");
  expect_shape(w.fc2.weight, {h, inter}, "vision head.mlp.fc2.weight");
  expect_shape(w.fc2.bias, {h}, "vision head.mlp.fc2.bias");
  act_ = activation_epilogue(config.activation);

  // The query is the same for every image: probe W_q^T + b_q, in double so
  // it carries no more rounding than transformers' float32 GEMM.
  query_.resize(h);
  for (int64_t o = 0; o < h; ++o) {
    double acc = w.q.bias.data[o];
    for (int64_t i = 0; i < h; ++i) acc += double(w.q.weight.data[o * h + i]) * w.probe.data[i];
    query_[o] = static_cast<float>(acc);
  }
  ln_w_ = w.ln.weight.data;
  ln_b_ = w.ln.bias.data;
  std::vector<float> kv_w(w.k.weight.data), kv_b(w.k.bias.data);
  kv_w.insert(kv_w.end(), w.v.weight.data.begin(), w.v.weight.data.end());
  kv_b.insert(kv_b.end(), w.v.bias.data.begin(), w.v.bias.data.end());
  kv_ = Linear(ctx.gemm, kv_w.data(), kv_b.data(), 2 * h, h, precision);
  // The rows after the pooling are few (one per image): fp32 costs nothing.
  out_ = Linear(ctx.gemm, w.out.weight.ptr(), w.out.bias.ptr(), h, h);
  fc1_ = Linear(ctx.gemm, w.fc1.weight.ptr(), w.fc1.bias.ptr(), inter, h);
  fc2_ = Linear(ctx.gemm, w.fc2.weight.ptr(), w.fc2.bias.ptr(), h, inter);
}

void AttentionPool::forward(CpuContext& ctx, const float* x, int batch, int seq, float* out) const {
  ThreadPool& pool = ctx.pool;
  const int64_t H = hidden_;
  float* kv = grow(kv_buf_, int64_t(batch) * seq * 2 * H);
  kv_.forward(ctx.gemm, pool, x, int64_t(batch) * seq, kv, Epilogue::Store);
  float* attn = grow(ctx.attn, int64_t(batch) * H);
  const AttentionShape shape{batch, seq, heads_, hidden_ / heads_, false};
  probe_attention(query_.data(), kv, shape, attn, pool, ctx.attention, products_);
  out_.forward(ctx.gemm, pool, attn, batch, out, Epilogue::Store);  // the residual
  float* normed = grow(ctx.x, int64_t(batch) * H);
  layer_norm(out, batch, H, ln_w_.data(), ln_b_.data(), eps_, normed, pool);
  float* mlp = grow(ctx.mlp, int64_t(batch) * intermediate_);
  fc1_.forward(ctx.gemm, pool, normed, batch, mlp, act_);
  fc2_.forward(ctx.gemm, pool, mlp, batch, out, Epilogue::Accumulate);
}

}  // namespace clip::cpu
