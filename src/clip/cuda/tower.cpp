#include "clip/cuda/tower.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "clip/cuda/bias_act.cuh"
#include "clip/cuda/embed.cuh"
#include "clip/cuda/gather.cuh"
#include "clip/cuda/layernorm.cuh"
#include "clip/cuda/ln_fold.cuh"
#include "clip/cuda/probe_attention.cuh"
#include "clip/cuda/small_linear.cuh"
#include "clip/error.h"

namespace clip::cuda {

namespace {

Act act_of(Activation a) {
  switch (a) {
    case Activation::Gelu: return Act::Gelu;
    case Activation::GeluTanh: return Act::GeluTanh;
    case Activation::QuickGelu: break;
  }
  return Act::QuickGelu;
}

}  // namespace

Towers::Towers(const ClipConfig& config, const ModelWeights& weights, Precision precision, const Tuning& tuning,
               CudaResources& res, OpProfiler& prof, GraphCache& graphs)
    : config_(config), res_(res), prof_(prof), graphs_(graphs) {
  switch (precision) {
    case Precision::FP32:
      act_ = DType::F32;
      compute_ = GemmCompute::F32;
      break;
    case Precision::TF32:
      act_ = DType::F32;
      compute_ = GemmCompute::TF32;
      break;
    case Precision::FP16:
      act_ = DType::F16;
      compute_ = GemmCompute::Mixed;
      break;
    case Precision::BF16:
      act_ = DType::BF16;
      compute_ = GemmCompute::Mixed;
      break;
    case Precision::INT8:  // a CPU path (VNNI); AUTO is resolved by the engine
    case Precision::AUTO:
      throw Error(std::string("CUDA backend: precision '") + precision_name(precision) +
                  "' is not available on the GPU (fp32, tf32, fp16 or bf16)");
  }
  if (tuning.attention == Tuning::Attention::Simt) attn_impl_ = AttnImpl::Simt;
  wgmma_attention_ = tuning.attention != Tuning::Attention::NoWgmma;
  const size_t before = res_.allocated_bytes();
  if (config.vision && weights.vision)
    vision_ = upload_vision(res_, act_, *config.vision, *weights.vision, config.projection_dim);
  if (config.text && weights.text) text_ = upload_text(res_, act_, *config.text, *weights.text, config.projection_dim);
  weight_bytes_ = res_.allocated_bytes() - before;
}

const VisionConfig& Towers::vision_config() const {
  if (!config_.vision || !vision_.patch_w.get()) throw Error("CUDA backend: this model has no vision tower");
  return *config_.vision;
}

const TextConfig& Towers::text_config() const {
  if (!config_.text || !text_.tok.get()) throw Error("CUDA backend: this model has no text tower");
  return *config_.text;
}

void Towers::ensure_text(const TextBatch& batch) {
  const TextConfig& c = text_config();
  const int n = batch.count, seq = batch.seq_len;
  if (seq <= 0 || seq > c.max_positions)
    throw Error("CUDA backend: text batch seq_len " + std::to_string(seq) + " outside 1.." +
                std::to_string(c.max_positions));
  if (batch.ids.size() != size_t(n) * seq || batch.pool_at.size() != size_t(n))
    throw Error("CUDA backend: text batch has inconsistent sizes");
  for (int32_t id : batch.ids)
    if (id < 0 || id >= c.vocab_size)
      throw Error("CUDA backend: token id " + std::to_string(id) + " outside the vocabulary (size " +
                  std::to_string(c.vocab_size) + ")");
  for (int at : batch.pool_at)
    if (at < 0 || at >= seq) throw Error("CUDA backend: pool position " + std::to_string(at) + " outside the sequence");
  ensure_common(int64_t(n) * seq, c, n, 0);
  grow(s_.ids, size_t(n) * seq * 4);
}

bool Towers::grow(DeviceBuffer& b, size_t bytes) {
  if (b.bytes() >= bytes) return false;
  graphs_.clear();
  vision_rows_n_ = -1;
  res_.synchronize();  // work in flight may still use the old buffer
  b.reset();
  b = res_.alloc(bytes);
  return true;
}

void Towers::ensure_common(int64_t tokens, const TowerConfig& c, int n, size_t wide_elems) {
  const size_t t = dtype_size(act_);
  grow(s_.h, size_t(tokens) * c.hidden_size * 4);
  grow(s_.x, size_t(tokens) * c.hidden_size * t);
  wide_elems = std::max(wide_elems, size_t(tokens) * std::max(3 * c.hidden_size, c.intermediate_size));
  grow(s_.wide, wide_elems * t);
  grow(s_.rows, size_t(n) * 4);
  grow(s_.pooled_h, size_t(n) * c.hidden_size * 4);
  grow(s_.pooled_x, size_t(n) * c.hidden_size * t);
  grow(s_.out, size_t(n) * config_.projection_dim * 4);
  if (fold_rows(tokens, c.hidden_size)) {
    grow(s_.xn, size_t(tokens) * c.hidden_size * 2);
    grow(s_.ln_partials, size_t(sm90::ln_partials_floats(tokens, c.hidden_size)) * 4);
    grow(s_.ln_scale, size_t(tokens) * 4);
  }
}

// Whether a pass over `rows` tokens folds its LayerNorms into the GEMMs.
bool Towers::fold_rows(int64_t rows, int hidden) {
  return act_ == DType::F16 && res_.gemm().ln_fold_available(rows, hidden);
}

// Whether small_linear takes linear layer `l` on `rows` rows (its input
// x, or with `layernorm` LN of the float32 stream): 16-bit precisions, at
// most kSmallMaxRows rows, A within shared memory.
bool Towers::use_small(int64_t rows, const DevLinear& l, bool layernorm) const {
  if (act_ == DType::F32 || rows > kSmallMaxRows || (layernorm && rows > kSmallLnMaxRows)) return false;
  return small_linear_fits(static_cast<int>(rows), l.out, l.in, layernorm);
}

void Towers::ensure_vision(int n) {
  const VisionConfig& c = vision_config();
  const int g = c.grid();
  const int64_t tokens = int64_t(n) * c.num_positions();
  ensure_common(tokens, c, n, size_t(n) * g * g * c.num_channels * c.patch_size * c.patch_size);
  // Zeroed when new: a pass may run over more images than it was given
  // (batch_bucket.h), and those rows must hold finite values.
  if (grow(s_.pixels, size_t(n) * c.num_channels * c.image_size * c.image_size * 4))
    CUDA_CHECK(cudaMemsetAsync(s_.pixels.get(), 0, s_.pixels.bytes(), res_.stream()));
}

// The pooled rows of the vision tower are the class tokens: b * S.
void Towers::prepare(Tower t, int n) {
  if (t == Tower::Text) {
    vision_rows_n_ = -1;  // the text path overwrites s_.rows
    return;
  }
  const int S = config_.vision->num_positions();
  if (vision_rows_n_ == n) return;
  std::vector<int32_t> rows(n);
  for (int b = 0; b < n; ++b) rows[b] = b * S;
  CUDA_CHECK(cudaMemcpyAsync(s_.rows.get(), rows.data(), size_t(n) * 4, cudaMemcpyHostToDevice, res_.stream()));
  res_.synchronize();  // `rows` is pageable and about to go away
  vision_rows_n_ = n;
}

// One linear layer of a pass over `rows` rows, with what surrounds it:
//   input     x, or LN(ln_in) of the float32 stream with norm `ln`
//   output    out = act(A w^T + b) in T (float32 with out_f32), or
//             residual += A w^T + b (float32)
struct Towers::LinearStep {
  const char* name;
  int64_t rows;
  const DevLinear* l;
  const void* x = nullptr;
  const float* ln_in = nullptr;
  const DevNorm* ln = nullptr;
  void* ln_out = nullptr;  // where a separate LayerNorm writes A (T [rows, in])
  Act act = Act::None;
  void* out = nullptr;
  bool out_f32 = false;
  float* residual = nullptr;
  // Stats: also writes s_.xn and s_.ln_scale; Apply: x is s_.xn,
  // normalised with them (encoder()).
  LnFold ln_fold = LnFold::None;
};

GemmShape Towers::shape(int64_t M, const DevLinear& l, DType out_type, bool accumulate, bool bias) const {
  GemmShape s;
  s.M = M;
  s.N = l.out;
  s.K = l.in;
  s.in_type = act_;
  s.out_type = out_type;
  s.compute = compute_;
  s.accumulate = accumulate;
  s.bias = bias;
  return s;
}

// The layers on h (float32 [n*seq, hidden]). The last one continues on
// the pooled rows alone (s_.rows) after attention; returns the float32
// [n, hidden] buffer they end in, or h itself (every row) with no layers
// or with `all_rows` (SigLIP's vision tower).
// `folded_in`: s_.xn and s_.ln_scale already hold h's fp16 copy and LN1's
// row scales (the vision embeddings write them with their own norm).
const float* Towers::encoder(const DevTower& tw, const TowerConfig& c, int n, int seq, bool causal, bool folded_in,
                             bool all_rows) {
  const Exec& ex = res_.exec();
  const int64_t M = int64_t(n) * seq;
  const int H = c.hidden_size;
  AttnShape as;
  as.batch = n;
  as.seq = seq;
  as.heads = c.num_heads;
  as.head_dim = c.head_dim();
  as.causal = causal;
  as.scale = 1.f / std::sqrt(static_cast<float>(as.head_dim));
  const Act act = act_of(c.activation);
  float* h = s_.h.as<float>();
  // Large fp16 passes on Hopper fold LN1 and LN2 into the GEMMs around
  // them (gemm.h, LnFold): the out-projection and fc2 also leave an fp16
  // copy of h in s_.xn with the next norm's row scales, which qkv and fc1
  // read. Layer 0's LN1 and the last layer's pooled rows keep the norm
  // kernel unless the embeddings wrote h's copy (folded_in).
  const bool fold = fold_rows(M, H);
  bool folded = fold && folded_in;  // s_.xn and s_.ln_scale hold h's copy and its norm
  for (size_t i = 0; i < tw.layers.size(); ++i) {
    const DevLayer& L = tw.layers[i];
    LinearStep qkv{"qkv", M, &L.qkv};
    normed_input(qkv, folded, "qkv (ln folded)", h, L.ln1, s_.x.get());
    qkv.out = s_.wide.get();
    linear_step(qkv, c);
    attention(ex, s_.wide.get(), s_.x.get(), act_, as, res_.num_sms(), attn_impl_, wgmma_attention_);
    prof_.mark("attention");
    // From here on a row only mixes with itself: the last layer needs the pooled rows alone.
    const bool last = i + 1 == tw.layers.size() && !all_rows;
    int64_t rows = M;
    float* hl = h;
    void* xl = s_.x.get();
    if (last) {
      gather_pooled(n, H);
      rows = n;
      hl = s_.pooled_h.as<float>();
      xl = s_.pooled_x.get();
    }
    // The last layer leaves no stats behind: nothing folds its norm.
    folded = fold && i + 1 != tw.layers.size();
    LinearStep out{folded ? "out+res (ln stats)" : "out+res", rows, &L.out};
    out.x = xl;
    out.residual = hl;
    if (folded) out.ln_fold = LnFold::Stats;
    linear_step(out, c);
    LinearStep fc1{"fc1+act", rows, &L.fc1};
    normed_input(fc1, folded, "fc1+act (ln folded)", hl, L.ln2, xl);
    fc1.act = act;
    fc1.out = s_.wide.get();
    linear_step(fc1, c);
    LinearStep fc2{folded ? "fc2+res (ln stats)" : "fc2+res", rows, &L.fc2};
    fc2.x = s_.wide.get();
    fc2.residual = hl;
    if (folded) fc2.ln_fold = LnFold::Stats;
    linear_step(fc2, c);
    if (last) return hl;
  }
  return h;
}

// The pooled rows of the attention output and of h (before the last
// layer's out-projection), in one launch.
void Towers::gather_pooled(int n, int H) {
  const GatherTable x{s_.x.get(), size_t(H) * dtype_size(act_), s_.pooled_x.get()};
  const GatherTable h{s_.h.get(), size_t(H) * 4, s_.pooled_h.get()};
  gather_rows(res_.exec(), s_.rows.as<int32_t>(), n, x, &h);
  prof_.mark("gather_pooled");
}

// The input of a layer after a norm: LN(ln_in) by the norm kernel (or
// small_linear's prologue) into ln_out, or with the norm folded
// (encoder()) the fp16 copy in s_.xn, normalised in the GEMM's epilogue.
void Towers::normed_input(LinearStep& s, bool folded, const char* folded_name, const float* ln_in, const DevNorm& ln,
                          void* ln_out) {
  if (folded) {
    s.name = folded_name;
    s.x = s_.xn.get();
    s.ln_fold = LnFold::Apply;
  } else {
    s.ln_in = ln_in;
    s.ln = &ln;
    s.ln_out = ln_out;
  }
}

// Runs a LinearStep as one small_linear launch where it takes the shape
// (few rows; small_linear.cuh), else as LayerNorm + GEMM: cuBLASLt or an
// sm90 kernel with the bias, activation or residual in its epilogue.
void Towers::linear_step(const LinearStep& s, const TowerConfig& c) {
  const Exec& ex = res_.exec();
  const DevLinear& l = *s.l;
  bool layernorm = s.ln_in != nullptr;  // still to do (in small_linear's prologue if it takes it)
  bool small = use_small(s.rows, l, layernorm);
  const void* x = s.x;
  if (layernorm && !small) {  // a separate LayerNorm; then A may fit small_linear once 16-bit
    cuda::layernorm(ex, s.ln_in, nullptr, s.rows, l.in, s.ln->gamma.as<float>(), s.ln->beta.as<float>(),
                    c.layer_norm_eps, s.ln_out, act_);
    prof_.mark("layernorm");
    x = s.ln_out;
    layernorm = false;
    small = use_small(s.rows, l, false);
  }
  if (small) {
    SmallLinear o;
    o.M = static_cast<int>(s.rows);
    o.N = l.out;
    o.K = l.in;
    o.type = act_;
    if (layernorm) {
      o.ln_in = s.ln_in;
      o.gamma = s.ln->gamma.as<float>();
      o.beta = s.ln->beta.as<float>();
      o.eps = c.layer_norm_eps;
    } else {
      o.x = x;
    }
    o.w = l.w.get();
    o.bias = l.bias.as<float>();
    o.act = s.act;
    o.out = s.out;
    o.out_f32 = s.out_f32;
    o.residual = s.residual;
    small_linear(ex, o);
    prof_.mark(s.name);
    return;
  }
  const bool has_bias = l.bias.get() != nullptr;
  GemmShape g = shape(s.rows, l, s.residual || s.out_f32 ? DType::F32 : act_, s.residual != nullptr, has_bias);
  g.act = s.act;  // fused on Hopper; cuBLASLt + a bias_act pass elsewhere
  g.ln_fold = s.ln_fold;
  const void* bias = l.bias.get();
  if (act_ != DType::F32 && l.bias_t.get() && !s.residual && !s.out_f32 && s.ln_fold == LnFold::None) {
    g.bias_type = act_;  // the 16-bit bias cuBLASLt takes with a 16-bit output
    bias = l.bias_t.get();
  }
  LnFoldIo fold;
  if (s.ln_fold != LnFold::None) {
    fold.copy = s_.xn.get();
    fold.partials = s_.ln_partials.as<float>();
    fold.eps = c.layer_norm_eps;
    fold.scale = s_.ln_scale.as<float>();
  }
  res_.gemm().linear(ex, g, x, l.w.get(), bias, s.residual ? static_cast<void*>(s.residual) : s.out, l.bias.as<float>(),
                     s.ln_fold != LnFold::None ? &fold : nullptr);
  prof_.mark(s.name);
}

// Final norm of the pooled rows and the projection. `pooled` is the
// encoder's result: the n pooled rows, or with no layers h itself, from
// which s_.rows picks them.
void Towers::pool_and_project(const DevTower& tw, const DevNorm& ln, const TowerConfig& c, int n, const float* pooled) {
  LinearStep p{"pool_ln+projection", n, &tw.projection};
  p.out = s_.out.get();
  p.out_f32 = true;
  if (tw.layers.empty()) {  // the norm picks the pooled rows out of h
    layernorm(res_.exec(), pooled, s_.rows.as<int32_t>(), n, c.hidden_size, ln.gamma.as<float>(), ln.beta.as<float>(),
              c.layer_norm_eps, s_.x.get(), act_);
    prof_.mark("pool_ln");
    p.name = "projection";
    p.x = s_.x.get();
  } else {
    p.ln_in = pooled;
    p.ln = &ln;
    p.ln_out = s_.x.get();
  }
  linear_step(p, c);
}

// SigLIP's pooling head over h (float32 [n*S, hidden], every token through
// every layer): post_layernorm (folded into kv) + k|v for every token, the
// probe's attention, out_proj into s_.out, then s_.out += fc2(act(fc1(LN(s_.out)))).
void Towers::pool_head(const DevPoolHead& head, const VisionConfig& c, int n, const float* h) {
  const int S = c.num_positions();
  LinearStep kv{"head post_ln+kv", int64_t(n) * S, &head.kv};
  kv.ln_in = h;
  kv.ln = &vision_.post_ln;
  kv.ln_out = s_.x.get();
  kv.out = s_.wide.get();
  linear_step(kv, c);
  probe_attention(res_.exec(), head.query.as<float>(), s_.wide.get(), s_.pooled_x.get(), act_, n, S, c.num_heads,
                  c.head_dim(), 1.f / std::sqrt(static_cast<float>(c.head_dim())));
  prof_.mark("head attention");
  LinearStep out{"head out_proj", n, &head.out};
  out.x = s_.pooled_x.get();
  out.out = s_.out.get();
  out.out_f32 = true;
  linear_step(out, c);
  const Act act = act_of(c.activation);
  LinearStep fc1{"head ln+fc1+act", n, &head.fc1};
  fc1.ln_in = s_.out.as<float>();
  fc1.ln = &head.ln;
  fc1.ln_out = s_.pooled_x.get();
  fc1.act = act;
  fc1.out = s_.wide.get();
  linear_step(fc1, c);
  LinearStep fc2{"head fc2+res", n, &head.fc2};
  fc2.x = s_.wide.get();
  fc2.residual = s_.out.as<float>();
  linear_step(fc2, c);
}

void Towers::forward_vision(int n) {
  const VisionConfig& c = *config_.vision;
  const Exec& ex = res_.exec();
  const int g = c.grid(), S = c.num_positions(), H = c.hidden_size;
  const int patch_k = c.num_channels * c.patch_size * c.patch_size;
  // Patch embedding = unfold + GEMM with the conv weight as [hidden, C*p*p].
  im2col_patches(ex, s_.pixels.as<float>(), n, c.num_channels, c.image_size, c.patch_size, s_.wide.get(), act_);
  prof_.mark("im2col");
  GemmShape ps;
  ps.M = int64_t(n) * g * g;
  ps.N = H;
  ps.K = patch_k;
  ps.in_type = act_;
  ps.out_type = act_;
  ps.compute = compute_;
  res_.gemm().linear(ex, ps, s_.wide.get(), vision_.patch_w.get(), nullptr, s_.x.get());
  prof_.mark("gemm_patch");
  if (vision_.head) {  // SigLIP
    patch_embed_add(ex, s_.x.get(), act_, vision_.pos.as<float>(), n, S, H, s_.h.as<float>());
    prof_.mark("embed");
    pool_head(*vision_.head, c, n, encoder(vision_, c, n, S, false, false, true));
    return;
  }
  // With the norms folded (encoder()), also h's fp16 copy and the first
  // LN1's row scales.
  const bool fold = fold_rows(int64_t(n) * S, H);
  vision_embed_layernorm(ex, s_.x.get(), act_, vision_.cls.as<float>(), vision_.pos.as<float>(), n, S, H,
                         vision_.pre_ln.gamma.as<float>(), vision_.pre_ln.beta.as<float>(), c.layer_norm_eps,
                         s_.h.as<float>(), fold ? s_.xn.get() : nullptr, fold ? s_.ln_scale.as<float>() : nullptr,
                         c.layer_norm_eps);
  prof_.mark(fold ? "embed+pre_ln+ln1 stats" : "embed+pre_ln");
  pool_and_project(vision_, vision_.post_ln, c, n, encoder(vision_, c, n, S, false, fold));
}

void Towers::forward_text(int n, int seq) {
  const TextConfig& c = *config_.text;
  text_embed(res_.exec(), s_.ids.as<int32_t>(), n, seq, text_.tok.get(), act_, text_.pos.as<float>(), c.hidden_size,
             s_.h.as<float>());
  prof_.mark("text_embed");
  pool_and_project(text_, text_.final_ln, c, n, encoder(text_, c, n, seq, c.causal, false));
}

void Towers::forward(Tower t, int n, int seq) {
  if (t == Tower::Vision)
    forward_vision(n);
  else
    forward_text(n, seq);
}

}  // namespace clip::cuda
