#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/gather.cuh"

namespace clip::cuda {
namespace {

// One block per gathered row; W is the copy unit (16 bytes where row size
// and both buffers allow, else 1).
template <typename W>
__global__ void gather_rows_kernel(const unsigned char* __restrict__ src, const int32_t* __restrict__ rows,
                                   size_t row_units, unsigned char* __restrict__ dst) {
  const W* from = reinterpret_cast<const W*>(src) + size_t(rows[blockIdx.x]) * row_units;
  W* to = reinterpret_cast<W*>(dst) + size_t(blockIdx.x) * row_units;
  for (size_t i = threadIdx.x; i < row_units; i += blockDim.x) to[i] = from[i];
}

}  // namespace

void gather_rows(const Exec& exec, const void* src, const int32_t* rows, int n, size_t row_bytes, void* dst) {
  require(n >= 0, "gather_rows", "negative row count");
  if (n == 0 || row_bytes == 0) return;
  require(src && rows && dst && src != dst, "gather_rows", "null or aliased buffers");
  const auto* s = static_cast<const unsigned char*>(src);
  auto* d = static_cast<unsigned char*>(dst);
  if (row_bytes % 16 == 0 && aligned16(src) && aligned16(dst))
    gather_rows_kernel<int4><<<n, 128, 0, exec.stream>>>(s, rows, row_bytes / 16, d);
  else
    gather_rows_kernel<unsigned char><<<n, 128, 0, exec.stream>>>(s, rows, row_bytes, d);
  CLIP_CHECK_LAUNCH(exec, "gather_rows");
}

}  // namespace clip::cuda
