// Tiled attention with an online softmax (FlashAttention-2's loop order) on
// mma.sync m16n8k16 tensor cores, fp16/bf16 storage, float32 accumulators
// and softmax; see flash_attention.cuh.
//
// Why another kernel: attention.cu's mma.sync kernel copies a head's whole K
// and V into shared memory, which CLIP's sequences (<= 257 tokens) allow but
// SigLIP's do not (1,024 tokens at head_dim 72 is 304 KB), and its fragment
// walk needs head_dim to be a multiple of 16 (SigLIP SO400M's is 72).
//
// Tiling. Grid (ceil(seq / 64), heads, batch); a block of 4 warps owns 64
// consecutive queries of one (item, head), each warp 16 of them (one mma M
// tile) for the whole run. The block walks the keys in 64-key tiles staged
// in shared memory, two stages: while the warps compute on tile j, the
// cp.async copies of tile j + 1 (K and V, 16 bytes each) are in flight.
// Per tile and warp:
//   S = Q K^T    16 x 64 scores: 8 n-blocks of 8 keys, the reduction over
//                head_dim in k-steps of 16. Q's A fragments sit in registers
//                for the whole run (loaded once from global memory); K's B
//                fragments come from ldmatrix (non-transposed: K rows are
//                keys). When head_dim is not a multiple of 16 (72 = 4 x 16 +
//                8) the last k-step is zero-padded: Q's registers for
//                d >= head_dim are zero, and so are K's shared-memory columns
//                head_dim..head_dim+7 (written once; the copies never touch
//                them).
//   softmax      mask (keys past the sequence, the causal mask), running
//                max and sum per row in float32, P = exp2(scale log2(e)
//                (S - max)) in one FMA and one ex2 (so the scale must be
//                positive); O is rescaled only in a warp where some row's
//                max moved. (Letting the max lag by up to 2^8 in P, as
//                sm90/sm90_attention.cu does, measured 1-2% faster on an H100
//                but 1.6x the error on peaked scores: P = 1 at the max is
//                exact in fp16/bf16, a lagging max's P is not.)
//   O += P V     P rounded to the storage type and used straight from the S
//                accumulators as A fragments (n-blocks 2c, 2c+1 are the A
//                fragment of keys 16c..16c+15); V's B fragments from
//                ldmatrix.trans, head_dim in n-blocks of 8 (72 = 9 x 8: four
//                x4 loads and one x2).
// O is divided by the row sums at the end and stored. A tile's 16-key chunks
// past the last visible key (the sequence's end, or the causal diagonal) are
// skipped, so 196 tokens cost 208 keys' work, not 256. Keys past the
// sequence inside a computed chunk get P = 0, and the copies zero-fill their
// K and V rows (0 times a stale NaN in shared memory would be NaN).
//
// Shared memory rows are padded to an odd number of 16-byte chunks: the 8
// rows one ldmatrix matrix reads then fall on 8 distinct bank groups (no
// conflicts). K rows hold head_dim rounded up to 16 plus 8 (72 -> 88
// elements), V rows head_dim, plus 8 when head_dim / 8 is even (72 -> 72,
// 64 -> 72). Two stages of 64 keys: 2 x 64 x (88 + 72) x 2 bytes = 40 KB at
// head_dim 72, 36 KB at 64, 68 KB at 128, so several blocks share an SM and
// one block's softmax overlaps another's products.
//
// Why 64 x 64 tiles and 4 warps: 16 rows a warp is the mma M; 4 warps give
// 64 queries a block, enough reuse of each K/V tile (each is read from
// shared memory once per warp) while 1,024 tokens x 16 heads x batch 2 still
// make 512 blocks. 64 keys a tile keep S at 32 registers a thread next to O's
// head_dim / 2 (64 at 128) and Q's head_dim / 4 (32 at 128). 8 warps (128
// queries a block, half the K/V traffic) measured slower on an H100 at every
// SigLIP shape: 2% at 256 tokens, 9% at 576, 21% at 64.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/flash_attention.cuh"
#include "clip/cuda/mma_utils.cuh"

namespace clip::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kBlockRows = 16 * kWarps;  // queries a block
constexpr int kTileKeys = 64;            // keys a K/V tile
constexpr int kMaxHeadDim = 128;

