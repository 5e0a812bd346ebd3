// GPU preprocessing (issue 3: "resize/crop/normalise on the GPU, same result
// as the CPU preprocessing within 1.5/255"): the CUDA passes run the CPU's
// fixed-point plan, so we require the same floats exactly, for every pass
// order and edge case of the CPU resize, then the whole path through the
// engine (uploads from pageable and pinned memory, several chunks, mixed
// sizes). Then SigLIP's preprocessing (exact H x W resize, no crop) with
// bilinear and PIL's other filters, alone and through the engine. Without a
// usable GPU every test skips and prints why.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "clip/clip.h"
#include "clip/cuda/cuda_backend.h"
#include "clip/cuda/gpu_preprocess.h"
#include "clip/image/preprocess.h"
#include "clip/image/preprocess_plan.h"
#include "support/temp_dir.h"
#include "test_cuda_reference.h"
#include "test_util.h"

namespace {

using clip::Image;
using clip::ImageView;
using clip::PreprocessConfig;

// Smooth gradients plus hash noise: every tap of the bicubic kernel matters
// and the negative lobes overshoot (clipping is exercised).
Image test_image(int w, int h, uint32_t seed) {
  Image im{w, h, std::vector<uint8_t>(size_t(w) * h * 3)};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        uint32_t v = (uint32_t(x) * 73856093u) ^ (uint32_t(y) * 19349663u) ^ (uint32_t(c) * 83492791u) ^ seed;
        v ^= v >> 13;
        v *= 0x5bd1e995u;
        v ^= v >> 15;
        const int smooth = (x * 255 / std::max(w - 1, 1) + y * 127 / std::max(h - 1, 1) + c * 50) % 256;
        im.rgb[(size_t(y) * w + x) * 3 + c] = uint8_t((v & 7) == 0 ? (v >> 8) & 255 : smooth);
      }
  return im;
}

PreprocessConfig clip_config(int edge, int crop) {
  PreprocessConfig cfg;
  cfg.shortest_edge = edge;
  cfg.crop_width = crop;
  cfg.crop_height = crop;
  return cfg;  // the defaults are CLIP's mean/std, resize + center crop
}

struct Case {
  int w, h, edge, crop;
  const char* what;
};

// Each case picks a different branch of detail::ResizePlan.
const Case kCases[] = {
    {1920, 1080, 224, 224, "1080p frame: horizontal pass first"},
    {300, 1000, 224, 224, "tall: vertical pass first (Pillow 13)"},
    {37, 1000, 224, 224, "thin and tall: upscaled width"},
    {224, 224, 224, 224, "no resize: copy"},
    {224, 300, 224, 224, "only the height changes"},
    {300, 224, 224, 224, "only the width changes"},
    {5, 7, 224, 224, "tiny: upscale"},
    {1, 1, 224, 224, "one pixel"},
    {641, 359, 96, 96, "odd sizes, 96 px model"},
    {400, 300, 200, 224, "crop larger than the resized image: zero padding"},
};

// Runs plan_preprocess(w, h, cfg) on the GPU for a batch of 3 images and
// requires exactly the floats of the CPU's preprocess_image.
void expect_same_floats_as_cpu(clip::cuda::CudaResources& res, clip::cuda::GpuPreprocessor& pre, int w, int h,
                               const PreprocessConfig& cfg) {
  const auto plan = clip::detail::plan_preprocess(w, h, cfg);
  const int n = 3;  // a batch: blockIdx.z and the frame stride matter
  std::vector<Image> images;
  std::vector<uint8_t> frames;
  const size_t frame = size_t(w) * h * 3 + 5;  // an odd stride on purpose
  for (int i = 0; i < n; ++i) {
    images.push_back(test_image(w, h, 1234u + i));
    frames.resize(frame * (i + 1));
    std::memcpy(frames.data() + frame * i, images.back().rgb.data(), images.back().rgb.size());
  }
  const size_t per_image = size_t(3) * plan.crop_w * plan.crop_h;
  std::vector<float> want(per_image * n), got(per_image * n, -99.0f);
  for (int i = 0; i < n; ++i) clip::preprocess_image(images[i], cfg, want.data() + per_image * i);

  auto src = res.alloc(frames.size());
  auto out = res.alloc(got.size() * 4);
  // On the preprocessor's own stream: a plain cudaMemcpy from pageable
  // memory may return before the DMA lands, and that (non-blocking)
  // stream would not wait for it.
  CUDA_CHECK(cudaMemcpyAsync(src.get(), frames.data(), frames.size(), cudaMemcpyHostToDevice, res.stream()));
  pre.run(res.exec(), plan, w, h, src.as<uint8_t>(), frame, n, out.as<float>());
  res.synchronize();
  CUDA_CHECK(cudaMemcpy(got.data(), out.get(), got.size() * 4, cudaMemcpyDeviceToHost));
  size_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) differ += got[i] != want[i];
  EXPECT_EQ(differ, 0u) << w << "x" << h << " -> " << plan.crop_w << "x" << plan.crop_h << " ("
                        << clip::resample_name(cfg.resample) << "): " << differ << " of " << got.size()
                        << " values differ";
}

