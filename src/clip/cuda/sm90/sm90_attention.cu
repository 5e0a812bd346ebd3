// Attention on Hopper warpgroup MMAs (wgmma, sm_90a); see sm90_attention.h.
//
// One block (one warpgroup) per (image, head). The block copies the head's
// K and V (64 values a row, 128 bytes) into shared memory in the 128-byte
// swizzled layout wgmma reads (16-byte chunk c of row r stored at chunk
// c ^ (r & 7)), then takes its 64-query tiles in turn:
//   S = Q K^T     wgmma m64nNk16, Q fragments from global memory into
//                 registers (the next tile's loaded during this one), K from
//                 shared memory
//   online softmax in float32 registers, one FMA and one ex2 per score;
//                 the running maximum moves only when it would otherwise
//                 lag by more than 2^8 in P, so most blocks skip the
//                 rescaling of O
//   O += P V      wgmma m64n64k16, P from registers: the S accumulators of
//                 keys 16c..16c+15 are exactly the A fragment of that k-step
// over 64-key blocks (the last 16 or 64 wide), issuing the next block's S
// product before waiting on this block's P V so the two overlap. Three
// blocks share an SM, so one's softmax and copies overlap the others'
// products.
//
// Queries past the last full 64-row tile: when a handful remain (ViT-L/14's
// 257 = 4 x 64 + 1, ViT-B/16's 197 = 3 x 64 + 5), a 64-row tile for them
// would add up to a third more work; instead they form one 16-row mma.sync
// tile (the "tail"), each warp takes a quarter of the keys, and the
// quarters are merged through shared memory. Otherwise the last tile is
// padded with zero queries whose results are not stored.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/mma_utils.cuh"
#include "clip/cuda/sm90/sm90_attention.h"

