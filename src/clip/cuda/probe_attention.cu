#include <cmath>

#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/probe_attention.cuh"

namespace clip::cuda {
namespace {

constexpr int kThreads = 128;

// Block (head h, image b). Shared memory: the scaled query [D], then the
// scores [seq], which become the softmax weights.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    probe_attention_kernel(const float* __restrict__ q, const T* __restrict__ kv, T* __restrict__ out, int seq,
                           int heads, int D, float scale) {
  extern __shared__ float smem[];
  __shared__ float red[32];
  float* qs = smem;
  float* p = smem + D;
  const int h = blockIdx.x, b = blockIdx.y, H = heads * D;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = kThreads / 32;
  for (int d = threadIdx.x; d < D; d += kThreads) qs[d] = q[h * D + d] * scale;
  __syncthreads();

  const T* base = kv + int64_t(b) * seq * 2 * H;
  // Scores: a warp per key, lanes across the head's D values.
  for (int t = warp; t < seq; t += warps) {
    const T* k = base + int64_t(t) * 2 * H + h * D;
    float acc = 0.f;
    for (int d = lane; d < D; d += 32) acc += qs[d] * to_f32(k[d]);
    acc = warp_sum(acc);
    if (lane == 0) p[t] = acc;
  }
  __syncthreads();

  // The block's maximum score, subtracted before exp as torch's softmax does.
  float m = -INFINITY;
  for (int t = threadIdx.x; t < seq; t += kThreads) m = fmaxf(m, p[t]);
  m = warp_max(m);
  if (lane == 0) red[warp] = m;
  __syncthreads();
  m = red[0];
  for (int w = 1; w < warps; ++w) m = fmaxf(m, red[w]);
  // (block_sum below starts with a barrier before it reuses red.)

  float s = 0.f;
  for (int t = threadIdx.x; t < seq; t += kThreads) {
    const float e = expf(p[t] - m);
    p[t] = e;
    s += e;
  }
  s = block_sum(s, red);  // its barriers also publish p
  const float inv = 1.f / s;

  // out_d = sum_t p_t v_{t,d}: a thread per output value, the keys in order.
  for (int d = threadIdx.x; d < D; d += kThreads) {
    const T* v = base + H + h * D + d;
    float acc = 0.f;
    for (int t = 0; t < seq; ++t) acc += p[t] * to_f32(v[int64_t(t) * 2 * H]);
    out[int64_t(b) * H + h * D + d] = from_f32<T>(acc * inv);
  }
}

}  // namespace

void probe_attention(const Exec& exec, const float* q, const void* kv, void* out, DType type, int n, int seq, int heads,
                     int head_dim, float scale) {
  require(n >= 0 && seq > 0 && heads > 0 && head_dim > 0, "probe_attention", "bad shape");
  require(n <= 65535, "probe_attention", "more than 65535 images in one pass");
  require(q && kv && out, "probe_attention", "null buffer");
  if (n == 0) return;
  const size_t smem = size_t(head_dim + seq) * 4;
  require(smem <= 200 * 1024, "probe_attention", "sequence too long for shared memory");
  dispatch_dtype(type, [&](auto t) {
    using T = decltype(t);
    auto* kernel = probe_attention_kernel<T>;
    if (smem > 48 * 1024)
      CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    kernel<<<dim3(heads, n), kThreads, smem, exec.stream>>>(q, static_cast<const T*>(kv), static_cast<T*>(out), seq,
                                                            heads, head_dim, scale);
  });
  CLIP_CHECK_LAUNCH(exec, "probe_attention");
}

}  // namespace clip::cuda
