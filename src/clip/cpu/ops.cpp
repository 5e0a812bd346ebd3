#include "clip/cpu/ops.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "clip/cpu/simd.h"

namespace clip::cpu {

void layer_norm_row(const float* x, int64_t dim, const float* gamma, const float* beta, float eps, float* y) {
  // Two passes (mean, then squared deviations): rows are at most a few
  // thousand values, so this costs little and avoids E[x^2] - E[x]^2
  // cancellation.
  const int64_t vec_end = dim / kLanes * kLanes;
  f32x16 acc{};
  float sum = 0.f;
  for (int64_t i = 0; i < vec_end; i += kLanes) acc += load16(x + i);
  for (int64_t i = vec_end; i < dim; ++i) sum += x[i];
  const float mean = (sum + hsum16(acc)) / static_cast<float>(dim);

  acc = f32x16{};
  float sq = 0.f;
  for (int64_t i = 0; i < vec_end; i += kLanes) {
    const f32x16 d = load16(x + i) - mean;
    acc += d * d;
  }
  for (int64_t i = vec_end; i < dim; ++i) sq += (x[i] - mean) * (x[i] - mean);
  const float rstd = 1.0f / std::sqrt((sq + hsum16(acc)) / static_cast<float>(dim) + eps);

  for (int64_t i = 0; i < vec_end; i += kLanes)
    store16(y + i, (load16(x + i) - mean) * rstd * load16(gamma + i) + load16(beta + i));
  for (int64_t i = vec_end; i < dim; ++i) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
}

void layer_norm(const float* x, int64_t rows, int64_t dim, const float* gamma, const float* beta, float eps, float* y,
                ThreadPool& pool) {
  // 16 rows of 512-768 floats: a few microseconds, worth a hand-off.
  pool.parallel_for(rows, 16, [&](int, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) layer_norm_row(x + r * dim, dim, gamma, beta, eps, y + r * dim);
  });
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  // The tail goes through a padded copy; padding with -inf leaves the
  // maximum alone and contributes exp = 0 to the sum.
  const int64_t vec_end = n / kLanes * kLanes;
  float tail[kLanes];
  for (int i = 0; i < kLanes; ++i) tail[i] = vec_end + i < n ? x[vec_end + i] : -std::numeric_limits<float>::infinity();

  f32x16 mx = load16(tail);
  for (int64_t i = 0; i < vec_end; i += kLanes) mx = max16(mx, load16(x + i));
  const float m = hmax16(mx);

  f32x16 sum{};
  for (int64_t i = 0; i < vec_end; i += kLanes) {
    const f32x16 e = exp16(load16(x + i) - m);
    store16(x + i, e);
    sum += e;
  }
  const f32x16 te = exp16(load16(tail) - m);
  sum += te;
  const float inv = 1.0f / hsum16(sum);

  for (int64_t i = 0; i < vec_end; i += kLanes) store16(x + i, load16(x + i) * inv);
  for (int64_t i = vec_end; i < n; ++i) x[i] = te[i - vec_end] * inv;
}

void im2col_patches(const float* pixels, int batch, int channels, int image, int patch, float* out, ThreadPool& pool) {
  const int grid = image / patch;
  const int64_t row_len = int64_t(channels) * patch * patch;
  const int64_t patches = int64_t(batch) * grid * grid;
  pool.parallel_for(patches, 16, [&](int, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / (grid * grid);
      const int64_t gy = r / grid % grid, gx = r % grid;
      float* dst = out + r * row_len;
      for (int c = 0; c < channels; ++c) {
        const float* plane = pixels + (b * channels + c) * int64_t(image) * image;
        for (int py = 0; py < patch; ++py) {
          std::memcpy(dst, plane + (gy * patch + py) * image + gx * patch, sizeof(float) * patch);
          dst += patch;
        }
      }
    }
  });
}

}  // namespace clip::cpu
