// The CPU backend's small row-wise kernels (the GEMMs are in gemm.h, the
// attention in attention.h). Each multi-row op runs over rows on the pool.
#pragma once
#include <cstdint>

#include "clip/cpu/thread_pool.h"

namespace clip::cpu {

// y[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta for each of `rows`
// rows of `dim` floats (biased variance, as torch.nn.LayerNorm). y may be x.
void layer_norm(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps, float* y,
                ThreadPool& pool);
// The same for one row, on the calling thread.
void layer_norm_row(const float* x, int64_t dim, const float* gamma, const float* beta, float eps, float* y);

// Softmax over x[0..n) in place, in fp32 with the maximum subtracted first.
void softmax(float* x, int64_t n);

// im2col for a convolution whose stride equals its kernel (the patch
// embedding): pixels [batch, channels, image, image] -> rows [batch * grid *
// grid, channels * patch * patch], patches in row-major grid order and each
// row ordered (channel, y, x) like the conv weight [out, channels, patch, patch].
// grid = image / patch; pixels beyond grid * patch are ignored, as the conv does.
void im2col_patches(const float* pixels, int batch, int channels, int image, int patch, float* out, ThreadPool& pool);

}  // namespace clip::cpu
