// The statistics of a LayerNorm folded into the GEMM after it (gemm.h,
// LnFold).
//
// With that GEMM's weights w' = w diag(gamma), each row shifted to sum to
// zero along k, and its bias b' = b + w beta (fold_norm.h):
//   LN(x) w^T + b = scale (x w'^T) + b',   scale = 1/sqrt(var(x) + eps),
// since x w'^T = (x - mean) w'^T. So the next GEMM reads x itself (an fp16
// copy the residual GEMM writes) and scales its rows in the epilogue, and
// the norm's own pass over the float32 stream (6 bytes an element) goes.
#pragma once
#include <cstdint>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// scale[r] for r < rows from a residual GEMM's partial row statistics
// (sm90::Problem::row_partials): float32 [2][n_tiles][m_stride], the sums of
// each tile column's part of a row, then those of the squares. Summed in a
// fixed order (deterministic), in float32: var = E[x^2] - mean^2, clamped
// at 0.
void ln_fold_stats(const Exec& exec, const float* partials, int64_t rows, int64_t m_stride, int n_tiles, int hidden,
                   float eps, float* scale);

}  // namespace clip::cuda
