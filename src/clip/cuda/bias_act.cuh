// Bias + activation on a GEMM output, in place, computed in float32:
//   y[m, n] = act(y[m, n] + bias[n])
// Used after fc1 (CLIP's QuickGELU or exact-erf GELU: cuBLASLt's GELU
// epilogue is the tanh approximation, which differs from both by up to
// ~1e-3, so we apply our own) and as the fallback when cuBLASLt offers no
// bias epilogue for a type combination.
#pragma once
#include <cstdint>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// Gelu: 0.5 x (1 + erf(x / sqrt 2)); GeluTanh (SigLIP's gelu_pytorch_tanh):
// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
enum class Act { None, QuickGelu, Gelu, GeluTanh };

// y: type [rows, cols]; bias: float32 [cols] or null.
void bias_act(const Exec& exec, void* y, DType type, int64_t rows, int cols, const float* bias, Act act);

}  // namespace clip::cuda
