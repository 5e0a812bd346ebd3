// The element-wise passes around the CPU backend's reduced-precision GEMMs
// (gemm.h): activations to bf16 or to int8 before the GEMM, weights to int8
// once at load, and the int8 GEMM's int32 results back to float32 after it.
//
// int8 scheme (issue 28): weights symmetric per output channel (scale =
// max|w| / 127, no zero point, so no calibration data); activations
// asymmetric per token (row), u8 with a zero point, because VNNI multiplies
// u8 by s8 and because post-GELU inputs are far from symmetric. With
// x ~ sx (qx - zx) and w ~ sw qw:
//   y[m][n] = sx[m] sw[n] (sum_k qx qw - zx[m] sum_k qw[n]) + b[n]
// where the bracket is exact in int32. oneDNN 2.6 has no per-row scale that
// keeps its fast kernel (a {M,1} binary post-op falls back to its reference
// int8 code, ~1000x slower), so that epilogue is ours.
#pragma once
#include <cstdint>
#include <vector>

#include "clip/cpu/epilogue.h"
#include "clip/cpu/thread_pool.h"

namespace clip::cpu {

// fp32 -> bf16, round to nearest even, `n` values.
void to_bf16(const float* x, int64_t n, uint16_t* y);
// rows x cols floats to bf16 on the pool.
void rows_to_bf16(const float* x, int64_t rows, int64_t cols, uint16_t* y, ThreadPool& pool);

// Per-token u8 quantisation of rows x cols floats: q = clamp(round(x /
// scale) + zero, 0, 255), with [min, max] (widened to hold 0) mapped onto 0..255.
struct QuantizedRows {
  std::vector<uint8_t> q;     // [rows, cols]
  std::vector<float> scale;   // [rows]
  std::vector<int32_t> zero;  // [rows]
};
void quantize_rows(const float* x, int64_t rows, int64_t cols, QuantizedRows& out, ThreadPool& pool);

// Symmetric per-output-channel int8 weights W [out, in] -> q (same layout),
// scale[out] and the row sums of q (the zero-point term of the epilogue).
struct QuantizedWeights {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> sum;
};
QuantizedWeights quantize_weights(const float* w, int64_t out, int64_t in);

// The int8 GEMM's epilogue for a block of `rows` x `cols` int32 results
// (acc, dense), output columns [col0, col0 + cols) of a layer whose per-row
// terms start at row_scale / row_zero (already offset to the block's first
// row): y[r * ldy + c] = act(dequantised + bias), or += for Accumulate.
struct Int8Columns {
  const float* scale;  // weight scale per column (offset to col0)
  const int32_t* sum;  // weight row sums per column (offset to col0)
  const float* bias;   // per column (offset to col0), or nullptr
};
void dequantize_block(const int32_t* acc, int64_t rows, int64_t cols, const float* row_scale, const int32_t* row_zero,
                      const Int8Columns& columns, Epilogue ep, float* y, int64_t ldy);

}  // namespace clip::cpu
