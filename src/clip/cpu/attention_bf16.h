// One (item, head) of attention whose two products, q k^T and p v, are bf16
// dot products with float32 sums (AVX512_BF16 vdpbf16ps): twice the fp32
// FMA rate per instruction. The bf16 and int8 paths use it (their GEMM
// inputs already carry 8 bits of mantissa or fewer); the softmax, its
// maximum and its sum stay float32, and so does the output. attention.cpp
// runs the tasks; callers check cpu_has_native_bf16() first.
//
// q, k, p and v are rounded to bf16 (nearest even) once, into tiles laid out
// for vdpbf16ps, which multiplies pairs: keys as [dim / 2][keys] pairs of
// adjacent dimensions, values as [keys / 2][dim] pairs of adjacent keys.
#pragma once
#include <cstddef>
#include <cstdint>

#include "clip/cpu/attention.h"

namespace clip::cpu {

class Bf16HeadTiles {
 public:
  static constexpr int kRows = 8;  // queries handled together

  // Working memory for heads of `seq` keys and `dim` dimensions, reserved on
  // every pool thread before the tasks start (workers must not grow it).
  static void reserve(AttentionScratch& scratch, int threads, int seq, int dim);
  Bf16HeadTiles(AttentionScratch& scratch, int thread, int seq, int dim);

  // Keys and values of one head: row j of the item at item + j * row_stride,
  // keys from column k_off, values from v_off.
  void load_keys_values(const float* item, int64_t row_stride, int64_t k_off, int64_t v_off);
  // Query slot r (< kRows): q[0..dim) * scale.
  void set_query(int r, const float* q, float scale);
  // Queries 0..rows-1; query r sees keys [0, visible[r]) and writes its
  // dim outputs to out[r].
  void attend(int rows, const int* visible, float* const* out);

 private:
  int seq_, seq_pad_, dim_, dim_pad_;
  uint32_t* k_;         // [dim_pad / 2][seq_pad]: pairs of dimensions 2c, 2c + 1 of key j
  uint32_t* v_;         // [seq_pad / 2][dim_pad]: dimension c of keys 2j, 2j + 1
  uint32_t* q_;         // [kRows][dim_pad / 2]
  uint32_t* p_;         // [kRows][seq_pad / 2]: the probabilities, as pairs of keys
  uint32_t* key_rows_;  // [seq_pad][dim_pad / 2]: the keys as rows of pairs, before k_
  float* scores_;       // [kRows][seq_pad]
};

}  // namespace clip::cpu
