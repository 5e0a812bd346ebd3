// Device-side helpers for the kernels (.cu files only): conversions between
// float and the storage types, 128-bit packed loads/stores (llm.c's
// Packed128), warp reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

template <typename T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float to_f32<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// DType -> C++ type, for dispatch in launchers.
template <DType D>
struct StorageOf;
template <>
struct StorageOf<DType::F32> {
  using type = float;
};
template <>
struct StorageOf<DType::F16> {
  using type = __half;
};
template <>
struct StorageOf<DType::BF16> {
  using type = __nv_bfloat16;
};

// Calls f(T{}) with T the storage type of `t` (a value only used for its type).
template <typename F>
inline void dispatch_dtype(DType t, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); break;
    case DType::F16: f(__half{}); break;
    case DType::BF16: f(__nv_bfloat16{}); break;
  }
}

// 16 bytes of T moved with one 128-bit instruction (LDG.128 / STG.128): the
// widest access one thread can issue, so memory-bound kernels need 4x fewer
// instructions than with 32-bit accesses. Pointers must be 16-byte aligned.
template <typename T>
struct alignas(16) Packed128 {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
  __device__ __forceinline__ static Packed128 load(const T* p) {
    Packed128 r;
    *reinterpret_cast<int4*>(r.v) = *reinterpret_cast<const int4*>(p);
    return r;
  }
  // Read-only, no L1 allocation: for data streamed through once.
  __device__ __forceinline__ static Packed128 load_stream(const T* p) {
    Packed128 r;
    *reinterpret_cast<int4*>(r.v) = __ldcs(reinterpret_cast<const int4*>(p));
    return r;
  }
  __device__ __forceinline__ void store(T* p) const { *reinterpret_cast<int4*>(p) = *reinterpret_cast<const int4*>(v); }
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024);
// every thread gets the result. `scratch` holds 32 floats of shared memory.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x >> 5;
  v = lane < nwarps ? scratch[lane] : 0.f;
  return warp_sum(v);
}

// LayerNorm statistics of a row a warp holds in registers: lane l has
// columns 4l + 128i .. +3 in v[i], zero from column n on. The mean first,
// then the centred sum of squares, which stays accurate where
// E[x^2] - mean^2 would cancel. Returns {mean, 1 / sqrt(var + eps)}.
template <int NV>
__device__ __forceinline__ float2 warp_row_norm_stats(const float4 (&v)[NV], int n, float eps) {
  const int lane = threadIdx.x & 31;
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < NV; ++i) sum += (v[i].x + v[i].y) + (v[i].z + v[i].w);
  const float mean = warp_sum(sum) / n;
  float sq = 0.f;
#pragma unroll
  for (int i = 0; i < NV; ++i) {
    if (lane * 4 + 128 * i < n) {
      const float a = v[i].x - mean, b = v[i].y - mean, d = v[i].z - mean, e = v[i].w - mean;
      sq += (a * a + b * b) + (d * d + e * e);
    }
  }
  return make_float2(mean, rsqrtf(warp_sum(sq) / n + eps));
}

inline unsigned int ceil_div(size_t a, size_t b) { return static_cast<unsigned int>((a + b - 1) / b); }

}  // namespace clip::cuda
