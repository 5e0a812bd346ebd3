#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "clip/cuda/attention.cuh"
#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/flash_attention.cuh"
#include "clip/cuda/mma_utils.cuh"
#include "clip/cuda/sm90/sm90_attention.h"
#include "clip/cuda/sm90/sm90_gemm.h"

namespace clip::cuda {
namespace {

// ============================================================================
// SIMT kernel: float32 arithmetic, any storage type, head_dim <= 32*DPL.
// A block takes 16 queries of one (batch, head): 4 warps x 4 queries, the
// online-softmax state of each query in its warp's registers. Keys stream
// through shared memory 32 at a time, one key per lane for the scores, then
// every lane accumulates its head_dim/32 output columns.
// ============================================================================
constexpr int kSimtWarps = 4, kSimtQpw = 4, kSimtQ = kSimtWarps * kSimtQpw, kSimtKeys = 32;

template <typename T, int DPL>
__global__ void __launch_bounds__(kSimtWarps * 32)
    attn_simt_kernel(const T* __restrict__ qkv, T* __restrict__ out, int seq, int heads, int D, bool causal,
                     float scale_log2) {
  extern __shared__ float smem[];
  float* q_s = smem;                       // [kSimtQ][D]
  float* k_s = q_s + kSimtQ * D;           // [kSimtKeys][D + 1]: +1 so lanes (keys) hit distinct banks
  float* v_s = k_s + kSimtKeys * (D + 1);  // [kSimtKeys][D]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int b = blockIdx.x / heads, h = blockIdx.x % heads;
  const int q0 = blockIdx.y * kSimtQ;
  const int hidden = heads * D, row_len = 3 * hidden;
  const T* base = qkv + int64_t(b) * seq * row_len;

  for (int i = threadIdx.x; i < kSimtQ * D; i += blockDim.x) {
    const int qi = i / D, d = i - qi * D, q = q0 + qi;
    q_s[i] = q < seq ? to_f32(base[int64_t(q) * row_len + h * D + d]) : 0.f;
  }

  float m[kSimtQpw], l[kSimtQpw], o[kSimtQpw][DPL];
#pragma unroll
  for (int j = 0; j < kSimtQpw; ++j) {
    m[j] = -INFINITY;
    l[j] = 0.f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[j][i] = 0.f;
  }

  const int kv_end = causal ? min(seq, q0 + kSimtQ) : seq;
  for (int kt = 0; kt < kv_end; kt += kSimtKeys) {
    __syncthreads();  // previous tile fully consumed (and q_s written, first time)
    for (int i = threadIdx.x; i < kSimtKeys * D; i += blockDim.x) {
      const int kk = i / D, d = i - kk * D, key = kt + kk;
      const bool ok = key < seq;
      const int64_t off = int64_t(key) * row_len + h * D + d;
      k_s[kk * (D + 1) + d] = ok ? to_f32(base[off + hidden]) : 0.f;
      v_s[kk * D + d] = ok ? to_f32(base[off + 2 * hidden]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kSimtQpw; ++j) {
      const int qi = warp * kSimtQpw + j, q = q0 + qi;
      if (q >= seq) continue;  // warp-uniform
      const float* qv = q_s + qi * D;
      const float* kv = k_s + lane * (D + 1);
      float s = 0.f;
      for (int d = 0; d < D; ++d) s = fmaf(qv[d], kv[d], s);
      const int key = kt + lane;
      const bool valid = key < seq && (!causal || key <= q);
      s = valid ? s * scale_log2 : -INFINITY;
      const float m_new = fmaxf(m[j], warp_max(s));
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing visible yet
      const float alpha = exp2f(m[j] - m_use);
      const float p = exp2f(s - m_use);
      l[j] = l[j] * alpha + warp_sum(p);
      m[j] = m_new;
#pragma unroll
      for (int i = 0; i < DPL; ++i) o[j][i] *= alpha;
      for (int kk = 0; kk < kSimtKeys; ++kk) {
        const float pk = __shfl_sync(0xffffffffu, p, kk);
#pragma unroll
        for (int i = 0; i < DPL; ++i) {
          const int d = lane + 32 * i;
          if (d < D) o[j][i] = fmaf(pk, v_s[kk * D + d], o[j][i]);
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kSimtQpw; ++j) {
    const int q = q0 + warp * kSimtQpw + j;
    if (q >= seq) continue;
    const float inv = 1.f / l[j];
    T* dst = out + (int64_t(b) * seq + q) * hidden + h * D;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      if (d < D) dst[d] = from_f32<T>(o[j][i] * inv);
    }
  }
}

size_t simt_smem_bytes(int D) { return sizeof(float) * (kSimtQ * D + kSimtKeys * (D + 1) + kSimtKeys * D); }

template <typename T>
void launch_simt(const Exec& exec, const T* qkv, T* out, const AttnShape& s) {
  const dim3 grid(s.batch * s.heads, ceil_div(s.seq, kSimtQ));
  const size_t smem = simt_smem_bytes(s.head_dim);
  const float sl2 = s.scale * kLog2e;
  auto go = [&](auto kernel) {
    if (smem > 48 * 1024)
      CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    kernel<<<grid, kSimtWarps * 32, smem, exec.stream>>>(qkv, out, s.seq, s.heads, s.head_dim, s.causal, sl2);
  };
  if (s.head_dim <= 64)
    go(attn_simt_kernel<T, 2>);
  else if (s.head_dim <= 128)
    go(attn_simt_kernel<T, 4>);
  else
    go(attn_simt_kernel<T, 8>);
}

// ============================================================================
// Tensor-core kernel (fp16/bf16), FlashAttention-2 style with mma.sync
// m16n8k16 and float32 accumulators. A block owns one (batch, head) and a
// range of 16-query tiles; it first copies all keys it can see into shared
// memory (K and V both as [key][D+8], 16-byte cp.async copies; the +8
// padding puts the 8 rows a fragment load touches on distinct banks; V's
// fragments come transposed out of ldmatrix.trans), then each warp runs its
// query tiles over 64-key blocks (16-key chunks at the tail): S = Q K^T on
// tensor cores, masking and online softmax in float32 registers, P (rounded
// to T) times V on tensor cores. CLIP's sequences (<= 257 tokens, ~78 KB of
// K/V at D = 64) fit in shared memory whole, so there is no K/V pipelining
// to get wrong.
// ============================================================================
// Warps per block (one 16-query tile each per round) are picked per shape at
// launch, up to kMaxMmaWarps; see pick_warps().
constexpr int kMaxMmaWarps = 8, kKeyBlock = 64;

// Keys a block walks through for kv_len visible keys: 64-key blocks while
// more than 32 keys remain, then 16-key chunks, so 257 keys cost 272 rather
// than 320 and 197 cost 208 rather than 256 (the padding keys are computed
// and masked). K/V shared memory is zero-filled up to this length.
__host__ __device__ constexpr int padded_keys(int n) {
  const int full = n <= 32 ? 0 : (n - 32 + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  return full >= n ? full : full + (n - full + 15) / 16 * 16;
}

template <typename T, int D>
__global__ void __launch_bounds__(kMaxMmaWarps * 32)
    attn_mma_kernel(const T* __restrict__ qkv, T* __restrict__ out, int seq, int heads, bool causal, float scale_log2,
                    int tiles_per_block) {
  static_assert(D % 16 == 0 && D <= 128, "head_dim");
  constexpr int KS = D + 8;  // K/V row stride in elements (keeps rows 16-byte aligned)
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int g = lane >> 2, t = lane & 3;  // mma fragment coordinates
  const int b = blockIdx.x / heads, h = blockIdx.x % heads;
  const int hidden = heads * D, row_len = 3 * hidden;
  const T* base = qkv + int64_t(b) * seq * row_len;

  const int n_tiles = (seq + 15) / 16;
  const int tile_begin = blockIdx.y * tiles_per_block;
  const int tile_end = min(n_tiles, tile_begin + tiles_per_block);
  if (tile_begin >= tile_end) return;
  // Keys this block can see: all, or with the causal mask up to its last query.
  const int kv_len = causal ? min(seq, tile_end * 16) : seq;
  const int kv_pad = padded_keys(kv_len);
  T* Ks = reinterpret_cast<T*>(smem_raw);  // [kv_pad][KS]
  T* Vs = Ks + size_t(kv_pad) * KS;        // [kv_pad][KS]

  // Q fragments come straight from global memory, one tile ahead: the loads
  // for a warp's next tile are in flight while it computes the current one
  // (and the first tile's while the block fills K/V), not exposed per tile.
  auto load_q = [&](uint32_t(&qf)[D / 16][4], int tile) {
    const int r0 = tile * 16 + g, r1 = r0 + 8;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int c = h * D + kk * 16 + 2 * t;
      const T* p0 = base + int64_t(r0) * row_len + c;
      const T* p1 = base + int64_t(r1) * row_len + c;
      qf[kk][0] = r0 < seq ? ld32(p0) : 0u;
      qf[kk][1] = r1 < seq ? ld32(p1) : 0u;
      qf[kk][2] = r0 < seq ? ld32(p0 + 8) : 0u;
      qf[kk][3] = r1 < seq ? ld32(p1 + 8) : 0u;
    }
  };
  uint32_t q_next[D / 16][4];
  if (tile_begin + warp < tile_end) load_q(q_next, tile_begin + warp);

  // K and V -> shared memory, 16 bytes per asynchronous copy, all of a
  // thread's copies in flight at once (a load-then-store loop waits one
  // memory round trip per iteration: most of a 50-token block's time).
  // Keys past kv_len are zero-filled so that 0-probability padding never
  // multiplies garbage (0 * NaN = NaN).
  constexpr int kChunks = D / 8;
  for (int i = threadIdx.x; i < kv_pad * kChunks; i += blockDim.x) {
    const int key = i / kChunks, ch = i - key * kChunks;
    const bool valid = key < kv_len;
    const T* src = base + int64_t(valid ? key : 0) * row_len + h * D + ch * 8;
    cp_async_16(Ks + key * KS + ch * 8, src + hidden, valid);
    cp_async_16(Vs + key * KS + ch * 8, src + 2 * hidden, valid);
  }
  cp_async_wait_all();
  __syncthreads();

  for (int tile = tile_begin + warp; tile < tile_end; tile += n_warps) {
    const int q0 = tile * 16;
    const int r0 = q0 + g, r1 = q0 + g + 8;  // the two rows this thread holds
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
      for (int e = 0; e < 4; ++e) qf[kk][e] = q_next[kk][e];
    if (tile + n_warps < tile_end) load_q(q_next, tile + n_warps);

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

    // One block of NB*8 keys from kb: S = Q K^T on tensor cores, scale (in
    // log2 units), mask, online softmax, O += P V.
    auto key_block = [&](auto nb_count, int kb) {
      constexpr int NB = decltype(nb_count)::value;
      float s[NB][4];
#pragma unroll
      for (int nb = 0; nb < NB; ++nb) s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
        for (int nb = 0; nb < NB; ++nb) {
          const T* kp = Ks + (kb + nb * 8 + g) * KS + kk * 16 + 2 * t;
          mma16816<T>(s[nb], qf[kk], ld32(kp), ld32(kp + 8));
        }
      }
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nb = 0; nb < NB; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = kb + nb * 8 + 2 * t + (e & 1);
          const int row = (e < 2) ? r0 : r1;
          const bool valid = key < kv_len && (!causal || key <= row);
          s[nb][e] = valid ? s[nb][e] * scale_log2 : -INFINITY;
          mx[e >> 1] = fmaxf(mx[e >> 1], s[nb][e]);
        }
      }
      float m_use[2], alpha[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = quad_max(mx[r]);  // the 4 threads of a quad share a row
        const float m_new = fmaxf(m[r], mx[r]);
        m_use[r] = m_new == -INFINITY ? 0.f : m_new;
        alpha[r] = exp2f(m[r] - m_use[r]);
        m[r] = m_new;
        l[r] *= alpha[r];  // per-thread partial sums, reduced over the quad at the end
      }
#pragma unroll
      for (int nb = 0; nb < NB; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = exp2f(s[nb][e] - m_use[e >> 1]);
          l[e >> 1] += p;
          s[nb][e] = p;
        }
      }
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        o[nd][0] *= alpha[0];
        o[nd][1] *= alpha[0];
        o[nd][2] *= alpha[1];
        o[nd][3] *= alpha[1];
      }
      // The S accumulators of n-blocks 2j and 2j+1 are exactly the A
      // fragment of keys 16j..16j+15, so P never leaves registers.
#pragma unroll
      for (int j = 0; j < NB / 2; ++j) {
        const uint32_t a[4] = {pack2<T>(s[2 * j][0], s[2 * j][1]), pack2<T>(s[2 * j][2], s[2 * j][3]),
                               pack2<T>(s[2 * j + 1][0], s[2 * j + 1][1]), pack2<T>(s[2 * j + 1][2], s[2 * j + 1][3])};
        // Lanes 0-15 address keys kb+16j+0..15 at dims nd*8.., lanes 16-31
        // the same keys at dims (nd+1)*8..: one ldmatrix feeds two mmas.
        const T* vrow = Vs + (kb + j * 16 + (lane & 15)) * KS + (lane >> 4) * 8;
#pragma unroll
        for (int nd = 0; nd < D / 8; nd += 2) {
          uint32_t bf[4];
          ldmatrix_x4_trans(bf, vrow + nd * 8);
          mma16816<T>(o[nd], a, bf[0], bf[1]);
          mma16816<T>(o[nd + 1], a, bf[2], bf[3]);
        }
      }
    };

