// The CPU backend: both towers of CLIP and SigLIP as transformers computes
// them, in fp32, or with the layers' GEMMs and the patch embedding in bf16 or
// int8 (the projections stay fp32: one row per item, and they write the
// embedding).
//   vision: conv patch embedding (im2col + GEMM) -> [class; patches] + positions
//           -> pre_layrnorm -> encoder -> post_layernorm(token 0) -> projection
//           SigLIP: patches (+ conv bias) + positions -> encoder ->
//           post_layernorm(all tokens) -> attention pooling head
//   text:   token + position embedding -> causal encoder -> final_layer_norm of
//           the pooled token -> projection
//           SigLIP: no causal mask, pooled at the last position, projected
//           by a head with a bias
// The pieces: encoder.h (layers), gemm.h (oneDNN), attention.h, ops.h,
// thread_pool.h. The backend copies and packs every weight it needs at
// construction; the ModelWeights may be freed afterwards.
#include <algorithm>
#include <mutex>
#include <optional>
#include <string>

#include "clip/backend.h"
#include "clip/cpu/attention_pool.h"
#include "clip/cpu/cpu_precision.h"
#include "clip/cpu/encoder.h"
#include "clip/cpu/ops.h"
#include "clip/error.h"

namespace clip {

namespace {

using cpu::CpuContext;
using cpu::Encoder;
using cpu::Epilogue;
using cpu::expect_shape;
using cpu::grow;
using cpu::Linear;

// Items per pass, so activations stay bounded for large batches (a ViT-B/32
// pass of 4096 rows needs ~100 MB of activations); big enough that the GEMMs
// run at full speed.
constexpr int64_t kMaxRowsPerPass = 4096;

struct Norm {
  std::vector<float> weight, bias;
};

Norm copy_norm(const NormWeights& w, int64_t hidden, const std::string& what) {
  expect_shape(w.weight, {hidden}, what + ".weight");
  expect_shape(w.bias, {hidden}, what + ".bias");
  return {w.weight.data, w.bias.data};
}

Linear projection(CpuContext& ctx, const LinearWeights& w, int64_t hidden, const std::string& what) {
  if (w.weight.shape.size() != 2 || w.weight.dim(1) != hidden)
    throw Error("cpu backend: " + what + " has shape " + shape_str(w.weight.shape) + ", expected [projection_dim, " +
                std::to_string(hidden) + "]");
  const int64_t out = w.weight.dim(0);
  if (!w.bias.data.empty()) expect_shape(w.bias, {out}, what.substr(0, what.rfind('.')) + ".bias");
  return Linear(ctx.gemm, w.weight.ptr(), w.bias.data.empty() ? nullptr : w.bias.ptr(), out, hidden);
}

class VisionTower {
 public:
  VisionTower(CpuContext& ctx, const VisionConfig& cfg, const VisionWeights& w, Precision precision) {
    const Tensor& pe = w.patch_embedding;
    if (pe.shape.size() != 4 || pe.dim(2) != pe.dim(3))
      throw Error("cpu backend: vision patch_embedding.weight has shape " + shape_str(pe.shape) +
                  ", expected [hidden, channels, patch, patch]");
    hidden_ = static_cast<int>(pe.dim(0));
    channels_ = static_cast<int>(pe.dim(1));
    patch_ = static_cast<int>(pe.dim(2));
    image_ = cfg.image_size;
    grid_ = image_ / patch_;
    if (grid_ <= 0)
      throw Error("cpu backend: image_size " + std::to_string(image_) + " is smaller than the patch size " +
                  std::to_string(patch_));
    class_token_ = cfg.class_token;
    const int64_t h = hidden_, tokens = int64_t(grid_) * grid_ + (class_token_ ? 1 : 0);
    expect_shape(w.position_embedding, {tokens, h}, "vision position_embedding.weight");
    position_embedding_ = w.position_embedding.data;
    if (class_token_) {
      expect_shape(w.class_embedding, {h}, "vision class_embedding");
      class_embedding_ = w.class_embedding.data;
      pre_ln_ = copy_norm(w.pre_ln, h, "vision pre_layrnorm");
    }
    if (!w.patch_bias.data.empty()) expect_shape(w.patch_bias, {h}, "vision patch_embedding.bias");
    post_ln_ = copy_norm(w.post_ln, h, "vision post_layernorm");
    eps_ = cfg.layer_norm_eps;
    patch_linear_ = Linear(ctx.gemm, pe.ptr(), w.patch_bias.data.empty() ? nullptr : w.patch_bias.ptr(), h,
                           int64_t(channels_) * patch_ * patch_, precision);
    encoder_ = Encoder(ctx, w.layers, cfg, hidden_, "vision", precision);
    if (cfg.attention_pool) {
      if (!w.head) throw Error("cpu backend: the SigLIP vision tower has no attention pooling head");
      head_.emplace(ctx, *w.head, cfg, hidden_, precision);
      out_features_ = head_->out_features();
    } else {
      projection_ = projection(ctx, w.projection, h, "visual_projection.weight");
      out_features_ = projection_.out_features();
    }
  }