// 2^x in one MUFU instruction (exp2f adds a denormal range fix-up around it:
// three more instructions per score). x = -inf gives 0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Shared-memory geometry for head_dim D, in elements: K rows hold the
// S = Q K^T reduction (D rounded up to 16, zero-padded) plus 8, an odd
// number of 16-byte chunks; V rows hold D, plus 8 when D / 8 is even.
constexpr int padded_dim(int D) { return (D + 15) / 16 * 16; }
constexpr int k_stride(int D) { return padded_dim(D) + 8; }
constexpr int v_stride(int D) { return (D / 8) % 2 == 1 ? D : D + 8; }
constexpr int stage_elems(int D) { return kTileKeys * (k_stride(D) + v_stride(D)); }  // one K tile, one V tile
constexpr size_t smem_bytes_for(int D) { return size_t(2) * stage_elems(D) * 2; }     // two stages, 16-bit

template <int D>
struct Geometry {
  static_assert(D % 8 == 0 && D >= 8 && D <= kMaxHeadDim, "head_dim");
  static constexpr int kDk = padded_dim(D), kKStride = k_stride(D), kVStride = v_stride(D);
  static constexpr int kStage = stage_elems(D);
  static_assert((kKStride / 8) % 2 == 1 && (kVStride / 8) % 2 == 1, "odd chunk strides");
};
static_assert(smem_bytes_for(64) == 36864 && smem_bytes_for(72) == 40960 && smem_bytes_for(128) == 69632);

