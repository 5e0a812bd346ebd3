// Resize that reproduces Pillow's Image.resize on 8-bit images byte for
// byte, because CLIP was trained on pixels produced by PIL's
// Image.resize(size, Image.BICUBIC) and SigLIP on PIL's BILINEAR or BICUBIC.
// The convolution filters (ImagingResample, Resample.c: box, bilinear,
// hamming, bicubic, lanczos) all go through one code path:
//   - separable, one pass per axis whose size changes, the intermediate
//     rounded and clipped to uint8. The order matters for the last bit, and
//     it changed between Pillow versions: up to 12.x (checked: 12.3) Pillow
//     always goes horizontal first, over only the rows the vertical pass
//     reads; Pillow 13 (which we match, verified) goes vertical first when
//     the height shrinks by more than twice as many pixels as the width:
//     (in_h - out_h) > 0 && (in_h - out_h) > 2 * (in_w - out_w). For a
//     short-side resize that means downscaled images over 2:1 tall;
//   - the filter (Keys' cubic with a = -0.5 over [-2, 2], the triangle over
//     [-1, 1], ...) is stretched by the shrink factor when downscaling
//     (antialiasing), evaluated in double, normalised to sum 1 per output
//     pixel, then turned into fixed point with 22 fractional bits
//     (32 - 8 - 2: 8 bits of pixel, 2 of headroom for the negative lobes);
//   - accumulate in int32 starting from half (rounding), shift, clip.
// Nearest neighbour is not a convolution in Pillow (ImagingScaleAffine
// picks source pixel int((o + 0.5) * in / out), the position accumulated in
// double as Pillow does); here it is a one-tap kernel of weight 1, which the
// same passes copy exactly.
// The double arithmetic must not be contracted into FMAs: Pillow's wheels are
// built for baseline x86-64 without FMA, and a fused multiply-add can move a
// coefficient by one unit in the last place, which occasionally flips a
// fixed-point rounding. Hence the pragmas below.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <string>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "clip/error.h"
#include "clip/image/image_resize.h"
#include "clip/image/preprocess.h"

