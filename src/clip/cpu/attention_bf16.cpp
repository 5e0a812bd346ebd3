#include "clip/cpu/attention_bf16.h"

// GCC 12's own AVX-512 intrinsics (_mm512_undefined_*, used by reductions
// and roundscale) trip -Wmaybe-uninitialized (GCC bug 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "clip/cpu/simd.h"

// Builds without -march (the fuzz build) still compile these functions for
// AVX512_BF16; they run only where the CPU has it (attention.h's callers).
#define CLIP_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

namespace clip::cpu {

namespace {

constexpr int kBlocks = 2;  // 16-wide column blocks per pass: kRows x kBlocks sums, as attention.cpp

size_t tile_words(int seq_pad, int dim_pad) {
  // k, v, q, p and the keys before their transposition
  return size_t(dim_pad / 2) * seq_pad * 2 + size_t(seq_pad / 2) * dim_pad +
         size_t(Bf16HeadTiles::kRows) * dim_pad / 2 + size_t(Bf16HeadTiles::kRows) * seq_pad / 2;
}

// Keeps a loaded vector in a register (see attention.cpp's in_register).
CLIP_BF16_TARGET inline void in_register(__m512i& v) { asm volatile("" : "+v"(v)); }

// The first n (1..16 or more) floats of p times scale, zero padded, as 16 bf16.
CLIP_BF16_TARGET inline __m256i bf16_16(const float* p, int n, float scale = 1.0f) {
  __m512 x = n >= kLanes ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
  if (scale != 1.0f) x = _mm512_mul_ps(x, _mm512_set1_ps(scale));
  return (__m256i)_mm512_cvtneps_pbh(x);
}

// e^x for x <= 0, to a few parts in 1e6 (well inside bf16's 2^-9, where
// the result goes): x = n ln2 + r, |r| <= ln2 / 2, e^r by its Taylor
// series to degree 5, then scaled by 2^n; 0 below -87. Not simd.h's exp16:
// in a build without -march that one is compiled without AVX-512 and takes
// its vectors in memory, unlike these functions, which pass them in registers.
CLIP_BF16_TARGET inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 in two parts, the first exact
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 120);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512 e = _mm512_scalef_ps(p, n);
  return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LE_OQ), _mm512_setzero_ps());
}

// Words pairing lane i of a (low half) with lane i of b (high half).
// (Vector extensions: GCC 12 warns on its own _mm512_cvtepu16_epi32.)
CLIP_BF16_TARGET inline __m512i interleave(__m256i a, __m256i b) {
  using u16x16 = uint16_t __attribute__((vector_size(32)));
  using u32x16 = uint32_t __attribute__((vector_size(64)));
  const u32x16 lo = __builtin_convertvector((u16x16)a, u32x16), hi = __builtin_convertvector((u16x16)b, u32x16);
  return (__m512i)(lo | (hi << 16));
}

// acc[r][b] += sum over i < n of the pair a[r * a_stride + i] times the pairs
// m[i * m_stride + 16 b .. + 16): each block of m loaded once and kept in a
// register, kRows x NB independent sums (attention.cpp's accumulate_blocks).
template <int NB>
CLIP_BF16_TARGET inline void accumulate_pairs(const uint32_t* a, int a_stride, const uint32_t* m, int64_t m_stride,
                                              int n, __m512 (&acc)[Bf16HeadTiles::kRows][NB]) {
  for (int i = 0; i < n; ++i) {
    __m512i v[NB];
    for (int b = 0; b < NB; ++b) {
      v[b] = _mm512_loadu_si512(m + int64_t(i) * m_stride + b * kLanes);
      in_register(v[b]);
    }
    for (int r = 0; r < Bf16HeadTiles::kRows; ++r) {
      const __m512i x = _mm512_set1_epi32(static_cast<int>(a[r * a_stride + i]));
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_dpbf16_ps(acc[r][b], (__m512bh)x, (__m512bh)v[b]);
    }
  }
}

template <int NB>
CLIP_BF16_TARGET void score_blocks(const uint32_t* q, const uint32_t* k, int pairs, int seq_pad, int rows, int jb,
                                   float* scores) {
  __m512 acc[Bf16HeadTiles::kRows][NB];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  accumulate_pairs<NB>(q, pairs, k + jb, seq_pad, pairs, acc);
  for (int r = 0; r < rows; ++r)
    for (int b = 0; b < NB; ++b) _mm512_storeu_ps(scores + r * seq_pad + jb + b * kLanes, acc[r][b]);
}

template <int NB>
CLIP_BF16_TARGET void output_blocks(const uint32_t* p, int half, const uint32_t* v, int dim_pad, int dim, int rows,
                                    int key_pairs, int cb, const float* scale, float* const* out) {
  __m512 acc[Bf16HeadTiles::kRows][NB];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  accumulate_pairs<NB>(p, half, v + cb, dim_pad, key_pairs, acc);
  for (int r = 0; r < rows; ++r)
    for (int b = 0; b < NB; ++b) {
      const int c = cb + b * kLanes, n = std::min(kLanes, dim - c);
      const __m512 o = _mm512_mul_ps(acc[r][b], _mm512_set1_ps(scale[r]));
      if (n >= kLanes)
        _mm512_storeu_ps(out[r] + c, o);
      else if (n > 0)
        _mm512_mask_storeu_ps(out[r] + c, __mmask16((1u << n) - 1), o);
    }
}

}  // namespace

void Bf16HeadTiles::reserve(AttentionScratch& scratch, int threads, int seq, int dim) {
  const int seq_pad = round_up_to_lanes(seq), dim_pad = round_up_to_lanes(dim);
  for (int t = 0; t < threads; ++t) {
    scratch.words(t, tile_words(seq_pad, dim_pad));
    scratch.get(t, size_t(kRows) * seq_pad);
  }
}