template <typename T, int D>
__global__ void __launch_bounds__(kWarps * 32) flash_attn_kernel(const T* __restrict__ qkv, T* __restrict__ out,
                                                                 int seq, int heads, bool causal, float scale_log2) {
  using G = Geometry<D>;
  constexpr int DK = G::kDk, KS = G::kKStride, VS = G::kVStride;
  constexpr int kChunks = D / 8;  // 16-byte chunks of one head's q, k or v row
  constexpr int ND = D / 8;       // n-blocks of O
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* const smem = reinterpret_cast<T*>(smem_raw);  // stage s: K [64][KS] at s * kStage, V [64][VS] after it

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;  // mma fragment coordinates
  const int h = blockIdx.y, b = blockIdx.z;
  const int q_block = blockIdx.x * kBlockRows;
  const int q0 = q_block + warp * 16;  // this warp's first query
  const int r0 = q0 + g, r1 = r0 + 8;  // the two rows this thread holds
  const int hidden = heads * D, row_len = 3 * hidden;
  const T* const base = qkv + int64_t(b) * seq * row_len + h * D;  // q of token 0 of (b, h)

  // Keys the block may see: all, or with the causal mask up to its last query.
  const int kv_len = causal ? min(seq, q_block + kBlockRows) : seq;
  const int n_tiles = (kv_len + kTileKeys - 1) / kTileKeys;
  // Keys this warp may see (warp-uniform); none when all its rows are past the sequence.
  const int warp_kv = q0 >= seq ? 0 : causal ? min(kv_len, q0 + 16) : kv_len;

  // One tile of K and V -> stage s; keys from kv_len on are zero-filled.
  auto load_tile = [&](int tile, int s) {
    T* const ks = smem + s * G::kStage;
    T* const vs = ks + kTileKeys * KS;
    const int k0 = tile * kTileKeys;
    for (int i = threadIdx.x; i < kTileKeys * kChunks; i += kWarps * 32) {
      const int r = i / kChunks, c = i - r * kChunks;
      const int key = k0 + r;
      const bool valid = key < kv_len;
      const T* src = base + int64_t(valid ? key : 0) * row_len + c * 8;
      cp_async_16(ks + r * KS + c * 8, src + hidden, valid);
      cp_async_16(vs + r * VS + c * 8, src + 2 * hidden, valid);
    }
    cp_async_commit();
  };

  // K's padding columns D..DK-1 (8 of them when D % 16 == 8) are zero in
  // both stages for the whole run: the last k-step of S = Q K^T reads them.
  if constexpr (DK > D) {
    static_assert(DK - D == 8, "one 16-byte chunk of padding");
    for (int i = threadIdx.x; i < 2 * kTileKeys; i += kWarps * 32) {
      T* const row = smem + (i / kTileKeys) * G::kStage + (i % kTileKeys) * KS + D;
      *reinterpret_cast<uint4*>(row) = make_uint4(0u, 0u, 0u, 0u);
    }
  }
  if (n_tiles > 0) load_tile(0, 0);

  // Q's A fragments, once: rows r0 and r1, columns 16kk + 2t (+1) and
  // 16kk + 8 + 2t (+1); zero past the sequence and past head_dim.
  uint32_t qf[DK / 16][4];
  {
    const bool v0 = r0 < seq, v1 = r1 < seq;
    const T* const p0 = base + int64_t(v0 ? r0 : 0) * row_len + 2 * t;
    const T* const p1 = base + int64_t(v1 ? r1 : 0) * row_len + 2 * t;
#pragma unroll
    for (int kk = 0; kk < DK / 16; ++kk) {
      const bool hi = kk * 16 + 8 < D;  // false only for the padded last k-step
      qf[kk][0] = v0 ? ld32(p0 + kk * 16) : 0u;
      qf[kk][1] = v1 ? ld32(p1 + kk * 16) : 0u;
      qf[kk][2] = v0 && hi ? ld32(p0 + kk * 16 + 8) : 0u;
      qf[kk][3] = v1 && hi ? ld32(p1 + kk * 16 + 8) : 0u;
    }
  }

  float o[ND][4];
#pragma unroll
  for (int nd = 0; nd < ND; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // running max of q.k (unscaled), partial sums

  for (int tile = 0; tile < n_tiles; ++tile) {
    const int s = tile & 1;
    // Tile + 1 into the other stage (its readers finished at the barrier
    // ending the previous iteration), then wait for this tile's copies.
    if (tile + 1 < n_tiles) {
      load_tile(tile + 1, s ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    const int kb = tile * kTileKeys;
    // 16-key chunks of this tile holding a key this warp sees (0 to 4).
    const int chunks = min(4, max(0, (warp_kv - kb + 15) / 16));
    if (chunks > 0) {
      const T* const ks = smem + s * G::kStage;
      const T* const vs = ks + kTileKeys * KS;

      // S = Q K^T. ldmatrix x4: lanes 0-7 address keys 8nb..8nb+7 at
      // columns 16kk.., lanes 8-15 the same keys at 16kk+8.., lanes 16-31
      // keys 8(nb+1).. likewise: B fragments of n-blocks nb and nb + 1.
      float sc[8][4];
#pragma unroll
      for (int nb = 0; nb < 8; ++nb) sc[nb][0] = sc[nb][1] = sc[nb][2] = sc[nb][3] = 0.f;
      const T* const krow = ks + ((lane >> 4) * 8 + (lane & 7)) * KS + ((lane >> 3) & 1) * 8;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        if (c < chunks) {
#pragma unroll
          for (int kk = 0; kk < DK / 16; ++kk) {
            uint32_t kf[4];
            ldmatrix_x4(kf, krow + c * 16 * KS + kk * 16);
            mma16816<T>(sc[2 * c], qf[kk], kf[0], kf[1]);
            mma16816<T>(sc[2 * c + 1], qf[kk], kf[2], kf[3]);
          }
        }
      }

      // Mask, then the online softmax in raw score units: m is a row's
      // running maximum of q.k, and P = 2^(scale_log2 (s - m)) costs one FMA
      // and one ex2. Only the tile holding the sequence's end or crossing
      // this warp's causal diagonal needs the mask (skipped chunks are always
      // masked: their keys are past warp_kv).
      const bool need_mask = kb + kTileKeys > warp_kv || (causal && kb + kTileKeys - 1 > q0);
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nb = 0; nb < 8; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (need_mask) {
            const int key = kb + nb * 8 + 2 * t + (e & 1);
            const int row = e < 2 ? r0 : r1;
            const bool valid = key < kv_len && (!causal || key <= row);
            sc[nb][e] = valid ? sc[nb][e] : -INFINITY;
          }
          mx[e >> 1] = fmaxf(mx[e >> 1], sc[nb][e]);
        }
      }
      // O and the sums are rescaled only in a warp where some row's maximum
      // moved: after the first few tiles most skip the multiplications.
      // The first tile always moves it: m = -inf, and key 0, in the first
      // tile, is visible to every row (causal or not), so mx is finite.
      bool moves[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = quad_max(mx[r]);  // the 4 threads of a quad share a row
        moves[r] = mx[r] > m[r];
      }
      if (__any_sync(0xffffffffu, moves[0] || moves[1])) {  // warp-uniform: O's rows are the warp's own
        float alpha[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const float m_new = moves[r] ? mx[r] : m[r];
          alpha[r] = moves[r] ? fast_exp2((m[r] - m_new) * scale_log2) : 1.f;  // 0 from -inf
          m[r] = m_new;
          l[r] *= alpha[r];  // per-thread partial sums, reduced over the quad at the end
        }
#pragma unroll
        for (int nd = 0; nd < ND; ++nd) {
          o[nd][0] *= alpha[0];
          o[nd][1] *= alpha[0];
          o[nd][2] *= alpha[1];
          o[nd][3] *= alpha[1];
        }
      }
      // (m = -inf only for a row with nothing visible yet: all its P are 0.)
      const float m_use[2] = {m[0] == -INFINITY ? 0.f : m[0] * scale_log2, m[1] == -INFINITY ? 0.f : m[1] * scale_log2};
#pragma unroll
      for (int nb = 0; nb < 8; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = fast_exp2(fmaf(sc[nb][e], scale_log2, -m_use[e >> 1]));
          l[e >> 1] += p;
          sc[nb][e] = p;
        }
      }

      // O += P V. ldmatrix x4 trans: lanes 0-15 address keys 16c..16c+15 at
      // columns 8nd.., lanes 16-31 the same keys at 8(nd+1)..: B fragments
      // of n-blocks nd and nd + 1. An odd last n-block takes an x2 load
      // (lanes 0-15's addresses only).
      const T* const vrow = vs + (lane & 15) * VS + (lane >> 4) * 8;
      const T* const vrow_last = vs + (lane & 15) * VS + (ND - 1) * 8;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        if (c < chunks) {
          const uint32_t a[4] = {pack2<T>(sc[2 * c][0], sc[2 * c][1]), pack2<T>(sc[2 * c][2], sc[2 * c][3]),
                                 pack2<T>(sc[2 * c + 1][0], sc[2 * c + 1][1]),
                                 pack2<T>(sc[2 * c + 1][2], sc[2 * c + 1][3])};
#pragma unroll
          for (int nd = 0; nd + 1 < ND; nd += 2) {
            uint32_t bf[4];
            ldmatrix_x4_trans(bf, vrow + c * 16 * VS + nd * 8);
            mma16816<T>(o[nd], a, bf[0], bf[1]);
            mma16816<T>(o[nd + 1], a, bf[2], bf[3]);
          }
          if constexpr (ND % 2 == 1) {
            uint32_t bf[2];
            ldmatrix_x2_trans(bf, vrow_last + c * 16 * VS);
            mma16816<T>(o[ND - 1], a, bf[0], bf[1]);
          }
        }
      }
    }
    __syncthreads();  // every warp is done with stage s before it is refilled
  }

  // Every stored row saw key 0 (causal or not), so its sum is positive.
  const float inv0 = 1.f / quad_sum(l[0]), inv1 = 1.f / quad_sum(l[1]);
  T* const o0 = out + (int64_t(b) * seq + r0) * hidden + h * D + 2 * t;
  T* const o1 = out + (int64_t(b) * seq + r1) * hidden + h * D + 2 * t;