namespace clip {
namespace {

using detail::AxisKernel;
constexpr int kPrecisionBits = detail::kResizePrecisionBits;

// Pillow's filters (Resample.c), each with its support at scale 1: the same
// expressions, evaluated in double in the same order.
double box_filter(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * std::numbers::pi;
  // Pillow writes 0.54f and 0.46f: float constants, widened to double.
  return std::sin(x) / x * (static_cast<double>(0.54f) + static_cast<double>(0.46f) * std::cos(x));
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * std::numbers::pi;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  // Truncated sinc; Pillow's bounds are [-3, 3).
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_of(Resample r) {
  switch (r) {
    case Resample::Box: return {box_filter, 0.5};
    case Resample::Bilinear: return {bilinear_filter, 1.0};
    case Resample::Hamming: return {hamming_filter, 1.0};
    case Resample::Bicubic: return {bicubic_filter, 2.0};
    case Resample::Lanczos: return {lanczos_filter, 3.0};
    case Resample::Nearest: break;
  }
  throw Error(std::string("resize: ") + resample_name(r) + " is not a convolution filter");
}

// Pillow's precompute_coeffs() + normalize_coeffs_8bpc() for box (0, in_size),
// for the outputs [o_begin, o_begin + o_count) of out_size only.
AxisKernel make_kernel(int in_size, int out_size, int o_begin, int o_count, const Filter& filter) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = filter.support * filterscale;
  AxisKernel k;
  k.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  k.first.resize(o_count);
  k.count.resize(o_count);
  k.weights.assign(static_cast<size_t>(o_count) * k.ksize, 0);
  std::vector<double> w(k.ksize);
  for (int o = 0; o < o_count; ++o) {
    const double center = (o_begin + o + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // (int) truncates toward zero, as in C; negatives are clamped anyway.
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = std::max(hi - lo, 0);
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      w[i] = filter.fn((i + lo - center + 0.5) * ss);
      sum += w[i];
    }
    int32_t* out = &k.weights[static_cast<size_t>(o) * k.ksize];
    for (int i = 0; i < n; ++i) {
      const double v = sum != 0.0 ? w[i] / sum : w[i];
      const double fixed = v * (1 << kPrecisionBits);
      out[i] = static_cast<int32_t>(v < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    k.first[o] = lo;
    k.count[o] = n;
  }
  return k;
}

// Pillow's nearest neighbour (ImagingScaleAffine, reached from Image.resize
// through ImagingTransform with a = in / out): output o takes source pixel
// int(x), x = a / 2 + a + ... + a (o additions, in double, as Pillow sums
// them, so the o_begin outputs before the window are stepped through too).
// The step is (double)(float)in_size / out_size because Pillow's box is
// float. Outside the source (which rounding could only reach at the very
// end) Pillow leaves a zero: no tap gives 0 here too.
AxisKernel make_nearest_kernel(int in_size, int out_size, int o_begin, int o_count) {
  const double step = static_cast<double>(static_cast<float>(in_size)) / out_size;
  AxisKernel k;
  k.ksize = 1;
  k.first.resize(o_count);
  k.count.resize(o_count);
  k.weights.assign(o_count, int32_t(1) << kPrecisionBits);
  double x = 0.0 + step * 0.5;
  for (int o = 0; o < o_begin; ++o) x += step;
  for (int o = 0; o < o_count; ++o, x += step) {
    const int i = x < 0.0 ? -1 : static_cast<int>(x);
    const bool inside = i >= 0 && i < in_size;
    k.first[o] = std::clamp(i, o > 0 ? k.first[o - 1] : 0, in_size - 1);  // first[] must not decrease
    k.count[o] = inside ? 1 : 0;
  }
  return k;
}

AxisKernel make_axis(Resample filter, int in_size, int out_size, int o_begin, int o_count) {
  if (filter == Resample::Nearest) return make_nearest_kernel(in_size, out_size, o_begin, o_count);
  return make_kernel(in_size, out_size, o_begin, o_count, filter_of(filter));
}

inline uint8_t clip8(int32_t acc) {
  // Pillow indexes a table with acc >> 22 over [-640, 640); same values.
  return static_cast<uint8_t>(std::clamp(acc >> kPrecisionBits, 0, 255));
}

constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

// One output pixel of the horizontal pass, as Pillow computes it.
inline void convolve_pixel(const uint8_t* p, const int32_t* w, int n, uint8_t* out) {
  int32_t r = kHalf, g = kHalf, b = kHalf;
  for (int i = 0; i < n; ++i) {
    r += p[3 * i + 0] * w[i];
    g += p[3 * i + 1] * w[i];
    b += p[3 * i + 2] * w[i];
  }
  out[0] = clip8(r);
  out[1] = clip8(g);
  out[2] = clip8(b);
}

#if defined(__AVX2__)
// The horizontal pass is most of the work (every source row, ~20 taps when
// shrinking 1080p to 224) and interleaved RGB does not vectorise by itself.
// Here 4 taps x 3 channels go through vpmaddwd (16-bit products summed in
// pairs into 32 bits). Weights have 23 bits, so each is split exactly as
// w = 256 * hi + lo (hi signed, lo in [0, 256)), and
//   sum(p * w) = 256 * sum(p * hi) + sum(p * lo)
// is the same integer Pillow computes: no rounding is involved, and neither
// partial sum can overflow for kernels up to kMaxSimdTaps.
constexpr int kMaxSimdTaps = 30000;  // 255 * 255 * taps < 2^31

// Per output: groups of 4 taps, each as two 16 x int16 vectors (hi, lo)
// laid out to match the shuffle in convolve_pixel_avx2:
// [w0 w1 w0 w1 w0 w1 0 0 | w2 w3 w2 w3 w2 w3 0 0].
struct SimdWeights {
  std::vector<int16_t> data;   // 32 int16 per group
  std::vector<size_t> offset;  // first group of each output, in groups
  bool usable = true;
};

SimdWeights simd_weights(const AxisKernel& k) {
  SimdWeights s;
  const int outs = static_cast<int>(k.first.size());
  s.offset.resize(outs + 1);
  size_t groups = 0;
  for (int o = 0; o < outs; ++o) {
    s.offset[o] = groups;
    groups += (k.count[o] + 3) / 4;
    if (k.count[o] > kMaxSimdTaps) s.usable = false;
  }
  s.offset[outs] = groups;
  s.data.assign(groups * 32, 0);
  for (int o = 0; o < outs; ++o) {
    const int32_t* w = &k.weights[static_cast<size_t>(o) * k.ksize];
    for (int t = 0; t < k.count[o]; ++t) {
      const int32_t hi = w[t] >> 8;  // arithmetic shift: floor
      const int32_t lo = w[t] - hi * 256;
      if (hi < INT16_MIN || hi > INT16_MAX) s.usable = false;
      int16_t* g = &s.data[(s.offset[o] + t / 4) * 32];
      const int lane = (t % 4) / 2 * 8 + t % 2;  // which half, which of the pair
      for (int c = 0; c < 3; ++c) {
        g[lane + 2 * c] = static_cast<int16_t>(hi);
        g[16 + lane + 2 * c] = static_cast<int16_t>(lo);
      }
    }
  }
  return s;
}

// Reads 16 bytes from p for every 4 taps: up to 4 bytes past the last tap.
inline void convolve_pixel_avx2(const uint8_t* p, const int16_t* w, size_t groups, uint8_t* out) {
  // Bytes of pixels 0,1 (low half) and 2,3 (high half) into int16 pairs
  // (R0 R1 G0 G1 B0 B1 0 0 | R2 R3 G2 G3 B2 B3 0 0).
  // clang-format off
  const __m256i shuffle = _mm256_setr_epi8(
      0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
      6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  // clang-format on
  __m256i acc_hi = _mm256_setzero_si256(), acc_lo = _mm256_setzero_si256();
  for (size_t g = 0; g < groups; ++g) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 12 * g));
    const __m256i px = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes), shuffle);
    const __m256i whi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * g));
    const __m256i wlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * g + 16));
    acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(px, whi));
    acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(px, wlo));
  }
  const __m128i hi = _mm_add_epi32(_mm256_castsi256_si128(acc_hi), _mm256_extracti128_si256(acc_hi, 1));
  const __m128i lo = _mm_add_epi32(_mm256_castsi256_si128(acc_lo), _mm256_extracti128_si256(acc_lo, 1));
  __m128i sum = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32(hi, 8), lo), _mm_set1_epi32(kHalf));
  sum = _mm_srai_epi32(sum, kPrecisionBits);
  // Saturating packs clamp to [0, 255] like clip8.
  const __m128i words = _mm_packs_epi32(sum, sum);
  const __m128i bytes8 = _mm_packus_epi16(words, words);
  const uint32_t rgbx = static_cast<uint32_t>(_mm_cvtsi128_si32(bytes8));
  std::memcpy(out, &rgbx, 3);  // little-endian: R, G, B
}
#endif