namespace clip::cuda::sm90 {
namespace {

constexpr int kD = 64;               // head dimensions in the swizzled tiles
constexpr int kRow = kD * 2;         // bytes of a K or V row there (16-bit types)
constexpr int kXRow = 16;            // bytes of a K or V row's 8 extra dimensions (head_dim 72)
constexpr int kKxPad = 8;            // zero rows after K's extra tile (smem_desc_x)
constexpr int kTileQ = 64;           // queries per warpgroup tile: the wgmma M
constexpr int kKeyBlock = 64;        // keys per S product
constexpr int kMaxTail = 8;          // up to this many rows past the full tiles go to the tail
constexpr int kWarps = 4;            // a warpgroup
constexpr int kPartFloats = kD + 2;  // a tail share: running max, sum, 64 outputs
constexpr float kStaleLog2 = 8.f;    // the running maximum may lag the true one by up to 2^8 in P

// Shared memory layout and work split for a sequence length and head_dim
// (64 or 72; host and device).
struct Plan {
  int q_tiles = 0, tail_rows = 0;               // 64-row tiles, tail rows after them
  int kv_blocks = 0, kv_last = 0, kv_rows = 0;  // full 64-key blocks, the last block's width, keys copied
  int v_off = 0;                                // from a 1024-byte aligned base; K at 0
  int kx_off = 0, vx_off = 0;                   // head_dim 72: K's and V's dimensions 64..71
  int q_off = 0, part_off = 0, bytes = 0;
};

__host__ __device__ inline Plan make_plan(int seq, int head_dim) {
  Plan p;
  const int full = seq / kTileQ, rem = seq % kTileQ;
  // The tail's mma.sync path is written for head_dim 64; at 72 the last
  // tile is padded instead.
  if (head_dim == kD && rem != 0 && rem <= kMaxTail && full > 0) {
    p.q_tiles = full;
    p.tail_rows = rem;
  } else {
    p.q_tiles = full + (rem != 0);
  }
  p.kv_blocks = seq / kKeyBlock;
  const int krem = seq % kKeyBlock;
  p.kv_last = krem == 0 ? 0 : krem <= 16 ? 16 : 64;  // 32 wide: ptxas serialises (C7511)
  p.kv_rows = p.kv_blocks * kKeyBlock + p.kv_last;
  // kv_rows is a multiple of 16, so V starts on a 2048-byte boundary (a
  // swizzle atom is 8 rows, 1024 bytes, and must be aligned to them). Only
  // the tail's queries go through shared memory.
  p.v_off = p.kv_rows * kRow;
  p.kx_off = 2 * p.v_off;
  // K's extra tile has 8 rows more (kKxPad, smem_desc_x).
  p.vx_off = p.kx_off + (head_dim == kD ? 0 : (p.kv_rows + kKxPad) * kXRow);
  p.q_off = p.vx_off + (head_dim == kD ? 0 : p.kv_rows * kXRow);
  p.part_off = p.q_off + p.tail_rows * kRow;
  p.bytes = p.part_off + p.tail_rows * kWarps * kPartFloats * int(sizeof(float));
  return p;
}

// Byte offset of 16-byte chunk c of row r in a 128-byte swizzled tile.
__device__ __forceinline__ int swz(int r, int c) { return r * kRow + ((c ^ (r & 7)) << 4); }

// wgmma shared-memory descriptor for a tile of 128-byte rows in the 128-byte
// swizzle, 8-row groups 1024 bytes apart (the stride byte offset). The same
// descriptor serves K as a K-major B operand (rows = keys, the reduction
// over head dimensions runs along the row) and V as an MN-major one (rows =
// keys, the reduction runs across rows), one swizzle atom wide either way,
// so the leading byte offset is never used.
__device__ __forceinline__ uint64_t smem_desc(const void* p) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

// Descriptor for head_dim 72's extra tiles: rows of 8 values (16 bytes,
// kXRow), unswizzled, so 8 consecutive rows are one 128-byte core matrix.
// In both roles the core matrices of the next 8 keys are 128 bytes on: for
// K (K-major) that is the stride byte offset, and the leading byte offset
// (the next 8 of the 16-deep reduction, dimensions 72..79, which do not
// exist) points at the next 8 keys' values too, which the zero half of Q's
// fragment cancels. They must be finite: a NaN times 0 is NaN (seen on the
// H100 when they were rows still in flight, or left by another block). So
// each copy group of K's extra tile runs 8 rows past its keys, and the tile
// has kKxPad zero rows at its end.
__device__ __forceinline__ uint64_t smem_desc_x(const void* p) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(128 >> 4) << 16) | (uint64_t(128 >> 4) << 32);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// Keeps the compiler from moving accesses of an accumulator across the
// asynchronous MMA's issue and wait (CUTLASS's warpgroup_fence_operand).
template <int N>
__device__ __forceinline__ void fence_regs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

// D(64 x N, f32) = A(64 x 16, registers) B(16 x N, shared memory) (+ D if
// Accumulate), on the first N/2 accumulators. TransB: B is MN-major (V)
// rather than K-major (K). Without Accumulate the accumulators are outputs
// only: ptxas then needs no instruction to define them before the product
// (which would serialise the wgmma pipeline, warning C7515).
#define CLIP_WGMMA_ASM(SHAPE, TYPE, DLIST, A, DESC, ACC, TB)                                                           \
  "{\n.reg .pred p;\nsetp.ne.b32 p, %" ACC ", 0;\nwgmma.mma_async.sync.aligned." SHAPE ".f32." TYPE "." TYPE " " DLIST \
  ", {%" A "}, %" DESC ", p, 1, 1, %" TB ";\n}\n"
#define CLIP_D8(C, d, o) \
  C(d[o]), C(d[o + 1]), C(d[o + 2]), C(d[o + 3]), C(d[o + 4]), C(d[o + 5]), C(d[o + 6]), C(d[o + 7])
#define CLIP_WGMMA_IN(a, desc, acc, tb) "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "n"(acc), "n"(tb)
#define CLIP_L8 "{%0, %1, %2, %3}"
#define CLIP_L16 "{%0, %1, %2, %3, %4, %5, %6, %7}"
#define CLIP_L64                                                                                          \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
// One asm statement for a shape, type and accumulator constraint ("+f" or "=f").
#define CLIP_WGMMA_8(TYPE, C)                                                             \
  asm volatile(CLIP_WGMMA_ASM("m64n8k16", TYPE, CLIP_L8, "4, %5, %6, %7", "8", "9", "10") \
               : C(d[0]), C(d[1]), C(d[2]), C(d[3])                                       \
               : CLIP_WGMMA_IN(a, desc, int(Accumulate), TransB))
#define CLIP_WGMMA_16(TYPE, C)                                                                  \
  asm volatile(CLIP_WGMMA_ASM("m64n16k16", TYPE, CLIP_L16, "8, %9, %10, %11", "12", "13", "14") \
               : CLIP_D8(C, d, 0)                                                               \
               : CLIP_WGMMA_IN(a, desc, int(Accumulate), TransB))
#define CLIP_WGMMA_64(TYPE, C)                                                                    \
  asm volatile(CLIP_WGMMA_ASM("m64n64k16", TYPE, CLIP_L64, "32, %33, %34, %35", "36", "37", "38") \
               : CLIP_D8(C, d, 0), CLIP_D8(C, d, 8), CLIP_D8(C, d, 16), CLIP_D8(C, d, 24)         \
               : CLIP_WGMMA_IN(a, desc, int(Accumulate), TransB))
#define CLIP_WGMMA_N(N, TYPE)     \
  do {                            \
    if constexpr (Accumulate)     \
      CLIP_WGMMA_##N(TYPE, "+f"); \
    else                          \
      CLIP_WGMMA_##N(TYPE, "=f"); \
  } while (0)

template <int N, int TransB, bool Accumulate, typename T>
__device__ __forceinline__ void wgmma_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc) {
  static_assert(N == 16 || N == 64, "N: 32-wide S products serialise the wgmma pipeline (make_plan)");
  constexpr bool bf = std::is_same_v<T, __nv_bfloat16>;
  if constexpr (N == 16) {
    if constexpr (bf)
      CLIP_WGMMA_N(16, "bf16");
    else
      CLIP_WGMMA_N(16, "f16");
  } else {
    if constexpr (bf)
      CLIP_WGMMA_N(64, "bf16");
    else
      CLIP_WGMMA_N(64, "f16");
  }
}
// D(64 x 8) += A(64 x 16, registers) B(16 x 8, shared memory): head_dim
// 72's extra 8 output dimensions (B = V's, MN-major).
template <typename T>
__device__ __forceinline__ void wgmma_rs_n8(float (&d)[4], const uint32_t (&a)[4], uint64_t desc) {
  constexpr bool Accumulate = true;
  constexpr int TransB = 1;
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    CLIP_WGMMA_N(8, "bf16");
  else
    CLIP_WGMMA_N(8, "f16");
}
#undef CLIP_WGMMA_ASM
#undef CLIP_D8
#undef CLIP_WGMMA_IN
#undef CLIP_L8
#undef CLIP_L16
#undef CLIP_L64
#undef CLIP_WGMMA_8
#undef CLIP_WGMMA_16
#undef CLIP_WGMMA_64
#undef CLIP_WGMMA_N

