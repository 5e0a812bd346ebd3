#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/layernorm.cuh"

namespace clip::cuda {
namespace {

// ---- four-element loads/stores of any storage type --------------------------

template <typename T>
__device__ __forceinline__ float4 load4(const T* p) {
  if constexpr (sizeof(T) == 4) {
    return *reinterpret_cast<const float4*>(p);
  } else {  // 4 x 16-bit = one 8-byte load
    uint2 u = *reinterpret_cast<const uint2*>(p);
    const T* e = reinterpret_cast<const T*>(&u);
    return make_float4(to_f32(e[0]), to_f32(e[1]), to_f32(e[2]), to_f32(e[3]));
  }
}

template <typename T>
__device__ __forceinline__ void store4(T* p, float4 v) {
  if constexpr (sizeof(T) == 4) {
    *reinterpret_cast<float4*>(p) = v;
  } else {
    uint2 u;
    T* e = reinterpret_cast<T*>(&u);
    e[0] = from_f32<T>(v.x);
    e[1] = from_f32<T>(v.y);
    e[2] = from_f32<T>(v.z);
    e[3] = from_f32<T>(v.w);
    *reinterpret_cast<uint2*>(p) = u;
  }
}

__device__ __forceinline__ float4 add4(float4 a, float4 b) {
  return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

// ---- row loaders: where a row's values come from ------------------------------

struct PlainRows {  // in[rows ? rows[r] : r]
  const float* in;
  const int32_t* rows;
  int hidden;
  struct Ctx {
    const float* p;
  };
  __device__ Ctx row(int64_t r) const {
    const int64_t src = rows ? rows[r] : r;
    return {in + src * hidden};
  }
  __device__ float4 get4(const Ctx& c, int i) const { return load4(c.p + i); }
  __device__ float get1(const Ctx& c, int i) const { return c.p[i]; }
};

template <typename Tp>
struct VisionRows {  // (class token | patch) + position
  const Tp* patches;
  const float* cls;
  const float* pos;
  int seq, hidden;
  struct Ctx {
    const Tp* patch;
    const float* pos;
  };
  __device__ Ctx row(int64_t r) const {
    const int64_t b = r / seq;
    const int s = static_cast<int>(r - b * seq);
    return {s == 0 ? nullptr : patches + (b * (seq - 1) + s - 1) * hidden, pos + int64_t(s) * hidden};
  }
  __device__ float4 get4(const Ctx& c, int i) const {
    return add4(c.patch ? load4(c.patch + i) : load4(cls + i), load4(c.pos + i));
  }
  __device__ float get1(const Ctx& c, int i) const { return (c.patch ? to_f32(c.patch[i]) : cls[i]) + c.pos[i]; }
};

// ---- kernels -------------------------------------------------------------------

// Optional outputs of the norm's result y for a LayerNorm folded into the
// GEMM after it (ln_fold.cuh): fp16 y and 1/sqrt(var(y) + eps) per row.
struct FoldOut {
  __half* copy = nullptr;
  float* scale = nullptr;
  float eps = 0.f;
};

// One warp per row, the row in registers: NV float4 per lane covers rows of
// up to 128*NV values (hidden % 4 == 0). Loads are 16-byte and coalesced
// (lane l reads floats 4l..4l+3 of each 128-float stripe).
template <int NV, typename To, typename Loader>
__global__ void __launch_bounds__(128)
    ln_warp_kernel(Loader loader, int64_t n_rows, int hidden, const float* __restrict__ gamma,
                   const float* __restrict__ beta, float eps, To* __restrict__ out, FoldOut fold) {
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (r >= n_rows) return;
  const auto ctx = loader.row(r);
  float4 v[NV];
#pragma unroll
  for (int i = 0; i < NV; ++i) {
    const int c = (i * 32 + lane) * 4;
    v[i] = c < hidden ? loader.get4(ctx, c) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  const float2 stats = warp_row_norm_stats(v, hidden, eps);
  const float mean = stats.x, rstd = stats.y;
  To* o = out + r * hidden;
#pragma unroll
  for (int i = 0; i < NV; ++i) {
    const int c = (i * 32 + lane) * 4;
    if (c < hidden) {
      const float4 g = load4(gamma + c), b = load4(beta + c);
      v[i] = make_float4((v[i].x - mean) * rstd * g.x + b.x, (v[i].y - mean) * rstd * g.y + b.y,
                         (v[i].z - mean) * rstd * g.z + b.z, (v[i].w - mean) * rstd * g.w + b.w);
      store4(o + c, v[i]);
    } else {
      v[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
  }
  if (fold.copy) {  // warp-uniform
    const float next_rstd = warp_row_norm_stats(v, hidden, fold.eps).y;
#pragma unroll
    for (int i = 0; i < NV; ++i) {
      const int c = (i * 32 + lane) * 4;
      if (c < hidden) store4(fold.copy + r * hidden + c, v[i]);
    }
    if (lane == 0) fold.scale[r] = next_rstd;
  }
}

// Any width (hidden % 4 != 0 or > 2048): one block per row, three passes
// over global memory. Slower, only for shapes no released CLIP has.
template <typename To, typename Loader>
__global__ void __launch_bounds__(256)
    ln_block_kernel(Loader loader, int hidden, const float* __restrict__ gamma, const float* __restrict__ beta,
                    float eps, To* __restrict__ out) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const auto ctx = loader.row(r);
  float sum = 0.f;
  for (int c = threadIdx.x; c < hidden; c += blockDim.x) sum += loader.get1(ctx, c);
  const float mean = block_sum(sum, scratch) / hidden;
  float sq = 0.f;
  for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
    const float d = loader.get1(ctx, c) - mean;
    sq += d * d;
  }
  const float rstd = rsqrtf(block_sum(sq, scratch) / hidden + eps);
  // In place (out == in) is safe: in this pass each element is read and
  // then written by the same thread, and the reads of the two passes above
  // finished before block_sum's barriers.
  for (int c = threadIdx.x; c < hidden; c += blockDim.x)
    out[r * hidden + c] = from_f32<To>((loader.get1(ctx, c) - mean) * rstd * gamma[c] + beta[c]);
}

template <typename To, typename Loader>
void launch_ln(const Exec& exec, const Loader& loader, int64_t n_rows, int hidden, const float* gamma,
               const float* beta, float eps, To* out, bool vector_ok, FoldOut fold = {}) {
  if (n_rows == 0) return;
  const int nv = (hidden + 127) / 128;
  const bool warp_kernel = vector_ok && hidden % 4 == 0 && nv <= 16;
  require(!fold.copy || warp_kernel, "layernorm", "the folded-norm outputs need aligned rows of at most 2048");
  if (warp_kernel) {
    const unsigned blocks = ceil_div(n_rows, 4);  // 4 warps (rows) per block
#define CLIP_LN_CASE(N) \
  ln_warp_kernel<N, To, Loader><<<blocks, 128, 0, exec.stream>>>(loader, n_rows, hidden, gamma, beta, eps, out, fold)
    // NV rounded up to a few sizes (extra lanes are masked) to keep the
    // number of instantiations, and nvcc's time, small.
    if (nv <= 2)
      CLIP_LN_CASE(2);
    else if (nv <= 4)
      CLIP_LN_CASE(4);
    else if (nv <= 6)
      CLIP_LN_CASE(6);
    else if (nv <= 8)
      CLIP_LN_CASE(8);
    else if (nv <= 12)
      CLIP_LN_CASE(12);
    else
      CLIP_LN_CASE(16);
#undef CLIP_LN_CASE
  } else {
    ln_block_kernel<To, Loader>
        <<<static_cast<unsigned>(n_rows), 256, 0, exec.stream>>>(loader, hidden, gamma, beta, eps, out);
  }
  CLIP_CHECK_LAUNCH(exec, "layernorm");
}

}  // namespace

void layernorm(const Exec& exec, const float* in, const int32_t* rows, int64_t n_rows, int hidden, const float* gamma,
               const float* beta, float eps, void* out, DType out_type) {
  require(hidden > 0 && n_rows >= 0, "layernorm", "bad shape");
  require(in && gamma && beta && out, "layernorm", "null buffer");
  require(!(rows && static_cast<const void*>(in) == out), "layernorm", "a gathering norm cannot write in place");
  const bool vec = aligned16(in) && aligned16(gamma) && aligned16(beta) &&
                   (reinterpret_cast<uintptr_t>(out) % (4 * dtype_size(out_type))) == 0;
  PlainRows loader{in, rows, hidden};
  dispatch_dtype(out_type, [&](auto o) {
    using To = decltype(o);
    launch_ln(exec, loader, n_rows, hidden, gamma, beta, eps, static_cast<To*>(out), vec);
  });
}

void vision_embed_layernorm(const Exec& exec, const void* patches, DType patch_type, const float* cls, const float* pos,
                            int n, int seq, int hidden, const float* gamma, const float* beta, float eps, float* h,
                            void* h16, float* next_scale, float next_eps) {
  require(n >= 0 && seq >= 1 && hidden > 0, "vision_embed_layernorm", "bad shape");
  require(patches && cls && pos && gamma && beta && h, "vision_embed_layernorm", "null buffer");
  require(!h16 == !next_scale, "vision_embed_layernorm", "the fp16 copy and the row scales go together");
  require(!h16 || aligned16(h16), "vision_embed_layernorm", "unaligned fp16 copy");
  const bool vec = aligned16(cls) && aligned16(pos) && aligned16(gamma) && aligned16(beta) && aligned16(h) &&
                   (reinterpret_cast<uintptr_t>(patches) % (4 * dtype_size(patch_type))) == 0;
  dispatch_dtype(patch_type, [&](auto p) {
    using Tp = decltype(p);
    VisionRows<Tp> loader{static_cast<const Tp*>(patches), cls, pos, seq, hidden};
    launch_ln(exec, loader, int64_t(n) * seq, hidden, gamma, beta, eps, h, vec,
              FoldOut{static_cast<__half*>(h16), next_scale, next_eps});
  });
}

}  // namespace clip::cuda