// Rows [y0, y0 + rows) of `src` (width in_w, `src_bytes` in all) resampled
// to width out_w.
void resample_rows(const uint8_t* src, size_t src_bytes, int in_w, int y0, int rows, const AxisKernel& k, int out_w,
                   uint8_t* dst) {
  const size_t in_stride = static_cast<size_t>(in_w) * 3;
#if defined(__AVX2__)
  const SimdWeights simd = simd_weights(k);
#endif
  for (int y = 0; y < rows; ++y) {
    const size_t row_start = static_cast<size_t>(y0 + y) * in_stride;
    uint8_t* out = dst + static_cast<size_t>(y) * out_w * 3;
    for (int o = 0; o < out_w; ++o) {
      const size_t start = row_start + static_cast<size_t>(k.first[o]) * 3;
#if defined(__AVX2__)
      const size_t groups = simd.offset[o + 1] - simd.offset[o];
      // The vector loads may run a few bytes past this pixel's taps; they
      // must stay inside the buffer (only the last pixels of the last row
      // fall back to scalar).
      if (simd.usable && start + 12 * groups + 4 <= src_bytes) {
        convolve_pixel_avx2(src + start, &simd.data[simd.offset[o] * 32], groups, out + 3 * o);
        continue;
      }
#else
      (void)src_bytes;
#endif
      convolve_pixel(src + start, &k.weights[static_cast<size_t>(o) * k.ksize], k.count[o], out + 3 * o);
    }
  }
}

// Every output row is a weighted sum of whole input rows: the inner loop runs
// over contiguous bytes, which the compiler vectorises. Reads the columns
// [col0, col0 + cols) of `src` (width src_w), whose row 0 is input row
// `row_offset`.
void resample_columns(const uint8_t* src, int src_w, int col0, int cols, int row_offset, const AxisKernel& k,
                      uint8_t* dst) {
  const size_t stride = static_cast<size_t>(src_w) * 3;
  const size_t n_bytes = static_cast<size_t>(cols) * 3;
  std::vector<int32_t> acc(n_bytes);
  for (size_t o = 0; o < k.first.size(); ++o) {
    std::fill(acc.begin(), acc.end(), kHalf);
    const int32_t* w = &k.weights[o * k.ksize];
    for (int i = 0, n = k.count[o]; i < n; ++i) {
      const uint8_t* row =
          src + static_cast<size_t>(k.first[o] - row_offset + i) * stride + static_cast<size_t>(col0) * 3;
      const int32_t wi = w[i];
      int32_t* a = acc.data();
      for (size_t j = 0; j < n_bytes; ++j) a[j] += row[j] * wi;
    }
    uint8_t* out = dst + o * n_bytes;
    for (size_t j = 0; j < n_bytes; ++j) out[j] = clip8(acc[j]);
  }
}

}  // namespace