// 2^x in one MUFU instruction (exp2f adds a denormal range fix-up around it:
// three more instructions per score). x = -inf gives 0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// 3 blocks an SM: 168 registers a thread leave room for the S and O
// accumulators of two MMAs in flight (ptxas serialises the wgmma pipeline
// when they do not fit, as at 128), and three blocks' K and V (ViT-L/14:
// 70 KB each) fit in shared memory, so one block's copies overlap the
// others' products.
//
// Head_dim 72 (SigLIP's SO400M): dimensions 0..63 take the path above;
// 64..71 of K and V sit in unswizzled tiles of their own (smem_desc_x). S
// gets a fifth k-step whose Q fragment holds dimensions 64..71 and zeros
// for 72..79, and O's 8 extra dimensions an m64n8k16 product per 16 keys.
//
// Long sequences (K and V over ~75 KB: B/16-384's 576 tokens) leave room
// for one block an SM, and one warpgroup alone cannot overlap its softmax
// with its products. There WG warpgroups share the block's K and V, taking
// its query tiles in turn (tile wg, wg + WG, ...); the launcher gives every
// warpgroup a tile and such sequences no tail.
template <typename T, int D, int KvLast, int WG>
__global__ void __launch_bounds__(WG* kWarps * 32, WG == 1 ? 3 : 1)
    attn_wgmma_kernel(const T* __restrict__ qkv, T* __restrict__ out, int seq, int heads, float scale_log2) {
  static_assert(D == kD || D == kD + 8, "head_dim 64 or 72");
  constexpr bool kExtra = D != kD;
  constexpr int kThreads = WG * kWarps * 32;
  constexpr int kSteps = kExtra ? 5 : 4;  // 16-deep k-steps of S
  extern __shared__ unsigned char smem_raw[];
  unsigned char* Ks =
      reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  const Plan p = make_plan(seq, D);
  unsigned char* Vs = Ks + p.v_off;
  unsigned char* Kx = Ks + p.kx_off;
  unsigned char* Vx = Ks + p.vx_off;
  // Descriptors of K and V's first rows; a row r bytes on is r >> 4 more in
  // the start-address field (which cannot carry: shared memory < 256 KB).
  const uint64_t k_desc = smem_desc(Ks), v_desc = smem_desc(Vs);
  const uint64_t kx_desc = smem_desc_x(Kx), vx_desc = smem_desc_x(Vx);
  unsigned char* Qs = Ks + p.q_off;  // the tail's queries
  float* part = reinterpret_cast<float*>(Ks + p.part_off);
  const int b = blockIdx.x / heads, h = blockIdx.x % heads;
  const int hidden = heads * D, row_len = 3 * hidden;
  const T* base = qkv + int64_t(b) * seq * row_len + h * D;
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;  // warp: in its warpgroup
  const int g = lane >> 2, t = lane & 3;                                                    // fragment coordinates

  // A tile's Q fragments (rows row0 + g, + 8 of this warp's 16; 16 head
  // dimensions per k-step) straight from global memory, one tile ahead: the
  // loads for the next tile are in flight while this one computes.
  auto load_q = [&](uint32_t(&qf)[kSteps][4], int tile) {
    const int r0 = tile * kTileQ + warp * 16 + g, r1 = r0 + 8;
    const T* p0 = base + int64_t(min(r0, seq - 1)) * row_len + 2 * t;
    const T* p1 = base + int64_t(min(r1, seq - 1)) * row_len + 2 * t;
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      qf[kk][0] = r0 < seq ? ld32(p0 + 16 * kk) : 0u;
      qf[kk][1] = r1 < seq ? ld32(p1 + 16 * kk) : 0u;
      qf[kk][2] = r0 < seq ? ld32(p0 + 16 * kk + 8) : 0u;
      qf[kk][3] = r1 < seq ? ld32(p1 + 16 * kk + 8) : 0u;
    }
    if constexpr (kExtra) {
      qf[4][0] = r0 < seq ? ld32(p0 + 64) : 0u;
      qf[4][1] = r1 < seq ? ld32(p1 + 64) : 0u;
      qf[4][2] = qf[4][3] = 0u;  // dimensions 72..79
    }
  };
  uint32_t q_next[kSteps][4];
  if (p.q_tiles > wg) load_q(q_next, wg);

  // K, V (and the tail's queries) -> shared memory, 16-byte asynchronous
  // copies, all in flight at once, in two groups: the first 64 keys (and
  // the tail's queries), then the rest, so the first tile starts on its
  // first key block while the others arrive. Keys past the sequence are
  // zero-filled (a zero key scores 0 and is masked below, a zero value
  // adds nothing).
  // A thread copies chunk c = tid % 8 of rows tid / 8, tid / 8 + 16, ...
  // (row_begin is a multiple of 16): r & 7 is the same in all of them, so
  // is the swizzled chunk, and the addresses step by constants.
  constexpr int kRowStep = kThreads / 8;
  static_assert(kRowStep % 8 == 0, "the swizzle repeats every 8 rows");
  const int c_own = threadIdx.x & 7, r_own = threadIdx.x >> 3;
  const int chunk_own = (c_own ^ (r_own & 7)) << 4;
  auto copy_kv = [&](int row_begin, int row_end) {
    const T* src = base + int64_t(row_begin + r_own) * row_len + c_own * 8;
    for (int r = row_begin + r_own; r < row_end; r += kRowStep, src += int64_t(kRowStep) * row_len) {
      const bool in_seq = r < seq;
      const T* from = in_seq ? src : base;  // a row past the sequence reads nothing; keep the address valid
      cp_async_16(Ks + r * kRow + chunk_own, from + hidden, in_seq);
      cp_async_16(Vs + r * kRow + chunk_own, from + 2 * hidden, in_seq);
    }
    if constexpr (kExtra) {  // dimensions 64..71, a row a thread; K's 8 rows on (smem_desc_x)
      for (int r = row_begin + int(threadIdx.x); r < row_end + kKxPad; r += kThreads) {
        const bool in_seq = r < seq;
        const T* from = base + (in_seq ? int64_t(r) * row_len : 0) + kD;
        if (r >= row_begin + kKxPad || row_begin == 0) cp_async_16(Kx + r * kXRow, from + hidden, in_seq);
        if (r < row_end) cp_async_16(Vx + r * kXRow, from + 2 * hidden, in_seq);
      }
    }
  };
  const int first_rows = min(kKeyBlock, p.kv_rows);
  copy_kv(0, first_rows);
  for (int i = threadIdx.x; i < p.tail_rows * 8; i += blockDim.x) {
    const int r = i >> 3, c = i & 7;
    cp_async_16(Qs + swz(r, c), base + int64_t(p.q_tiles * kTileQ + r) * row_len + c * 8, true);
  }
  asm volatile("cp.async.commit_group;\n" ::: "memory");
  copy_kv(first_rows, p.kv_rows);
  asm volatile("cp.async.commit_group;\n" ::: "memory");
  // Each thread waits for its own copies; the tensor cores read shared
  // memory through the async proxy, so make them visible to it, then to
  // the whole block.
  asm volatile("cp.async.wait_group 1;\n" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  bool all_keys = first_rows == p.kv_rows;
  auto need_all_keys = [&] {  // block-uniform
    if (all_keys) return;
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    all_keys = true;
  };

  // need_all_keys' barrier comes in each warpgroup's first tile, at the
  // same point of the key walk: every warpgroup has one.
  for (int tile = wg; tile < p.q_tiles; tile += WG) {
    const int row0 = tile * kTileQ + warp * 16;  // this warp's 16 rows of the tile
    uint32_t qf[kSteps][4];
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk)
#pragma unroll
      for (int e = 0; e < 4; ++e) qf[kk][e] = q_next[kk][e];
    if (tile + WG < p.q_tiles) load_q(q_next, tile + WG);

    float s[32], o[32];                  // S of a 64-key block; O
    float ox[4] = {0.f, 0.f, 0.f, 0.f};  // O's dimensions 64..71 (head_dim 72)
#pragma unroll
    for (int i = 0; i < 32; ++i) o[i] = 0.f;
    float m[2] = {-INFINITY, -INFINITY};  // rows g, g + 8: the maximum the exponents are taken against
    float l[2] = {0.f, 0.f};              // and the sums of the exponents
    // Issue S = Q K^T for keys k0..k0+N-1 into s (completes at the next wait).
    auto issue_s = [&](auto n_keys, float(&s)[32], int k0) {
      constexpr int N = decltype(n_keys)::value;
      wgmma_fence();
      wgmma_rs<N, 0, false, T>(s, qf[0], k_desc + (k0 * kRow >> 4));
#pragma unroll
      for (int kk = 1; kk < 4; ++kk) wgmma_rs<N, 0, true, T>(s, qf[kk], k_desc + ((k0 * kRow + kk * 32) >> 4));
      if constexpr (kExtra) wgmma_rs<N, 0, true, T>(s, qf[4], kx_desc + (k0 * kXRow >> 4));
      wgmma_commit();
    };
    // Softmax of the S block in registers, O rescaled, then issue O += P V.
    auto softmax_pv = [&](auto n_keys, float(&s)[32], int k0, bool mask) {
      constexpr int N = decltype(n_keys)::value;
      // Maxima of the raw scores (the scale is positive); each score then
      // costs one FMA and one MUFU: p = 2^(scale s - scale m).
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < N / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (mask && k0 + 8 * j + 2 * t + (e & 1) >= seq) s[4 * j + e] = -INFINITY;
          mx[e >> 1] = fmaxf(mx[e >> 1], s[4 * j + e]);
        }
      }
      // The maximum moves only when a row's new scores exceed it by more
      // than 2^kStaleLog2 (FlashAttention-4's lazy rescaling): below that,
      // P stays under 2^kStaleLog2, well inside 16-bit range, and O and the
      // sums need no rescaling. After the first block that is rare, so the
      // warp skips the 32 multiplications of O on most blocks. The first
      // block always moves it: m = -inf, and every block holds at least one
      // key of the sequence (no causal mask), so mx is finite.
      bool moves[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = quad_max(mx[r]);  // the 4 threads of a quad share a row
        moves[r] = (mx[r] - m[r]) * scale_log2 > kStaleLog2;
      }
      if (__any_sync(0xffffffffu, moves[0] || moves[1])) {  // warp-uniform: O's rows are the warp's own
        float alpha[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const float m_new = moves[r] ? mx[r] : m[r];
          alpha[r] = fast_exp2((m[r] - m_new) * scale_log2);  // 1 where it stays, 0 from -inf
          m[r] = m_new;
        }
        l[0] *= alpha[0], l[1] *= alpha[1];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          o[4 * j] *= alpha[0];
          o[4 * j + 1] *= alpha[0];
          o[4 * j + 2] *= alpha[1];
          o[4 * j + 3] *= alpha[1];
        }
        ox[0] *= alpha[0], ox[1] *= alpha[0], ox[2] *= alpha[1], ox[3] *= alpha[1];
      }
      const float m_use[2] = {m[0] * scale_log2, m[1] * scale_log2};
      uint32_t pf[N / 16][4];