#pragma unroll
  for (int nd = 0; nd < ND; ++nd) {
    if (r0 < seq) *reinterpret_cast<uint32_t*>(o0 + nd * 8) = pack2<T>(o[nd][0] * inv0, o[nd][1] * inv0);
    if (r1 < seq) *reinterpret_cast<uint32_t*>(o1 + nd * 8) = pack2<T>(o[nd][2] * inv1, o[nd][3] * inv1);
  }
}

template <typename T, int D>
void launch_for(const Exec& exec, const T* qkv, T* out, const AttnShape& s) {
  if constexpr (D <= kMaxHeadDim) {
    if (s.head_dim != D) return launch_for<T, D + 8>(exec, qkv, out, s);
    constexpr size_t smem = smem_bytes_for(D);
    auto kernel = flash_attn_kernel<T, D>;
    if (smem > 48 * 1024)
      CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    const dim3 grid(ceil_div(s.seq, kBlockRows), s.heads, s.batch);
    kernel<<<grid, kWarps * 32, smem, exec.stream>>>(qkv, out, s.seq, s.heads, s.causal, s.scale * kLog2e);
  } else {
    require(false, "attention", "the tiled kernel takes head_dim 8 to 128 in steps of 8");
  }
}

}  // namespace

bool flash_shape_supported(const AttnShape& s) {
  return s.head_dim % 8 == 0 && s.head_dim >= 8 && s.head_dim <= kMaxHeadDim && s.seq > 0 && s.batch >= 0 &&
         s.batch <= 65535 && s.heads > 0 && s.heads <= 65535 && s.scale > 0.f;
}

void launch_flash_attention(const Exec& exec, const void* qkv, void* out, DType type, const AttnShape& s) {
  require(flash_shape_supported(s), "attention",
          "the tiled kernel takes head_dim 8 to 128 in steps of 8 and a positive scale");
  require(type != DType::F32, "attention", "the tiled kernel takes fp16 or bf16");
  if (s.batch == 0) return;
  if (type == DType::F16)
    launch_for<__half, 8>(exec, static_cast<const __half*>(qkv), static_cast<__half*>(out), s);
  else
    launch_for<__nv_bfloat16, 8>(exec, static_cast<const __nv_bfloat16*>(qkv), static_cast<__nv_bfloat16*>(out), s);
}

}  // namespace clip::cuda
