// CPU backend: each op against a naive double-precision reference, then whole
// towers of a tiny random model through make_cpu_backend against an
// independent double-precision forward pass written out below.
//
// Tolerances (absolute, on unit-scale values): single ops 2e-5 (fp32
// rounding over sums of a few hundred terms), whole towers 1e-4 (DESIGN.md's
// fp32 bound), batch composition and thread count 1e-5.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "clip/backend.h"
#include "clip/cpu/attention.h"
#include "clip/cpu/cpu_precision.h"
#include "clip/cpu/gemm.h"
#include "clip/cpu/ops.h"
#include "clip/cpu/quantize.h"
#include "clip/cpu/simd.h"
#include "clip/cpu/thread_pool.h"
#include "clip/error.h"

namespace {

using namespace clip;
using namespace clip::cpu;
using Vec = std::vector<double>;

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

double max_abs_diff(const std::vector<float>& a, const Vec& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  return max_abs_diff(a, Vec(b.begin(), b.end()));
}

// ---------------------------------------------------------------- references

void ref_layer_norm(const double* x, int64_t dim, const float* g, const float* b, double eps, double* y) {
  double mean = 0, var = 0;
  for (int64_t i = 0; i < dim; ++i) mean += x[i];
  mean /= dim;
  for (int64_t i = 0; i < dim; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= dim;
  const double rstd = 1.0 / std::sqrt(var + eps);
  for (int64_t i = 0; i < dim; ++i) y[i] = (x[i] - mean) * rstd * g[i] + b[i];
}

double ref_quick_gelu(double x) { return x / (1.0 + std::exp(-1.702 * x)); }
double ref_gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// y[m, n] = x[m, k] W[n, k]^T + b
Vec ref_linear(const Vec& x, int64_t m, int64_t k, const std::vector<float>& w, const std::vector<float>* b,
               int64_t n) {
  Vec y(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = b ? (*b)[j] : 0.0;
      for (int64_t c = 0; c < k; ++c) s += x[i * k + c] * w[j * k + c];
      y[i * n + j] = s;
    }
  return y;
}

// One head-batched attention over separate q, k, v: [seq, hidden] each.
Vec ref_attention(const Vec& q, const Vec& k, const Vec& v, int seq, int heads, int dim, bool causal) {
  const int hidden = heads * dim;
  Vec out(seq * hidden);
  const double scale = 1.0 / std::sqrt(double(dim));
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < seq; ++i) {
      Vec s(seq);
      double mx = -1e300;
      const int keys = causal ? i + 1 : seq;
      for (int j = 0; j < keys; ++j) {
        double d = 0;
        for (int c = 0; c < dim; ++c) d += q[i * hidden + h * dim + c] * k[j * hidden + h * dim + c];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int j = 0; j < keys; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (int c = 0; c < dim; ++c) {
        double o = 0;
        for (int j = 0; j < keys; ++j) o += s[j] / sum * v[j * hidden + h * dim + c];
        out[i * hidden + h * dim + c] = o;
      }
    }
  return out;
}

// ---------------------------------------------------------------- single ops

TEST(CpuOps, LayerNormMatchesReference) {
  ThreadPool pool(2);
  for (int64_t dim : {7, 64, 768, 1000}) {
    const int64_t rows = 5;
    auto x = random_floats(rows * dim, 1, -3.f, 5.f);
    auto g = random_floats(dim, 2, 0.5f, 1.5f), b = random_floats(dim, 3);
    std::vector<float> y(x.size());
    layer_norm(x.data(), rows, dim, g.data(), b.data(), 1e-5f, y.data(), pool);
    Vec xd(x.begin(), x.end()), want(x.size());
    for (int64_t r = 0; r < rows; ++r)
      ref_layer_norm(xd.data() + r * dim, dim, g.data(), b.data(), 1e-5, want.data() + r * dim);
    EXPECT_LT(max_abs_diff(y, want), 2e-5) << "dim " << dim;
    // In place gives the same.
    layer_norm(x.data(), rows, dim, g.data(), b.data(), 1e-5f, x.data(), pool);
    EXPECT_EQ(x, y);
  }
}

TEST(CpuOps, ExpIsAccurateOverItsRange) {
  double worst = 0;
  for (float x = -87.f; x <= 87.9f; x += 0.0137f) {
    float in[kLanes];
    for (int l = 0; l < kLanes; ++l) in[l] = x + l * 1e-3f;
    const f32x16 e = exp16(load16(in));
    for (int l = 0; l < kLanes; ++l) {
      const double want = std::exp(double(in[l]));
      worst = std::max(worst, std::abs(e[l] - want) / want);
    }
  }
  EXPECT_LT(worst, 3e-7);  // ~2.5 ulp
  float below[kLanes];
  std::fill(below, below + kLanes, -100.f);
  EXPECT_EQ(exp16(load16(below))[0], 0.f);
}

TEST(CpuOps, SoftmaxMatchesReference) {
  for (int n : {1, 5, 16, 17, 50, 77, 300}) {
    auto x = random_floats(n, 10 + n, -20.f, 20.f);
    Vec want(n);
    double mx = *std::max_element(x.begin(), x.end()), sum = 0;
    for (int i = 0; i < n; ++i) sum += (want[i] = std::exp(double(x[i]) - mx));
    for (double& w : want) w /= sum;
    softmax(x.data(), n);
    EXPECT_LT(max_abs_diff(x, want), 1e-6) << "n " << n;
  }
}

struct GemmCase {
  int64_t m, n, k;
  int threads;
};

// Every epilogue of a Linear in `precision` against the double reference,
// within `tol` (absolute; outputs are O(1)).
void check_linear_epilogues(Precision precision, double tol) {
  // Few rows (split by columns) and many rows (split by rows), column counts
  // that do and do not fill the kernel's 64-column blocks, 1-3 threads.
  for (GemmCase c :
       {GemmCase{1, 64, 64, 2}, GemmCase{7, 200, 96, 2}, GemmCase{50, 384, 128, 3}, GemmCase{77, 130, 40, 1},
        GemmCase{3, 10, 17, 2}, GemmCase{300, 200, 96, 2}, GemmCase{401, 2304, 64, 3}}) {
    ThreadPool pool(c.threads, gemm_thread_init);
    GemmContext ctx(pool.size());
    const float wscale = 1.0f / std::sqrt(float(c.k));
    auto x = random_floats(c.m * c.k, 21), w = random_floats(c.n * c.k, 22, -wscale, wscale);
    auto b = random_floats(c.n, 23);
    Linear with_bias(ctx, w.data(), b.data(), c.n, c.k, precision),
        no_bias(ctx, w.data(), nullptr, c.n, c.k, precision);
    const Vec xd(x.begin(), x.end());
    const Vec y = ref_linear(xd, c.m, c.k, w, &b, c.n), y0 = ref_linear(xd, c.m, c.k, w, nullptr, c.n);
    const std::string what = std::string(precision_name(precision)) + " m " + std::to_string(c.m) + " n " +
                             std::to_string(c.n) + " k " + std::to_string(c.k) + " threads " +
                             std::to_string(c.threads);

    std::vector<float> out(c.m * c.n);
    no_bias.forward(ctx, pool, x.data(), c.m, out.data(), Epilogue::Store);
    EXPECT_LT(max_abs_diff(out, y0), tol) << "no bias, " << what;

    with_bias.forward(ctx, pool, x.data(), c.m, out.data(), Epilogue::Store);
    EXPECT_LT(max_abs_diff(out, y), tol) << "bias, " << what;

    Vec want(y.size());
    with_bias.forward(ctx, pool, x.data(), c.m, out.data(), Epilogue::QuickGelu);
    std::transform(y.begin(), y.end(), want.begin(), ref_quick_gelu);
    EXPECT_LT(max_abs_diff(out, want), tol) << "quick_gelu, " << what;

    with_bias.forward(ctx, pool, x.data(), c.m, out.data(), Epilogue::Gelu);
    std::transform(y.begin(), y.end(), want.begin(), ref_gelu);
    EXPECT_LT(max_abs_diff(out, want), tol) << "gelu, " << what;

    auto acc = random_floats(c.m * c.n, 24);
    for (size_t i = 0; i < want.size(); ++i) want[i] = acc[i] + y[i];
    with_bias.forward(ctx, pool, x.data(), c.m, acc.data(), Epilogue::Accumulate);
    EXPECT_LT(max_abs_diff(acc, want), tol) << "accumulate, " << what;
  }
}

TEST(CpuOps, LinearWithEachEpilogueMatchesReference) { check_linear_epilogues(Precision::FP32, 2e-5); }

// bf16 rounds x and W to 8 significant bits (relative error <= 2^-9 each):
// over k <= 2304 products of O(1/sqrt k) the sums stay within ~5e-3.
TEST(CpuOps, LinearInBf16MatchesReference) {
  if (!cpu_has_native_bf16()) GTEST_SKIP() << "no native bf16 dot products on this CPU";
  check_linear_epilogues(Precision::BF16, 1e-2);
}

// int8: x in steps of 2/255 per row, W in steps of max|w|/127 per column:
// errors of a few 1e-3 per product sum, ~1.5e-2 at worst over these cases.
TEST(CpuOps, LinearInInt8MatchesReference) {
  if (!cpu_has_int8_dot()) GTEST_SKIP() << "no VNNI on this CPU";
  check_linear_epilogues(Precision::INT8, 3e-2);
}

// Inputs already on the int8 grids (integer weights with +-127 in every
// row, integer activations spanning -100..155 in every row: scale 1, zero
// 100) must come out exact: this checks the zero-point term, the column
// blocks and the epilogue without quantisation noise.
TEST(CpuOps, LinearInInt8IsExactOnItsGrid) {
  if (!cpu_has_int8_dot()) GTEST_SKIP() << "no VNNI on this CPU";
  for (GemmCase c : {GemmCase{5, 200, 96, 2}, GemmCase{300, 130, 64, 2}}) {
    ThreadPool pool(c.threads, gemm_thread_init);
    GemmContext ctx(pool.size());
    std::mt19937 rng(5);
    std::vector<float> x(c.m * c.k), w(c.n * c.k), b(c.n);
    for (int64_t i = 0; i < c.m * c.k; ++i) x[i] = float(int(rng() % 256) - 100);
    for (int64_t i = 0; i < c.n * c.k; ++i) w[i] = float(int(rng() % 255) - 127);
    for (int64_t r = 0; r < c.m; ++r) x[r * c.k] = -100.f, x[r * c.k + 1] = 155.f;
    for (int64_t r = 0; r < c.n; ++r) w[r * c.k + 2] = (r % 2) ? 127.f : -127.f;
    for (int64_t j = 0; j < c.n; ++j) b[j] = float(j % 7);
    Linear lin(ctx, w.data(), b.data(), c.n, c.k, Precision::INT8);
    std::vector<float> out(c.m * c.n);
    lin.forward(ctx, pool, x.data(), c.m, out.data(), Epilogue::Store);
    const Vec want = ref_linear(Vec(x.begin(), x.end()), c.m, c.k, w, &b, c.n);
    EXPECT_LT(max_abs_diff(out, want), 1e-9) << "m " << c.m;  // integers below 2^24
  }
}

TEST(CpuOps, Bf16RoundsToNearestEven) {
  const float x[] = {1.0f, 1.0f + 0x1p-8f, 1.0f + 0x3p-8f, -2.5f, 1.0f + 0x1p-8f + 0x1p-20f, 0.0f};
  const uint16_t want[] = {0x3f80, 0x3f80, 0x3f82, 0xc020, 0x3f81, 0x0000};
  uint16_t got[6];
  to_bf16(x, 6, got);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(got[i], want[i]) << "x " << x[i];
}

TEST(CpuOps, QuantizeRowsKeepsZeroAndHalfAStep) {
  ThreadPool pool(2);
  for (int64_t cols : {5, 16, 77, 768}) {
    const int64_t rows = 40;
    auto x = random_floats(rows * cols, 31, -0.5f, 3.f);
    for (int64_t r = 0; r < rows; ++r) x[r * cols] = 0.f;
    QuantizedRows q;
    quantize_rows(x.data(), rows, cols, q, pool);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(q.q[r * cols], q.zero[r]) << "row " << r;  // 0 is exact
      for (int64_t i = 0; i < cols; ++i) {
        const float back = (float(q.q[r * cols + i]) - q.zero[r]) * q.scale[r];
        ASSERT_LE(std::abs(back - x[r * cols + i]), 0.5f * q.scale[r] * 1.0001f) << r << "," << i;
      }
    }
  }
}

struct AttnCase {
  int batch, seq, heads, dim;
  bool causal;
};

// Every row and the pooled rows of attention() against ref_attention, within tol.
void check_attention(AttentionProducts products, double tol) {
  ThreadPool pool(2);
  AttentionScratch scratch;
  for (AttnCase c : {AttnCase{2, 13, 3, 16, false}, AttnCase{2, 13, 3, 16, true}, AttnCase{1, 50, 12, 64, false},
                     AttnCase{3, 77, 2, 24, true}, AttnCase{2, 1, 2, 8, true}, AttnCase{1, 5, 4, 40, false},
                     AttnCase{1, 196, 2, 72, false}, AttnCase{2, 64, 3, 72, false}}) {
    const AttentionShape shape{c.batch, c.seq, c.heads, c.dim, c.causal};
    const int hidden = shape.hidden();
    const auto qkv = random_floats(size_t(c.batch) * c.seq * 3 * hidden, 31, -2.f, 2.f);
    std::vector<float> out(size_t(c.batch) * c.seq * hidden);
    attention(qkv.data(), shape, nullptr, out.data(), pool, scratch, products);

    // One query per item, at a different position each.
    std::vector<int32_t> pos(c.batch);
    for (int b = 0; b < c.batch; ++b) pos[b] = (b * 7 + c.seq - 1) % c.seq;
    std::vector<float> pooled(size_t(c.batch) * hidden);
    attention(qkv.data(), shape, pos.data(), pooled.data(), pool, scratch, products);

    const std::string what = "seq " + std::to_string(c.seq) + " heads " + std::to_string(c.heads) + " dim " +
                             std::to_string(c.dim) + (c.causal ? " causal" : "");
    for (int b = 0; b < c.batch; ++b) {
      Vec q(c.seq * hidden), k(q.size()), v(q.size());
      for (int t = 0; t < c.seq; ++t)
        for (int i = 0; i < hidden; ++i) {
          const float* row = qkv.data() + (size_t(b) * c.seq + t) * 3 * hidden;
          q[t * hidden + i] = row[i];
          k[t * hidden + i] = row[hidden + i];
          v[t * hidden + i] = row[2 * hidden + i];
        }
      const Vec want = ref_attention(q, k, v, c.seq, c.heads, c.dim, c.causal);
      std::vector<float> got(out.begin() + size_t(b) * c.seq * hidden, out.begin() + size_t(b + 1) * c.seq * hidden);
      EXPECT_LT(max_abs_diff(got, want), tol) << what;
      std::vector<float> got_row(pooled.begin() + size_t(b) * hidden, pooled.begin() + size_t(b + 1) * hidden);
      const Vec want_row(want.begin() + size_t(pos[b]) * hidden, want.begin() + size_t(pos[b] + 1) * hidden);
      EXPECT_LT(max_abs_diff(got_row, want_row), tol) << "pooled, " << what;
    }
  }
}

// probe_attention(): one query for every item against ref_attention's row.
void check_probe_attention(AttentionProducts products, double tol) {
  ThreadPool pool(2);
  AttentionScratch scratch;
  for (AttnCase c : {AttnCase{3, 196, 4, 72, false}, AttnCase{2, 50, 3, 64, false}, AttnCase{1, 7, 2, 24, false}}) {
    const AttentionShape shape{c.batch, c.seq, c.heads, c.dim, false};
    const int hidden = shape.hidden();
    const auto probe = random_floats(hidden, 32, -2.f, 2.f);
    const auto kv = random_floats(size_t(c.batch) * c.seq * 2 * hidden, 33, -2.f, 2.f);
    std::vector<float> out(size_t(c.batch) * hidden);
    probe_attention(probe.data(), kv.data(), shape, out.data(), pool, scratch, products);
    for (int b = 0; b < c.batch; ++b) {
      Vec q(c.seq * hidden), k(q.size()), v(q.size());
      for (int t = 0; t < c.seq; ++t)
        for (int i = 0; i < hidden; ++i) {
          const float* row = kv.data() + (size_t(b) * c.seq + t) * 2 * hidden;
          q[t * hidden + i] = probe[i];
          k[t * hidden + i] = row[i];
          v[t * hidden + i] = row[hidden + i];
        }
      const Vec want = ref_attention(q, k, v, c.seq, c.heads, c.dim, false);
      const std::vector<float> got(out.begin() + size_t(b) * hidden, out.begin() + size_t(b + 1) * hidden);
      EXPECT_LT(max_abs_diff(got, Vec(want.begin(), want.begin() + hidden)), tol)
          << "seq " << c.seq << " heads " << c.heads << " dim " << c.dim << " item " << b;
    }
  }
}

TEST(CpuOps, AttentionMatchesReference) { check_attention(AttentionProducts::Fp32, 2e-5); }
TEST(CpuOps, ProbeAttentionMatchesReference) { check_probe_attention(AttentionProducts::Fp32, 2e-5); }

// bf16 products (the bf16 and int8 paths): q, k, p and v each rounded to 8
// bits of mantissa. With entries in [-2, 2] and head sizes up to 72 the
// largest error seen is 6.6e-3; 1.5e-2 leaves room and still fails on any
// pairing or masking mistake, which moves outputs by O(1).
TEST(CpuOps, AttentionBf16MatchesReference) {
  if (!cpu_has_native_bf16()) GTEST_SKIP() << "this CPU has no AVX512_BF16: the bf16 attention products cannot run";
  check_attention(AttentionProducts::Bf16, 1.5e-2);
}
TEST(CpuOps, ProbeAttentionBf16MatchesReference) {
  if (!cpu_has_native_bf16()) GTEST_SKIP() << "this CPU has no AVX512_BF16: the bf16 attention products cannot run";
  check_probe_attention(AttentionProducts::Bf16, 1.5e-2);
}

TEST(CpuOps, PatchEmbeddingMatchesConvolution) {
  // 35 is not a multiple of 8: the conv ignores the last 3 rows and columns.
  const int batch = 2, channels = 3, image = 35, patch = 8, hidden = 24, grid = image / patch;
  ThreadPool pool(2, gemm_thread_init);
  GemmContext ctx(pool.size());
  const auto pixels = random_floats(size_t(batch) * channels * image * image, 41, -2.f, 2.f);
  const auto w = random_floats(size_t(hidden) * channels * patch * patch, 42, -0.1f, 0.1f);
  const int64_t rows = int64_t(batch) * grid * grid, len = int64_t(channels) * patch * patch;
  std::vector<float> cols(rows * len), out(rows * hidden);
  im2col_patches(pixels.data(), batch, channels, image, patch, cols.data(), pool);
  Linear conv(ctx, w.data(), nullptr, hidden, len);
  conv.forward(ctx, pool, cols.data(), rows, out.data(), Epilogue::Store);

  Vec want(rows * hidden);
  for (int b = 0; b < batch; ++b)
    for (int gy = 0; gy < grid; ++gy)
      for (int gx = 0; gx < grid; ++gx)
        for (int o = 0; o < hidden; ++o) {
          double s = 0;
          for (int c = 0; c < channels; ++c)
            for (int y = 0; y < patch; ++y)
              for (int x = 0; x < patch; ++x)
                s += double(w[((o * channels + c) * patch + y) * patch + x]) *
                     pixels[((size_t(b) * channels + c) * image + gy * patch + y) * image + gx * patch + x];
          want[((b * grid + gy) * grid + gx) * hidden + o] = s;
        }
  EXPECT_LT(max_abs_diff(out, want), 2e-5);
}

TEST(CpuOps, ThreadPoolRunsEveryTaskOnceAndRethrows) {
  ThreadPool pool(3);
  for (int64_t n : {1, 2, 7, 1000, 100000}) {
    std::vector<std::atomic<int>> hits(n);
    pool.parallel_for(n, 1, [&](int thread, int64_t b, int64_t e) {
      ASSERT_TRUE(thread >= 0 && thread < 3);
      for (int64_t i = b; i < e; ++i) ++hits[i];
    });
    EXPECT_TRUE(std::all_of(hits.begin(), hits.end(), [](auto& h) { return h == 1; })) << n;
  }
  // Many short jobs back to back (the pattern of a forward pass).
  std::atomic<int64_t> sum{0};
  for (int job = 0; job < 2000; ++job) pool.run(5, [&](int64_t i, int) { sum += i; });
  EXPECT_EQ(sum.load(), 2000 * 10);
  EXPECT_THROW(pool.run(10,
                        [](int64_t i, int) {
                          if (i == 7) throw std::runtime_error("boom");
                        }),
               std::runtime_error);
  // Still usable afterwards.
  std::atomic<int> ran{0};
  pool.run(10, [&](int64_t, int) { ++ran; });
  EXPECT_EQ(ran.load(), 10);
}

// ---------------------------------------------------------------- whole towers

struct TinySizes {
  int hidden = 64, layers = 2, heads = 4, intermediate = 128, projection = 32;
  int patch = 8, image = 32;
  int vocab = 100, positions = 16;
};

class Rng {
 public:
  explicit Rng(uint32_t seed) : rng_(seed) {}
  Tensor tensor(std::vector<int64_t> shape, float scale, float center = 0.f) {
    Tensor t(std::move(shape));
    std::uniform_real_distribution<float> u(-scale, scale);
    for (float& x : t.data) x = center + u(rng_);
    return t;
  }

