#include <algorithm>

#include "clip/cuda/convert.cuh"
#include "clip/cuda/device_utils.cuh"

namespace clip::cuda {
namespace {

template <typename Ts, typename Td>
__global__ void convert_kernel(const Ts* __restrict__ src, Td* __restrict__ dst, size_t n) {
  // Grid-stride: one launch shape for any n (weights go up to ~10^8 values).
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = from_f32<Td>(to_f32<Ts>(src[i]));
}

__global__ void probe_kernel() {}

}  // namespace

void convert(const Exec& exec, const void* src, DType src_type, void* dst, DType dst_type, size_t n) {
  if (n == 0) return;
  require(src != nullptr && dst != nullptr, "convert", "null buffer");
  if (src == dst) {
    require(src_type == dst_type, "convert", "in-place conversion between different types");
    return;
  }
  const unsigned blocks = std::min<unsigned>(ceil_div(n, 256), 65535u * 8);
  dispatch_dtype(src_type, [&](auto s) {
    dispatch_dtype(dst_type, [&](auto d) {
      using Ts = decltype(s);
      using Td = decltype(d);
      convert_kernel<Ts, Td><<<blocks, 256, 0, exec.stream>>>(static_cast<const Ts*>(src), static_cast<Td*>(dst), n);
    });
  });
  CLIP_CHECK_LAUNCH(exec, "convert_kernel");
}

bool kernels_runnable(std::string* why) {
  cudaFuncAttributes attr{};
  cudaError_t err = cudaFuncGetAttributes(&attr, probe_kernel);
  if (err != cudaSuccess) {
    if (why)
      *why = std::string("this build has no GPU code for the device (") + cudaGetErrorString(err) +
             "); rebuild with CMAKE_CUDA_ARCHITECTURES including it";
    cudaGetLastError();
    return false;
  }
  return true;
}

}  // namespace clip::cuda
