#include <algorithm>

#include "clip/cuda/activation.cuh"
#include "clip/cuda/bias_act.cuh"
#include "clip/cuda/device_utils.cuh"

namespace clip::cuda {
namespace {

// One 16-byte packet per thread (8 halves or 4 floats); cols is a multiple
// of the packet size so a packet never straddles two rows.
template <typename T, Act A, bool HasBias>
__global__ void bias_act_vec_kernel(T* __restrict__ y, int64_t packets, int cols, const float* __restrict__ bias) {
  using P = Packed128<T>;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= packets) return;
  const int64_t e = i * P::kSize;
  const int c = static_cast<int>(e % cols);
  P p = P::load(y + e);
#pragma unroll
  for (int k = 0; k < P::kSize; ++k) {
    float v = to_f32(p.v[k]);
    if constexpr (HasBias) v += __ldg(bias + c + k);
    p.v[k] = from_f32<T>(activate<A>(v));
  }
  p.store(y + e);
}

template <typename T, Act A, bool HasBias>
__global__ void bias_act_scalar_kernel(T* __restrict__ y, int64_t n, int cols, const float* __restrict__ bias) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float v = to_f32(y[i]);
    if constexpr (HasBias) v += bias[i % cols];
    y[i] = from_f32<T>(activate<A>(v));
  }
}

template <typename T, Act A, bool HasBias>
void launch(const Exec& exec, T* y, int64_t rows, int cols, const float* bias) {
  const int64_t n = rows * cols;
  constexpr int k = Packed128<T>::kSize;
  if (cols % k == 0 && aligned16(y)) {
    const int64_t packets = n / k;
    bias_act_vec_kernel<T, A, HasBias><<<ceil_div(packets, 256), 256, 0, exec.stream>>>(y, packets, cols, bias);
  } else {
    const unsigned blocks = std::min<unsigned>(ceil_div(n, 256), 65535u * 4);
    bias_act_scalar_kernel<T, A, HasBias><<<blocks, 256, 0, exec.stream>>>(y, n, cols, bias);
  }
}

}  // namespace

void bias_act(const Exec& exec, void* y, DType type, int64_t rows, int cols, const float* bias, Act act) {
  require(rows >= 0 && cols > 0, "bias_act", "bad shape");
  if (rows == 0 || (act == Act::None && bias == nullptr)) return;
  require(y != nullptr, "bias_act", "null buffer");
  dispatch_dtype(type, [&](auto t) {
    using T = decltype(t);
    T* p = static_cast<T*>(y);
    const bool b = bias != nullptr;
    switch (act) {
      case Act::None: launch<T, Act::None, true>(exec, p, rows, cols, bias); break;
      case Act::QuickGelu:
        b ? launch<T, Act::QuickGelu, true>(exec, p, rows, cols, bias)
          : launch<T, Act::QuickGelu, false>(exec, p, rows, cols, bias);
        break;
      case Act::Gelu:
        b ? launch<T, Act::Gelu, true>(exec, p, rows, cols, bias)
          : launch<T, Act::Gelu, false>(exec, p, rows, cols, bias);
        break;
      case Act::GeluTanh:
        b ? launch<T, Act::GeluTanh, true>(exec, p, rows, cols, bias)
          : launch<T, Act::GeluTanh, false>(exec, p, rows, cols, bias);
        break;
    }
  });
  CLIP_CHECK_LAUNCH(exec, "bias_act");
}

}  // namespace clip::cuda
