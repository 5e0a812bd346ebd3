// The transformer encoder shared by both towers (CLIPEncoder): pre-LN layers
//   h += out_proj(attention(ln1(h)));  h += fc2(act(fc1(ln2(h))))
// with weights packed for the GEMM library at construction.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "clip/cpu/attention.h"
#include "clip/cpu/gemm.h"
#include "clip/cpu/thread_pool.h"
#include "clip/model/config.h"
#include "clip/model/weights.h"

namespace clip::cpu {

// Everything a forward pass runs on, owned by one backend: threads, GEMM
// state and the activation buffers, which grow to the largest batch seen.
struct CpuContext {
  explicit CpuContext(int threads);
  ThreadPool pool;
  GemmContext gemm;
  AttentionScratch attention;
  std::vector<float> x, qkv, attn, mlp, pooled_x;  // per-pass activations
};

// Resizes v to at least n floats and returns its data.
float* grow(std::vector<float>& v, size_t n);

// The GEMM epilogue computing a tower's MLP activation.
Epilogue activation_epilogue(Activation a);

// The attention products of a GEMM precision: bf16 for bf16, and for int8
// where the CPU has AVX512_BF16 (int8's inputs are coarser than bf16's);
// float32 otherwise, so fp32 stays the reference.
AttentionProducts attention_products(Precision p);

// Throws clip::Error naming `what` unless t has exactly this shape.
void expect_shape(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what);

class Encoder {
 public:
  Encoder() = default;
  // tower: "text" or "vision", for error messages. Checks every tensor's shape.
  // precision: of the four GEMMs of each layer (FP32, BF16 or INT8), and
  // through attention_products() of the attention's two products; the
  // residual stream, LayerNorm and softmax stay float32.
  Encoder(CpuContext& ctx, const std::vector<LayerWeights>& layers, const TowerConfig& config, int hidden,
          const std::string& tower, Precision precision = Precision::FP32);

  int hidden() const { return hidden_; }

  // h: [batch * seq, hidden], the embeddings; used as the residual stream and
  // clobbered. Writes pooled[b] = final hidden state of token pool_pos[b] of
  // item b (before the tower's final LayerNorm). The last layer runs its
  // attention output, MLP and residuals only for those tokens: nothing else
  // reaches the embeddings. pool_pos == nullptr: every row runs every layer,
  // the result is h itself and `pooled` is not written.
  void forward(CpuContext& ctx, float* h, int batch, int seq, bool causal, const int32_t* pool_pos,
               float* pooled) const;

 private:
  struct Layer {
    std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
    Linear qkv;  // q, k and v stacked: one GEMM with N = 3 * hidden
    Linear out, fc1, fc2;
  };
  std::vector<Layer> layers_;
  int hidden_ = 0, heads_ = 0, intermediate_ = 0;
  float eps_ = 1e-5f;
  Epilogue act_ = Epilogue::QuickGelu;
  AttentionProducts products_ = AttentionProducts::Fp32;
};

}  // namespace clip::cpu