#pragma unroll
      for (int c = 0; c < N / 16; ++c) {
        float pv[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          pv[e] = fast_exp2(fmaf(s[8 * c + e], scale_log2, -m_use[(e >> 1) & 1]));
          l[(e >> 1) & 1] += pv[e];  // per-thread partial sums, reduced over the quad at the end
        }
        pf[c][0] = pack2<T>(pv[0], pv[1]);
        pf[c][1] = pack2<T>(pv[2], pv[3]);
        pf[c][2] = pack2<T>(pv[4], pv[5]);
        pf[c][3] = pack2<T>(pv[6], pv[7]);
      }
      wgmma_fence();
#pragma unroll
      for (int c = 0; c < N / 16; ++c) wgmma_rs<64, 1, true, T>(o, pf[c], v_desc + ((k0 + 16 * c) * kRow >> 4));
      if constexpr (kExtra) {
#pragma unroll
        for (int c = 0; c < N / 16; ++c) wgmma_rs_n8<T>(ox, pf[c], vx_desc + ((k0 + 16 * c) * kXRow >> 4));
      }
      wgmma_commit();
    };
    auto wait = [&] {
      wgmma_wait_all();
      fence_regs(s);
      fence_regs(o);
      fence_regs(ox);
    };

    // The last block's width is a template parameter: ptxas serialises the
    // whole wgmma pipeline (warning C7515) when a run-time branch picks
    // between products of different widths.
    constexpr std::integral_constant<int, kKeyBlock> full{};
    constexpr std::integral_constant<int, (KvLast > 0 ? KvLast : kKeyBlock)> last{};
    if (p.kv_blocks > 0) {
      issue_s(full, s, 0);
      wait();
      for (int kb = 0; kb + 1 < p.kv_blocks; ++kb) {
        softmax_pv(full, s, kb * kKeyBlock, false);  // full blocks hold no key past the sequence
        need_all_keys();
        issue_s(full, s, (kb + 1) * kKeyBlock);
        wait();
      }
      softmax_pv(full, s, (p.kv_blocks - 1) * kKeyBlock, false);
      need_all_keys();
      if constexpr (KvLast > 0) issue_s(last, s, p.kv_blocks * kKeyBlock);
      wait();
    } else if constexpr (KvLast > 0) {
      issue_s(last, s, 0);
      wait();
    }
    if constexpr (KvLast > 0) {
      softmax_pv(last, s, p.kv_blocks * kKeyBlock, true);
      wait();
    }

    const float inv0 = 1.f / quad_sum(l[0]), inv1 = 1.f / quad_sum(l[1]);
    const int r0 = row0 + g, r1 = r0 + 8;
    T* o0 = out + (int64_t(b) * seq + r0) * hidden + h * D + 2 * t;
    T* o1 = out + (int64_t(b) * seq + r1) * hidden + h * D + 2 * t;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (r0 < seq) *reinterpret_cast<uint32_t*>(o0 + 8 * j) = pack2<T>(o[4 * j] * inv0, o[4 * j + 1] * inv0);
      if (r1 < seq) *reinterpret_cast<uint32_t*>(o1 + 8 * j) = pack2<T>(o[4 * j + 2] * inv1, o[4 * j + 3] * inv1);
    }
    if constexpr (kExtra) {
      if (r0 < seq) *reinterpret_cast<uint32_t*>(o0 + kD) = pack2<T>(ox[0] * inv0, ox[1] * inv0);
      if (r1 < seq) *reinterpret_cast<uint32_t*>(o1 + kD) = pack2<T>(ox[2] * inv1, ox[3] * inv1);
    }
  }

  if constexpr (kExtra || WG > 1) return;  // make_plan gives head_dim 72 no tail; nor does the launcher WG > 1
  if (p.tail_rows == 0) return;            // block-uniform
  need_all_keys();
  // The tail rows as one 16-row mma.sync tile (rows past them are zero
  // queries, not kept), each warp over its quarter of the 16-key chunks;
  // each writes its quarter's running max (in log2 units), sum and 64
  // unnormalised outputs per tail row, merged below.
  {
    const int chunks = p.kv_rows / 16;
    const int c_begin = warp * chunks / kWarps, c_end = (warp + 1) * chunks / kWarps;
    const bool row_ok = g < p.tail_rows;  // this thread's row g; row g + 8 is never a tail row
    uint32_t qa[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      qa[kk][0] = row_ok ? ld32(Qs + swz(g, 2 * kk) + 4 * t) : 0u;
      qa[kk][2] = row_ok ? ld32(Qs + swz(g, 2 * kk + 1) + 4 * t) : 0u;
      qa[kk][1] = qa[kk][3] = 0u;
    }
    float acc[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    float m = -INFINITY, l = 0.f;  // row g: raw max and per-thread partial sum
    for (int c = c_begin; c < c_end; ++c) {
      const int k0 = c * 16;
      float sc[2][4] = {};
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        // Lane l addresses key k0 + (l & 7) + 8 (l >> 4), chunk 2 kk + ((l >> 3) & 1):
        // matrices 0, 1 are keys k0..k0+7 (B fragment of n-block 0), 2, 3 the next 8.
        uint32_t kf[4];
        ldmatrix_x4(kf, Ks + swz(k0 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
        mma16816<T>(sc[0], qa[kk], kf[0], kf[1]);
        mma16816<T>(sc[1], qa[kk], kf[2], kf[3]);
      }
      float mx = -INFINITY;
#pragma unroll
      for (int nb = 0; nb < 2; ++nb)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (k0 + nb * 8 + 2 * t + e >= seq) sc[nb][e] = -INFINITY;
          mx = fmaxf(mx, sc[nb][e]);
        }
      mx = quad_max(mx);
      const float m_new = fmaxf(m, mx);
      // A warp's first chunks may all lie past the sequence: m stays -inf.
      const float alpha = m == -INFINITY ? 0.f : fast_exp2((m - m_new) * scale_log2);
      const float m_use = m_new == -INFINITY ? 0.f : m_new * scale_log2;
      m = m_new;
      l *= alpha;
      float pr[2][2];
#pragma unroll
      for (int nb = 0; nb < 2; ++nb)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          pr[nb][e] = fast_exp2(fmaf(sc[nb][e], scale_log2, -m_use));
          l += pr[nb][e];
        }
      const uint32_t a[4] = {pack2<T>(pr[0][0], pr[0][1]), 0u, pack2<T>(pr[1][0], pr[1][1]), 0u};
#pragma unroll
      for (int nd = 0; nd < 8; nd += 2) {
        uint32_t bf[4];
        // Lanes 0-15 address keys k0..k0+15 at dimensions 8 nd.., lanes
        // 16-31 the same keys 8 dimensions on: one ldmatrix, two products.
        ldmatrix_x4_trans(bf, Vs + swz(k0 + (lane & 15), nd + (lane >> 4)));
        acc[nd][0] *= alpha, acc[nd][1] *= alpha, acc[nd + 1][0] *= alpha, acc[nd + 1][1] *= alpha;
        mma16816<T>(acc[nd], a, bf[0], bf[1]);
        mma16816<T>(acc[nd + 1], a, bf[2], bf[3]);
      }
    }
    l = quad_sum(l);
    if (row_ok) {
      float* share = part + (g * kWarps + warp) * kPartFloats;
      if (t == 0) share[0] = m == -INFINITY ? -INFINITY : m * scale_log2, share[1] = l;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        share[2 + 8 * j + 2 * t] = acc[j][0];
        share[3 + 8 * j + 2 * t] = acc[j][1];
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < p.tail_rows * kD; i += blockDim.x) {
    const int tr = i / kD, d = i % kD;
    const float* shares = part + tr * kWarps * kPartFloats;
    float mmax = -INFINITY;
    for (int k = 0; k < kWarps; ++k) mmax = fmaxf(mmax, shares[k * kPartFloats]);
    float num = 0.f, den = 0.f;
    for (int k = 0; k < kWarps; ++k) {
      const float* sh = shares + k * kPartFloats;
      if (sh[0] == -INFINITY) continue;  // a share with no keys
      const float f = fast_exp2(sh[0] - mmax);
      den = fmaf(sh[1], f, den);
      num = fmaf(sh[2 + d], f, num);
    }
    const int qrow = p.q_tiles * kTileQ + tr;
    out[(int64_t(b) * seq + qrow) * hidden + h * kD + d] = from_f32<T>(__fdividef(num, den));
  }
}

