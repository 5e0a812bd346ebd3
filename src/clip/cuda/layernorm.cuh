// LayerNorm with float32 statistics (two passes over the row held in
// registers: mean first, then the centred sum of squares, which stays
// accurate where E[x^2] - mean^2 would cancel).
//
// The residual stream stays float32 throughout the towers; the residual add
// itself is fused into the cuBLASLt epilogue of the out-projection and fc2
// GEMMs (beta = 1), so the norms here read one float32 row and write the next
// GEMM's input in the compute precision.
#pragma once
#include <cstdint>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// out[r, :] = (in[src, :] - mean) / sqrt(var + eps) * gamma + beta, where
// src = rows ? rows[r] : r (a gather: the pooled rows of the final norm).
// in: float32 [*, hidden]; out: out_type [n_rows, hidden]; out may be `in`
// itself when rows is null and out_type is F32.
void layernorm(const Exec& exec, const float* in, const int32_t* rows, int64_t n_rows, int hidden, const float* gamma,
               const float* beta, float eps, void* out, DType out_type);

// The vision embeddings and pre_layrnorm in one pass:
//   h[b*seq + s] = LN((s == 0 ? cls : patches[b*(seq-1) + s-1]) + pos[s])
// patches: patch_type [n*(seq-1), hidden] (the patch-embedding GEMM output),
// cls: float32 [hidden], pos: float32 [seq, hidden], h: float32 [n*seq, hidden].
// With h16 (fp16 [n*seq, hidden]) and next_scale (float32 [n*seq]), also
// what the first layer's LN1 folded into its GEMM needs (ln_fold.cuh): h in
// fp16, and 1/sqrt(var(h) + next_eps) per row.
void vision_embed_layernorm(const Exec& exec, const void* patches, DType patch_type, const float* cls, const float* pos,
                            int n, int seq, int hidden, const float* gamma, const float* beta, float eps, float* h,
                            void* h16 = nullptr, float* next_scale = nullptr, float next_eps = 0.f);

}  // namespace clip::cuda
