// Whole towers on the GPU against the CPU backend (float32), on random
// unit-scale models (tests/support/random_model.h): tiny ones, and the shapes of
// ViT-B/32, B/16 and L/14.
//   fp32: within 1e-4 (absolute) of the CPU backend, and of the independent
//         double-accumulating reference (test_cuda_reference.cpp) where that
//         is affordable;
//   tf32, fp16, bf16: cosine >= 0.9999 to the CPU fp32 output for every
//         embedding.
// Each comparison prints a "[metric]" line with max |a-b| and the median
// relative error |a-b|/(|b|+1e-5), which bench/gpu/gpu_lab.sh round collects.
// Also checked: repeated calls (eager, graph capture, graph replay) agree.
// Without a usable GPU every test skips and prints why.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "clip/backend.h"
#include "clip/cuda/batch_bucket.h"
#include "clip/cuda/cuda_backend.h"
#include "support/random_model.h"
#include "test_cuda_reference.h"

namespace clip {
namespace {

struct Diff {
  double max_abs = 0, median_rel = 0, min_cos = 1;
};

Diff compare(const Tensor& a, const Tensor& b) {
  Diff d;
  EXPECT_EQ(a.shape, b.shape);
  if (a.shape != b.shape || a.shape.size() != 2) return d;
  std::vector<double> rel;
  for (size_t i = 0; i < a.numel(); ++i) {
    const double e = std::fabs(double(a.data[i]) - b.data[i]);
    d.max_abs = std::isnan(e) ? INFINITY : std::max(d.max_abs, e);
    rel.push_back(e / (std::fabs(double(b.data[i])) + 1e-5));
  }
  std::nth_element(rel.begin(), rel.begin() + rel.size() / 2, rel.end());
  d.median_rel = rel[rel.size() / 2];
  const int64_t rows = a.shape[0], cols = a.shape[1];
  for (int64_t r = 0; r < rows; ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double x = a.data[r * cols + c], y = b.data[r * cols + c];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    const double cos = ab / std::sqrt(aa * bb);
    d.min_cos = std::isnan(cos) ? -1 : std::min(d.min_cos, cos);
  }
  return d;
}

void report(const std::string& model, const std::string& tower, const std::string& precision,
            const std::string& against, const Diff& d) {
  std::printf("[metric] model=%s tower=%s precision=%s vs=%s max_abs=%.3e median_rel=%.3e min_cos=%.8f\n",
              model.c_str(), tower.c_str(), precision.c_str(), against.c_str(), d.max_abs, d.median_rel, d.min_cos);
}

// The checks every precision must pass against a float32 result.
void expect_match(const std::string& model, const std::string& tower, Precision p, const std::string& against,
                  const Tensor& got, const Tensor& want) {
  const Diff d = compare(got, want);
  report(model, tower, precision_name(p), against, d);
  if (p == Precision::FP32) {
    EXPECT_LE(d.max_abs, 1e-4) << model << " " << tower << " fp32 vs " << against;
  }
  EXPECT_GE(d.min_cos, 0.9999) << model << " " << tower << " " << precision_name(p) << " vs " << against;
}

struct Model {
  testing::ModelShape shape;
  ClipConfig config;
  ModelWeights weights;
};

Model make_model(const std::string& name, uint64_t seed) {
  Model m{testing::model_shape(name), {}, {}};
  m.config = testing::make_config(m.shape);
  m.weights = testing::random_weights(m.config, seed);
  return m;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs both towers in every precision and checks them against the CPU
// backend (and the reference, when `with_reference`). With `gpu_baseline`
// the float32 baseline is the CUDA backend's fp32 mode instead of the CPU
// backend (whose large shapes take minutes on the device machine); fp32 mode
// itself is held to the CPU backend and the reference on the smaller shapes.
void check_model(const std::string& name, int images, const std::vector<int>& text_lens, bool with_reference,
                 const std::vector<Precision>& precisions, bool gpu_baseline = false, int texts_per_batch = 3) {
  const auto t0 = std::chrono::steady_clock::now();
  Model m = make_model(name, 1234);
  const Tensor pixels = testing::random_pixels(*m.config.vision, images, 99);
  std::vector<TextBatch> texts;
  for (size_t i = 0; i < text_lens.size(); ++i)
    texts.push_back(testing::random_texts(*m.config.text, texts_per_batch, text_lens[i], 7 + i));

  std::unique_ptr<Backend> cpu;
  const std::string against = gpu_baseline ? "cuda-fp32" : "cpu";
  if (gpu_baseline) {
    CudaOptions o;
    o.precision = Precision::FP32;
    cpu = make_cuda_backend(m.config, m.weights, o);
  } else {
    cpu = make_cpu_backend(m.config, m.weights, 0);
  }
  const Tensor cpu_img = cpu->encode_images(pixels);
  std::vector<Tensor> cpu_txt;
  for (const auto& t : texts) cpu_txt.push_back(cpu->encode_texts(t));
  cpu.reset();
  std::printf("  %s: %s baseline done in %.1f s\n", name.c_str(), against.c_str(), seconds_since(t0));

  if (with_reference) {
    const Tensor ref_img = ref::encode_images(m.config, m.weights, pixels);
    report(name, "vision", "cpu-fp32", "reference", compare(cpu_img, ref_img));
    for (size_t i = 0; i < texts.size(); ++i)
      report(name, "text" + std::to_string(texts[i].seq_len), "cpu-fp32", "reference",
             compare(cpu_txt[i], ref::encode_texts(m.config, m.weights, texts[i])));
    std::printf("  %s: reference done in %.1f s\n", name.c_str(), seconds_since(t0));
    // The CUDA fp32 result is also held to the reference directly, so a
    // CPU-backend bug cannot hide (or fake) a CUDA one.
    CudaOptions o;
    o.precision = Precision::FP32;
    auto gpu = make_cuda_backend(m.config, m.weights, o);
    expect_match(name, "vision", Precision::FP32, "reference", gpu->encode_images(pixels), ref_img);
    for (size_t i = 0; i < texts.size(); ++i)
      expect_match(name, "text" + std::to_string(texts[i].seq_len), Precision::FP32, "reference",
                   gpu->encode_texts(texts[i]), ref::encode_texts(m.config, m.weights, texts[i]));
  }

  for (Precision p : precisions) {
    CudaOptions o;
    o.precision = p;
    auto gpu = make_cuda_backend(m.config, m.weights, o);
    // Three calls: eager, graph capture, graph replay; all must agree.
    Tensor img[3];
    for (auto& t : img) t = gpu->encode_images(pixels);
    expect_match(name, "vision", p, against, img[0], cpu_img);
    for (int k = 1; k < 3; ++k)
      EXPECT_LE(compare(img[k], img[0]).max_abs, 1e-6) << name << " " << precision_name(p) << " vision call " << k;
    for (size_t i = 0; i < texts.size(); ++i) {
      Tensor txt[3];
      for (auto& t : txt) t = gpu->encode_texts(texts[i]);
      expect_match(name, "text" + std::to_string(texts[i].seq_len), p, against, txt[0], cpu_txt[i]);
      for (int k = 1; k < 3; ++k)
        EXPECT_LE(compare(txt[k], txt[0]).max_abs, 1e-6) << name << " " << precision_name(p) << " text call " << k;
    }
  }
  std::printf("  %s: done in %.1f s\n", name.c_str(), seconds_since(t0));
}

const std::vector<Precision> kAll = {Precision::FP32, Precision::TF32, Precision::FP16, Precision::BF16};

TEST(CudaModel, TinyQuickGelu) {
  SKIP_WITHOUT_GPU();
  check_model("tiny", 3, {16, 5}, true, kAll);
}

TEST(CudaModel, TinyHeadDim64) {
  SKIP_WITHOUT_GPU();
  check_model("tiny64", 3, {24, 9}, true, kAll);
}

TEST(CudaModel, TinyGeluOddShapes) {
  SKIP_WITHOUT_GPU();
  // hidden 96 / 3 heads (head_dim 32), image 30 / patch 6, 20 positions.
  check_model("tiny-gelu", 2, {20, 1}, true, kAll);
}

// The B/32 text tower with 0, 1 and 12 layers in fp16/bf16, under each
// debugging switch of the backend (tensor-core or SIMT attention; cuBLASLt
// bias epilogue on or off: Tuning fields set here), against the
// double-precision reference, one fresh backend each. It pinned a race in
// the weight upload (a plain cudaMemcpy's DMA still in flight while the
// conversion kernel read the staging buffer: identical configurations
// disagreed, even with 0 layers) and now guards against its return.
TEST(CudaModel, TextTowerBisect) {
  SKIP_WITHOUT_GPU();
  using Attention = cuda::Tuning::Attention;
  for (int layers : {0, 1, 12}) {
    Model m = make_model("B/32", 77);
    m.config.vision.reset();
    m.weights.vision.reset();
    m.config.text->num_layers = layers;
    m.weights.text->layers.resize(layers);
    const TextBatch batch = testing::random_texts(*m.config.text, 3, 77, 5);
    const Tensor want = ref::encode_texts(m.config, m.weights, batch);
    for (Attention attn : {Attention::Auto, Attention::Simt}) {
      for (bool epi : {true, false}) {
        const std::string what =
            std::string("attn=") + (attn == Attention::Simt ? "simt" : "auto") + " epilogue=" + (epi ? "1" : "0");
        for (Precision p : {Precision::FP16, Precision::BF16}) {
          CudaOptions o;
          o.precision = p;
          o.tuning.emplace();
          o.tuning->attention = attn;
          o.tuning->bias_epilogue = epi;
          auto gpu = make_cuda_backend(m.config, m.weights, o);
          const Diff d = compare(gpu->encode_texts(batch), want);
          report("B/32-text-L" + std::to_string(layers), "text77 " + what, precision_name(p), "reference", d);
          EXPECT_GE(d.min_cos, 0.9999) << "layers " << layers << " " << what << " " << precision_name(p);
        }
      }
    }
  }
}

// The switches from the environment (no GPU needed): the kept ones in every
// build, the experiments only in -DCLIPFIND_EXPERIMENTS=ON builds, and a
// value not understood names its variable.
TEST(CudaTuning, FromEnvironment) {
  setenv("CLIPFIND_CUDA_GRAPHS", "0", 1);
  setenv("CLIPFIND_CUDA_PROFILE", "graph", 1);
  setenv("CLIPFIND_CUDA_ATTN", "simt", 1);
  setenv("CLIPFIND_CUDA_SM90_SMALL_M", "bias,residual", 1);
  cuda::Tuning t = cuda::Tuning::from_environment();
  EXPECT_FALSE(t.graphs);
  EXPECT_EQ(t.profile, cuda::Tuning::Profile::Graph);
  EXPECT_TRUE(t.gpu_preprocess);
  const bool read = cuda::Tuning::experiments_built();
  EXPECT_EQ(t.attention == cuda::Tuning::Attention::Simt, read);
  EXPECT_EQ(!t.sm90_few_rows.act && t.sm90_few_rows.bias && t.sm90_few_rows.residual, read);
  const std::string line = t.describe();
  EXPECT_NE(line.find("graphs=off"), std::string::npos) << line;
  EXPECT_NE(line.find("profile=graph"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  setenv("CLIPFIND_CUDA_SM90_SMALL_M", "fc1", 1);
  if (read) {
    EXPECT_THROW(cuda::Tuning::from_environment(), Error);
  }
  for (const char* v :
       {"CLIPFIND_CUDA_GRAPHS", "CLIPFIND_CUDA_PROFILE", "CLIPFIND_CUDA_ATTN", "CLIPFIND_CUDA_SM90_SMALL_M"})
    unsetenv(v);
  t = cuda::Tuning::from_environment();
  EXPECT_TRUE(t.graphs);
  EXPECT_EQ(t.profile, cuda::Tuning::Profile::Off);
  EXPECT_EQ(t.attention, cuda::Tuning::Attention::Auto);
  EXPECT_TRUE(t.sm90_few_rows.act && !t.sm90_few_rows.bias && !t.sm90_few_rows.residual);
}

TEST(Precision, ParseAndName) {
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::FP16, Precision::BF16})
    EXPECT_EQ(parse_precision(precision_name(p)), p);
  EXPECT_THROW(parse_precision("FP16"), Error);
}

TEST(CudaModel, ViTB32Shapes) {
  SKIP_WITHOUT_GPU();
  check_model("B/32", 2, {77, 9}, true, kAll);
}

// From 1024 rows a product races the large sm90 kernels on an H100, and
// from 8192 a pass folds its LayerNorms into them (gemm.h, LnFold): the path
// of the throughput figures at batch 256 and 1024. 168 images are 8400
// rows, 112 texts of 77 tokens 8624 (ViT-B/16 at 42 images: 8274; L/14 at
// 33: 8481); against the CUDA fp32 pass.
TEST(CudaModel, ViTB32LargeBatch) {
  SKIP_WITHOUT_GPU();
  check_model("B/32", 168, {77}, false, {Precision::FP16, Precision::BF16}, true, 112);
}

TEST(CudaModel, ViTB16Shapes) {
  SKIP_WITHOUT_GPU();
  check_model("B/16", 42, {77}, false, {Precision::FP16, Precision::BF16}, true);
}

TEST(CudaModel, ViTL14Shapes) {
  SKIP_WITHOUT_GPU();
  check_model("L/14", 33, {77}, false, {Precision::FP16, Precision::BF16}, true, 112);
}

// SigLIP (issue 26): no class token, every row through the last layer, the
// attention pooling head, gelu_pytorch_tanh, a non-causal text tower pooled
// at its last position with a biased head; head size 72 as SO400M's. The CPU
// backend is the baseline (it matches transformers: test_golden_model).
TEST(CudaModel, SiglipTiny) {
  SKIP_WITHOUT_GPU();
  check_model("siglip-tiny", 3, {16}, false, kAll);
}

// 1,024 patches of head size 72 (512 px / 16): the long-sequence attention.
TEST(CudaModel, SiglipLongSequence) {
  SKIP_WITHOUT_GPU();
  check_model("siglip-long", 2, {64}, false, kAll);
}

// SO400M/14 at 33 images (8,448 rows) and 130 texts of 64 tokens (8,320):
// the large-pass path, LayerNorms folded into the sm90 GEMMs with the
// gelu_tanh epilogue; against the CUDA fp32 pass.
TEST(CudaModel, SiglipSO400MLargeBatch) {
  SKIP_WITHOUT_GPU();
  check_model("SO400M/14", 33, {64}, false, {Precision::FP16, Precision::BF16}, true, 130);
}

// The same image alone and inside a batch: batching must not change results
// beyond rounding (different GEMM algorithms may be picked per batch size).
TEST(CudaModel, BatchIndependence) {
  SKIP_WITHOUT_GPU();
  Model m = make_model("tiny", 5);
  const Tensor pixels = testing::random_pixels(*m.config.vision, 5, 3);
  CudaOptions o;
  o.precision = Precision::FP32;
  auto gpu = make_cuda_backend(m.config, m.weights, o);
  const Tensor all = gpu->encode_images(pixels);
  Tensor one({1, pixels.shape[1], pixels.shape[2], pixels.shape[3]});
  const size_t per = one.numel();
  std::copy(pixels.data.begin() + 3 * per, pixels.data.begin() + 4 * per, one.data.begin());
  const Tensor single = gpu->encode_images(one);
  const int P = m.config.projection_dim;
  for (int c = 0; c < P; ++c) EXPECT_NEAR(single.data[c], all.data[3 * P + c], 1e-5);
}

// Vision passes run at batch_bucket(n) rows: check the rounding's bounds
// here (no GPU needed), and on the GPU that the padded rows change nothing.
TEST(CudaBatchBucket, RoundsUpToFewSizes) {
  std::set<int> sizes;
  for (int n = 1; n <= 4096; ++n) {
    const int b = cuda::batch_bucket(n);
    ASSERT_GE(b, n);
    ASSERT_LE(b - n, n <= cuda::kBatchBucketMax ? 7 : 0) << n;
    ASSERT_EQ(cuda::batch_bucket(b), b) << n;  // a bucket is its own bucket
    if (n > 1) {
      ASSERT_GE(b, cuda::batch_bucket(n - 1)) << n;
    }
    if (n <= 64) sizes.insert(b);
  }
  EXPECT_EQ(sizes.size(), 11u);  // 1, 2, 4, 8, 16, 24, ..., 64
}

TEST(CudaModel, PaddedBatchesMatchUnpadded) {
  SKIP_WITHOUT_GPU();
  Model m = make_model("tiny", 8);
  CudaOptions o;
  o.precision = Precision::FP32;
  cuda::Tuning plain = cuda::Tuning::from_environment();
  plain.batch_buckets = false;
  cuda::Tuning padded = plain;
  padded.batch_buckets = true;
  o.tuning = plain;
  auto exact = make_cuda_backend(m.config, m.weights, o);
  o.tuning = padded;
  auto rounded = make_cuda_backend(m.config, m.weights, o);
  for (int n : {3, 5, 9, 13, 17, 6, 2}) {  // larger, then smaller: stale images in the padding rows
    const Tensor pixels = testing::random_pixels(*m.config.vision, n, 40 + n);
    const Tensor a = exact->encode_images(pixels);
    const Tensor b = rounded->encode_images(pixels);
    ASSERT_EQ(a.shape, b.shape) << n;
    for (size_t i = 0; i < a.numel(); ++i) ASSERT_NEAR(a.data[i], b.data[i], 1e-5) << "n=" << n << " at " << i;
  }
}

TEST(CudaModel, BadInputsThrow) {
  SKIP_WITHOUT_GPU();
  Model m = make_model("tiny", 6);
  auto gpu = make_cuda_backend(m.config, m.weights, {});
  EXPECT_THROW(gpu->encode_images(Tensor({1, 3, 31, 31})), Error);
  TextBatch b = testing::random_texts(*m.config.text, 2, 4, 1);
  b.ids[0] = m.config.text->vocab_size;  // out of the vocabulary
  EXPECT_THROW(gpu->encode_texts(b), Error);
  b = testing::random_texts(*m.config.text, 2, m.config.text->max_positions + 1, 1);
  EXPECT_THROW(gpu->encode_texts(b), Error);
  // Mis-shaped weights are named.
  ModelWeights w = m.weights;
  w.vision->layers[1].fc1.weight = Tensor({3, 3});
  try {
    make_cuda_backend(m.config, w, {});
    ADD_FAILURE() << "no error for a mis-shaped tensor";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.1.mlp.fc1.weight"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_precision("fp8"), Error);
  CudaOptions bad;
  bad.device = 99;
  EXPECT_THROW(make_cuda_backend(m.config, m.weights, bad), Error);
}

}  // namespace
}  // namespace clip
