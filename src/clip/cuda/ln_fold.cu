#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/ln_fold.cuh"

namespace clip::cuda {
namespace {

__global__ void ln_fold_stats_kernel(const float* __restrict__ partials, int64_t rows, int64_t m_stride, int n_tiles,
                                     float inv_hidden, float eps, float* __restrict__ scale) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float* sums = partials + r;
  const float* squares = sums + int64_t(n_tiles) * m_stride;
  float s = 0.f, q = 0.f;
  for (int t = 0; t < n_tiles; ++t) {
    s += sums[t * m_stride];
    q += squares[t * m_stride];
  }
  const float mean = s * inv_hidden;
  scale[r] = rsqrtf(fmaxf(q * inv_hidden - mean * mean, 0.f) + eps);
}

}  // namespace

void ln_fold_stats(const Exec& exec, const float* partials, int64_t rows, int64_t m_stride, int n_tiles, int hidden,
                   float eps, float* scale) {
  require(partials && scale, "ln_fold_stats", "null buffer");
  require(rows >= 0 && m_stride >= rows && n_tiles > 0 && hidden > 0, "ln_fold_stats", "bad shape");
  if (rows == 0) return;
  constexpr int kThreads = 256;
  ln_fold_stats_kernel<<<static_cast<unsigned>((rows + kThreads - 1) / kThreads), kThreads, 0, exec.stream>>>(
      partials, rows, m_stride, n_tiles, 1.f / hidden, eps, scale);
  CLIP_CHECK_LAUNCH(exec, "ln_fold_stats");
}

}  // namespace clip::cuda
