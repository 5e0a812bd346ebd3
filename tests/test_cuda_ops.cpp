// Every CUDA op against a CPU reference (test_cuda_reference.h) on random
// inputs, with a per-op tolerance, in one harness that can also time the ops
// (CLIPFIND_OPS_TIME=1: the CudaOpsPerf tests print median microseconds and
// achieved bandwidth/FLOP rate at CLIP's real shapes).
//
// Inputs are rounded to the op's storage type first and the reference is
// computed from the rounded values, so a tolerance bounds the kernel's own
// error (its arithmetic plus the rounding of its output), not the input's.
// Without a usable GPU every test skips and prints why.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "clip/cuda/attention.cuh"
#include "clip/cuda/bias_act.cuh"
#include "clip/cuda/convert.cuh"
#include "clip/cuda/cuda_backend.h"
#include "clip/cuda/embed.cuh"
#include "clip/cuda/fold_norm.h"
#include "clip/cuda/gather.cuh"
#include "clip/cuda/gemm.h"
#include "clip/cuda/layernorm.cuh"
#include "clip/cuda/ln_fold.cuh"
#include "clip/cuda/probe_attention.cuh"
#include "clip/cuda/resources.h"
#include "clip/cuda/sm90/sm90_attention.h"
#include "clip/cuda/sm90/sm90_gemm.h"
#include "clip/cuda/small_linear.cuh"
#include "clip/cuda/test_support/dirty_shared_memory.h"
#include "clip/cuda/tuning.h"
#include "support/random_model.h"
#include "test_cuda_reference.h"

namespace clip::cuda {
namespace {

using testing::Rng;

// The switches the GPU rounds run these tests with: the environment's
// (bench/gpu/run_round.sh logs the GEMM races with CLIPFIND_CUDA_GEMM_LOG=1).
// Tests that depend on a switch build their Tuning explicitly.
Tuning env_tuning() { return Tuning::from_environment(); }

// ---- device memory helpers ----------------------------------------------------

struct Dev {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Dev(size_t b) : bytes(b) {
    if (b) CUDA_CHECK(cudaMalloc(&p, b));
  }
  ~Dev() {
    if (p) cudaFree(p);
  }
  Dev(const Dev&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

Exec test_exec() { return Exec{nullptr, true}; }  // default stream, synchronising checks

// The SMs of device 0 (the attention kernels size their grids by them).
int device_sms() {
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  return sms;
}

// host float32 -> device `type`
std::unique_ptr<Dev> upload(const std::vector<float>& v, DType type) {
  Dev tmp(v.size() * 4);
  CUDA_CHECK(cudaMemcpy(tmp.p, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  auto d = std::make_unique<Dev>(v.size() * dtype_size(type));
  convert(test_exec(), tmp.p, DType::F32, d->p, type, v.size());
  return d;
}

std::vector<float> download(const void* p, DType type, size_t n) {
  Dev tmp(n * 4);
  convert(test_exec(), p, type, tmp.p, DType::F32, n);
  std::vector<float> v(n);
  CUDA_CHECK(cudaMemcpy(v.data(), tmp.p, n * 4, cudaMemcpyDeviceToHost));
  return v;
}

// The values `v` would hold after rounding to `type` (through the GPU's own
// conversion, so host and device agree bit for bit).
std::vector<float> rounded(const std::vector<float>& v, DType type) {
  if (type == DType::F32) return v;
  auto d = upload(v, type);
  return download(d->p, type, v.size());
}

std::vector<float> random_vec(Rng& r, size_t n, float std = 1.f, float mean = 0.f) {
  std::vector<float> v(n);
  for (float& x : v) x = mean + r.sym(std);
  return v;
}

// Poison so that an element the kernel forgets to write cannot pass.
void poison(void* p, size_t bytes) { CUDA_CHECK(cudaMemset(p, 0xFF, bytes)); }  // NaN in every type

struct Tol {
  double atol, rtol;
};

// Per-type output tolerance for values of order 1: a few units of the
// type's rounding (fp16 2^-11, bf16 2^-8) plus the kernel's own arithmetic.
Tol output_tol(DType t, double f32 = 2e-5) {
  switch (t) {
    case DType::F32: return {f32, f32};
    case DType::F16: return {2e-3, 2e-3};
    case DType::BF16: return {1.6e-2, 1.6e-2};
  }
  return {0, 0};
}

// Asserts |got - want| <= atol + rtol*|want| everywhere (NaN fails) and
// prints the worst error.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, Tol tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0, worst_excess = -1;
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]);
    const double lim = tol.atol + tol.rtol * std::fabs(want[i]);
    if (!(err <= lim)) {
      if (!bad) first_bad = i;
      ++bad;
    }
    if (!(err <= worst)) worst = err;  // NaN makes worst NaN
    worst_excess = std::max(worst_excess, err - lim);
  }
  std::printf("  %-58s max|err| %.3g\n", what.c_str(), worst);
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " values off; first at " << first_bad << ": got "
                     << got[first_bad] << " want " << want[first_bad];
}

// Median time of `fn` in microseconds over `reps` runs after warm-up.
// The events go on `stream`, the one `fn` launches on.
double time_us(const std::function<void()>& fn, cudaStream_t stream = nullptr, int reps = 30) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    CUDA_CHECK(cudaEventRecord(a, stream));
    fn();
    CUDA_CHECK(cudaEventRecord(b, stream));
    CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::nth_element(ms.begin(), ms.begin() + reps / 2, ms.end());
  return ms[reps / 2] * 1e3;
}

bool timing_enabled() {
  const char* e = std::getenv("CLIPFIND_OPS_TIME");
  return e && *e && std::string(e) != "0";
}

const DType kTypes[] = {DType::F32, DType::F16, DType::BF16};

// A linear layer of the fp16 forward pass as the runner sees it: fp16
// operands, float32 bias, an fp16 output (+ activation) or, with
// `residual`, the float32 stream updated in place.
GemmShape fp16_layer(int64_t M, int N, int K, bool residual, Act act) {
  GemmShape gs;
  gs.M = M;
  gs.N = N;
  gs.K = K;
  gs.in_type = DType::F16;
  gs.out_type = residual ? DType::F32 : DType::F16;
  gs.compute = GemmCompute::Mixed;
  gs.accumulate = residual;
  gs.bias = true;
  gs.act = act;
  return gs;
}

// A LayerNorm's weights: gamma around 1, beta of spread beta_std.
NormWeights random_norm(Rng& r, int n, float beta_std) {
  NormWeights norm;
  norm.weight = Tensor({n});
  norm.bias = Tensor({n});
  for (int i = 0; i < n; ++i) norm.weight.data[i] = 1.f + r.sym(0.5f), norm.bias.data[i] = r.sym(beta_std);
  return norm;
}

// A linear layer [out, in] with weights of spread w_std rounded to `type`
// (no GPU needed for F32) and biases of spread 0.5.
LinearWeights random_linear(Rng& r, int out, int in, float w_std, DType type) {
  LinearWeights lin;
  lin.weight = Tensor({out, in});
  lin.bias = Tensor({out});
  lin.weight.data = rounded(random_vec(r, size_t(out) * in, w_std), type);
  lin.bias.data = random_vec(r, out, 0.5f);
  return lin;
}

// fold_norm on the host (no GPU needed): for a normalised z (mean 0), the
// folded layer gives LN's affine part followed by the layer, its rows sum to
// zero, and mismatched shapes are refused with the layer's name.
TEST(FoldNorm, MatchesNormThenLinear) {
  Rng r(5);
  constexpr int In = 48, Out = 20;
  const NormWeights norm = random_norm(r, In, 0.5f);
  const LinearWeights lin = random_linear(r, Out, In, 1.f, DType::F32);
  const LinearWeights f = fold_norm(lin, norm, "layer");
  std::vector<float> z = random_vec(r, In, 1.f, 3.f);
  double mean = 0;
  for (float v : z) mean += v;
  for (float& v : z) v -= static_cast<float>(mean / In);
  for (int o = 0; o < Out; ++o) {
    double want = lin.bias.data[o], got = f.bias.data[o], row = 0;
    for (int i = 0; i < In; ++i) {
      want += (double(z[i]) * norm.weight.data[i] + norm.bias.data[i]) * lin.weight.data[size_t(o) * In + i];
      got += double(z[i]) * f.weight.data[size_t(o) * In + i];
      row += f.weight.data[size_t(o) * In + i];
    }
    EXPECT_NEAR(got, want, 1e-4 * (1 + std::fabs(want))) << "output " << o;
    EXPECT_NEAR(row, 0.0, 1e-5) << "row " << o;
  }
  NormWeights wrong = norm;
  wrong.weight = Tensor({In - 1});
  try {
    fold_norm(lin, wrong, "layers.3.mlp.fc1");
    ADD_FAILURE() << "mismatched norm accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.3.mlp.fc1"), std::string::npos) << e.what();
  }
}

// The epilogues of a folded LayerNorm (gemm.h, LnFold): they need buffers
// the plain tests do not give (Sm90LnFold).
bool is_ln_fold(sm90::Epilogue e) {
  return e == sm90::Epilogue::BiasResidualLnStats || e == sm90::Epilogue::LnFoldBias ||
         e == sm90::Epilogue::LnFoldQuickGelu || e == sm90::Epilogue::LnFoldGelu || e == sm90::Epilogue::LnFoldGeluTanh;
}

// ---- SigLIP's pooling attention -----------------------------------------------------

// One fixed query per head over every token of each image, against a
// double-precision softmax; head sizes 72 (SO400M) and 64, sequences up to
// 1,024 patches, and a ragged one.
TEST(CudaOps, ProbeAttention) {
  SKIP_WITHOUT_GPU();
  Rng r(21);
  struct Case {
    int n, seq, heads, D;
  };
  for (DType t : kTypes) {
    for (Case c : {Case{3, 256, 16, 72}, Case{2, 1024, 2, 72}, Case{4, 196, 12, 64}, Case{2, 37, 3, 24}}) {
      const int H = c.heads * c.D;
      const float scale = 1.f / std::sqrt(float(c.D));
      std::vector<float> q = random_vec(r, H, 1.f);
      std::vector<float> kv = rounded(random_vec(r, size_t(c.n) * c.seq * 2 * H, 1.f), t);
      auto dq = upload(q, DType::F32), dkv = upload(kv, t);
      Dev out(size_t(c.n) * H * dtype_size(t));
      poison(out.p, out.bytes);
      probe_attention(test_exec(), dq->as<float>(), dkv->p, out.p, t, c.n, c.seq, c.heads, c.D, scale);
      CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<float> want(size_t(c.n) * H);
      for (int b = 0; b < c.n; ++b)
        for (int h = 0; h < c.heads; ++h) {
          std::vector<double> p(c.seq);
          double m = -1e300, sum = 0;
          for (int s = 0; s < c.seq; ++s) {
            const float* k = &kv[(size_t(b) * c.seq + s) * 2 * H + h * c.D];
            double dot = 0;
            for (int d = 0; d < c.D; ++d) dot += double(q[h * c.D + d]) * k[d];
            p[s] = dot * scale;
            m = std::max(m, p[s]);
          }
          for (double& v : p) sum += (v = std::exp(v - m));
          for (int d = 0; d < c.D; ++d) {
            double acc = 0;
            for (int s = 0; s < c.seq; ++s) acc += p[s] * kv[(size_t(b) * c.seq + s) * 2 * H + H + h * c.D + d];
            want[size_t(b) * H + h * c.D + d] = float(acc / sum);
          }
        }
      expect_close(download(out.p, t, want.size()), want, output_tol(t, 1e-5),
                   std::string("probe_attention ") + dtype_name(t) + " n=" + std::to_string(c.n) +
                       " seq=" + std::to_string(c.seq) + " D=" + std::to_string(c.D));
    }
  }
}