  Tensor encode(CpuContext& ctx, const Tensor& pixels) const {
    if (pixels.shape.size() != 4 || pixels.dim(1) != channels_ || pixels.dim(2) != image_ || pixels.dim(3) != image_)
      throw Error("cpu backend: pixels have shape " + shape_str(pixels.shape) + ", expected [n, " +
                  std::to_string(channels_) + ", " + std::to_string(image_) + ", " + std::to_string(image_) + "]");
    const int64_t n = pixels.dim(0);
    Tensor out({n, out_features_});
    const int64_t seq = int64_t(grid_) * grid_ + (class_token_ ? 1 : 0);
    const int64_t per_pass = std::max<int64_t>(1, kMaxRowsPerPass / seq);
    const int64_t image_floats = int64_t(channels_) * image_ * image_;
    for (int64_t first = 0; first < n; first += per_pass) {
      const int count = static_cast<int>(std::min(per_pass, n - first));
      run(ctx, pixels.ptr() + first * image_floats, count, out.ptr() + first * out_features_);
    }
    return out;
  }

 private:
  void run(CpuContext& ctx, const float* pixels, int batch, float* out) const {
    cpu::ThreadPool& pool = ctx.pool;
    const int64_t patches = int64_t(grid_) * grid_, H = hidden_;
    const int64_t seq = patches + (class_token_ ? 1 : 0);
    const int64_t patch_len = int64_t(channels_) * patch_ * patch_;

    // Patch embedding as one GEMM over all patches of all images.
    float* cols = grow(ctx.mlp, batch * patches * patch_len);
    cpu::im2col_patches(pixels, batch, channels_, image_, patch_, cols, pool);
    float* embedded = grow(ctx.attn, batch * patches * H);
    patch_linear_.forward(ctx.gemm, pool, cols, batch * patches, embedded, Epilogue::Store);

    // [class;] patches + positions, then pre_layrnorm (CLIP), one row at a time.
    float* h = grow(hidden_states_, batch * seq * H);
    const int64_t first_patch = class_token_ ? 1 : 0;
    pool.parallel_for(batch * seq, 16, [&](int, int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / seq, t = r % seq;
        const float* src = t < first_patch ? class_embedding_.data() : embedded + (b * patches + t - first_patch) * H;
        const float* pos = position_embedding_.data() + t * H;
        float* dst = h + r * H;
        for (int64_t i = 0; i < H; ++i) dst[i] = src[i] + pos[i];
        if (class_token_) cpu::layer_norm_row(dst, H, pre_ln_.weight.data(), pre_ln_.bias.data(), eps_, dst);
      }
    });