namespace detail {

ResizePlan plan_resize(int src_w, int src_h, int out_w, int out_h, int x0, int y0, int width, int height,
                       Resample filter) {
  if (src_w <= 0 || src_h <= 0) {
    throw Error("resize: source image is " + std::to_string(src_w) + "x" + std::to_string(src_h) +
                ", not a valid RGB image");
  }
  if (out_w <= 0 || out_h <= 0 || width <= 0 || height <= 0 || x0 < 0 || y0 < 0 || x0 > out_w - width ||
      y0 > out_h - height) {
    throw Error("resize: invalid output size " + std::to_string(out_w) + "x" + std::to_string(out_h) + " (window " +
                std::to_string(width) + "x" + std::to_string(height) + " at " + std::to_string(x0) + "," +
                std::to_string(y0) + ")");
  }
  if (static_cast<uint64_t>(width) * height > kMaxImagePixels) {
    throw Error("resize: output of " + std::to_string(width) + "x" + std::to_string(height) + " pixels is too large");
  }
  ResizePlan p;
  p.x0 = x0;
  p.y0 = y0;
  p.width = width;
  p.height = height;
  p.horizontal = out_w != src_w;
  p.vertical = out_h != src_h;
  if (p.horizontal) p.kh = make_axis(filter, src_w, out_w, x0, width);
  if (p.vertical) p.kv = make_axis(filter, src_h, out_h, y0, height);
  if (p.horizontal && p.vertical) {
    const int shrink_h = src_h - out_h, shrink_w = src_w - out_w;
    p.vertical_first = shrink_h > 0 && shrink_h > 2 * shrink_w;  // Pillow 13's order
    const AxisKernel& inner = p.vertical_first ? p.kh : p.kv;
    p.span0 = inner.span_begin();
    p.span = inner.span_end() - inner.span_begin();
  }
  return p;
}

Image resize_window(const ImageView& src, Resample filter, int out_width, int out_height, int x0, int y0, int width,
                    int height) {
  return resize_with_plan(src,
                          plan_resize(src.width, src.height, out_width, out_height, x0, y0, width, height, filter));
}

Image resize_with_plan(const ImageView& src, ResizePlan p) {
  if (src.rgb == nullptr) throw Error("resize: source image has no pixels");
  const int x0 = p.x0, y0 = p.y0, width = p.width, height = p.height;
  const size_t src_bytes = static_cast<size_t>(src.width) * src.height * 3;
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);

  if (!p.horizontal && !p.vertical) {  // PIL returns a copy
    for (int y = 0; y < height; ++y) {
      const uint8_t* from = &src.rgb[(static_cast<size_t>(y0 + y) * src.width + x0) * 3];
      std::copy(from, from + static_cast<size_t>(width) * 3, &out.rgb[static_cast<size_t>(y) * width * 3]);
    }
    return out;
  }
  if (!p.vertical) {
    resample_rows(src.rgb, src_bytes, src.width, y0, height, p.kh, width, out.rgb.data());
    return out;
  }
  if (!p.horizontal) {
    resample_columns(src.rgb, src.width, x0, width, 0, p.kv, out.rgb.data());
    return out;
  }
  if (p.vertical_first) {
    // Only the input columns the horizontal pass reads go through the vertical one.
    std::vector<uint8_t> tmp(static_cast<size_t>(p.span) * height * 3);
    resample_columns(src.rgb, src.width, p.span0, p.span, 0, p.kv, tmp.data());
    for (int& f : p.kh.first) f -= p.span0;
    resample_rows(tmp.data(), tmp.size(), p.span, 0, height, p.kh, width, out.rgb.data());
    return out;
  }
  // Only the input rows the vertical pass reads go through the horizontal one.
  std::vector<uint8_t> tmp(static_cast<size_t>(p.span) * width * 3);
  resample_rows(src.rgb, src_bytes, src.width, p.span0, p.span, p.kh, width, tmp.data());
  resample_columns(tmp.data(), width, 0, width, p.span0, p.kv, out.rgb.data());
  return out;
}

}  // namespace detail

Image resize_image(const Image& src, int out_width, int out_height, Resample filter) {
  return detail::resize_window(checked_view(src, "resize"), filter, out_width, out_height, 0, 0, out_width, out_height);
}

Image resize_bicubic(const Image& src, int out_width, int out_height) {
  return resize_image(src, out_width, out_height, Resample::Bicubic);
}

}  // namespace clip