// ---- LayerNorm -------------------------------------------------------------------

TEST(CudaOps, LayerNorm) {
  SKIP_WITHOUT_GPU();
  Rng r(1);
  for (DType t : kTypes) {
    for (int H : {64, 512, 768, 1024, 1280, 100, 2304}) {  // 100 and 2304: the block-per-row kernel
      for (bool gather : {false, true}) {
        const int M = 37, rows_out = gather ? 5 : M;
        // Offset mean and large-ish spread: statistics must not cancel.
        std::vector<float> x = random_vec(r, size_t(M) * H, 2.f, 3.f);
        std::vector<float> g = random_vec(r, H, 0.1f, 1.f), b = random_vec(r, H, 0.1f);
        std::vector<int32_t> rows = {36, 0, 7, 7, 20};
        auto dx = upload(x, DType::F32), dg = upload(g, DType::F32), db = upload(b, DType::F32);
        Dev drows(rows.size() * 4), dout(size_t(rows_out) * H * dtype_size(t));
        CUDA_CHECK(cudaMemcpy(drows.p, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice));
        poison(dout.p, dout.bytes);
        layernorm(test_exec(), dx->as<float>(), gather ? drows.as<int32_t>() : nullptr, rows_out, H, dg->as<float>(),
                  db->as<float>(), 1e-5f, dout.p, t);
        std::vector<float> xin = x;
        if (gather) {
          xin.clear();
          for (int32_t s : rows) xin.insert(xin.end(), x.begin() + size_t(s) * H, x.begin() + size_t(s + 1) * H);
        }
        std::vector<float> want = ref::layernorm(xin, rows_out, H, g.data(), b.data(), 1e-5f);
        expect_close(download(dout.p, t, want.size()), want, output_tol(t),
                     std::string("layernorm ") + dtype_name(t) + " H=" + std::to_string(H) + (gather ? " gather" : ""));
      }
    }
  }
  // In place, float32 (the vision tower's pre-norm path shape).
  for (int H : {768, 100}) {
    const int M = 9;
    std::vector<float> x = random_vec(r, size_t(M) * H, 1.f, -2.f), g = random_vec(r, H, 0.1f, 1.f),
                       b = random_vec(r, H, 0.1f);
    auto dx = upload(x, DType::F32), dg = upload(g, DType::F32), db = upload(b, DType::F32);
    layernorm(test_exec(), dx->as<float>(), nullptr, M, H, dg->as<float>(), db->as<float>(), 1e-5f, dx->p, DType::F32);
    expect_close(download(dx->p, DType::F32, x.size()), ref::layernorm(x, M, H, g.data(), b.data(), 1e-5f),
                 output_tol(DType::F32), "layernorm f32 in place H=" + std::to_string(H));
  }
}

TEST(CudaOps, VisionEmbedLayerNorm) {
  SKIP_WITHOUT_GPU();
  Rng r(2);
  for (DType t : kTypes) {
    for (int H : {768, 100}) {
      const int n = 3, S = 50;
      std::vector<float> patches = rounded(random_vec(r, size_t(n) * (S - 1) * H), t);
      std::vector<float> cls = random_vec(r, H), pos = random_vec(r, size_t(S) * H, 0.5f);
      std::vector<float> g = random_vec(r, H, 0.1f, 1.f), b = random_vec(r, H, 0.1f);
      auto dp = upload(patches, t), dc = upload(cls, DType::F32), dpos = upload(pos, DType::F32),
           dg = upload(g, DType::F32), db = upload(b, DType::F32);
      Dev h(size_t(n) * S * H * 4);
      poison(h.p, h.bytes);
      vision_embed_layernorm(test_exec(), dp->p, t, dc->as<float>(), dpos->as<float>(), n, S, H, dg->as<float>(),
                             db->as<float>(), 1e-5f, h.as<float>());
      std::vector<float> e(size_t(n) * S * H);
      for (int bb = 0; bb < n; ++bb)
        for (int s = 0; s < S; ++s)
          for (int i = 0; i < H; ++i)
            e[(size_t(bb) * S + s) * H + i] =
                (s == 0 ? cls[i] : patches[(size_t(bb) * (S - 1) + s - 1) * H + i]) + pos[size_t(s) * H + i];
      const std::vector<float> want = ref::layernorm(e, int64_t(n) * S, H, g.data(), b.data(), 1e-5f);
      const std::string what =
          std::string("vision_embed_layernorm patches ") + dtype_name(t) + " H=" + std::to_string(H);
      expect_close(download(h.p, DType::F32, e.size()), want, output_tol(DType::F32), what);
      if (H % 4) continue;
      // With the outputs of the first LN1 folded into its GEMM (ln_fold.cuh):
      // h in fp16 and each row's 1/sqrt(var + eps).
      Dev h16(size_t(n) * S * H * 2), scale(size_t(n) * S * 4);
      for (Dev* d : {&h, &h16, &scale}) poison(d->p, d->bytes);
      vision_embed_layernorm(test_exec(), dp->p, t, dc->as<float>(), dpos->as<float>(), n, S, H, dg->as<float>(),
                             db->as<float>(), 1e-5f, h.as<float>(), h16.p, scale.as<float>(), 1e-6f);
      expect_close(download(h.p, DType::F32, e.size()), want, output_tol(DType::F32), what + " (+ fold outputs)");
      expect_close(download(h16.p, DType::F16, e.size()), rounded(want, DType::F16), output_tol(DType::F16),
                   what + " fp16 copy");
      std::vector<float> want_scale(size_t(n) * S);
      for (size_t row = 0; row < want_scale.size(); ++row) {
        double mean = 0, var = 0;
        for (int i = 0; i < H; ++i) mean += want[row * H + i];
        mean /= H;
        for (int i = 0; i < H; ++i) var += (want[row * H + i] - mean) * (want[row * H + i] - mean);
        want_scale[row] = float(1 / std::sqrt(var / H + 1e-6));
      }
      expect_close(download(scale.p, DType::F32, want_scale.size()), want_scale, Tol{1e-6, 1e-5}, what + " row scales");
    }
  }
}

// ---- bias + activation -----------------------------------------------------------

TEST(CudaOps, BiasAct) {
  SKIP_WITHOUT_GPU();
  Rng r(3);
  const Act acts[] = {Act::None, Act::QuickGelu, Act::Gelu, Act::GeluTanh};
  const char* names[] = {"none", "quick_gelu", "gelu", "gelu_tanh"};
  for (DType t : kTypes) {
    for (int a = 0; a < 4; ++a) {
      for (int cols : {3072, 100, 6}) {  // 100, 6: not a multiple of 8 -> scalar path for 16-bit types
        for (bool with_bias : {true, false}) {
          if (acts[a] == Act::None && !with_bias) continue;
          const int rows = 33;
          std::vector<float> y = rounded(random_vec(r, size_t(rows) * cols, 3.f), t);
          std::vector<float> bias = random_vec(r, cols, 0.5f);
          auto dy = upload(y, t), dbias = upload(bias, DType::F32);
          bias_act(test_exec(), dy->p, t, rows, cols, with_bias ? dbias->as<float>() : nullptr, acts[a]);
          std::vector<float> want(y.size());
          for (size_t i = 0; i < y.size(); ++i) {
            const float v = y[i] + (with_bias ? bias[i % cols] : 0.f);
            want[i] = acts[a] == Act::Gelu        ? ref::gelu(v)
                      : acts[a] == Act::GeluTanh  ? ref::gelu_tanh(v)
                      : acts[a] == Act::QuickGelu ? ref::quick_gelu(v)
                                                  : v;
          }
          expect_close(download(dy->p, t, y.size()), want, output_tol(t, 1e-5),
                       std::string("bias_act ") + dtype_name(t) + " " + names[a] + " cols=" + std::to_string(cols) +
                           (with_bias ? " +bias" : ""));
        }
      }
    }
  }
}

// ---- embeddings ------------------------------------------------------------------

TEST(CudaOps, Im2colPatches) {
  SKIP_WITHOUT_GPU();
  Rng r(4);
  struct Case {
    int n, C, img, p;
  };
  for (DType t : kTypes) {
    for (Case c :
         {Case{2, 3, 224, 32}, Case{1, 3, 224, 14}, Case{1, 3, 224, 16}, Case{2, 3, 30, 7} /* remainder dropped */}) {
      std::vector<float> px = random_vec(r, size_t(c.n) * c.C * c.img * c.img);
      auto dpx = upload(px, DType::F32);
      const int g = c.img / c.p, K = c.C * c.p * c.p;
      Dev out(size_t(c.n) * g * g * K * dtype_size(t));
      poison(out.p, out.bytes);
      im2col_patches(test_exec(), dpx->as<float>(), c.n, c.C, c.img, c.p, out.p, t);
      std::vector<float> want(size_t(c.n) * g * g * K);
      for (int b = 0; b < c.n; ++b)
        for (int gy = 0; gy < g; ++gy)
          for (int gx = 0; gx < g; ++gx)
            for (int ch = 0; ch < c.C; ++ch)
              for (int ky = 0; ky < c.p; ++ky)
                for (int kx = 0; kx < c.p; ++kx)
                  want[(size_t(b) * g * g + gy * g + gx) * K + (ch * c.p + ky) * c.p + kx] =
                      px[((size_t(b) * c.C + ch) * c.img + gy * c.p + ky) * c.img + gx * c.p + kx];
      expect_close(
          download(out.p, t, want.size()), rounded(want, t), {0, 0},
          std::string("im2col ") + dtype_name(t) + " p=" + std::to_string(c.p) + " img=" + std::to_string(c.img));
    }
  }
}

TEST(CudaOps, TextEmbed) {
  SKIP_WITHOUT_GPU();
  Rng r(5);
  for (DType t : kTypes) {
    const int vocab = 49408, H = 512, n = 3, seq = 9, maxpos = 77;
    std::vector<float> tok = rounded(random_vec(r, size_t(vocab) * H), t), pos = random_vec(r, size_t(maxpos) * H);
    std::vector<int32_t> ids(n * seq);
    for (auto& id : ids) id = r.below(vocab);
    ids[0] = vocab - 1;
    auto dtok = upload(tok, t), dpos = upload(pos, DType::F32);
    Dev dids(ids.size() * 4), h(size_t(n) * seq * H * 4);
    CUDA_CHECK(cudaMemcpy(dids.p, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice));
    poison(h.p, h.bytes);
    text_embed(test_exec(), dids.as<int32_t>(), n, seq, dtok->p, t, dpos->as<float>(), H, h.as<float>());
    std::vector<float> want(size_t(n) * seq * H);
    for (int rr = 0; rr < n * seq; ++rr)
      for (int i = 0; i < H; ++i)
        want[size_t(rr) * H + i] = tok[size_t(ids[rr]) * H + i] + pos[size_t(rr % seq) * H + i];
    expect_close(download(h.p, DType::F32, want.size()), want, {1e-6, 1e-6},
                 std::string("text_embed ") + dtype_name(t));
  }
}

// ---- attention -------------------------------------------------------------------