    // The same walk as padded_keys(): 64-key blocks, then 16-key chunks.
    const int k_end = causal ? min(kv_len, q0 + 16) : kv_len;
    int kb = 0;
    for (; k_end - kb > 32; kb += kKeyBlock) key_block(std::integral_constant<int, kKeyBlock / 8>{}, kb);
    for (; kb < k_end; kb += 16) key_block(std::integral_constant<int, 2>{}, kb);

    const float inv0 = 1.f / quad_sum(l[0]), inv1 = 1.f / quad_sum(l[1]);
    T* o0 = out + (int64_t(b) * seq + r0) * hidden + h * D + 2 * t;
    T* o1 = out + (int64_t(b) * seq + r1) * hidden + h * D + 2 * t;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) {
      if (r0 < seq) *reinterpret_cast<uint32_t*>(o0 + nd * 8) = pack2<T>(o[nd][0] * inv0, o[nd][1] * inv0);
      if (r1 < seq) *reinterpret_cast<uint32_t*>(o1 + nd * 8) = pack2<T>(o[nd][2] * inv1, o[nd][3] * inv1);
    }
  }
}

struct MmaPlan {
  size_t smem = 0;
};

MmaPlan mma_plan(const AttnShape& s) {
  const int kv_pad = padded_keys(s.seq);
  MmaPlan p;
  p.smem = size_t(2) * 2 * size_t(kv_pad) * (s.head_dim + 8);  // K and V, 16-bit
  return p;
}

