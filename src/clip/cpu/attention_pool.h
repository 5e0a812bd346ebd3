// SigLIP's attention pooling head on the CPU (SiglipMultiheadAttentionPoolingHead):
//   a = out_proj(MHA(query = probe, keys = values = x));  y = a + fc2(act(fc1(LN(a))))
// x is the vision tower's post_layernorm output over every token. The probe
// is a constant, so its query projection is computed once, at construction.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "clip/cpu/encoder.h"

namespace clip::cpu {

class AttentionPool {
 public:
  AttentionPool() = default;
  AttentionPool(CpuContext& ctx, const AttentionPoolWeights& w, const TowerConfig& config, int hidden,
                Precision precision);

  int64_t out_features() const { return hidden_; }

  // x: [batch * seq, hidden]; out: [batch, hidden].
  void forward(CpuContext& ctx, const float* x, int batch, int seq, float* out) const;

 private:
  int hidden_ = 0, heads_ = 0, intermediate_ = 0;
  float eps_ = 1e-6f;
  Epilogue act_ = Epilogue::GeluTanh;
  AttentionProducts products_ = AttentionProducts::Fp32;
  std::vector<float> query_;  // probe W_q^T + b_q: [hidden]
  std::vector<float> ln_w_, ln_b_;
  Linear kv_;  // k and v stacked: one GEMM with N = 2 * hidden
  Linear out_, fc1_, fc2_;
  mutable std::vector<float> kv_buf_;  // guarded by the backend's mutex
};

}  // namespace clip::cpu
