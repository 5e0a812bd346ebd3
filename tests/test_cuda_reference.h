// A plain, slow, double-accumulating CLIP forward pass written from the
// transformers modelling code, independent of both backends: the arbiter
// when the CUDA and CPU backends disagree. Also the per-op references.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "clip/backend.h"
#include "clip/cuda/cuda_backend.h"
#include "clip/model/config.h"
#include "clip/model/weights.h"

// GPU tests skip, saying why, where no usable GPU is present (CI).
#define SKIP_WITHOUT_GPU()                                           \
  do {                                                               \
    std::string why_;                                                \
    if (!::clip::cuda_available(&why_)) {                            \
      std::printf("[  SKIPPED ] no usable GPU: %s\n", why_.c_str()); \
      GTEST_SKIP() << "no usable GPU: " << why_;                     \
    }                                                                \
  } while (0)

namespace clip::ref {

// y[m, n] = sum_k x[m, k] w[n, k] + b[n]   (x [M, K], w [N, K])
std::vector<float> linear(const std::vector<float>& x, int64_t M, int64_t K, const float* w, const float* b, int64_t N);
// Row-wise LayerNorm of x [M, H].
std::vector<float> layernorm(const std::vector<float>& x, int64_t M, int H, const float* g, const float* b, float eps);
// qkv [B*S, 3*heads*D] -> out [B*S, heads*D]
std::vector<float> attention(const std::vector<float>& qkv, int B, int S, int heads, int D, bool causal, float scale);
float quick_gelu(float x);
float gelu(float x);
float gelu_tanh(float x);  // gelu_pytorch_tanh

Tensor encode_images(const ClipConfig& c, const ModelWeights& w, const Tensor& pixels);
Tensor encode_texts(const ClipConfig& c, const ModelWeights& w, const TextBatch& batch);

}  // namespace clip::ref
