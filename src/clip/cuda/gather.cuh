// Row gather: dst[r] = src[rows[r]] for r < n, rows of row_bytes bytes. The
// towers use it to keep only the pooled rows (class tokens, end-of-text
// tokens) for the last layer's MLP: no other row reaches the output.
#pragma once
#include <cstddef>
#include <cstdint>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// rows: device int32 [n], each a row index into src; dst must not overlap src.
void gather_rows(const Exec& exec, const void* src, const int32_t* rows, int n, size_t row_bytes, void* dst);

// The same rows of two tables in one launch (the last layer gathers both
// the attention output and the residual stream: one launch fewer at batch 1).
struct GatherTable {
  const void* src;
  size_t row_bytes;
  void* dst;
};
void gather_rows(const Exec& exec, const int32_t* rows, int n, const GatherTable& a, const GatherTable* b = nullptr);

}  // namespace clip::cuda
