// CLIP's activations on float32 values, for kernels that apply them in an
// epilogue (bias_act, small_linear): computed exactly as the CPU backend does.
#pragma once
#include "clip/cuda/bias_act.cuh"

namespace clip::cuda {

template <Act A>
__device__ __forceinline__ float activate(float x) {
  if constexpr (A == Act::QuickGelu) {
    return x / (1.f + __expf(-1.702f * x));  // x * sigmoid(1.702 x)
  } else if constexpr (A == Act::Gelu) {
    return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
  } else if constexpr (A == Act::GeluTanh) {
    return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  } else {
    return x;
  }
}

}  // namespace clip::cuda
