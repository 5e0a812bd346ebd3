#include "clip/cpu/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "clip/cpu/simd.h"

namespace clip::cpu {

namespace {

using u32x16 = uint32_t __attribute__((vector_size(64)));
using u16x16 = uint16_t __attribute__((vector_size(32)));
using u8x16 = uint8_t __attribute__((vector_size(16)));

// Round to nearest even, as torch's float -> bfloat16 (NaN is not expected
// in activations and is not special-cased).
u16x16 bf16_16(f32x16 v) {
  u32x16 bits;
  std::memcpy(&bits, &v, sizeof bits);
  bits += ((bits >> 16) & 1u) + 0x7fffu;
  return __builtin_convertvector(bits >> 16, u16x16);
}

// Nearest integer (ties to even) of |x| < 2^22: adding 1.5 * 2^23 pushes the
// fraction bits out.
f32x16 round16(f32x16 x) {
  const f32x16 magic = splat16(12582912.0f);
  return (x + magic) - magic;
}

f32x16 clamp16(f32x16 x, float lo, float hi) {
  x = x < lo ? splat16(lo) : x;
  return x > hi ? splat16(hi) : x;
}

// The first `n` (< 16) values of p in a vector, padded with `fill`.
f32x16 load_partial(const float* p, int64_t n, float fill) {
  f32x16 v = splat16(fill);
  for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  return v;
}

f32x16 load_n(const float* p, int64_t n) { return n == kLanes ? load16(p) : load_partial(p, n, 0.f); }

template <Epilogue ep>
f32x16 activate(f32x16 y) {
  switch (ep) {
    case Epilogue::QuickGelu: return y / (1.0f + exp16(-1.702f * y));
    case Epilogue::Gelu: return 0.5f * y * (1.0f + erf16(y * 0.70710678118654752f));
    case Epilogue::GeluTanh: {  // 0.5 y (1 + tanh(z)) = y (1 - 1 / (exp(2z) + 1))
      const f32x16 z = 0.7978845608028654f * (y + 0.044715f * y * y * y);
      return y - y / (exp16(2.0f * z) + 1.0f);
    }
    case Epilogue::Store:
    case Epilogue::Accumulate: break;
  }
  return y;
}

void quantize_row(const float* x, int64_t n, uint8_t* q, float* scale_out, int32_t* zero_out) {
  const int64_t vec_end = n / kLanes * kLanes;
  // 0 inside the range keeps zero exact (padding, ReLU-like tails).
  f32x16 lo = load_partial(x + vec_end, n - vec_end, 0.f), hi = lo;
  for (int64_t i = 0; i < vec_end; i += kLanes) {
    const f32x16 v = load16(x + i);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  float mn = 0.f, mx = 0.f;
  for (int i = 0; i < kLanes; ++i) mn = std::min(mn, lo[i]), mx = std::max(mx, hi[i]);
  const float scale = mx > mn ? (mx - mn) / 255.f : 1.f;
  const float inv = 1.f / scale;
  const float zero = std::nearbyint(-mn * inv);
  *scale_out = scale;
  *zero_out = static_cast<int32_t>(zero);
  auto quantize16 = [&](f32x16 v) {
    return __builtin_convertvector(__builtin_convertvector(clamp16(round16(v * inv) + zero, 0.f, 255.f), i32x16),
                                   u8x16);
  };
  for (int64_t i = 0; i < vec_end; i += kLanes) {
    const u8x16 b = quantize16(load16(x + i));
    std::memcpy(q + i, &b, sizeof b);
  }
  if (vec_end < n) {
    const u8x16 b = quantize16(load_partial(x + vec_end, n - vec_end, 0.f));
    std::memcpy(q + vec_end, &b, n - vec_end);
  }
}

}  // namespace

void to_bf16(const float* x, int64_t n, uint16_t* y) {
  const int64_t vec_end = n / kLanes * kLanes;
  for (int64_t i = 0; i < vec_end; i += kLanes) {
    const u16x16 b = bf16_16(load16(x + i));
    std::memcpy(y + i, &b, sizeof b);
  }
  if (vec_end < n) {
    const u16x16 b = bf16_16(load_partial(x + vec_end, n - vec_end, 0.f));
    std::memcpy(y + vec_end, &b, (n - vec_end) * sizeof(uint16_t));
  }
}

void rows_to_bf16(const float* x, int64_t rows, int64_t cols, uint16_t* y, ThreadPool& pool) {
  pool.parallel_for(rows, 16, [&](int, int64_t begin, int64_t end) {
    to_bf16(x + begin * cols, (end - begin) * cols, y + begin * cols);
  });
}

void quantize_rows(const float* x, int64_t rows, int64_t cols, QuantizedRows& out, ThreadPool& pool) {
  if (out.q.size() < size_t(rows * cols)) out.q.resize(rows * cols);
  if (out.scale.size() < size_t(rows)) out.scale.resize(rows), out.zero.resize(rows);
  pool.parallel_for(rows, 16, [&](int, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      quantize_row(x + r * cols, cols, out.q.data() + r * cols, &out.scale[r], &out.zero[r]);
  });
}

QuantizedWeights quantize_weights(const float* w, int64_t out, int64_t in) {
  QuantizedWeights q;
  q.q.resize(out * in);
  q.scale.resize(out);
  q.sum.resize(out);
  for (int64_t o = 0; o < out; ++o) {
    const float* row = w + o * in;
    float mx = 0.f;
    for (int64_t i = 0; i < in; ++i) mx = std::max(mx, std::fabs(row[i]));
    const float scale = mx > 0.f ? mx / 127.f : 1.f;
    int32_t sum = 0;
    for (int64_t i = 0; i < in; ++i) {
      const int v = static_cast<int>(std::nearbyint(row[i] / scale));
      q.q[o * in + i] = static_cast<int8_t>(std::clamp(v, -127, 127));
      sum += q.q[o * in + i];
    }
    q.scale[o] = scale;
    q.sum[o] = sum;
  }
  return q;
}

namespace {

// The epilogue as a template argument, so that the activation is inlined
// into the loop instead of chosen for every 16 values.
template <Epilogue ep>
void dequantize(const int32_t* acc, int64_t rows, int64_t cols, const float* row_scale, const int32_t* row_zero,
                const Int8Columns& c, float* y, int64_t ldy) {
  const int64_t vec_end = cols / kLanes * kLanes;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* a = acc + r * cols;
    float* out = y + r * ldy;
    const float rs = row_scale[r];
    const int32_t rz = row_zero[r];
    // One 16-column step; the tail goes through padded copies.
    auto step = [&](int64_t j, int64_t n) {
      i32x16 av{}, sv{};
      std::memcpy(&av, a + j, n * sizeof(int32_t));
      std::memcpy(&sv, c.sum + j, n * sizeof(int32_t));
      f32x16 v = __builtin_convertvector(av - rz * sv, f32x16) * (load_n(c.scale + j, n) * rs);
      if (c.bias) v += load_n(c.bias + j, n);
      v = activate<ep>(v);
      if (ep == Epilogue::Accumulate) v += load_n(out + j, n);
      std::memcpy(out + j, &v, n * sizeof(float));
    };
    for (int64_t j = 0; j < vec_end; j += kLanes) step(j, kLanes);
    if (vec_end < cols) step(vec_end, cols - vec_end);
  }
}

}  // namespace

void dequantize_block(const int32_t* acc, int64_t rows, int64_t cols, const float* row_scale, const int32_t* row_zero,
                      const Int8Columns& c, Epilogue ep, float* y, int64_t ldy) {
  switch (ep) {
    case Epilogue::Store: return dequantize<Epilogue::Store>(acc, rows, cols, row_scale, row_zero, c, y, ldy);
    case Epilogue::QuickGelu: return dequantize<Epilogue::QuickGelu>(acc, rows, cols, row_scale, row_zero, c, y, ldy);
    case Epilogue::Gelu: return dequantize<Epilogue::Gelu>(acc, rows, cols, row_scale, row_zero, c, y, ldy);
    case Epilogue::GeluTanh: return dequantize<Epilogue::GeluTanh>(acc, rows, cols, row_scale, row_zero, c, y, ldy);
    case Epilogue::Accumulate: return dequantize<Epilogue::Accumulate>(acc, rows, cols, row_scale, row_zero, c, y, ldy);
  }
}

}  // namespace clip::cpu