    if (head_) {  // SigLIP: every token through every layer, then the pooling head
      encoder_.forward(ctx, h, batch, static_cast<int>(seq), /*causal=*/false, nullptr, nullptr);
      cpu::layer_norm(h, batch * seq, H, post_ln_.weight.data(), post_ln_.bias.data(), eps_, h, pool);
      head_->forward(ctx, h, batch, static_cast<int>(seq), out);
      return;
    }
    const std::vector<int32_t> class_token(batch, 0);
    float* pooled = grow(ctx.pooled_x, batch * H);
    encoder_.forward(ctx, h, batch, static_cast<int>(seq), /*causal=*/false, class_token.data(), pooled);
    cpu::layer_norm(pooled, batch, H, post_ln_.weight.data(), post_ln_.bias.data(), eps_, pooled, pool);
    projection_.forward(ctx.gemm, pool, pooled, batch, out, Epilogue::Store);
  }

  int hidden_ = 0, channels_ = 0, patch_ = 0, image_ = 0, grid_ = 0;
  bool class_token_ = true;
  int64_t out_features_ = 0;
  float eps_ = 1e-5f;
  std::vector<float> class_embedding_, position_embedding_;
  Norm pre_ln_, post_ln_;
  Linear patch_linear_, projection_;
  Encoder encoder_;
  std::optional<cpu::AttentionPool> head_;    // SigLIP's pooling head, in place of the projection
  mutable std::vector<float> hidden_states_;  // the residual stream; guarded by the backend's mutex
};

class TextTower {
 public:
  TextTower(CpuContext& ctx, const TextConfig& cfg, const TextWeights& w, Precision precision) {
    const Tensor& tok = w.token_embedding;
    if (tok.shape.size() != 2)
      throw Error("cpu backend: text token_embedding.weight has shape " + shape_str(tok.shape) +
                  ", expected [vocab, hidden]");
    vocab_ = tok.dim(0);
    hidden_ = static_cast<int>(tok.dim(1));
    const Tensor& pos = w.position_embedding;
    if (pos.shape.size() != 2 || pos.dim(1) != hidden_)
      throw Error("cpu backend: text position_embedding.weight has shape " + shape_str(pos.shape) +
                  ", expected [max_positions, " + std::to_string(hidden_) + "]");
    max_positions_ = pos.dim(0);
    token_embedding_ = tok.data;
    position_embedding_ = pos.data;
    final_ln_ = copy_norm(w.final_ln, hidden_, "text final_layer_norm");
    eps_ = cfg.layer_norm_eps;
    causal_ = cfg.causal;
    encoder_ = Encoder(ctx, w.layers, cfg, hidden_, "text", precision);
    projection_ = projection(ctx, w.projection, hidden_, cfg.pool_last ? "text head.weight" : "text_projection.weight");
  }

  Tensor encode(CpuContext& ctx, const TextBatch& batch) const {
    check(batch);
    const int64_t dim = projection_.out_features();
    Tensor out({int64_t(batch.count), dim});
    const int64_t seq = batch.seq_len;
    const int64_t per_pass = std::max<int64_t>(1, kMaxRowsPerPass / std::max<int64_t>(seq, 1));
    for (int64_t first = 0; first < batch.count; first += per_pass) {
      const int count = static_cast<int>(std::min<int64_t>(per_pass, batch.count - first));
      run(ctx, batch.ids.data() + first * seq, batch.pool_at.data() + first, count, static_cast<int>(seq),
          out.ptr() + first * dim);
    }
    return out;
  }

