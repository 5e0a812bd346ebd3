// Input embeddings of the two towers.
#pragma once
#include <cstdint>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// Patch embedding, step 1 of 2 (step 2 is a GEMM with the conv weight viewed
// as [hidden, channels*patch*patch]): unfold the image into one row per patch.
//   out[b*g*g + gy*g + gx, c*p*p + ky*p + kx] = pixels[b, c, gy*p + ky, gx*p + kx]
// pixels: float32 [n, channels, image, image]; out: out_type [n*g*g, channels*p*p],
// g = image / patch (a stride-p convolution drops any remainder).
void im2col_patches(const Exec& exec, const float* pixels, int n, int channels, int image, int patch, void* out,
                    DType out_type);

// Text embeddings: h[r, :] = token_embedding[ids[r], :] + position_embedding[r % seq, :]
// ids: int32 [n*seq] (checked against the vocabulary by the caller),
// tok: tok_type [vocab, hidden]; pos: float32 [>= seq, hidden]; h: float32 [n*seq, hidden].
void text_embed(const Exec& exec, const int32_t* ids, int n, int seq, const void* tok, DType tok_type, const float* pos,
                int hidden, float* h);

// SigLIP's vision embeddings (no class token, no pre-norm):
//   h[r, :] = x[r, :] + pos[r % patches, :]
// x: x_type [n*patches, hidden], the patch GEMM's output; pos: float32
// [patches, hidden] with the conv's bias already added (weight_upload).
void patch_embed_add(const Exec& exec, const void* x, DType x_type, const float* pos, int n, int patches, int hidden,
                     float* h);

}  // namespace clip::cuda