bool mma_supported(DType type, const AttnShape& s) {
  if (type == DType::F32) return false;
  if (s.head_dim != 32 && s.head_dim != 64 && s.head_dim != 128) return false;
  return mma_plan(s).smem <= 227 * 1024;  // checked against the device at launch
}

// Warps per block for n_tiles query tiles: the count that keeps the most
// warps doing useful work per SM, i.e. resident warps (registers and shared
// memory decide, so ask the occupancy API) times the share of tile slots the
// last round fills. ViT-L/14's 17 tiles on 4 warps leave 3 of 20 slots idle
// and its 78 KB of K/V allow 2 blocks per SM (8 warps); 6 warps fill 17 of
// 18 slots with 12 warps resident. 50 tokens (4 tiles) stay on 4 warps.
template <typename Kernel>
int pick_warps_uncached(Kernel kernel, int n_tiles, size_t smem) {
  int best = 4;
  double best_useful = -1.0;
  for (int w = 4; w <= kMaxMmaWarps; ++w) {
    int blocks = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, w * 32, smem) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    const int rounds = static_cast<int>(ceil_div(n_tiles, w));
    const double useful = double(blocks) * n_tiles / rounds;  // busy warps per SM
    if (useful > best_useful + 1e-9) best = w, best_useful = useful;
  }
  return best;
}