 private:
  std::mt19937 rng_;
};

// Weights scaled so activations stay O(1) through the layers (uniform
// +-1/sqrt(fan_in)), with LayerNorm gains near 1: a 1e-4 bound then means
// something, unlike with the 0.02-std initialisation of transformers.
LinearWeights linear(Rng& r, int64_t out, int64_t in, bool bias = true) {
  LinearWeights w;
  w.weight = r.tensor({out, in}, 1.0f / std::sqrt(float(in)));
  if (bias) w.bias = r.tensor({out}, 0.2f);
  return w;
}
NormWeights norm(Rng& r, int64_t h) { return {r.tensor({h}, 0.2f, 1.0f), r.tensor({h}, 0.2f)}; }
std::vector<LayerWeights> layers(Rng& r, const TinySizes& s) {
  std::vector<LayerWeights> out;
  for (int i = 0; i < s.layers; ++i) {
    LayerWeights l;
    l.ln1 = norm(r, s.hidden);
    l.q = linear(r, s.hidden, s.hidden);
    l.k = linear(r, s.hidden, s.hidden);
    l.v = linear(r, s.hidden, s.hidden);
    l.out = linear(r, s.hidden, s.hidden);
    l.ln2 = norm(r, s.hidden);
    l.fc1 = linear(r, s.intermediate, s.hidden);
    l.fc2 = linear(r, s.hidden, s.intermediate);
    out.push_back(std::move(l));
  }
  return out;
}

struct TinyModel {
  ClipConfig config;
  ModelWeights weights;
};

TinyModel tiny_model(Activation vision_act, Activation text_act, const TinySizes& s = {}) {
  TinyModel m;
  Rng r(1234);
  VisionConfig vc;
  vc.hidden_size = s.hidden;
  vc.intermediate_size = s.intermediate;
  vc.num_layers = s.layers;
  vc.num_heads = s.heads;
  vc.layer_norm_eps = 1e-5f;
  vc.activation = vision_act;
  vc.image_size = s.image;
  vc.patch_size = s.patch;
  TextConfig tc;
  tc.hidden_size = s.hidden;
  tc.intermediate_size = s.intermediate;
  tc.num_layers = s.layers;
  tc.num_heads = s.heads;
  tc.layer_norm_eps = 1e-5f;
  tc.activation = text_act;
  tc.vocab_size = s.vocab;
  tc.max_positions = s.positions;
  m.config.vision = vc;
  m.config.text = tc;
  m.config.projection_dim = s.projection;

  VisionWeights v;
  v.class_embedding = r.tensor({s.hidden}, 1.f);
  v.patch_embedding = r.tensor({s.hidden, 3, s.patch, s.patch}, 1.0f / std::sqrt(3.f * s.patch * s.patch));
  v.position_embedding = r.tensor({vc.num_positions(), s.hidden}, 0.5f);
  v.pre_ln = norm(r, s.hidden);
  v.layers = layers(r, s);
  v.post_ln = norm(r, s.hidden);
  v.projection = linear(r, s.projection, s.hidden, false);
  m.weights.vision = std::move(v);

  TextWeights t;
  t.token_embedding = r.tensor({s.vocab, s.hidden}, 1.f);
  t.position_embedding = r.tensor({s.positions, s.hidden}, 0.5f);
  t.layers = layers(r, s);
  t.final_ln = norm(r, s.hidden);
  t.projection = linear(r, s.projection, s.hidden, false);
  m.weights.text = std::move(t);
  return m;
}

// The reference encoder: h [seq, hidden] in double, every layer on every row.
void ref_encoder(Vec& h, int seq, const std::vector<LayerWeights>& layers, const TowerConfig& c, bool causal) {
  const int H = c.hidden_size;
  for (const LayerWeights& l : layers) {
    Vec x(h.size());
    for (int t = 0; t < seq; ++t)
      ref_layer_norm(&h[t * H], H, l.ln1.weight.ptr(), l.ln1.bias.ptr(), c.layer_norm_eps, &x[t * H]);
    const Vec q = ref_linear(x, seq, H, l.q.weight.data, &l.q.bias.data, H);
    const Vec k = ref_linear(x, seq, H, l.k.weight.data, &l.k.bias.data, H);
    const Vec v = ref_linear(x, seq, H, l.v.weight.data, &l.v.bias.data, H);
    const Vec a = ref_attention(q, k, v, seq, c.num_heads, H / c.num_heads, causal);
    const Vec o = ref_linear(a, seq, H, l.out.weight.data, &l.out.bias.data, H);
    for (size_t i = 0; i < h.size(); ++i) h[i] += o[i];
    for (int t = 0; t < seq; ++t)
      ref_layer_norm(&h[t * H], H, l.ln2.weight.ptr(), l.ln2.bias.ptr(), c.layer_norm_eps, &x[t * H]);
    Vec f = ref_linear(x, seq, H, l.fc1.weight.data, &l.fc1.bias.data, c.intermediate_size);
    for (double& y : f) y = c.activation == Activation::Gelu ? ref_gelu(y) : ref_quick_gelu(y);
    const Vec f2 = ref_linear(f, seq, c.intermediate_size, l.fc2.weight.data, &l.fc2.bias.data, H);
    for (size_t i = 0; i < h.size(); ++i) h[i] += f2[i];
  }
}

Vec ref_project(const Vec& row, const NormWeights& ln, float eps, const LinearWeights& proj) {
  Vec y(row.size());
  ref_layer_norm(row.data(), row.size(), ln.weight.ptr(), ln.bias.ptr(), eps, y.data());
  return ref_linear(y, 1, row.size(), proj.weight.data, nullptr, proj.weight.dim(0));
}

Vec ref_image(const TinyModel& m, const float* pixels) {
  const VisionConfig& c = *m.config.vision;
  const VisionWeights& w = *m.weights.vision;
  const int H = c.hidden_size, P = c.patch_size, S = c.image_size, G = c.grid(), T = G * G + 1;
  Vec h(T * H);
  for (int t = 0; t < T; ++t)
    for (int o = 0; o < H; ++o) {
      double e = 0;
      if (t == 0) {
        e = w.class_embedding.data[o];
      } else {
        const int gy = (t - 1) / G, gx = (t - 1) % G;
        for (int ch = 0; ch < 3; ++ch)
          for (int y = 0; y < P; ++y)
            for (int x = 0; x < P; ++x)
              e += double(w.patch_embedding.data[((o * 3 + ch) * P + y) * P + x]) *
                   pixels[(ch * S + gy * P + y) * S + gx * P + x];
      }
      h[t * H + o] = e + w.position_embedding.data[t * H + o];
    }
  for (int t = 0; t < T; ++t)
    ref_layer_norm(&h[t * H], H, w.pre_ln.weight.ptr(), w.pre_ln.bias.ptr(), c.layer_norm_eps, &h[t * H]);
  ref_encoder(h, T, w.layers, c, false);
  return ref_project(Vec(h.begin(), h.begin() + H), w.post_ln, c.layer_norm_eps, w.projection);
}

Vec ref_text(const TinyModel& m, const std::vector<int32_t>& ids, int pool_at) {
  const TextConfig& c = *m.config.text;
  const TextWeights& w = *m.weights.text;
  const int H = c.hidden_size, T = static_cast<int>(ids.size());
  Vec h(T * H);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < H; ++i)
      h[t * H + i] = double(w.token_embedding.data[ids[t] * H + i]) + w.position_embedding.data[t * H + i];
  ref_encoder(h, T, w.layers, c, true);
  return ref_project(Vec(h.begin() + pool_at * H, h.begin() + (pool_at + 1) * H), w.final_ln, c.layer_norm_eps,
                     w.projection);
}