TEST(CudaPreprocess, SameFloatsAsTheCpuForEveryPassOrder) {
  SKIP_WITHOUT_GPU();
  clip::cuda::CudaResources res(0, clip::cuda::Tuning{});
  clip::cuda::GpuPreprocessor pre(res);
  for (const Case& k : kCases) {
    SCOPED_TRACE(k.what);
    expect_same_floats_as_cpu(res, pre, k.w, k.h, clip_config(k.edge, k.crop));
  }
}

// SigLIP: an exact H x W resize, no crop, mean = std = 0.5, with PIL's
// bilinear (SigLIP 2) and bicubic filters -- and the others, which reach the
// GPU the same way: the plan carries each axis's taps, computed on the CPU.
// One preprocessor per config, as the backend keeps one (its plan cache is
// keyed by source size only).
TEST(CudaPreprocess, SiglipExactResizeSameFloatsAsTheCpu) {
  SKIP_WITHOUT_GPU();
  clip::cuda::CudaResources res(0, clip::cuda::Tuning{});
  struct Size {
    int w, h, out_w, out_h;
    const char* what;
  };
  const Size sizes[] = {
      {640, 480, 224, 224, "VGA to 224: horizontal pass first"},
      {100, 37, 384, 384, "upscale, odd sizes"},
      {1920, 1080, 512, 512, "1080p to 512"},
      {1080, 1920, 512, 512, "portrait 1080p: vertical pass first"},
      {224, 300, 224, 224, "only the height changes"},
      {300, 224, 224, 224, "only the width changes"},
      {224, 224, 224, 224, "no resize: copy"},
      {1, 1, 224, 224, "one pixel"},
      {641, 359, 96, 64, "not square: 96 wide, 64 high"},
  };
  for (const clip::Resample filter : {clip::Resample::Bilinear, clip::Resample::Bicubic, clip::Resample::Nearest,
                                      clip::Resample::Box, clip::Resample::Hamming, clip::Resample::Lanczos}) {
    for (const Size& z : sizes) {
      SCOPED_TRACE(std::string(clip::resample_name(filter)) + ", " + z.what);
      PreprocessConfig cfg;
      cfg.resize_width = cfg.crop_width = z.out_w;
      cfg.resize_height = cfg.crop_height = z.out_h;
      cfg.shortest_edge = std::min(z.out_w, z.out_h);
      cfg.do_center_crop = false;
      cfg.resample = filter;
      cfg.mean = cfg.std = {0.5f, 0.5f, 0.5f};
      clip::cuda::GpuPreprocessor pre(res);
      expect_same_floats_as_cpu(res, pre, z.w, z.h, cfg);
    }
  }
}

// The engine on CUDA with GPU preprocessing against the same engine fed
// CPU-preprocessed pixels: identical inputs to the tower, so identical
// embeddings (fp32 mode; the batches are the same size either way).
class CudaPreprocessEngine : public testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    clip::EngineOptions o;
    o.device = "cuda";
    o.precision = clip::Precision::FP32;
    engine_ = clip::Engine::load(std::string(CLIPFIND_TEST_DATA) + "/models/full_fp32_quickgelu_p32", o);
  }
  void expect_same_as_cpu_preprocessing(const std::vector<ImageView>& views) {
    const clip::Tensor got = engine_->embed_image_views(views);
    clip::Tensor want({0, engine_->projection_dim()});
    for (size_t s = 0; s < views.size(); s += 64) {
      std::vector<ImageView> chunk(views.begin() + s, views.begin() + std::min(views.size(), s + 64));
      const clip::Tensor part = engine_->embed_pixels(clip::preprocess_batch(chunk, engine_->preprocess_config()));
      want.data.insert(want.data.end(), part.data.begin(), part.data.end());
      want.shape[0] += part.shape[0];
    }
    ASSERT_EQ(got.shape, want.shape);
    // Not bit-exact in general: the GPU path cuts chunks by bytes (large
    // frames) as well as by count, and GEMMs of another batch size may sum
    // in another order (~1e-6 in fp32 on these unit-scale models).
    float worst = 0.0f;
    for (size_t i = 0; i < got.data.size(); ++i) worst = std::max(worst, std::abs(got.data[i] - want.data[i]));
    EXPECT_LE(worst, 1e-5f);
  }
  std::unique_ptr<clip::Engine> engine_;
};