// The same answer for every launch of a shape: computed once per (device,
// kernel, tiles, shared memory), since the occupancy queries cost host time
// on every un-captured small-batch pass.
template <typename Kernel>
int pick_warps(Kernel kernel, int n_tiles, size_t smem) {
  static std::mutex mu;
  static std::map<std::tuple<int, const void*, int, size_t>, int> cache;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  const auto key = std::make_tuple(dev, reinterpret_cast<const void*>(kernel), n_tiles, smem);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, pick_warps_uncached(kernel, n_tiles, smem)).first;
  return it->second;
}

// The tensor-core kernel for a shape, ready to launch: the head_dim
// instance, its shared memory allowed and its warps per block picked.
template <typename T>
struct MmaLaunch {
  void (*kernel)(const T*, T*, int, int, bool, float, int);
  size_t smem;
  int warps;
};

template <typename T>
MmaLaunch<T> mma_launch(const AttnShape& s) {
  const size_t smem = mma_plan(s).smem;
  if (smem > 48 * 1024)
    require(smem <= size_t(max_smem_optin()), "attention",
            "sequence too long for the tensor-core kernel's shared memory");
  MmaLaunch<T> l{s.head_dim == 32   ? attn_mma_kernel<T, 32>
                 : s.head_dim == 64 ? attn_mma_kernel<T, 64>
                                    : attn_mma_kernel<T, 128>,
                 smem, 0};
  if (smem > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(l.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  l.warps = pick_warps(l.kernel, (s.seq + 15) / 16, smem);
  return l;
}

template <typename T>
void launch_mma(const Exec& exec, const T* qkv, T* out, const AttnShape& s, int num_sms) {
  const MmaLaunch<T> l = mma_launch<T>(s);
  const int n_tiles = (s.seq + 15) / 16;
  const int bh = s.batch * s.heads;
  // Enough blocks to fill the GPU twice over; each split reloads K/V, so
  // split only when batch*heads alone leaves SMs idle.
  const int want = static_cast<int>(ceil_div(2 * std::max(num_sms, 1), std::max(bh, 1)));
  int splits = std::max(1, std::min(want, static_cast<int>(ceil_div(n_tiles, l.warps))));
  const int tiles_per_block = static_cast<int>(ceil_div(n_tiles, splits));
  splits = static_cast<int>(ceil_div(n_tiles, tiles_per_block));
  const dim3 grid(bh, splits);
  l.kernel<<<grid, l.warps * 32, l.smem, exec.stream>>>(qkv, out, s.seq, s.heads, s.causal, s.scale * kLog2e,
                                                        tiles_per_block);
}

}  // namespace

bool mma_attention_supported(DType type, const AttnShape& s) { return mma_supported(type, s); }

bool wgmma_attention_supported(DType type, const AttnShape& s) {
  if (type == DType::F32 || !sm90::attention_supported(s.seq, s.head_dim, s.causal)) return false;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  return sm90::device_supported(dev);  // two attribute queries, like max_smem_optin()
}

bool flash_attention_supported(DType type, const AttnShape& s) {
  return type != DType::F32 && flash_shape_supported(s);
}

AttnImpl attention_choice(DType type, const AttnShape& s, int num_sms, bool wgmma) {
  // The wgmma kernel runs one block per (image, head): with fewer than one
  // per SM the mma.sync kernel, which splits a head's queries over blocks,
  // keeps more of the GPU busy.
  if (wgmma && wgmma_attention_supported(type, s) && int64_t(s.batch) * s.heads >= num_sms) return AttnImpl::Wgmma;
  // The whole-K/V kernel where its shared memory fits this device (on an
  // H100 the same test as mma_supported's; an A100 opts in to less).
  if (mma_supported(type, s) && mma_plan(s).smem <= size_t(max_smem_optin())) return AttnImpl::TensorCore;
  // What neither takes (sequences past ~800 tokens; SigLIP's head_dim 72
  // in batches too small for the wgmma kernel) goes to the tiled kernel.
  return flash_attention_supported(type, s) ? AttnImpl::Flash : AttnImpl::Simt;
}

void attention(const Exec& exec, const void* qkv, void* out, DType type, const AttnShape& s, int num_sms, AttnImpl impl,
               bool wgmma) {
  require(s.batch >= 0 && s.seq > 0 && s.heads > 0 && s.head_dim > 0, "attention", "bad shape");
  require(s.head_dim <= 256, "attention", "head_dim above 256 is not supported");
  require(qkv && out && qkv != out, "attention", "null or aliased buffers");
  if (s.batch == 0) return;
  if (impl == AttnImpl::Auto) impl = attention_choice(type, s, num_sms, wgmma);
  if (impl == AttnImpl::Wgmma) {
    require(wgmma_attention_supported(type, s), "attention",
            "the wgmma kernel needs an sm_90 GPU and build, fp16/bf16, head_dim 64 or 72, no causal mask and a "
            "sequence whose K and V fit in shared memory");
    require(aligned16(qkv) && aligned16(out), "attention", "buffers must be 16-byte aligned");
    sm90::AttnProblem pr;
    pr.qkv = qkv;
    pr.out = out;
    pr.batch = s.batch;
    pr.seq = s.seq;
    pr.heads = s.heads;
    pr.head_dim = s.head_dim;
    pr.scale_log2 = s.scale * kLog2e;
    pr.bf16 = type == DType::BF16;
    CUDA_CHECK(sm90::attention(pr, exec.stream));
  } else if (impl == AttnImpl::Flash) {
    require(flash_attention_supported(type, s), "attention",
            "the tiled kernel needs fp16/bf16, head_dim a multiple of 8 up to 128 and a positive scale");
    require(aligned16(qkv) && aligned16(out), "attention", "buffers must be 16-byte aligned");
    launch_flash_attention(exec, qkv, out, type, s);
  } else if (impl == AttnImpl::TensorCore) {
    require(mma_supported(type, s), "attention", "tensor-core kernel needs fp16/bf16 and head_dim 32, 64 or 128");
    require(aligned16(qkv) && aligned16(out), "attention", "buffers must be 16-byte aligned");
    if (type == DType::F16)
      launch_mma(exec, static_cast<const __half*>(qkv), static_cast<__half*>(out), s, num_sms);
    else
      launch_mma(exec, static_cast<const __nv_bfloat16*>(qkv), static_cast<__nv_bfloat16*>(out), s, num_sms);
  } else {
    dispatch_dtype(type, [&](auto tv) {
      using T = decltype(tv);
      launch_simt(exec, static_cast<const T*>(qkv), static_cast<T*>(out), s);
    });
  }
  CLIP_CHECK_LAUNCH(exec, "attention");
}

}  // namespace clip::cuda