std::vector<float> row(const Tensor& t, int64_t i) {
  const int64_t n = t.dim(1);
  return std::vector<float>(t.data.begin() + i * n, t.data.begin() + (i + 1) * n);
}

TextBatch text_batch(const std::vector<std::vector<int32_t>>& texts, const std::vector<int>& pools) {
  TextBatch b;
  b.count = static_cast<int>(texts.size());
  b.seq_len = static_cast<int>(texts.at(0).size());
  for (const auto& t : texts) b.ids.insert(b.ids.end(), t.begin(), t.end());
  b.pool_at.assign(pools.begin(), pools.end());
  return b;
}

const std::vector<std::vector<int32_t>> kTexts = {{1, 17, 42, 99, 3, 0, 0, 0, 0, 0, 0, 0},
                                                  {1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 99},
                                                  {1, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                                                  {1, 64, 63, 62, 61, 60, 99, 2, 2, 2, 2, 2}};
const std::vector<int> kPools = {3, 11, 1, 6};

class CpuTower : public ::testing::TestWithParam<Activation> {};

TEST_P(CpuTower, ImagesMatchDoubleReference) {
  const TinyModel m = tiny_model(GetParam(), GetParam());
  const auto backend = make_cpu_backend(m.config, m.weights, 2);
  // 9 images x 17 tokens = 153 rows: the GEMMs split by rows; alone (17
  // rows) they split by columns. Both paths must agree with the reference.
  const int n = 9, S = m.config.vision->image_size;
  Tensor pixels({n, 3, S, S});
  pixels.data = random_floats(pixels.numel(), 51, -2.f, 2.f);
  const Tensor got = backend->encode_images(pixels);
  ASSERT_EQ(got.shape, (std::vector<int64_t>{n, m.config.projection_dim}));
  for (int i = 0; i < n; ++i) {
    const Vec want = ref_image(m, pixels.ptr() + size_t(i) * 3 * S * S);
    const double err = max_abs_diff(row(got, i), want);
    EXPECT_LT(err, 1e-4) << "image " << i;
    std::printf("[tower] image %d: max|a-b| %.2e\n", i, err);
    // The same image alone gives the same embedding.
    Tensor one({1, 3, S, S});
    std::copy_n(pixels.ptr() + size_t(i) * 3 * S * S, one.numel(), one.ptr());
    EXPECT_LT(max_abs_diff(row(backend->encode_images(one), 0), row(got, i)), 1e-5);
  }
}

TEST_P(CpuTower, TextsMatchDoubleReference) {
  const TinyModel m = tiny_model(GetParam(), GetParam());
  const auto backend = make_cpu_backend(m.config, m.weights, 2);
  const Tensor got = backend->encode_texts(text_batch(kTexts, kPools));
  ASSERT_EQ(got.shape, (std::vector<int64_t>{4, m.config.projection_dim}));
  for (size_t i = 0; i < kTexts.size(); ++i) {
    const Vec want = ref_text(m, kTexts[i], kPools[i]);
    const double err = max_abs_diff(row(got, i), want);
    EXPECT_LT(err, 1e-4) << "text " << i;
    std::printf("[tower] text %zu: max|a-b| %.2e\n", i, err);
  }
}

TEST_P(CpuTower, LargeTextBatchMatchesDoubleReference) {
  // 12 texts x 12 tokens = 144 rows: the row-split GEMM path.
  const TinyModel m = tiny_model(GetParam(), GetParam());
  const auto backend = make_cpu_backend(m.config, m.weights, 2);
  std::vector<std::vector<int32_t>> texts;
  std::vector<int> pools;
  for (int copy = 0; copy < 3; ++copy)
    for (size_t i = 0; i < kTexts.size(); ++i) {
      texts.push_back(kTexts[i]);
      texts.back()[0] = 1 + copy;  // make the copies differ
      pools.push_back(kPools[i]);
    }
  const Tensor got = backend->encode_texts(text_batch(texts, pools));
  for (size_t i = 0; i < texts.size(); ++i)
    EXPECT_LT(max_abs_diff(row(got, i), ref_text(m, texts[i], pools[i])), 1e-4) << "text " << i;
}

INSTANTIATE_TEST_SUITE_P(Activations, CpuTower, ::testing::Values(Activation::QuickGelu, Activation::Gelu));

TEST(CpuTowerText, IndependentOfBatchCompositionAndLength) {
  const TinyModel m = tiny_model(Activation::QuickGelu, Activation::QuickGelu);
  const auto backend = make_cpu_backend(m.config, m.weights, 2);
  const Tensor all = backend->encode_texts(text_batch(kTexts, kPools));
  for (size_t i = 0; i < kTexts.size(); ++i) {
    // Alone, at the full length and cut right after the pooled token (what
    // the engine does).
    const Tensor alone = backend->encode_texts(text_batch({kTexts[i]}, {kPools[i]}));
    EXPECT_LT(max_abs_diff(row(alone, 0), row(all, i)), 1e-5) << "text " << i;
    const std::vector<int32_t> cut(kTexts[i].begin(), kTexts[i].begin() + kPools[i] + 1);
    const Tensor shorter = backend->encode_texts(text_batch({cut}, {kPools[i]}));
    EXPECT_LT(max_abs_diff(row(shorter, 0), row(all, i)), 1e-5) << "text " << i << " cut";
  }
  // Reversed order.
  std::vector<std::vector<int32_t>> rev(kTexts.rbegin(), kTexts.rend());
  std::vector<int> rev_pools(kPools.rbegin(), kPools.rend());
  const Tensor reversed = backend->encode_texts(text_batch(rev, rev_pools));
  for (size_t i = 0; i < kTexts.size(); ++i)
    EXPECT_LT(max_abs_diff(row(reversed, kTexts.size() - 1 - i), row(all, i)), 1e-5);
}

TEST(CpuTowerText, TokensAfterThePooledOneDoNotMatter) {
  const TinyModel m = tiny_model(Activation::QuickGelu, Activation::Gelu);
  const auto backend = make_cpu_backend(m.config, m.weights, 2);
  const Tensor before = backend->encode_texts(text_batch(kTexts, kPools));
  auto changed = kTexts;
  for (size_t i = 0; i < changed.size(); ++i)
    for (size_t t = kPools[i] + 1; t < changed[i].size(); ++t) changed[i][t] = (changed[i][t] * 31 + 7) % 100;
  const Tensor after = backend->encode_texts(text_batch(changed, kPools));
  EXPECT_LT(max_abs_diff(after.data, before.data), 1e-6);
}

TEST(CpuTowerText, SameResultForAnyThreadCount) {
  const TinyModel m = tiny_model(Activation::QuickGelu, Activation::QuickGelu);
  const Tensor one = make_cpu_backend(m.config, m.weights, 1)->encode_texts(text_batch(kTexts, kPools));
  for (int threads : {2, 3, 5}) {
    const Tensor many = make_cpu_backend(m.config, m.weights, threads)->encode_texts(text_batch(kTexts, kPools));
    EXPECT_LT(max_abs_diff(many.data, one.data), 1e-5) << threads << " threads";
  }
}

TEST(CpuTowerText, RejectsBadBatches) {
  const TinyModel m = tiny_model(Activation::QuickGelu, Activation::QuickGelu);
  const auto backend = make_cpu_backend(m.config, m.weights, 2);
  TextBatch b = text_batch({{1, 2, 3}}, {2});
  b.ids[1] = 100;  // vocab is 100
  EXPECT_THROW(backend->encode_texts(b), clip::Error);
  b = text_batch({{1, 2, 3}}, {3});
  EXPECT_THROW(backend->encode_texts(b), clip::Error);
  b = text_batch({std::vector<int32_t>(17, 1)}, {0});  // 16 positions
  EXPECT_THROW(backend->encode_texts(b), clip::Error);
  Tensor wrong({1, 3, 16, 16});
  EXPECT_THROW(backend->encode_images(wrong), clip::Error);
  TextBatch empty;
  empty.seq_len = 1;
  EXPECT_EQ(backend->encode_texts(empty).shape, (std::vector<int64_t>{0, 32}));
}

TEST(CpuTowerText, RejectsMisShapedWeights) {
  TinyModel m = tiny_model(Activation::QuickGelu, Activation::QuickGelu);
  m.weights.text->layers[1].fc2.weight = Tensor({64, 100});
  try {
    make_cpu_backend(m.config, m.weights, 1);
    FAIL() << "expected clip::Error";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("text layer 1 fc2.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