 private:
  void check(const TextBatch& b) const {
    if (b.count < 0 || b.seq_len < 1 || b.seq_len > max_positions_)
      throw Error("cpu backend: text batch has seq_len " + std::to_string(b.seq_len) + ", expected 1.." +
                  std::to_string(max_positions_));
    if (b.ids.size() != size_t(b.count) * b.seq_len || b.pool_at.size() != size_t(b.count))
      throw Error("cpu backend: text batch of " + std::to_string(b.count) + " texts has " +
                  std::to_string(b.ids.size()) + " ids and " + std::to_string(b.pool_at.size()) + " pool positions");
    for (int32_t id : b.ids)
      if (id < 0 || id >= vocab_)
        throw Error("cpu backend: token id " + std::to_string(id) + " is outside the vocabulary (" +
                    std::to_string(vocab_) + " tokens)");
    for (int32_t p : b.pool_at)
      if (p < 0 || p >= b.seq_len)
        throw Error("cpu backend: pool position " + std::to_string(p) + " is outside 0.." +
                    std::to_string(b.seq_len - 1));
  }

  void run(CpuContext& ctx, const int32_t* ids, const int32_t* pool_at, int batch, int seq, float* out) const {
    cpu::ThreadPool& pool = ctx.pool;
    const int64_t H = hidden_;
    float* h = grow(hidden_states_, int64_t(batch) * seq * H);
    pool.parallel_for(int64_t(batch) * seq, 16, [&](int, int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* tok = token_embedding_.data() + int64_t(ids[r]) * H;
        const float* pos = position_embedding_.data() + (r % seq) * H;
        for (int64_t i = 0; i < H; ++i) h[r * H + i] = tok[i] + pos[i];
      }
    });
    float* pooled = grow(ctx.pooled_x, int64_t(batch) * H);
    encoder_.forward(ctx, h, batch, seq, causal_, pool_at, pooled);
    cpu::layer_norm(pooled, batch, H, final_ln_.weight.data(), final_ln_.bias.data(), eps_, pooled, pool);
    projection_.forward(ctx.gemm, pool, pooled, batch, out, Epilogue::Store);
  }

  int hidden_ = 0;
  bool causal_ = true;
  int64_t vocab_ = 0, max_positions_ = 0;
  float eps_ = 1e-5f;
  std::vector<float> token_embedding_, position_embedding_;
  Norm final_ln_;
  Linear projection_;
  Encoder encoder_;
  mutable std::vector<float> hidden_states_;  // guarded by the backend's mutex
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const ClipConfig& config, const ModelWeights& weights, int threads, Precision precision)
      : precision_(precision), ctx_(threads) {
    if (weights.vision) {
      if (!config.vision) throw Error("cpu backend: vision weights without a vision config");
      vision_.emplace(ctx_, *config.vision, *weights.vision, precision);
    }
    if (weights.text) {
      if (!config.text) throw Error("cpu backend: text weights without a text config");
      text_.emplace(ctx_, *config.text, *weights.text, precision);
    }
  }

  std::string name() const override {
    return "cpu (oneDNN, " + std::to_string(ctx_.pool.size()) + " threads" +
           (precision_ == Precision::FP32 ? std::string() : std::string(", ") + precision_name(precision_)) + ")";
  }
  std::string device() const override { return "cpu"; }
  Precision precision() const override { return precision_; }

  Tensor encode_images(const Tensor& pixels) override {
    if (!vision_) throw Error("cpu backend: this model has no vision tower");
    std::lock_guard<std::mutex> lock(mutex_);
    return vision_->encode(ctx_, pixels);
  }

  Tensor encode_texts(const TextBatch& batch) override {
    if (!text_) throw Error("cpu backend: this model has no text tower");
    std::lock_guard<std::mutex> lock(mutex_);
    return text_->encode(ctx_, batch);
  }

 private:
  Precision precision_;
  std::mutex mutex_;  // one pass at a time: the pool and buffers are shared
  CpuContext ctx_;
  std::optional<VisionTower> vision_;
  std::optional<TextTower> text_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const ClipConfig& config, const ModelWeights& weights, int threads,
                                          Precision precision) {
  if (precision == Precision::AUTO) precision = cpu_precision_for(precision, false);
  check_cpu_precision(precision);
  return std::make_unique<CpuBackend>(config, weights, threads, precision);
}

}  // namespace clip
