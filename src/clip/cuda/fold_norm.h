// A LayerNorm's affine part moved into the linear layer it feeds:
//   (z * gamma + beta) w^T + b = z w'^T + (b + w beta),
//   w' = w diag(gamma) with each row shifted to sum to zero,
// for the normalised z (whose mean is zero, so the shift changes nothing).
// The CUDA backend loads qkv and fc1 this way and runs their norms without
// gamma/beta (ones and zeros). The zero row sums are what let a large pass
// fold the whole norm into the GEMM (ln_fold.cuh): x w'^T = (x - mean) w'^T
// for the raw stream x. Every path shares these weights: no second copy on
// the GPU.
#pragma once
#include "clip/model/weights.h"

namespace clip::cuda {

// The folded layer. Throws clip::Error naming `what` when the shapes do not
// line up (norm [in], weight [out, in], bias [out]).
LinearWeights fold_norm(const LinearWeights& l, const NormWeights& norm, const std::string& what);

}  // namespace clip::cuda