Bf16HeadTiles::Bf16HeadTiles(AttentionScratch& scratch, int thread, int seq, int dim)
    : seq_(seq), seq_pad_(round_up_to_lanes(seq)), dim_(dim), dim_pad_(round_up_to_lanes(dim)) {
  k_ = scratch.words(thread, tile_words(seq_pad_, dim_pad_));
  v_ = k_ + size_t(dim_pad_ / 2) * seq_pad_;
  q_ = v_ + size_t(seq_pad_ / 2) * dim_pad_;
  p_ = q_ + size_t(kRows) * dim_pad_ / 2;
  key_rows_ = p_ + size_t(kRows) * seq_pad_ / 2;
  scores_ = scratch.get(thread, size_t(kRows) * seq_pad_);
  std::fill(q_, q_ + size_t(kRows) * dim_pad_ / 2, 0u);
}

CLIP_BF16_TARGET void Bf16HeadTiles::load_keys_values(const float* item, int64_t row_stride, int64_t k_off,
                                                      int64_t v_off) {
  // Keys: a row's bf16 values, read as words, are its pairs of dimensions.
  // Rows first, then their transposition (so that each column j of k_ is
  // key j), from a buffer that stays in L1. Padding keys are zero.
  const int pairs = dim_pad_ / 2;
  for (int j = 0; j < seq_pad_; ++j) {
    uint32_t* row = key_rows_ + int64_t(j) * pairs;
    if (j >= seq_) {
      std::fill(row, row + pairs, 0u);
      continue;
    }
    const float* k = item + j * row_stride + k_off;
    for (int c = 0; c < dim_pad_; c += kLanes) _mm256_storeu_si256((__m256i*)(row + c / 2), bf16_16(k + c, dim_ - c));
  }
  for (int c = 0; c < pairs; ++c)
    for (int j = 0; j < seq_pad_; ++j) k_[int64_t(c) * seq_pad_ + j] = key_rows_[int64_t(j) * pairs + c];
  // Values: keys 2j and 2j + 1 interleaved, dimension by dimension.
  for (int j = 0; j < seq_pad_; j += 2) {
    uint32_t* dst = v_ + int64_t(j / 2) * dim_pad_;
    for (int c = 0; c < dim_pad_; c += kLanes) {
      const __m256i lo = j < seq_ ? bf16_16(item + j * row_stride + v_off + c, dim_ - c) : _mm256_setzero_si256();
      const __m256i hi =
          j + 1 < seq_ ? bf16_16(item + (j + 1) * row_stride + v_off + c, dim_ - c) : _mm256_setzero_si256();
      _mm512_storeu_si512(dst + c, interleave(lo, hi));
    }
  }
}

CLIP_BF16_TARGET void Bf16HeadTiles::set_query(int r, const float* q, float scale) {
  uint32_t* dst = q_ + r * dim_pad_ / 2;
  for (int c = 0; c < dim_pad_; c += kLanes)
    _mm256_storeu_si256((__m256i*)(dst + c / 2), bf16_16(q + c, dim_ - c, scale));
}

CLIP_BF16_TARGET void Bf16HeadTiles::attend(int rows, const int* visible, float* const* out) {
  const int keys = *std::max_element(visible, visible + rows);
  const int keys_pad = round_up_to_lanes(keys);
  const int pairs = dim_pad_ / 2, half = seq_pad_ / 2;

  int jb = 0;
  for (; jb + kBlocks * kLanes <= keys_pad; jb += kBlocks * kLanes)
    score_blocks<kBlocks>(q_, k_, pairs, seq_pad_, rows, jb, scores_);
  for (; jb < keys_pad; jb += kLanes) score_blocks<1>(q_, k_, pairs, seq_pad_, rows, jb, scores_);

  // Softmax in float32, its exponentials stored straight away as bf16 pairs
  // of keys, unnormalised: the output is divided by the sum instead (dim
  // values rather than keys). Keys a query may not see weigh nothing.
  float inv_sum[kRows];
  for (int r = 0; r < rows; ++r) {
    const float* s = scores_ + r * seq_pad_;
    const int n = visible[r];
    auto valid = [n](int j) { return j + kLanes <= n ? __mmask16(0xffff) : __mmask16((1u << std::max(0, n - j)) - 1); };
    __m512 mx = _mm512_set1_ps(-3.0e38f);
    for (int j = 0; j < n; j += kLanes) mx = _mm512_mask_max_ps(mx, valid(j), mx, _mm512_loadu_ps(s + j));
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < keys_pad; j += kLanes) {
      const __mmask16 k = valid(j);
      const __m512 e = _mm512_maskz_mov_ps(k, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), m)));
      sum = _mm512_add_ps(sum, e);
      _mm256_storeu_si256((__m256i*)(p_ + r * half + j / 2), (__m256i)_mm512_cvtneps_pbh(e));
    }
    inv_sum[r] = 1.0f / _mm512_reduce_add_ps(sum);
  }

  int cb = 0;
  for (; cb + kBlocks * kLanes <= dim_pad_; cb += kBlocks * kLanes)
    output_blocks<kBlocks>(p_, half, v_, dim_pad_, dim_, rows, keys_pad / 2, cb, inv_sum, out);
  for (; cb < dim_pad_; cb += kLanes)
    output_blocks<1>(p_, half, v_, dim_pad_, dim_, rows, keys_pad / 2, cb, inv_sum, out);
}

}  // namespace clip::cpu