struct AttnCase {
  int B, S, heads, D;
  bool causal;
  float key_ramp = 0.f;  // key j scaled by 1 + key_ramp * j: scores that grow along the sequence
};

const char* attn_impl_name(AttnImpl impl) {
  switch (impl) {
    case AttnImpl::Wgmma: return "wgmma";
    case AttnImpl::TensorCore: return "tensor-core";
    case AttnImpl::Flash: return "flash";
    default: return "simt";
  }
}

// A random QKV input for the case, rounded to `t`.
std::vector<float> attention_input(Rng& r, DType t, const AttnCase& c) {
  const int H = c.heads * c.D;
  std::vector<float> qkv = random_vec(r, size_t(c.B) * c.S * 3 * H);
  for (size_t row = 0; row < size_t(c.B) * c.S; ++row)
    for (int i = H; i < 2 * H; ++i) qkv[row * 3 * H + i] *= 1.f + c.key_ramp * float(row % c.S);
  return rounded(qkv, t);
}

// Attention's tolerance: fp16/bf16 tensor cores also round P to the storage
// type before P*V.
Tol attention_tol(DType t) {
  return t == DType::F32 ? Tol{2e-5, 2e-5} : t == DType::F16 ? Tol{3e-3, 3e-3} : Tol{2e-2, 2e-2};
}

void check_attention(Rng& r, DType t, AttnImpl impl, AttnCase c, int num_sms) {
  const int H = c.heads * c.D;
  const std::vector<float> qkv = attention_input(r, t, c);
  auto dq = upload(qkv, t);
  Dev out(size_t(c.B) * c.S * H * dtype_size(t));
  poison(out.p, out.bytes);
  AttnShape s{c.B, c.S, c.heads, c.D, c.causal, 1.f / std::sqrt(float(c.D))};
  if (impl == AttnImpl::Wgmma) test::dirty_shared_memory();  // it must read only what it copied
  attention(test_exec(), dq->p, out.p, t, s, num_sms, impl);
  const std::vector<float> want = ref::attention(qkv, c.B, c.S, c.heads, c.D, c.causal, s.scale);
  char name[160];
  std::snprintf(name, sizeof name, "attention %s %s B=%d S=%d heads=%d D=%d%s key_ramp=%g", dtype_name(t),
                attn_impl_name(impl), c.B, c.S, c.heads, c.D, c.causal ? " causal" : "", c.key_ramp);
  expect_close(download(out.p, t, want.size()), want, attention_tol(t), name);
}

// The same check against the SIMT kernel run in float32 on the same rounded
// input (the CPU reference is too slow for SigLIP's 1,024-token shapes).
void check_attention_vs_simt(Rng& r, DType t, AttnImpl impl, AttnCase c, int num_sms) {
  const int H = c.heads * c.D;
  const std::vector<float> qkv = attention_input(r, t, c);
  auto dq = upload(qkv, t);
  auto dq32 = upload(qkv, DType::F32);
  const size_t n = size_t(c.B) * c.S * H;
  Dev out(n * dtype_size(t)), ref_out(n * 4);
  poison(out.p, out.bytes);
  poison(ref_out.p, ref_out.bytes);
  AttnShape s{c.B, c.S, c.heads, c.D, c.causal, 1.f / std::sqrt(float(c.D))};
  attention(test_exec(), dq->p, out.p, t, s, num_sms, impl);
  attention(test_exec(), dq32->p, ref_out.p, DType::F32, s, num_sms, AttnImpl::Simt);
  const std::vector<float> want = download(ref_out.p, DType::F32, n);
  char name[160];
  std::snprintf(name, sizeof name, "attention %s %s B=%d S=%d heads=%d D=%d%s key_ramp=%g vs simt", dtype_name(t),
                attn_impl_name(impl), c.B, c.S, c.heads, c.D, c.causal ? " causal" : "", c.key_ramp);
  expect_close(download(out.p, t, n), want, attention_tol(t), name);
}