// Hopper's shared memory: 228 KB an SM, of which 1 KB is reserved for each
// block, and at most 227 KB for one block.
constexpr int kSmemPerSm = 228 * 1024, kSmemReservedPerBlock = 1024, kSmemPerBlockMax = 227 * 1024;

// A block's dynamic shared memory: the plan plus room to align its base to
// 1024 bytes.
int launch_smem(const Plan& p) { return p.bytes + 1024; }

// Warpgroups a block for this plan: one where three blocks fit an SM, else
// three (fewer with fewer query tiles), unless a tail needs the
// one-warpgroup path. `asked` (AttnProblem::warpgroups) overrides where
// allowed.
int warpgroups_for(const Plan& p, int asked) {
  const bool multi_ok = p.tail_rows == 0 && p.q_tiles >= 2;
  if (asked >= 1) return multi_ok ? std::min(asked, std::min(3, p.q_tiles)) : 1;
  if (3 * (launch_smem(p) + kSmemReservedPerBlock) <= kSmemPerSm || !multi_ok) return 1;
  return std::min(3, p.q_tiles);
}

template <typename T, int D, int WG>
cudaError_t launch_wg(const AttnProblem& pr, const Plan& p, cudaStream_t stream) {
  const int smem = launch_smem(p);
  auto kernel = p.kv_last == 0    ? attn_wgmma_kernel<T, D, 0, WG>
                : p.kv_last == 16 ? attn_wgmma_kernel<T, D, 16, WG>
                                  : attn_wgmma_kernel<T, D, 64, WG>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kernel<<<pr.batch * pr.heads, WG * kWarps * 32, smem, stream>>>(
      static_cast<const T*>(pr.qkv), static_cast<T*>(pr.out), pr.seq, pr.heads, pr.scale_log2);
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t launch(const AttnProblem& pr, cudaStream_t stream) {
  const Plan p = make_plan(pr.seq, D);
  switch (warpgroups_for(p, pr.warpgroups)) {
    case 1: return launch_wg<T, D, 1>(pr, p, stream);
    case 2: return launch_wg<T, D, 2>(pr, p, stream);
    default: return launch_wg<T, D, 3>(pr, p, stream);
  }
}

}  // namespace

bool attention_supported(int seq, int head_dim, bool causal) {
  return (head_dim == kD || head_dim == kD + 8) && !causal && seq >= 1 &&
         launch_smem(make_plan(seq, head_dim)) <= kSmemPerBlockMax;
}

cudaError_t attention(const AttnProblem& pr, cudaStream_t stream) {
  if (pr.batch * pr.heads == 0) return cudaSuccess;
  if (!attention_supported(pr.seq, pr.head_dim, false)) return cudaErrorInvalidValue;
  if (pr.head_dim == kD) return pr.bf16 ? launch<__nv_bfloat16, kD>(pr, stream) : launch<__half, kD>(pr, stream);
  return pr.bf16 ? launch<__nv_bfloat16, kD + 8>(pr, stream) : launch<__half, kD + 8>(pr, stream);
}

}  // namespace clip::cuda::sm90
