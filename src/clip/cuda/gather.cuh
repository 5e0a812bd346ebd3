// Row gather: dst[r] = src[rows[r]] for r < n, rows of row_bytes bytes. The
// towers use it to keep only the pooled rows (class tokens, end-of-text
// tokens) for the last layer's MLP: no other row reaches the output.
#pragma once
#include <cstddef>
#include <cstdint>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// One table: rows of row_bytes bytes from src to dst (which must not
// overlap src).
struct GatherTable {
  const void* src;
  size_t row_bytes;
  void* dst;
};

// rows: device int32 [n], each a row index into the source. With b, the same
// rows of a second table in the same launch (the last layer gathers both the
// attention output and the residual stream: one launch fewer at batch 1).
void gather_rows(const Exec& exec, const int32_t* rows, int n, const GatherTable& a, const GatherTable* b = nullptr);

}  // namespace clip::cuda
