// 16-float vectors through the GCC/Clang vector extension: one AVX-512
// register where the CPU has it, two or four narrower ones elsewhere. Used by
// the hand-written kernels (attention, LayerNorm, softmax) because the
// compiler's auto-vectoriser will not reassociate float sums (so dot products
// and reductions stay scalar) and, tuned for Zen 3/4, prefers 256-bit
// vectors even where 512-bit ones are twice as fast.
#pragma once
#include <cstdint>
#include <cstring>

namespace clip::cpu {

constexpr int kLanes = 16;
using f32x16 = float __attribute__((vector_size(64)));
using i32x16 = int32_t __attribute__((vector_size(64)));

inline f32x16 load16(const float* p) {
  f32x16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, f32x16 v) { std::memcpy(p, &v, sizeof v); }
inline f32x16 splat16(float x) { return f32x16{} + x; }

inline float hsum16(f32x16 v) {
  float s = 0.f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}
inline float hmax16(f32x16 v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}
inline f32x16 max16(f32x16 a, f32x16 b) { return a > b ? a : b; }

// n rounded up to whole vectors: the padded length of the kernels' tiles.
inline int round_up_to_lanes(int n) { return (n + kLanes - 1) / kLanes * kLanes; }

// e^x, within 2 ulp of expf for x in [-87, 88]; 0 below -87 (where expf is
// denormal or 0: in a softmax those terms cannot matter, the sum is >= 1).
// Cephes expf: x = n ln2 + r, |r| <= ln2 / 2, then a degree-6 polynomial.
inline f32x16 exp16(f32x16 x) {
  const f32x16 lo = splat16(-87.0f), hi = splat16(88.0f);
  const f32x16 c = x < lo ? lo : (x > hi ? hi : x);
  // Round to nearest: adding 1.5 * 2^23 pushes the fraction bits out.
  const f32x16 magic = splat16(12582912.0f);
  const f32x16 n = (c * 1.44269504088896341f + magic) - magic;
  f32x16 r = c - n * 0.693359375f;  // ln2 in two parts, the first exact in float
  r = r + n * 2.12194440e-4f;
  f32x16 p = splat16(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const f32x16 e = p * r * r + r + 1.0f;
  const i32x16 bits = (__builtin_convertvector(n, i32x16) + 127) << 23;
  f32x16 scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < lo ? f32x16{} : e * scale;
}

// erf(x) to 1.5e-7 absolute (Abramowitz & Stegun 7.1.26), for the GELU of
// the int8 path's own epilogue (the fp32/bf16 paths use oneDNN's).
inline f32x16 erf16(f32x16 x) {
  const f32x16 a = x < 0.f ? -x : x;
  const f32x16 t = 1.0f / (1.0f + 0.3275911f * a);
  f32x16 p = splat16(1.061405429f);
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const f32x16 y = 1.0f - p * t * exp16(-a * a);
  return x < 0.f ? -y : y;
}

}  // namespace clip::cpu