TEST_F(CudaPreprocessEngine, PageableFramesInSeveralChunksAndSizes) {
  // 150 images: three chunks of the backend, sizes changing inside a chunk.
  std::vector<Image> images;
  for (int i = 0; i < 150; ++i) {
    const int w = i % 3 == 0 ? 320 : (i % 3 == 1 ? 181 : 640), h = i % 3 == 2 ? 360 : 240;
    images.push_back(test_image(w, h, 99u + i));
  }
  std::vector<ImageView> views;
  for (const Image& im : images) views.push_back(im.view());
  expect_same_as_cpu_preprocessing(views);
}

TEST_F(CudaPreprocessEngine, PinnedFramesLargerThanOneUploadChunk) {
  // 4K frames: ~25 MB each, so the 256 MB upload chunk splits them.
  const int w = 3840, h = 2160, n = 14;
  const size_t bytes = size_t(w) * h * 3;
  uint8_t* pinned = nullptr;
  CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&pinned), bytes * n));
  std::vector<ImageView> views;
  for (int i = 0; i < n; ++i) {
    const Image im = test_image(w, h, 7u + i);
    std::memcpy(pinned + bytes * i, im.rgb.data(), bytes);
    views.push_back({w, h, pinned + bytes * i});
  }
  expect_same_as_cpu_preprocessing(views);
  cudaFreeHost(pinned);
}

// The test model with SigLIP's preprocessing instead (exact 224 x 224
// bilinear resize, no crop, mean = std = 0.5): the CUDA engine's own GPU
// preprocessing gives what the CPU preprocessing gives; a non-square size
// is refused naming the file.
TEST(CudaPreprocessSiglip, EngineMatchesCpuPreprocessingAndRefusesNonSquare) {
  SKIP_WITHOUT_GPU();
  cliptest::TempDir tmp;
  const std::filesystem::path src = std::string(CLIPFIND_TEST_DATA) + "/models/full_fp32_quickgelu_p32";
  std::filesystem::copy(src, tmp.path);
  auto write_preprocessor = [&](int height, int width) {
    std::ofstream(tmp.path / "preprocessor_config.json")
        << R"({"image_processor_type": "SiglipImageProcessor", "resample": 2, "image_mean": [0.5, 0.5, 0.5],
               "image_std": [0.5, 0.5, 0.5], "rescale_factor": 0.00392156862745098,
               "size": {"height": )"
        << height << R"(, "width": )" << width << "}}";
  };
  clip::EngineOptions o;
  o.device = "cuda";
  o.precision = clip::Precision::FP32;
  write_preprocessor(224, 224);
  auto engine = clip::Engine::load(tmp.path, o);
  ASSERT_EQ(engine->preprocess_config().resample, clip::Resample::Bilinear);
  ASSERT_FALSE(engine->preprocess_config().do_center_crop);
  std::vector<Image> images;
  for (auto [w, h] : {std::pair{640, 480}, {100, 37}, {1920, 1080}, {1080, 1920}, {224, 224}, {641, 359}})
    images.push_back(test_image(w, h, uint32_t(w * 3 + h)));
  std::vector<ImageView> views;
  for (const Image& im : images) views.push_back(im.view());
  const clip::Tensor got = engine->embed_image_views(views);
  const clip::Tensor want = engine->embed_pixels(clip::preprocess_batch(views, engine->preprocess_config()));
  ASSERT_EQ(got.shape, want.shape);
  float worst = 0.0f;
  for (size_t i = 0; i < got.data.size(); ++i) worst = std::max(worst, std::abs(got.data[i] - want.data[i]));
  EXPECT_LE(worst, 1e-5f);  // same pixels; GEMMs of another batch split may sum in another order

  write_preprocessor(224, 160);
  engine = clip::Engine::load(tmp.path, o);
  try {
    engine->embed_image_views(views);
    ADD_FAILURE() << "a 160x224 preprocessing output was accepted by a 224x224 model";
  } catch (const clip::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((tmp.path / "preprocessor_config.json").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("square 224x224"), std::string::npos) << msg;
  }
}

TEST_F(CudaPreprocessEngine, BadImagesAreRefusedBeforeAnyWork) {
  const Image ok = test_image(64, 64, 1);
  std::vector<ImageView> views{ok.view(), {0, 10, ok.rgb.data()}};
  EXPECT_THROW(engine_->embed_image_views(views), clip::Error);
  views[1] = {10, 10, nullptr};
  EXPECT_THROW(engine_->embed_image_views(views), clip::Error);
}

}  // namespace