// Rows picked out of a buffer, in any order and with repeats, for row sizes
// that take the 16-byte path and ones that do not (odd byte counts, and a
// destination off 16-byte alignment).
TEST(CudaOps, GatherRows) {
  SKIP_WITHOUT_GPU();
  Rng r(9);
  const std::vector<int32_t> rows = {5, 0, 63, 5, 17, 1, 40};
  const int n = static_cast<int>(rows.size()), src_rows = 64;
  Dev d_rows(n * 4);
  CUDA_CHECK(cudaMemcpy(d_rows.p, rows.data(), n * 4, cudaMemcpyHostToDevice));
  for (size_t row_bytes : {size_t(1536), size_t(3072), size_t(6), size_t(1)}) {
    for (size_t dst_offset : {size_t(0), size_t(4)}) {
      std::vector<unsigned char> src(src_rows * row_bytes);
      for (auto& b : src) b = static_cast<unsigned char>(r.next() >> 24);
      Dev d_src(src.size()), d_dst(n * row_bytes + dst_offset);
      CUDA_CHECK(cudaMemcpy(d_src.p, src.data(), src.size(), cudaMemcpyHostToDevice));
      poison(d_dst.p, d_dst.bytes);
      unsigned char* dst = static_cast<unsigned char*>(d_dst.p) + dst_offset;
      gather_rows(test_exec(), d_rows.as<int32_t>(), n, GatherTable{d_src.p, row_bytes, dst});
      std::vector<unsigned char> got(n * row_bytes);
      CUDA_CHECK(cudaMemcpy(got.data(), dst, got.size(), cudaMemcpyDeviceToHost));
      for (int i = 0; i < n; ++i)
        ASSERT_EQ(0, std::memcmp(got.data() + i * row_bytes, src.data() + rows[i] * row_bytes, row_bytes))
            << "row " << i << " of " << row_bytes << " bytes, dst offset " << dst_offset;
    }
  }
  EXPECT_THROW(gather_rows(test_exec(), d_rows.as<int32_t>(), 1, GatherTable{d_rows.p, 4, d_rows.p}), Error);
  // Two tables in one launch (16-byte rows in one, 6-byte rows in the other:
  // the byte-wise copy then serves both).
  for (size_t second_bytes : {size_t(3072), size_t(6)}) {
    const size_t first_bytes = 1536;
    std::vector<unsigned char> a(src_rows * first_bytes), b(src_rows * second_bytes);
    for (auto& v : a) v = static_cast<unsigned char>(r.next() >> 24);
    for (auto& v : b) v = static_cast<unsigned char>(r.next() >> 24);
    Dev da(a.size()), db(b.size()), oa(n * first_bytes), ob(n * second_bytes);
    CUDA_CHECK(cudaMemcpy(da.p, a.data(), a.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(db.p, b.data(), b.size(), cudaMemcpyHostToDevice));
    poison(oa.p, oa.bytes);
    poison(ob.p, ob.bytes);
    const GatherTable second{db.p, second_bytes, ob.p};
    gather_rows(test_exec(), d_rows.as<int32_t>(), n, GatherTable{da.p, first_bytes, oa.p}, &second);
    std::vector<unsigned char> ga(oa.bytes), gb(ob.bytes);
    CUDA_CHECK(cudaMemcpy(ga.data(), oa.p, ga.size(), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(gb.data(), ob.p, gb.size(), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(0, std::memcmp(ga.data() + i * first_bytes, a.data() + rows[i] * first_bytes, first_bytes)) << i;
      ASSERT_EQ(0, std::memcmp(gb.data() + i * second_bytes, b.data() + rows[i] * second_bytes, second_bytes)) << i;
    }
  }
}

TEST(CudaOps, Attention) {
  SKIP_WITHOUT_GPU();
  Rng r(6);
  const int sms = device_sms();
  const AttnCase cases[] = {
      {3, 50, 4, 64, false},
      {2, 77, 4, 64, true},
      {2, 197, 3, 64, false},
      {2, 257, 2, 64, false},
      {1, 7, 8, 64, true},
      {2, 1, 2, 64, false},
      {2, 17, 2, 64, true},
      {2, 50, 2, 32, false},
      {2, 77, 2, 128, true},
      {1, 300, 2, 64, true},
      {2, 40, 2, 80, false} /* SIMT and the tiled kernel only */,
      {3, 77, 8, 64, true},
      {3, 9, 8, 64, true} /* B/32 text in test_cuda_model */,
      {2, 257, 2, 32, true},
      // Key walks that end with 16-key chunks after 64-key blocks (and that round up to 64).
      {2, 33, 2, 64, false},
      {2, 96, 2, 64, true},
      {2, 100, 2, 64, false},
      {2, 113, 2, 128, true},
  };
  for (DType t : kTypes) {
    for (const AttnCase& c : cases) {
      AttnShape s{c.B, c.S, c.heads, c.D, c.causal, 1.f};
      check_attention(r, t, AttnImpl::Simt, c, sms);
      if (mma_attention_supported(t, s)) check_attention(r, t, AttnImpl::TensorCore, c, sms);
      if (wgmma_attention_supported(t, s)) check_attention(r, t, AttnImpl::Wgmma, c, sms);
      if (flash_attention_supported(t, s)) check_attention(r, t, AttnImpl::Flash, c, sms);
    }
  }
  // With a large batch the grid is not split: another code path for the tile ranges.
  check_attention(r, DType::F16, AttnImpl::TensorCore, {64, 50, 12, 64, false}, sms);
  check_attention(r, DType::BF16, AttnImpl::TensorCore, {48, 77, 8, 64, true}, sms);
}

// The Hopper wgmma kernel on the sequence lengths that take each of its
// paths: 64-row query tiles with up to 8 rows left for the mma.sync tail
// (65, 72, 136, 197, 257) or a last tile padded with zero queries (1, 50,
// 80, 100, 200, 700); 64-key blocks ending with a 16-wide one (65, 80,
// 257), a padded 64-wide one (50, 100, 200, 700) or none (64, 128, 512).
TEST(CudaOps, AttentionWgmma) {
  SKIP_WITHOUT_GPU();
  const AttnShape probe{1, 257, 16, 64, false, 0.125f};
  if (!wgmma_attention_supported(DType::F16, probe))
    GTEST_SKIP() << "the wgmma attention kernel needs an sm_90 GPU and a build with sm_90a (this device or build "
                    "has neither)";
  Rng r(16);
  const int sms = device_sms();
  const AttnCase cases[] = {
      {3, 1, 2, 64, false},
      {3, 50, 4, 64, false},
      {2, 64, 3, 64, false},
      {2, 65, 3, 64, false},
      {2, 72, 2, 64, false},
      {2, 80, 2, 64, false},
      {2, 100, 2, 64, false},
      {2, 128, 2, 64, false},
      {2, 136, 2, 64, false},
      {3, 197, 4, 64, false},
      {2, 200, 2, 64, false},
      {3, 257, 4, 64, false},
      {2, 512, 2, 64, false},
      {1, 700, 2, 64, false},
      {40, 257, 16, 64, false} /* more blocks than SMs */,
      // Scores growing along the keys, so the running maximum of later key
      // blocks moves by more than the kernel lets it lag (rescaling O), and,
      // with the gentle ramp, by less (P above 1 against a stale maximum).
      {2, 257, 4, 64, false, 1.f / 16},
      {3, 197, 4, 64, false, 1.f / 16},
      {2, 257, 4, 64, false, 1.f / 128},
      {2, 130, 2, 64, false, 1.f / 8},
      // Head_dim 72 (SigLIP SO400M): the extra 8 dimensions' tiles and
      // products, every last key block width, no tail (65 and 72 pad a
      // tile), SO400M's 64 (text), 256 and 729 tokens, and the ramps.
      {3, 1, 2, 72, false},
      {2, 64, 3, 72, false},
      {2, 65, 3, 72, false},
      {2, 72, 2, 72, false},
      {2, 100, 2, 72, false},
      {3, 256, 4, 72, false},
      {1, 729, 2, 72, false},
      {40, 256, 16, 72, false} /* more blocks than SMs */,
      {2, 256, 4, 72, false, 1.f / 16},
      {2, 130, 2, 72, false, 1.f / 8},
  };
  for (DType t : {DType::F16, DType::BF16})
    for (const AttnCase& c : cases) check_attention(r, t, AttnImpl::Wgmma, c, sms);
  // Auto picks it for the large vision batches, not for causal text or a
  // batch with fewer (image, head) blocks than SMs.
  EXPECT_EQ(AttnImpl::Wgmma, attention_choice(DType::F16, {256, 257, 16, 64, false, 0.125f}, sms));
  EXPECT_NE(AttnImpl::Wgmma, attention_choice(DType::F16, {256, 77, 8, 64, true, 0.125f}, sms));
  EXPECT_NE(AttnImpl::Wgmma, attention_choice(DType::F16, {1, 257, 16, 64, false, 0.125f}, sms));
  EXPECT_THROW(attention(test_exec(), nullptr, nullptr, DType::F16, {1, 77, 8, 64, true, 0.125f}, sms, AttnImpl::Wgmma),
               Error);
  EXPECT_EQ(AttnImpl::Wgmma, attention_choice(DType::F16, {256, 256, 16, 72, false, 0.118f}, sms));
  // K and V of 1,000 tokens (250 KB) do not fit in shared memory, nor
  // 1,024 at head_dim 72; other head sizes take other kernels.
  EXPECT_FALSE(wgmma_attention_supported(DType::F16, {1, 1000, 2, 64, false, 0.125f}));
  EXPECT_FALSE(wgmma_attention_supported(DType::F16, {1, 1024, 2, 72, false, 0.118f}));
  EXPECT_FALSE(wgmma_attention_supported(DType::F16, {1, 256, 2, 80, false, 0.1f}));
  EXPECT_FALSE(wgmma_attention_supported(DType::F16, {1, 64, 2, 72, true, 0.118f}));
  EXPECT_FALSE(wgmma_attention_supported(DType::F32, probe));
}

// The wgmma kernel's own launch, with the warpgroups a block set by hand.
sm90::AttnProblem wgmma_problem(const void* qkv, void* out, DType t, const AttnCase& c, float scale, int warpgroups) {
  sm90::AttnProblem p;
  p.qkv = qkv;
  p.out = out;
  p.batch = c.B, p.seq = c.S, p.heads = c.heads, p.head_dim = c.D;
  p.warpgroups = warpgroups;
  p.scale_log2 = scale * kLog2e;
  p.bf16 = t == DType::BF16;
  return p;
}

// The wgmma kernel with one, two and three warpgroups sharing a block's K
// and V (the launcher's choice for long sequences), fp16 and bf16: tiles
// split evenly and not (5 tiles over 2 and 3), head_dim 64 and 72, and the
// one-warpgroup fallback where a tail needs it (197) or a tile is alone (50).
TEST(CudaOps, AttentionWgmmaWarpgroups) {
  SKIP_WITHOUT_GPU();
  if (!wgmma_attention_supported(DType::F16, {1, 257, 16, 64, false, 0.125f}))
    GTEST_SKIP() << "the wgmma attention kernel needs an sm_90 GPU and a build with sm_90a";
  Rng r(36);
  const AttnCase cases[] = {
      {3, 576, 2, 64, false}, {2, 300, 2, 64, false}, {2, 729, 2, 72, false},           {2, 256, 3, 72, false},
      {2, 197, 2, 64, false}, {2, 50, 2, 64, false},  {2, 576, 2, 64, false, 1.f / 16},
  };
  for (DType t : {DType::F16, DType::BF16}) {
    for (const AttnCase& c : cases) {
      const std::vector<float> qkv = attention_input(r, t, c);
      auto dq = upload(qkv, t);
      const float scale = 1.f / std::sqrt(float(c.D));
      const std::vector<float> want = ref::attention(qkv, c.B, c.S, c.heads, c.D, false, scale);
      for (int wgs : {1, 2, 3}) {
        Dev out(want.size() * dtype_size(t));
        poison(out.p, out.bytes);
        const sm90::AttnProblem p = wgmma_problem(dq->p, out.p, t, c, scale, wgs);
        test::dirty_shared_memory();
        ASSERT_EQ(cudaSuccess, sm90::attention(p, nullptr));
        CUDA_CHECK(cudaDeviceSynchronize());
        char name[160];
        std::snprintf(name, sizeof name, "wgmma %s S=%d D=%d warpgroups=%d key_ramp=%g", dtype_name(t), c.S, c.D, wgs,
                      c.key_ramp);
        expect_close(download(out.p, t, want.size()), want, attention_tol(t), name);
      }
    }
  }
}

// The tiled kernel (AttnImpl::Flash) on SigLIP's shapes against the SIMT
// kernel in float32: head_dim 72 (SO400M) at 1,024, 729, 256 and 64 tokens,
// head_dim 64, 128, 80 and 96 with sequences that end inside a 64-key tile
// and a 64-query block (196, 577, 300, 100, 17), causal too, and scores that
// grow along the keys (the running maximum moves from tile to tile).
TEST(CudaOps, FlashAttention) {
  SKIP_WITHOUT_GPU();
  Rng r(26);
  const int sms = device_sms();
  const AttnCase cases[] = {
      {2, 1024, 16, 72, false},
      {3, 729, 16, 72, false},
      {2, 256, 16, 72, false},
      {4, 64, 16, 72, false},
      {2, 196, 12, 64, false},
      {2, 577, 16, 64, false},
      {2, 300, 8, 128, false},
      {2, 100, 4, 80, false},
      {1, 17, 2, 96, false},
      {2, 1024, 4, 72, true},
      {2, 729, 4, 72, true},
      {4, 64, 16, 72, true},
      {2, 196, 4, 64, true},
      {2, 300, 4, 128, true},
      {2, 100, 4, 80, true},
      {1, 17, 2, 96, true},
      {1, 1, 2, 72, false},
      {2, 130, 3, 8, false},
      {2, 130, 3, 40, true},
      {2, 729, 4, 72, false, 1.f / 128},
      {2, 257, 4, 72, false, 1.f / 16},
      {2, 300, 4, 72, true, 1.f / 32},
      {2, 300, 4, 72, false, 1.f / 8},
      {2, 1024, 2, 64, true, 1.f / 64},
  };
  for (DType t : {DType::F16, DType::BF16})
    for (const AttnCase& c : cases) check_attention_vs_simt(r, t, AttnImpl::Flash, c, sms);
  // Every head_dim it takes, on a ragged sequence (against the CPU reference).
  for (int D = 8; D <= 128; D += 8) check_attention(r, DType::F16, AttnImpl::Flash, {2, 70, 2, D, D % 16 == 8}, sms);
  // Not taken: float32, head_dims off the multiples of 8 or past 128.
  EXPECT_FALSE(flash_attention_supported(DType::F32, {2, 1024, 16, 72, false, 0.125f}));
  EXPECT_FALSE(flash_attention_supported(DType::F16, {2, 1024, 16, 100, false, 0.1f}));
  EXPECT_FALSE(flash_attention_supported(DType::F16, {2, 1024, 16, 136, false, 0.1f}));
  EXPECT_FALSE(flash_attention_supported(DType::F16, {2, 1024, 16, 72, false, 0.f}));
  Dev buf(3 * 72 * 2 * 2);
  EXPECT_THROW(attention(test_exec(), buf.p, buf.as<char>() + 3 * 72 * 2, DType::F32, {1, 1, 1, 72, false, 0.125f}, sms,
                         AttnImpl::Flash),
               Error);
}

// Auto sends what the whole-K/V kernels cannot take to the tiled kernel and
// keeps CLIP's shapes where they were.
TEST(CudaOps, AttentionChoice) {
  SKIP_WITHOUT_GPU();
  const int sms = device_sms();
  for (DType t : {DType::F16, DType::BF16}) {
    for (int B : {1, 2, 256}) {
      // SigLIP: head_dim 72 on the wgmma kernel where it takes the shape
      // and the batch fills the SMs, else tiled; past what shared memory
      // holds (1,024 tokens) tiled at head_dim 64 and 72.
      for (int S : {729, 256, 64}) {
        const AttnShape s{B, S, 16, 72, false, 0.118f};
        const bool wgmma = wgmma_attention_supported(t, s) && B * 16 >= sms;
        EXPECT_EQ(wgmma ? AttnImpl::Wgmma : AttnImpl::Flash, attention_choice(t, s, sms)) << "S=" << S << " B=" << B;
      }
      EXPECT_EQ(AttnImpl::Flash, attention_choice(t, {B, 1024, 16, 72, false, 0.118f}, sms));
      EXPECT_EQ(AttnImpl::Flash, attention_choice(t, {B, 1024, 12, 64, false, 0.125f}, sms));
      // CLIP: vision 50/197/257 tokens and causal text, head_dim 64.
      for (auto [S, heads, causal] : {std::tuple{50, 12, false}, std::tuple{197, 12, false}, std::tuple{257, 16, false},
                                      std::tuple{77, 8, true}}) {
        const AttnShape s{B, S, heads, 64, causal, 0.125f};
        const AttnImpl got = attention_choice(t, s, sms);
        EXPECT_TRUE(got == AttnImpl::TensorCore || got == AttnImpl::Wgmma)
            << "S=" << S << " B=" << B << ": " << attn_impl_name(got);
        EXPECT_EQ(got == AttnImpl::Wgmma, wgmma_attention_supported(t, s) && B * heads >= sms) << "S=" << S;
      }
    }
  }
  EXPECT_EQ(AttnImpl::Simt, attention_choice(DType::F32, {2, 1024, 16, 72, false, 0.118f}, sms));
  EXPECT_EQ(AttnImpl::Simt, attention_choice(DType::F16, {2, 100, 4, 100, false, 0.1f}, sms));
}

// ---- GEMM (cuBLASLt with epilogues) -----------------------------------------------

TEST(CudaOps, Gemm) {
  SKIP_WITHOUT_GPU();
  Rng r(7);
  CudaResources res(0, env_tuning());
  struct Mode {
    GemmCompute compute;
    DType in;
    const char* name;
  };
  const Mode modes[] = {{GemmCompute::F32, DType::F32, "fp32"},
                        {GemmCompute::TF32, DType::F32, "tf32"},
                        {GemmCompute::Mixed, DType::F16, "fp16"},
                        {GemmCompute::Mixed, DType::BF16, "bf16"}};
  struct Shape {
    int M, N, K;
  };
  for (const Mode& m : modes) {
    // The text tower's shapes too (B/32 text, 3 texts of 77 or 9 tokens).
    for (Shape sh :
         {Shape{50, 2304, 768}, Shape{7, 512, 512}, Shape{100, 96, 64}, Shape{1, 512, 768}, Shape{231, 1536, 512},
          Shape{231, 2048, 512}, Shape{231, 512, 2048}, Shape{27, 512, 2048}, Shape{3, 512, 512}}) {
      for (DType out_type : {DType::F32, DType::F16, DType::BF16}) {
        // plain, +bias (float32), +bias accumulate, +bias in the output type,
        // +bias and QuickGELU, +bias and GELU (fc1: on Hopper an sm90 kernel
        // may be picked for these, elsewhere cuBLASLt + bias_act)
        for (int variant = 0; variant < 6; ++variant) {
          const bool bias = variant >= 1, acc = variant == 2, typed_bias = variant == 3;
          const Act act = variant == 4 ? Act::QuickGelu : variant == 5 ? Act::Gelu : Act::None;
          if (out_type != DType::F32 && out_type != m.in) continue;
          if (acc && out_type != DType::F32) continue;  // the residual stream is float32
          if (typed_bias && out_type == DType::F32) continue;
          std::vector<float> x = rounded(random_vec(r, size_t(sh.M) * sh.K), m.in);
          std::vector<float> w = rounded(random_vec(r, size_t(sh.N) * sh.K, 1.f / std::sqrt(float(sh.K))), m.in);
          std::vector<float> b = random_vec(r, sh.N, 0.5f);
          if (typed_bias) b = rounded(b, out_type);
          std::vector<float> c0 = random_vec(r, size_t(sh.M) * sh.N);
          auto dx = upload(x, m.in), dw = upload(w, m.in), db = upload(b, DType::F32),
               dbt = upload(b, typed_bias ? out_type : DType::F32);
          auto dout = acc ? upload(c0, DType::F32) : std::make_unique<Dev>(size_t(sh.M) * sh.N * dtype_size(out_type));
          if (!acc) poison(dout->p, dout->bytes);
          GemmShape gs;
          gs.M = sh.M;
          gs.N = sh.N;
          gs.K = sh.K;
          gs.in_type = m.in;
          gs.out_type = out_type;
          gs.compute = m.compute;
          gs.accumulate = acc;
          gs.bias = bias;
          gs.bias_type = typed_bias ? out_type : DType::F32;
          gs.act = act;
          res.gemm().linear(res.exec(), gs, dx->p, dw->p, bias ? dbt->p : nullptr, dout->p,
                            bias ? db->as<float>() : nullptr);
          res.synchronize();
          std::vector<float> want = ref::linear(x, sh.M, sh.K, w.data(), bias ? b.data() : nullptr, sh.N);
          if (acc)
            for (size_t i = 0; i < want.size(); ++i) want[i] += c0[i];
          for (float& v : want) v = act == Act::QuickGelu ? ref::quick_gelu(v) : act == Act::Gelu ? ref::gelu(v) : v;
          // TF32 rounds the operands to 10 mantissa bits inside the product.
          Tol tol = m.compute == GemmCompute::TF32 ? Tol{4e-3, 4e-3} : output_tol(out_type, 2e-5);
          char name[160];
          std::snprintf(name, sizeof name, "gemm %s out=%s M=%d N=%d K=%d%s%s%s (bias %s, %s)", m.name,
                        dtype_name(out_type), sh.M, sh.N, sh.K,
                        bias ? (typed_bias ? " +bias(out type)" : " +bias") : "", acc ? " +acc" : "",
                        act == Act::QuickGelu ? " +quick_gelu"
                        : act == Act::Gelu    ? " +gelu"
                                              : "",
                        !bias                       ? "-"
                        : res.gemm().bias_fused(gs) ? "in epilogue"
                                                    : "separate kernel",
                        res.gemm().kernel_name(gs).c_str());
          expect_close(download(dout->p, out_type, want.size()), want, tol, name);
        }
      }
    }
  }
}

// ---- small_linear: whole linear layers on few rows ----------------------------------

// Every prologue (x, or LayerNorm of the float32 stream) with every epilogue
// (bias, bias + QuickGELU / GELU, residual update, no bias), ragged row
// counts and the text and vision shapes, and a second identical call that
// must give the same bits (the quarters of K are summed in a fixed order).
TEST(CudaOps, SmallLinear) {
  SKIP_WITHOUT_GPU();
  Rng r(17);
  struct Shape {
    int M, N, K;
  };
  for (DType t : {DType::F16, DType::BF16}) {
    for (Shape sh : {Shape{7, 1536, 512}, Shape{1, 768, 3072}, Shape{16, 2048, 512}, Shape{3, 512, 2048},
                     Shape{9, 4096, 1024}, Shape{1, 1024, 4096}, Shape{5, 72, 128}}) {
      // The stream has an offset mean, as CLIP's does: the norm must centre.
      const std::vector<float> hin = random_vec(r, size_t(sh.M) * sh.K, 1.f, 0.7f);
      const std::vector<float> x = rounded(random_vec(r, size_t(sh.M) * sh.K), t);
      const std::vector<float> w = rounded(random_vec(r, size_t(sh.N) * sh.K, 1.f / std::sqrt(float(sh.K))), t);
      const std::vector<float> b = random_vec(r, sh.N, 0.5f);
      const std::vector<float> gamma = random_vec(r, sh.K, 0.2f, 1.f), beta = random_vec(r, sh.K, 0.2f);
      auto dh = upload(hin, DType::F32), dx = upload(x, t), dw = upload(w, t), db = upload(b, DType::F32);
      auto dg = upload(gamma, DType::F32), dbeta = upload(beta, DType::F32);
      // What the kernel multiplies: LN(h) rounded to t, or x.
      const std::vector<float> a_ln = rounded(ref::layernorm(hin, sh.M, sh.K, gamma.data(), beta.data(), 1e-5f), t);
      for (bool ln : {false, true}) {
        if (!small_linear_fits(sh.M, sh.N, sh.K, ln)) continue;
        for (int variant = 0; variant < 6; ++variant) {
          const bool residual = variant == 3, no_bias = variant == 4, f32 = variant == 5;
          const Act act = variant == 1 ? Act::QuickGelu : variant == 2 ? Act::Gelu : Act::None;
          SmallLinear op;
          op.M = sh.M;
          op.N = sh.N;
          op.K = sh.K;
          op.type = t;
          if (ln) {
            op.ln_in = dh->as<float>();
            op.gamma = dg->as<float>();
            op.beta = dbeta->as<float>();
          } else {
            op.x = dx->p;
          }
          op.w = dw->p;
          op.bias = no_bias ? nullptr : db->as<float>();
          op.act = act;
          op.out_f32 = f32;
          const std::vector<float> c0 = random_vec(r, size_t(sh.M) * sh.N);
          std::vector<float> want =
              ref::linear(ln ? a_ln : x, sh.M, sh.K, w.data(), no_bias ? nullptr : b.data(), sh.N);
          for (size_t i = 0; i < want.size(); ++i)
            want[i] = residual                ? want[i] + c0[i]
                      : act == Act::QuickGelu ? ref::quick_gelu(want[i])
                      : act == Act::Gelu      ? ref::gelu(want[i])
                                              : want[i];
          char name[160];
          std::snprintf(name, sizeof name, "small_linear %s M=%d N=%d K=%d %s%s%s", dtype_name(t), sh.M, sh.N, sh.K,
                        ln ? "LN " : "",
                        residual  ? "+residual"
                        : no_bias ? "no bias"
                        : f32     ? "+bias out=f32"
                                  : "+bias",
                        act == Act::QuickGelu ? " +quick_gelu"
                        : act == Act::Gelu    ? " +gelu"
                                              : "");
          std::vector<float> got[2];
          for (int call = 0; call < 2; ++call) {
            auto dres = upload(c0, DType::F32);
            const DType out_type = f32 ? DType::F32 : t;
            Dev out(size_t(sh.M) * sh.N * dtype_size(out_type));
            poison(out.p, out.bytes);
            if (residual)
              op.residual = dres->as<float>();
            else
              op.out = out.p;
            small_linear(test_exec(), op);
            got[call] = residual ? download(dres->p, DType::F32, want.size()) : download(out.p, out_type, want.size());
          }
          // A float32 output (or the residual) carries only the product's
          // error; a 16-bit output adds its own rounding.
          expect_close(got[0], want, residual || f32 ? Tol{1e-3, 1e-3} : output_tol(t), name);
          EXPECT_EQ(std::memcmp(got[0].data(), got[1].data(), got[0].size() * 4), 0) << name << ": calls differ";
        }
      }
    }
  }
}

TEST(CudaOps, SmallLinearRefusesBadInput) {
  SKIP_WITHOUT_GPU();
  Dev w(size_t(64) * 256 * 2), b(64 * 4), out(size_t(32) * 64 * 2), x(size_t(32) * 256 * 2);
  SmallLinear op;
  op.M = kSmallMaxRows + 1;
  op.N = 64;
  op.K = 256;
  op.x = x.p;
  op.w = w.p;
  op.bias = b.as<float>();
  op.out = out.p;
  EXPECT_THROW(small_linear(test_exec(), op), Error);  // too many rows
  op.M = 8;
  op.N = 60;
  EXPECT_THROW(small_linear(test_exec(), op), Error);  // N not a multiple of 8
  op.N = 64;
  op.K = 96;
  EXPECT_THROW(small_linear(test_exec(), op), Error);  // K not a multiple of 128
  op.K = 256;
  op.type = DType::F32;
  EXPECT_THROW(small_linear(test_exec(), op), Error);  // no float32 operands
  op.type = DType::F16;
  op.x = static_cast<char*>(x.p) + 2;
  EXPECT_THROW(small_linear(test_exec(), op), Error);  // unaligned
  op.x = x.p;
  op.residual = static_cast<float*>(out.p);
  EXPECT_THROW(small_linear(test_exec(), op), Error);  // both outputs
  op.residual = nullptr;
  EXPECT_NO_THROW(small_linear(test_exec(), op));
}

// ---- Hopper GEMMs with fused epilogues (sm90/, CUTLASS) ------------------------------

// Skips (and says why) unless sm90 kernels are compiled in and this GPU runs them.
#define SKIP_WITHOUT_SM90()                                                                       \
  do {                                                                                            \
    SKIP_WITHOUT_GPU();                                                                           \
    if (sm90::variants().empty()) {                                                               \
      std::printf("[  SKIPPED ] built without the sm90 kernels (no CUTLASS headers or sm_90)\n"); \
      GTEST_SKIP() << "built without the sm90 kernels";                                           \
    }                                                                                             \
    if (!sm90::device_supported(0)) {                                                             \
      std::printf("[  SKIPPED ] GPU 0 is not compute capability 9.0\n");                          \
      GTEST_SKIP() << "GPU 0 is not compute capability 9.0";                                      \
    }                                                                                             \
  } while (0)

// Every compiled variant, called directly, against the float64-accumulated
// reference: ragged M (not a multiple of any tile), small M (text queries),
// N not a multiple of 128 and the residual update in place.
TEST(CudaOps, Sm90GemmVariants) {
  SKIP_WITHOUT_SM90();
  Rng r(11);
  CudaResources res(0, env_tuning());
  Dev workspace(32 << 20);
  struct Shape {
    int M, N, K;
  };
  const Shape shapes[] = {{7, 512, 512}, {50, 2304, 768}, {231, 2048, 512}, {1000, 768, 3072}, {3329, 1032, 64}};
  for (const sm90::Variant& v : sm90::variants()) {
    if (is_ln_fold(v.epilogue)) continue;  // Sm90LnFold
    for (Shape sh : shapes) {
      const bool residual = v.epilogue == sm90::Epilogue::BiasResidual;
      const DType out_type = residual ? DType::F32 : DType::F16;
      std::vector<float> x = rounded(random_vec(r, size_t(sh.M) * sh.K), DType::F16);
      std::vector<float> w = rounded(random_vec(r, size_t(sh.N) * sh.K, 1.f / std::sqrt(float(sh.K))), DType::F16);
      std::vector<float> b = random_vec(r, sh.N, 0.5f);
      std::vector<float> c0 = random_vec(r, size_t(sh.M) * sh.N);
      auto dx = upload(x, DType::F16), dw = upload(w, DType::F16), db = upload(b, DType::F32);
      auto dout = residual ? upload(c0, DType::F32) : std::make_unique<Dev>(size_t(sh.M) * sh.N * 2);
      if (!residual) poison(dout->p, dout->bytes);
      const sm90::Problem p{sh.M, sh.N, sh.K, dx->p, dw->p, db->as<float>(), dout->p, res.num_sms()};
      ASSERT_EQ(v.run(p, workspace.p, workspace.bytes, nullptr), sm90::Status::Ok) << v.name;
      CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<float> want = ref::linear(x, sh.M, sh.K, w.data(), b.data(), sh.N);
      for (size_t i = 0; i < want.size(); ++i) {
        switch (v.epilogue) {
          case sm90::Epilogue::BiasQuickGelu: want[i] = ref::quick_gelu(want[i]); break;
          case sm90::Epilogue::BiasGelu: want[i] = ref::gelu(want[i]); break;
          case sm90::Epilogue::BiasGeluTanh: want[i] = ref::gelu_tanh(want[i]); break;
          case sm90::Epilogue::BiasResidual: want[i] += c0[i]; break;
          default: break;
        }
      }
      char name[160];
      std::snprintf(name, sizeof name, "%s %s M=%d N=%d K=%d", v.name, sm90::epilogue_name(v.epilogue), sh.M, sh.N,
                    sh.K);
      expect_close(download(dout->p, out_type, want.size()), want, output_tol(out_type), name);
    }
  }
}

// The sm90 kernels' QuickGELU (tanh.approx, one multi-function operation;
// sm90_gemm_kernel.cuh) over x in [-16, 16): an identity weight makes each
// output QuickGELU of one fp16 input. Allowed: the fp16 rounding of the
// output plus |x| 2^-12 (tanh.approx's absolute error of about 2^-11, times
// x/2; 10% margin), which bounds how far the nearly-zero output of a
// negative x may move.
TEST(CudaOps, Sm90QuickGeluAccuracy) {
  SKIP_WITHOUT_SM90();
  CudaResources res(0, env_tuning());
  Dev workspace(32 << 20);
  constexpr int M = 1024, N = 64;
  std::vector<float> x(size_t(M) * N), w(size_t(N) * N, 0.f), b(N, 0.f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -16.f + 32.f * float(i) / float(x.size());
  x = rounded(x, DType::F16);
  for (int n = 0; n < N; ++n) w[size_t(n) * N + n] = 1.f;
  auto dx = upload(x, DType::F16), dw = upload(w, DType::F16), db = upload(b, DType::F32);
  Dev out(size_t(M) * N * 2);
  for (const sm90::Variant& v : sm90::variants()) {
    if (v.epilogue != sm90::Epilogue::BiasQuickGelu) continue;
    poison(out.p, out.bytes);
    const sm90::Problem p{M, N, N, dx->p, dw->p, db->as<float>(), out.p, res.num_sms()};
    ASSERT_EQ(v.run(p, workspace.p, workspace.bytes, nullptr), sm90::Status::Ok) << v.name;
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> got = download(out.p, DType::F16, x.size());
    double worst_ratio = 0;
    size_t bad = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = ref::quick_gelu(x[i]);
      const double lim = std::ldexp(std::fabs(want), -11) + 1.1 * std::ldexp(std::fabs(x[i]), -12) + 1e-7;
      const double err = std::fabs(got[i] - want);
      if (!(err <= lim)) ++bad;
      worst_ratio = std::max(worst_ratio, err / lim);
    }
    std::printf("  %-40s QuickGELU worst error / bound %.3f\n", v.name, worst_ratio);
    EXPECT_EQ(bad, 0u) << v.name;
  }
}

// A LayerNorm folded into the GEMMs around it (gemm.h, LnFold), each kernel
// and then through the runner: a residual product that also writes the
// fp16 copy of the updated stream and its row statistics, then a product
// with gamma/beta in its weights (fold_norm) that normalises in its
// epilogue. Against float64 references of h + x w^T + b, of its LayerNorm's
// scale, and of act(LN(h) w2^T + b2) with the unfolded weights. The stream
// has a nonzero mean (which the zero-sum weights must cancel), M = 1100
// leaves a part tile, and the output tolerance is twice fp16's (the folded
// product rounds h itself and the folded weights to fp16 where the plain one
// rounds LN(h) and w2).
TEST(CudaOps, Sm90LnFold) {
  SKIP_WITHOUT_SM90();
  Rng r(23);
  CudaResources res(0, env_tuning());
  Dev workspace(32 << 20);
  constexpr int M = 1100, K = 192, H = 256, N2 = 384;
  constexpr float eps = 1e-5f;
  const std::vector<float> x = rounded(random_vec(r, size_t(M) * K), DType::F16);
  const std::vector<float> w = rounded(random_vec(r, size_t(H) * K, 1.f / std::sqrt(float(K))), DType::F16);
  const std::vector<float> b = random_vec(r, H, 0.5f);
  const std::vector<float> h0 = random_vec(r, size_t(M) * H, 2.f, 0.7f);
  const NormWeights norm = random_norm(r, H, 0.3f);
  const LinearWeights lin2 = random_linear(r, N2, H, 1.f / std::sqrt(float(H)), DType::F16);
  const LinearWeights folded = fold_norm(lin2, norm, "test fc1");

  // References in float64: the updated stream, its norm, the next layer.
  std::vector<float> h1 = ref::linear(x, M, K, w.data(), b.data(), H);
  for (size_t i = 0; i < h1.size(); ++i) h1[i] += h0[i];
  std::vector<float> want_scale(M);
  for (int m = 0; m < M; ++m) {
    double s = 0, q = 0;
    for (int i = 0; i < H; ++i) s += h1[size_t(m) * H + i];
    const double mean = s / H;
    for (int i = 0; i < H; ++i) q += (h1[size_t(m) * H + i] - mean) * (h1[size_t(m) * H + i] - mean);
    want_scale[m] = float(1 / std::sqrt(q / H + eps));
  }
  const std::vector<float> ln = ref::layernorm(h1, M, H, norm.weight.data.data(), norm.bias.data.data(), eps);
  const std::vector<float> lin = ref::linear(ln, M, H, lin2.weight.data.data(), lin2.bias.data.data(), N2);

  auto dx = upload(x, DType::F16), dw = upload(w, DType::F16), db = upload(b, DType::F32);
  auto dw2 = upload(folded.weight.data, DType::F16), db2 = upload(folded.bias.data, DType::F32);
  Dev copy(size_t(M) * H * 2), scale(M * 4), out(size_t(M) * N2 * 2);
  Dev partials(size_t(sm90::ln_partials_floats(M, H)) * 4);
  ASSERT_GT(partials.bytes, 0u);
  auto check_stats = [&](const Dev& h, const std::string& what) {
    expect_close(download(h.p, DType::F32, h1.size()), h1, output_tol(DType::F32, 1e-4), what + " h");
    expect_close(download(copy.p, DType::F16, h1.size()), rounded(h1, DType::F16), output_tol(DType::F16),
                 what + " fp16 copy");
    expect_close(download(scale.p, DType::F32, M), want_scale, Tol{1e-6, 2e-5}, what + " scale");
  };
  auto check_apply = [&](sm90::Epilogue e, const std::string& what) {
    std::vector<float> want = lin;
    for (float& v : want)
      v = e == sm90::Epilogue::LnFoldQuickGelu  ? ref::quick_gelu(v)
          : e == sm90::Epilogue::LnFoldGelu     ? ref::gelu(v)
          : e == sm90::Epilogue::LnFoldGeluTanh ? ref::gelu_tanh(v)
                                                : v;
    expect_close(download(out.p, DType::F16, want.size()), want, Tol{4e-3, 4e-3}, what);
  };

  // Each kernel. The statistics come from the last residual kernel run.
  for (const sm90::Variant& v : sm90::variants()) {
    if (v.epilogue != sm90::Epilogue::BiasResidualLnStats) continue;
    auto dh = upload(h0, DType::F32);
    for (Dev* d : {&copy, &scale, &partials}) poison(d->p, d->bytes);
    sm90::Problem p{M, H, K, dx->p, dw->p, db->as<float>(), dh->p, res.num_sms()};
    p.copy = copy.p;
    p.row_partials = partials.as<float>();
    ASSERT_EQ(v.run(p, workspace.p, workspace.bytes, nullptr), sm90::Status::Ok) << v.name;
    ln_fold_stats(test_exec(), partials.as<float>(), M, (M + v.tile_m - 1) / v.tile_m * v.tile_m,
                  (H + v.tile_n - 1) / v.tile_n, H, eps, scale.as<float>());
    CUDA_CHECK(cudaDeviceSynchronize());
    check_stats(*dh, std::string(v.name) + " stats");
  }
  for (const sm90::Variant& v : sm90::variants()) {
    if (!is_ln_fold(v.epilogue) || v.epilogue == sm90::Epilogue::BiasResidualLnStats) continue;
    poison(out.p, out.bytes);
    sm90::Problem p{M, N2, H, copy.p, dw2->p, db2->as<float>(), out.p, res.num_sms()};
    p.row_scale = scale.as<float>();
    ASSERT_EQ(v.run(p, workspace.p, workspace.bytes, nullptr), sm90::Status::Ok) << v.name;
    CUDA_CHECK(cudaDeviceSynchronize());
    check_apply(v.epilogue, std::string(v.name) + " " + sm90::epilogue_name(v.epilogue));
  }

  // Through the runner, which picks the kernels and finishes the statistics.
  EXPECT_TRUE(res.gemm().ln_fold_available(8192, H));
  EXPECT_FALSE(res.gemm().ln_fold_available(8192, H + 64));  // a part tile column of the 128-wide kernels
  EXPECT_FALSE(res.gemm().ln_fold_available(M, H));          // few rows for the pass: the plain path
  auto dh = upload(h0, DType::F32);
  for (Dev* d : {&copy, &scale, &out}) poison(d->p, d->bytes);
  LnFoldIo io;
  io.copy = copy.p;
  io.partials = partials.as<float>();
  io.eps = eps;
  io.scale = scale.as<float>();
  GemmShape stats = fp16_layer(M, H, K, true, Act::None);
  stats.ln_fold = LnFold::Stats;
  res.gemm().linear(res.exec(), stats, dx->p, dw->p, db->p, dh->p, db->as<float>(), &io);
  GemmShape apply = fp16_layer(M, N2, H, false, Act::QuickGelu);
  apply.ln_fold = LnFold::Apply;
  res.gemm().linear(res.exec(), apply, copy.p, dw2->p, db2->p, out.p, db2->as<float>(), &io);
  res.synchronize();
  check_stats(*dh, "runner " + res.gemm().kernel_name(stats));
  check_apply(sm90::Epilogue::LnFoldQuickGelu, "runner " + res.gemm().kernel_name(apply));
  // Without its buffers a folded product is refused.
  EXPECT_THROW(res.gemm().linear(res.exec(), apply, copy.p, dw2->p, db2->p, out.p, db2->as<float>()), Error);
}

// The runner's choice over few rows (the default Tuning::sm90_few_rows): fc1
// (bias + activation) takes a few-row kernel whose tiles fit one wave, the
// other epilogues stay on cuBLASLt, and so does fc1 where no few-row tiling
// fits one wave (77 rows x 3072 columns is 2 x 96 tiles of 64x32 at best).
TEST(CudaOps, Sm90FewRowChoice) {
  SKIP_WITHOUT_SM90();
  Dev x(2048 * 3072 * 2), w(3072 * 3072 * 2), b(3072 * 4), out(2048 * 3072 * 4);
  for (Dev* d : {&x, &w, &b}) CUDA_CHECK(cudaMemset(d->p, 0, d->bytes));
  auto run = [&](CudaResources& res, int M, int N, int K, Act act, bool acc) {
    const GemmShape gs = fp16_layer(M, N, K, acc, act);
    res.gemm().linear(res.exec(), gs, x.p, w.p, b.p, out.p, b.as<float>());
    res.synchronize();
    return res.gemm().kernel_name(gs);
  };
  CudaResources res(0, Tuning{});
  const int sms = res.num_sms();
  const bool fits = (50 + 63) / 64 * (3072 / 32) <= sms;
  const std::string fc1 = run(res, 50, 3072, 768, Act::QuickGelu, false);
  if (fits) {
    EXPECT_NE(fc1.find("cutlass 64x"), std::string::npos) << fc1;
  }
  EXPECT_EQ(run(res, 50, 2304, 768, Act::None, false), "cublasLt");
  EXPECT_EQ(run(res, 50, 768, 3072, Act::None, true), "cublasLt");
  if (sms < 2 * (3072 / 32)) {
    EXPECT_EQ(run(res, 77, 3072, 768, Act::QuickGelu, false), "cublasLt");
  }
  EXPECT_EQ(run(res, 2000, 3072, 768, Act::QuickGelu, false).find("cutlass 64x"), std::string::npos);
  // With tuning off nothing is timed, and fc1 still takes a few-row kernel.
  {
    Tuning untuned;
    untuned.gemm_tune = false;
    CudaResources untimed(0, untuned);
    const std::string name = run(untimed, 50, 3072, 768, Act::QuickGelu, false);
    if (fits) {
      EXPECT_NE(name.find("cutlass 64x"), std::string::npos) << name;
    }
  }
}

// Shapes the kernels cannot take are refused, not run: K or N not a
// multiple of 8, N not even a multiple of 4 (16-byte rows for TMA).
TEST(CudaOps, Sm90GemmRefusesUnalignedShapes) {
  SKIP_WITHOUT_SM90();
  Dev x(64 * 588 * 2), w(1024 * 588 * 2), b(1024 * 4), out(64 * 1024 * 4), workspace(32 << 20);
  for (const sm90::Variant& v : sm90::variants()) {
    for (auto [N, K] : {std::pair{1024, 588}, std::pair{1022, 512}}) {
      const sm90::Problem p{64, N, K, x.p, w.p, b.as<float>(), out.p, 0};
      EXPECT_EQ(v.run(p, workspace.p, workspace.bytes, nullptr), sm90::Status::Unsupported)
          << v.name << " N=" << N << " K=" << K;
    }
  }
}

// ---- timing at real shapes (CLIPFIND_OPS_TIME=1) ------------------------------------

TEST(CudaOpsPerf, RealShapes) {
  SKIP_WITHOUT_GPU();
  if (!timing_enabled()) GTEST_SKIP() << "set CLIPFIND_OPS_TIME=1 to time the ops";
  const int sms = device_sms();
  Rng r(8);
  struct A {
    const char* name;
    AttnCase c;
  };
  for (A a : {A{"B/32 vision b256", {256, 50, 12, 64, false}}, A{"B/16 vision b256", {256, 197, 12, 64, false}},
              A{"L/14 vision b256", {256, 257, 16, 64, false}}, A{"B/32 text b256", {256, 77, 8, 64, true}}}) {
    for (DType t : {DType::F16, DType::F32}) {
      const AttnCase& c = a.c;
      const int H = c.heads * c.D;
      auto q = upload(random_vec(r, size_t(c.B) * c.S * 3 * H), t);
      Dev out(size_t(c.B) * c.S * H * dtype_size(t));
      AttnShape s{c.B, c.S, c.heads, c.D, c.causal, 0.125f};
      const Exec ex{nullptr, false};
      const double flop = 4.0 * c.B * c.heads * double(c.S) * c.S * c.D * (c.causal ? 0.5 : 1.0);
      const AttnImpl chosen = attention_choice(t, s, sms);
      for (AttnImpl impl : {AttnImpl::Simt, AttnImpl::TensorCore, AttnImpl::Wgmma, AttnImpl::Flash}) {
        if ((impl == AttnImpl::Simt && chosen != AttnImpl::Simt) ||
            (impl == AttnImpl::TensorCore && !mma_attention_supported(t, s)) ||
            (impl == AttnImpl::Wgmma && !wgmma_attention_supported(t, s)) ||
            (impl == AttnImpl::Flash && !flash_attention_supported(t, s)))
          continue;
        const double us = time_us([&] { attention(ex, q->p, out.p, t, s, sms, impl); });
        std::printf("  attention %-18s %s %-11s %9.1f us  %6.1f TFLOP/s%s\n", a.name, dtype_name(t),
                    attn_impl_name(impl), us, flop / us * 1e-6, impl == chosen ? "  (auto)" : "");
      }
    }
  }
  for (auto [model, M, H] :
       {std::tuple{"B/32 b1024", int64_t(1024) * 50, 768}, std::tuple{"L/14 b256", int64_t(256) * 257, 1024}}) {
    // The four GEMMs of a layer, fp16, through the runner (which picks
    // cuBLASLt or an sm90 kernel on the first call; named in the output).
    CudaResources res(0, env_tuning());
    const int I = 4 * H;
    struct G {
      const char* name;
      int N, K;
      bool acc;
      Act act;
    };
    auto x = upload(random_vec(r, size_t(M) * I), DType::F16);
    auto w = upload(random_vec(r, size_t(I) * I, 0.02f), DType::F16);
    auto b = upload(random_vec(r, I), DType::F32);  // as f16 too: the first half is read either way
    Dev out(size_t(M) * I * 4);
    for (G g : {G{"qkv", 3 * H, H, false, Act::None}, G{"out_proj+res", H, H, true, Act::None},
                G{"fc1+quick_gelu", I, H, false, Act::QuickGelu}, G{"fc2+res", H, I, true, Act::None}}) {
      GemmShape gs = fp16_layer(M, g.N, g.K, g.acc, g.act);
      gs.bias_type = g.acc || g.act != Act::None ? DType::F32 : DType::F16;
      const double us =
          time_us([&] { res.gemm().linear(res.exec(), gs, x->p, w->p, b->p, out.p, b->as<float>()); }, res.stream());
      std::printf("  gemm fp16 %s %-15s M=%lld N=%d K=%d %9.1f us  %6.1f TFLOP/s (%s)\n", model, g.name, (long long)M,
                  g.N, g.K, us, 2.0 * M * g.N * g.K / us * 1e-6, res.gemm().kernel_name(gs).c_str());
    }
    // The cost of fc1's fused activation: each sm90 kernel with the bias
    // alone and with bias + QuickGELU (called directly).
    if (res.gemm().sm90_enabled()) {
      const sm90::Problem p{M, I, H, x->p, w->p, b->as<float>(), out.p, res.num_sms()};
      Dev workspace(32 << 20);
      for (const sm90::Variant& v : sm90::variants()) {
        if (v.few_rows || (v.epilogue != sm90::Epilogue::Bias && v.epilogue != sm90::Epilogue::BiasQuickGelu)) continue;
        const double us = time_us([&] { v.run(p, workspace.p, workspace.bytes, res.stream()); }, res.stream());
        std::printf("  sm90 fc1 %s %-32s %-16s %9.1f us  %6.1f TFLOP/s\n", model, v.name,
                    sm90::epilogue_name(v.epilogue), us, 2.0 * M * I * H / us * 1e-6);
      }
    }
  }
  for (int H : {768, 1024}) {
    const int64_t M = 256 * 257;
    auto x = upload(random_vec(r, size_t(M) * H), DType::F32);
    auto g = upload(random_vec(r, H, 0.1f, 1.f), DType::F32), b = upload(random_vec(r, H), DType::F32);
    Dev out(size_t(M) * H * 2);
    const Exec ex{nullptr, false};
    const double us = time_us([&] {
      layernorm(ex, x->as<float>(), nullptr, M, H, g->as<float>(), b->as<float>(), 1e-5f, out.p, DType::F16);
    });
    std::printf("  layernorm f32->f16 M=%lld H=%d %9.1f us  %6.0f GB/s\n", (long long)M, H, us,
                M * H * 6.0 / us * 1e-3);
  }
  {
    const int64_t M = 256 * 257;
    const int N = 4096;
    auto y = upload(random_vec(r, size_t(M) * N), DType::F16);
    auto b = upload(random_vec(r, N), DType::F32);
    const Exec ex{nullptr, false};
    const double us = time_us([&] { bias_act(ex, y->p, DType::F16, M, N, b->as<float>(), Act::QuickGelu); });
    std::printf("  bias_act f16 quick_gelu M=%lld N=%d %9.1f us  %6.0f GB/s\n", (long long)M, N, us,
                M * N * 4.0 / us * 1e-3);
  }
}

// Attention at SigLIP's shapes: every kernel that takes the shape, fp16 and
// bf16, with the one Auto picks marked. TFLOP/s counts 4 S^2 D FLOPs per
// (item, head), halved for the causal mask.
TEST(CudaOpsPerf, SiglipAttention) {
  SKIP_WITHOUT_GPU();
  if (!timing_enabled()) GTEST_SKIP() << "set CLIPFIND_OPS_TIME=1 to time the ops";
  const int sms = device_sms();
  Rng r(27);
  struct A {
    const char* name;
    AttnCase c;
  };
  for (A a : {A{"SO400M/14 vision b256", {256, 256, 16, 72, false}},
              A{"SO400M/14-384 vision b64", {64, 729, 16, 72, false}}, A{"1024 tok D72 b64", {64, 1024, 16, 72, false}},
              A{"B/16 vision b256", {256, 196, 12, 64, false}}, A{"B/16-384 vision b256", {256, 576, 12, 64, false}},
              A{"B/16-512 vision b64", {64, 1024, 12, 64, false}}, A{"SO400M text b256", {256, 64, 16, 72, false}},
              A{"B text b256", {256, 64, 12, 64, false}}, A{"1024 tok D72 causal b64", {64, 1024, 16, 72, true}}}) {
    for (DType t : {DType::F16, DType::BF16}) {
      const AttnCase& c = a.c;
      const int H = c.heads * c.D;
      auto q = upload(random_vec(r, size_t(c.B) * c.S * 3 * H), t);
      Dev out(size_t(c.B) * c.S * H * dtype_size(t));
      AttnShape s{c.B, c.S, c.heads, c.D, c.causal, 1.f / std::sqrt(float(c.D))};
      const Exec ex{nullptr, false};
      const double flop = 4.0 * c.B * c.heads * double(c.S) * c.S * c.D * (c.causal ? 0.5 : 1.0);
      const AttnImpl chosen = attention_choice(t, s, sms);
      for (AttnImpl impl : {AttnImpl::TensorCore, AttnImpl::Wgmma, AttnImpl::Flash}) {
        if ((impl == AttnImpl::TensorCore && !(mma_attention_supported(t, s) && chosen != AttnImpl::Flash)) ||
            (impl == AttnImpl::Wgmma && !wgmma_attention_supported(t, s)) ||
            (impl == AttnImpl::Flash && !flash_attention_supported(t, s)))
          continue;
        const double us = time_us([&] { attention(ex, q->p, out.p, t, s, sms, impl); });
        std::printf("  attention %-24s %-4s %-11s %9.1f us  %6.1f TFLOP/s%s\n", a.name, dtype_name(t),
                    attn_impl_name(impl), us, flop / us * 1e-6, impl == chosen ? "  (auto)" : "");
      }
      if (!wgmma_attention_supported(t, s)) continue;
      for (int wgs : {1, 2, 3}) {  // the wgmma kernel's warpgroups a block, set by hand
        const sm90::AttnProblem p = wgmma_problem(q->p, out.p, t, c, s.scale, wgs);
        const double us = time_us([&] { CUDA_CHECK(sm90::attention(p, nullptr)); });
        std::printf("  attention %-24s %-4s wgmma wg=%d %9.1f us  %6.1f TFLOP/s\n", a.name, dtype_name(t), wgs, us,
                    flop / us * 1e-6);
      }
    }
  }
}

// How the wgmma attention's time grows with the number of blocks an SM holds
// (ViT-L/14's shape, one block per image and head): flat from one to three
// blocks an SM means each block's own chain of dependent operations bounds
// it; linear means a shared unit (tensor cores, MUFU, memory) does.
TEST(CudaOpsPerf, AttentionOccupancy) {
  SKIP_WITHOUT_GPU();
  if (!timing_enabled()) GTEST_SKIP() << "set CLIPFIND_OPS_TIME=1 to time the ops";
  const AttnShape probe{1, 257, 16, 64, false, 0.125f};
  if (!wgmma_attention_supported(DType::F16, probe)) GTEST_SKIP() << "no wgmma attention on this GPU";
  const int sms = device_sms();
  Rng r(9);
  for (int B : {8, 16, 24, 32, 48, 96, 256}) {
    const AttnShape s{B, 257, 16, 64, false, 0.125f};
    auto q = upload(random_vec(r, size_t(B) * 257 * 3 * 1024), DType::F16);
    Dev out(size_t(B) * 257 * 1024 * 2);
    const Exec ex{nullptr, false};
    const double us = time_us([&] { attention(ex, q->p, out.p, DType::F16, s, sms, AttnImpl::Wgmma); });
    const double blocks_per_sm = 16.0 * B / sms;
    std::printf("  attention L/14 wgmma batch %3d: %8.1f us, %5.2f blocks an SM, %7.1f us per block an SM\n", B, us,
                blocks_per_sm, us / blocks_per_sm);
  }
}

// Median time of one replay of a CUDA graph captured from `fn` (launches on
// `stream`, which must not be the legacy default stream), in microseconds:
// back-to-back dependent launches, as the engine's graphs run them.
double time_graph_us(const std::function<void()>& fn, cudaStream_t stream, int reps = 50) {
  fn();  // first calls outside the capture (cuBLASLt picks its algorithm)
  CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  fn();
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  const double us = time_us([&] { CUDA_CHECK(cudaGraphLaunch(exec, stream)); }, stream, reps);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return us;
}

// small_linear (LayerNorm in its prologue or a kernel of its own) against
// LayerNorm + cuBLASLt (+ bias_act) on the linear layers of a text query
// (7 rows): 24 dependent calls a graph, each on its own copy of the weights
// so that they stream from DRAM as in a pass, time per call. (Such isolated
// figures did not predict the whole pass well: bench/notes/cuda-rounds.md,
// seventh round. Use them to find where time goes, and bench/gpu/gpu_lab.sh
// ab-env to decide.)
TEST(CudaOpsPerf, SmallLinearRows) {
  SKIP_WITHOUT_GPU();
  if (!timing_enabled()) GTEST_SKIP() << "set CLIPFIND_OPS_TIME=1 to time the ops";
  Rng r(9);
  CudaResources res(0, env_tuning());
  const Exec& ex = res.exec();
  constexpr int kCalls = 24;
  const int I = 3072;  // the largest of the shapes below
  auto h = upload(random_vec(r, size_t(64) * I, 1.f, 0.5f), DType::F32);
  auto x = upload(random_vec(r, size_t(64) * I), DType::F16);
  auto gb = upload(random_vec(r, I, 0.1f, 1.f), DType::F32);
  auto bias = upload(random_vec(r, I), DType::F32);
  Dev w(size_t(kCalls) * I * 768 * 2), out(size_t(64) * I * 4), xn(size_t(64) * I * 2);
  CUDA_CHECK(cudaMemset(w.p, 0, w.bytes));
  struct L {
    const char* name;
    int N, K;
    bool ln, residual;
    Act act;
  };
  // B/32 text query (7 rows, hidden 512), L/14 text query (hidden 768), the
  // most rows small_linear takes.
  for (auto [M, H] : {std::pair{7, 512}, std::pair{7, 768}, std::pair{kSmallMaxRows, 768}}) {
    for (L l :
         {L{"ln1+qkv", 3 * H, H, true, false, Act::None}, L{"out+res", H, H, false, true, Act::None},
          L{"ln2+fc1+act", 4 * H, H, true, false, Act::QuickGelu}, L{"fc2+res", H, 4 * H, false, true, Act::None}}) {
      auto wk = [&](int k) { return static_cast<char*>(w.p) + size_t(k) * l.N * l.K * 2; };
      for (bool fuse_ln : {true, false}) {
        if (!fuse_ln && !l.ln) continue;
        if (!small_linear_fits(M, l.N, l.K, l.ln && fuse_ln)) continue;
        const double us = time_graph_us(
            [&] {
              for (int k = 0; k < kCalls; ++k) {
                SmallLinear op;
                op.M = M;
                op.N = l.N;
                op.K = l.K;
                op.type = DType::F16;
                if (l.ln && !fuse_ln)
                  layernorm(ex, h->as<float>(), nullptr, M, l.K, gb->as<float>(), gb->as<float>(), 1e-5f, xn.p,
                            DType::F16);
                if (l.ln && fuse_ln) {
                  op.ln_in = h->as<float>();
                  op.gamma = gb->as<float>();
                  op.beta = gb->as<float>();
                } else {
                  op.x = l.ln ? xn.p : x->p;
                }
                op.w = wk(k);
                op.bias = bias->as<float>();
                op.act = l.act;
                if (l.residual)
                  op.residual = static_cast<float*>(out.p);
                else
                  op.out = out.p;
                small_linear(ex, op);
              }
            },
            res.stream());
        std::printf("  small_linear M=%-2d H=%d %-12s %-13s %7.2f us a call\n", M, H, l.name,
                    l.ln ? (fuse_ln ? "LN fused" : "LN separate") : "", us / kCalls);
      }
      const GemmShape gs = fp16_layer(M, l.N, l.K, l.residual, l.act);
      const double us = time_graph_us(
          [&] {
            for (int k = 0; k < kCalls; ++k) {
              if (l.ln)
                layernorm(ex, h->as<float>(), nullptr, M, l.K, gb->as<float>(), gb->as<float>(), 1e-5f, xn.p,
                          DType::F16);
              res.gemm().linear(ex, gs, l.ln ? xn.p : x->p, wk(k), bias->p, out.p, bias->as<float>());
            }
          },
          res.stream());
      std::printf("  runner       M=%-2d H=%d %-12s %-13s %7.2f us a call (%s)\n", M, H, l.name,
                  l.ln ? "LN separate" : "", us / kCalls, res.gemm().kernel_name(gs).c_str());
    }
  }
}

// The linear layers of a batch-1 image (B/32: 50 rows, hidden 768) through
// the runner (its pick named: cuBLASLt, + bias_act for fc1, unless it takes a
// few-row kernel, as fc1 does by default; CLIPFIND_CUDA_SM90_SMALL_M=0 in a
// -DCLIPFIND_EXPERIMENTS=ON build for cuBLASLt throughout) and through each
// few-row sm90 kernel called directly, cold as in a pass: 24 dependent calls
// a graph, each on its own copy of the weights, time per call. (The pass
// decides: bench/gpu/gpu_lab.sh ab-env with CLIPFIND_CUDA_SM90_SMALL_M.)
TEST(CudaOpsPerf, FewRowGemms) {
  SKIP_WITHOUT_SM90();
  if (!timing_enabled()) GTEST_SKIP() << "set CLIPFIND_OPS_TIME=1 to time the ops";
  Rng r(12);
  CudaResources res(0, env_tuning());
  constexpr int kCalls = 24;
  const int M = 50, H = 768, I = 4 * H;
  auto x = upload(random_vec(r, size_t(M) * I), DType::F16);
  auto bias = upload(random_vec(r, I), DType::F32);
  Dev w(size_t(kCalls) * I * H * 2), out(size_t(M) * I * 4), workspace(32 << 20);
  CUDA_CHECK(cudaMemset(w.p, 0, w.bytes));
  CUDA_CHECK(cudaMemset(out.p, 0, out.bytes));
  struct L {
    const char* name;
    int N, K;
    bool residual;
    Act act;
  };
  for (L l : {L{"qkv", 3 * H, H, false, Act::None}, L{"out+res", H, H, true, Act::None},
              L{"fc1+act", I, H, false, Act::QuickGelu}, L{"fc2+res", H, I, true, Act::None}}) {
    auto wk = [&](int k) { return static_cast<char*>(w.p) + size_t(k) * l.N * l.K * 2; };
    const GemmShape gs = fp16_layer(M, l.N, l.K, l.residual, l.act);
    const double base = time_graph_us(
        [&] {
          for (int k = 0; k < kCalls; ++k)
            res.gemm().linear(res.exec(), gs, x->p, wk(k), bias->p, out.p, bias->as<float>());
        },
        res.stream());
    std::printf("  M=%d %-8s N=%-4d K=%-4d %-34s %6.2f us a call\n", M, l.name, l.N, l.K,
                res.gemm().kernel_name(gs).c_str(), base / kCalls);
    const sm90::Epilogue e = l.residual                ? sm90::Epilogue::BiasResidual
                             : l.act == Act::QuickGelu ? sm90::Epilogue::BiasQuickGelu
                                                       : sm90::Epilogue::Bias;
    for (const sm90::Variant& v : sm90::variants()) {
      if (v.epilogue != e || !v.few_rows) continue;
      const double us = time_graph_us(
          [&] {
            for (int k = 0; k < kCalls; ++k) {
              const sm90::Problem p{M, l.N, l.K, x->p, wk(k), bias->as<float>(), out.p, res.num_sms()};
              ASSERT_EQ(v.run(p, workspace.p, workspace.bytes, res.stream()), sm90::Status::Ok);
            }
          },
          res.stream());
      std::printf("  M=%d %-8s N=%-4d K=%-4d %-34s %6.2f us a call\n", M, l.name, l.N, l.K, v.name, us / kCalls);
    }
  }
}

}  // namespace
}  // namespace clip::cuda
