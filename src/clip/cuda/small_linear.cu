#include <algorithm>
#include <string>

#include "clip/cuda/activation.cuh"
#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/mma_utils.cuh"
#include "clip/cuda/small_linear.cuh"

namespace clip::cuda {
namespace {

constexpr int kThreads = 128;  // 4 warps, one quarter of K each
constexpr int kWarps = kThreads / 32;
constexpr int kCols = 8;    // output columns per block (one mma n8 tile)
constexpr int kBatch = 16;  // 32-deep weight chunks in flight per thread (16 x 16 bytes)
constexpr int kLnVec = 8;   // float4 of a row per lane in the LayerNorm: K <= 1024

enum class Out { Bias, BiasQuickGelu, BiasGelu, BiasGeluTanh, Residual, Float };

// The launch arguments: the op as given, plus A's row stride in shared
// memory (elements).
struct Params : SmallLinear {
  int stride;
};

// A's rows padded so that row r starts 64 bytes (mod 128) after row r-1: a
// quarter-warp's 16-byte fragment loads (two rows, four 16-byte columns)
// then fall on distinct banks.
int a_stride(int K) { return K + ((K * 2) % 128 == 0 ? 32 : 0); }

// A (16 rows, 16-bit) then, for a LayerNorm, the M float32 input rows,
// gamma and beta.
size_t smem_bytes(int M, int K, bool layernorm) {
  return size_t(kSmallMaxRows) * a_stride(K) * 2 + (layernorm ? size_t(M + 2) * K * 4 : 0);
}

template <Out O>
__device__ __forceinline__ float out_act(float v) {
  if constexpr (O == Out::BiasQuickGelu)
    return activate<Act::QuickGelu>(v);
  else if constexpr (O == Out::BiasGelu)
    return activate<Act::Gelu>(v);
  else if constexpr (O == Out::BiasGeluTanh)
    return activate<Act::GeluTanh>(v);
  else
    return v;
}

// Grid N / 8; block: 4 warps on the block's 8 columns, warp w over
// K [w K/4, (w+1) K/4).
//
// The mma fragments take K in a permuted order, which is free because the
// product sums over k: in each 32-deep chunk, lane (g, j) = (lane/4, lane%4)
// loads the 8 consecutive k at 8j.. of its row (one 16-byte load for the
// weights, two for A), and uses k 8j..8j+3 as the slots 2j, 2j+1, 2j+8,
// 2j+9 of the first m16n8k16 and 8j+4..8j+7 as those of the second, in both
// operands alike. So the weights go global -> registers with no shared
// memory and no shuffles, up to 16 x 16 bytes per thread in flight.
template <typename T, bool LN, Out O>
__global__ void __launch_bounds__(kThreads, 3) small_linear_kernel(const Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* As = reinterpret_cast<T*>(smem_raw);
  float* hs = reinterpret_cast<float*>(smem_raw + size_t(kSmallMaxRows) * p.stride * sizeof(T));
  __shared__ float red[kWarps][kSmallMaxRows][kCols];

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, j = lane & 3;
  const int n0 = blockIdx.x * kCols;
  const int kq = p.K / kWarps, kw = warp * kq, chunks = kq / 32;

  // 1. A's source (the float32 rows for a LayerNorm, else x) on its way to
  //    shared memory (with gamma and beta), then this warp's weights from
  //    DRAM: all in flight together.
  if constexpr (LN) {
    const int packets = p.M * (p.K / 4);
    for (int i = tid; i < packets; i += kThreads) cp_async_16(hs + 4 * i, p.ln_in + 4 * size_t(i), true);
    float* gs = hs + size_t(p.M) * p.K;  // gamma, then beta
    for (int i = tid; i < p.K / 4; i += kThreads) {
      cp_async_16(gs + 4 * i, p.gamma + 4 * i, true);
      cp_async_16(gs + p.K + 4 * i, p.beta + 4 * i, true);
    }
  } else {
    const T* x = static_cast<const T*>(p.x);
    const int per_row = p.K / 8;
    for (int i = tid; i < kSmallMaxRows * per_row; i += kThreads) {
      const int r = i / per_row, c = (i - r * per_row) * 8;
      const bool valid = r < p.M;
      cp_async_16(As + r * p.stride + c, x + size_t(valid ? r : 0) * p.K + c, valid);
    }
  }
  const T* wrow = static_cast<const T*>(p.w) + size_t(n0 + g) * p.K + kw + 8 * j;
  uint4 wv[kBatch];
#pragma unroll
  for (int u = 0; u < kBatch; ++u)
    if (u < chunks) wv[u] = __ldg(reinterpret_cast<const uint4*>(wrow + 32 * u));
  cp_async_wait_all();
  __syncthreads();

  // 2. LayerNorm: warp w normalises rows w, w+4, ... from registers (lane
  //    l holds columns 4l + 128i .. +3): mean, then centred squares, then
  //    the scaled values; rows >= M are zero.
  if constexpr (LN) {
    for (int r = warp; r < kSmallMaxRows; r += kWarps) {
      T* arow = As + r * p.stride;
      if (r >= p.M) {
        for (int c = lane * 4; c < p.K; c += 128) *reinterpret_cast<uint2*>(arow + c) = make_uint2(0u, 0u);
        continue;
      }
      const float* hrow = hs + size_t(r) * p.K;
      float4 v[kLnVec];
#pragma unroll
      for (int i = 0; i < kLnVec; ++i) {
        const int c = lane * 4 + 128 * i;
        v[i] = c < p.K ? *reinterpret_cast<const float4*>(hrow + c) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
      const float2 stats = warp_row_norm_stats(v, p.K, p.eps);
      const float mean = stats.x, rs = stats.y;
      const float* gs = hs + size_t(p.M) * p.K;
#pragma unroll
      for (int i = 0; i < kLnVec; ++i) {
        const int c = lane * 4 + 128 * i;
        if (c < p.K) {
          const float4 gm = *reinterpret_cast<const float4*>(gs + c);
          const float4 bt = *reinterpret_cast<const float4*>(gs + p.K + c);
          *reinterpret_cast<uint2*>(arow + c) =
              make_uint2(pack2<T>((v[i].x - mean) * rs * gm.x + bt.x, (v[i].y - mean) * rs * gm.y + bt.y),
                         pack2<T>((v[i].z - mean) * rs * gm.z + bt.z, (v[i].w - mean) * rs * gm.w + bt.w));
        }
      }
    }
    __syncthreads();
  }

  // 3. The product over this warp's quarter of K.
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  const T* ap = As + g * p.stride + kw + 8 * j;
  for (int c0 = 0; c0 < chunks; c0 += kBatch) {
    if (c0 > 0) {
#pragma unroll
      for (int u = 0; u < kBatch; ++u)
        if (c0 + u < chunks) wv[u] = __ldg(reinterpret_cast<const uint4*>(wrow + 32 * (c0 + u)));
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      if (c0 + u < chunks) {
        const uint4 lo = *reinterpret_cast<const uint4*>(ap + 32 * (c0 + u));
        const uint4 hi = *reinterpret_cast<const uint4*>(ap + 8 * p.stride + 32 * (c0 + u));
        const uint32_t a0[4] = {lo.x, hi.x, lo.y, hi.y};
        const uint32_t a1[4] = {lo.z, hi.z, lo.w, hi.w};
        mma16816<T>(acc, a0, wv[u].x, wv[u].y);
        mma16816<T>(acc, a1, wv[u].z, wv[u].w);
      }
    }
  }

  // 4. The quarters summed in order; thread t owns row t / 8, column t % 8.
  //    Lane (g, j) holds rows g (acc 0, 1) and g + 8 (acc 2, 3) at columns
  //    2j, 2j + 1.
  *reinterpret_cast<float2*>(&red[warp][g][2 * j]) = make_float2(acc[0], acc[1]);
  *reinterpret_cast<float2*>(&red[warp][g + 8][2 * j]) = make_float2(acc[2], acc[3]);
  __syncthreads();
  const int r = tid / kCols, c = tid % kCols;
  if (r >= p.M) return;
  float v = ((red[0][r][c] + red[1][r][c]) + red[2][r][c]) + red[3][r][c];
  if (p.bias) v += __ldg(p.bias + n0 + c);
  const size_t at = size_t(r) * p.N + n0 + c;
  if constexpr (O == Out::Residual)
    p.residual[at] += v;
  else if constexpr (O == Out::Float)
    static_cast<float*>(p.out)[at] = v;
  else
    static_cast<T*>(p.out)[at] = from_f32<T>(out_act<O>(v));
}

template <typename T, bool LN, Out O>
void launch(const Exec& exec, const Params& p) {
  const size_t smem = smem_bytes(p.M, p.K, LN);
  auto* kernel = small_linear_kernel<T, LN, O>;
  if (smem > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  kernel<<<p.N / kCols, kThreads, smem, exec.stream>>>(p);
}

template <typename T, bool LN>
void launch_out(const Exec& exec, const Params& p) {
  if (p.residual) return launch<T, LN, Out::Residual>(exec, p);
  if (p.out_f32) return launch<T, LN, Out::Float>(exec, p);
  switch (p.act) {
    case Act::None: return launch<T, LN, Out::Bias>(exec, p);
    case Act::QuickGelu: return launch<T, LN, Out::BiasQuickGelu>(exec, p);
    case Act::Gelu: return launch<T, LN, Out::BiasGelu>(exec, p);
    case Act::GeluTanh: return launch<T, LN, Out::BiasGeluTanh>(exec, p);
  }
}

template <typename T>
void launch_type(const Exec& exec, const Params& p) {
  if (p.ln_in)
    launch_out<T, true>(exec, p);
  else
    launch_out<T, false>(exec, p);
}

}  // namespace

bool small_linear_fits(int M, int N, int K, bool layernorm) {
  return M >= 1 && M <= kSmallMaxRows && N > 0 && K > 0 && N % kCols == 0 && K % (32 * kWarps) == 0 &&
         (!layernorm || K <= 128 * kLnVec) && smem_bytes(M, K, layernorm) <= size_t(max_smem_optin());
}

void small_linear(const Exec& exec, const SmallLinear& op) {
  const char* what = "small_linear";
  require(small_linear_fits(op.M, op.N, op.K, op.ln_in != nullptr), what,
          "shape M=" + std::to_string(op.M) + " N=" + std::to_string(op.N) + " K=" + std::to_string(op.K) +
              " not taken (M <= " + std::to_string(kSmallMaxRows) +
              ", N a multiple of 8, K of 128, rows within shared memory)");
  require(op.type == DType::F16 || op.type == DType::BF16, what, "needs fp16 or bf16 operands");
  require((op.x != nullptr) != (op.ln_in != nullptr), what, "give exactly one of x and ln_in");
  require(!op.ln_in || (op.gamma && op.beta), what, "LayerNorm input without gamma/beta");
  require((op.out != nullptr) != (op.residual != nullptr), what, "give exactly one of out and residual");
  require(!op.residual || op.act == Act::None, what, "an activation cannot go with the residual update");
  require(!op.out_f32 || (op.out && op.act == Act::None), what, "a float32 output takes no activation");
  require(op.w != nullptr, what, "null weights");
  require(aligned16(op.w) && aligned16(op.x) && aligned16(op.ln_in) && aligned16(op.gamma) && aligned16(op.beta), what,
          "unaligned buffer");
  Params p{};
  static_cast<SmallLinear&>(p) = op;
  p.stride = a_stride(op.K);
  if (op.type == DType::F16)
    launch_type<__half>(exec, p);
  else
    launch_type<__nv_bfloat16>(exec, p);
  CLIP_CHECK_LAUNCH(exec, what);
}

}  // namespace clip::cuda
