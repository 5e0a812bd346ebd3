// Preprocessing against PIL (tools/preprocess_reference.py): the bicubic
// short-side resize + center crop must give PIL's bytes for every fixture
// (the issue allows 1.5/255; we expect 0), the normalised floats must match
// torchvision's float32 arithmetic, and the size/crop rules must follow
// torchvision (int() of the long side, round-half-even crop offsets, zero
// padding). Then every PIL filter ("resample": bilinear and bicubic for
// SigLIP, the others too) against PIL's resize to exact sizes, and SigLIP's
// pipeline (exact H x W resize, no crop) against PIL's bytes and
// transformers' floats (tools/make_resample_fixtures.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "clip/error.h"
#include "clip/image/image.h"
#include "clip/image/image_resize.h"
#include "clip/image/preprocess.h"
#include "clip/image/preprocess_plan.h"
#include "image_fixtures.h"
#include "support/temp_dir.h"
#include "test_util.h"

namespace clip {
void PrintTo(Resample r, std::ostream* os) { *os << resample_name(r); }  // gtest's name for a parameter
}  // namespace clip

namespace fs = std::filesystem;
using nlohmann::json;

using namespace cliptest;

namespace {

clip::PreprocessConfig config(int edge, int crop_w, int crop_h) {
  clip::PreprocessConfig cfg;
  cfg.shortest_edge = edge;
  cfg.crop_width = crop_w;
  cfg.crop_height = crop_h;
  return cfg;
}

// The resize + crop steps alone, as uint8.
clip::Image resize_and_crop(const clip::Image& img, int edge, int crop_w, int crop_h) {
  int w = 0, h = 0;
  clip::short_side_size(img.width, img.height, edge, &w, &h);
  return clip::center_crop(clip::resize_bicubic(img, w, h), crop_w, crop_h);
}

// An image whose red channel encodes x and green y, to check where crops land.
clip::Image coordinates(int w, int h) {
  clip::Image img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.rgb[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x + 1);
      p[1] = static_cast<uint8_t>(y + 1);
      p[2] = 7;
    }
  }
  return img;
}

constexpr clip::Resample kAllFilters[] = {clip::Resample::Nearest, clip::Resample::Lanczos, clip::Resample::Bilinear,
                                          clip::Resample::Bicubic, clip::Resample::Box,     clip::Resample::Hamming};

// tools/make_resample_fixtures.py's pattern(): "noise", "binary" or "smooth".
clip::Image pattern(int w, int h, uint32_t seed, const std::string& kind) {
  clip::Image img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (size_t i = 0; i < img.rgb.size(); ++i) {
    uint32_t v = static_cast<uint32_t>(i) * 0x9E3779B1u + seed;
    v ^= v >> 15;
    v *= 0x85EBCA77u;
    v ^= v >> 13;
    const int top = static_cast<int>(v >> 24);
    int byte = top;
    if (kind == "binary") {
      byte = top > 127 ? 255 : 0;
    } else if (kind == "smooth" && (v & 7) != 0) {
      const int c = static_cast<int>(i % 3), x = static_cast<int>(i / 3 % w), y = static_cast<int>(i / 3 / w);
      byte = (x * 255 / std::max(w - 1, 1) + y * 127 / std::max(h - 1, 1) + c * 50) % 256;
    }
    img.rgb[i] = static_cast<uint8_t>(byte);
  }
  return img;
}

// SigLIP's preprocessing as transformers writes its config, read back by
// load_preprocess_config: exact height x width, no crop, mean = std = 0.5.
clip::PreprocessConfig siglip_config(int height, int width, int resample) {
  TempDir tmp;
  const fs::path path = tmp.path / "preprocessor_config.json";
  std::ofstream(path) << json{{"do_normalize", true},
                              {"do_rescale", true},
                              {"do_resize", true},
                              {"image_mean", {0.5, 0.5, 0.5}},
                              {"image_processor_type", "SiglipImageProcessor"},
                              {"image_std", {0.5, 0.5, 0.5}},
                              {"resample", resample},
                              {"rescale_factor", 0.00392156862745098},
                              {"size", {{"height", height}, {"width", width}}}}
                             .dump();
  return clip::load_preprocess_config(path, 224);
}

}  // namespace

TEST(Preprocess, ResizeAndCropMatchPilForEveryFixture) {
  const json ref = reference();
  int worst = 0, checked = 0;
  for (const auto& c : ref["cases"]) {
    const clip::Image img = clip::decode_image_file(kImages / c["input"].get<std::string>());
    for (const auto& r : c["resizes"]) {
      const int edge = r["shortest_edge"], cw = r["crop_width"], ch = r["crop_height"];
      SCOPED_TRACE(c["input"].get<std::string>() + " @" + std::to_string(edge));
      int w = 0, h = 0;
      clip::short_side_size(img.width, img.height, edge, &w, &h);
      EXPECT_EQ(w, r["resized_size"][0].get<int>());
      EXPECT_EQ(h, r["resized_size"][1].get<int>());

      const clip::Image got = resize_and_crop(img, edge, cw, ch);
      const clip::Image want = clip::decode_image_file(kImages / r["expected"].get<std::string>());
      ASSERT_EQ(got.width, cw);
      ASSERT_EQ(got.height, ch);
      ASSERT_EQ(want.rgb.size(), got.rgb.size());
      const int diff = max_abs_diff(got, want);
      std::printf("  %-26s %4d -> %3dx%-3d max |ours - PIL| = %d\n", c["input"].get<std::string>().c_str(), edge, cw,
                  ch, diff);
      EXPECT_LE(diff, 1);  // 1.5/255 allowed by the issue
      EXPECT_EQ(fnv1a64(got.rgb), r["fnv1a64"].get<std::string>()) << "not byte-exact";
      worst = std::max(worst, diff);
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
  std::printf("resize+crop: %d fixtures, worst max difference from PIL %d/255\n", checked, worst);
}

// resize_bicubic alone over many size pairs (both pass orders, extreme
// ratios, 1-pixel sides, 0/255 images that overshoot and clip), against the
// hash of PIL's result on the same pseudo-random pixels.
TEST(Resize, SweepMatchesPilExactly) {
  const json ref = reference();
  ASSERT_GE(ref["resize_sweep"].size(), 30u);
  for (const auto& row : ref["resize_sweep"]) {
    const int w = row[0], h = row[1], ow = row[2], oh = row[3];
    uint32_t s = row[4].get<uint32_t>();
    const bool binary = row[5];
    clip::Image img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
    for (auto& b : img.rgb) {  // the generator's LCG, see lcg_image()
      s = s * 1103515245u + 12345u;
      b = static_cast<uint8_t>(s >> 24);
      if (binary) b = b > 127 ? 255 : 0;
    }
    EXPECT_EQ(fnv1a64(clip::resize_bicubic(img, ow, oh).rgb), row[6].get<std::string>())
        << w << "x" << h << " -> " << ow << "x" << oh;
  }
}

// preprocess_image computes only the crop window of the resize; with
// rescaling and normalisation off its output must still be PIL's bytes.
TEST(Preprocess, PipelineGivesPilBytesForEveryFixture) {
  const json ref = reference();
  for (const auto& c : ref["cases"]) {
    const clip::Image img = clip::decode_image_file(kImages / c["input"].get<std::string>());
    for (const auto& r : c["resizes"]) {
      clip::PreprocessConfig cfg = config(r["shortest_edge"], r["crop_width"], r["crop_height"]);
      cfg.do_rescale = cfg.do_normalize = false;
      std::vector<float> out(3 * static_cast<size_t>(cfg.crop_width) * cfg.crop_height);
      clip::preprocess_image(img, cfg, out.data());
      const clip::Image want = clip::decode_image_file(kImages / r["expected"].get<std::string>());
      const size_t plane = out.size() / 3;
      int diff = 0;
      for (size_t i = 0; i < plane; ++i) {
        for (int ch = 0; ch < 3; ++ch) {
          diff = std::max(diff, static_cast<int>(std::abs(out[ch * plane + i] - want.rgb[3 * i + ch])));
        }
      }
      EXPECT_EQ(diff, 0) << c["input"] << " @" << cfg.shortest_edge;
    }
  }
}

// The window resize equals the full resize cropped, in both pass orders,
// with every filter (nearest steps through the outputs before the window).
TEST(Resize, WindowEqualsCroppedFullResize) {
  const clip::Image img = coordinates(90, 70);
  for (const clip::Resample filter : kAllFilters) {
    for (auto [w, h] : {std::pair{40, 20}, {20, 40}, {200, 150}, {150, 30}, {30, 150}, {90, 33}, {41, 70}}) {
      const clip::Image full = clip::resize_image(img, w, h, filter);
      for (auto [x0, y0, cw, ch] : {std::array{0, 0, w, h}, {1, 2, w / 2, h / 3}, {w - 3, h - 1, 3, 1}}) {
        const clip::Image win = clip::detail::resize_window(img.view(), filter, w, h, x0, y0, cw, ch);
        ASSERT_EQ(win.width, cw);
        for (int y = 0; y < ch; ++y) {
          const uint8_t* a = &full.rgb[(static_cast<size_t>(y0 + y) * w + x0) * 3];
          ASSERT_TRUE(std::equal(a, a + cw * 3, &win.rgb[static_cast<size_t>(y) * cw * 3]))
              << clip::resample_name(filter) << " " << w << "x" << h << " window " << x0 << "," << y0 << " " << cw
              << "x" << ch;
        }
      }
    }
  }
  EXPECT_THROW(clip::detail::resize_window(img.view(), clip::Resample::Bicubic, 10, 10, 8, 0, 3, 3), clip::Error);
}

// A 1 x 20000 strip at 224 means a 224 x 4480000 resize; only the
// 224 x 224 window is computed.
TEST(Preprocess, ExtremeAspectRatioStaysSmall) {
  clip::Image strip{1, 20000, std::vector<uint8_t>(20000 * 3)};
  for (size_t i = 0; i < strip.rgb.size(); ++i) strip.rgb[i] = static_cast<uint8_t>(i / 3 % 251);
  std::vector<float> out(3 * 224 * 224);
  const auto t0 = std::chrono::steady_clock::now();
  clip::preprocess_image(strip, config(224, 224, 224), out.data());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(ms, 2000.0);
  int w = 0, h = 0;
  EXPECT_THROW(clip::short_side_size(1, 100000000, 224, &w, &h), clip::Error);  // > INT_MAX long
}

// The float output: torchvision's (v / 255 - mean) / std in float32.
TEST(Preprocess, NormalisedValuesMatchReference) {
  const json ref = reference();
  for (const auto& c : ref["cases"]) {
    const clip::Image img = clip::decode_image_file(kImages / c["input"].get<std::string>());
    for (const auto& r : c["resizes"]) {
      const auto cfg = config(r["shortest_edge"], r["crop_width"], r["crop_height"]);
      std::vector<float> out(3 * static_cast<size_t>(cfg.crop_width) * cfg.crop_height);
      clip::preprocess_image(img, cfg, out.data());
      for (const auto& s : r["normalised_samples"]) {
        const int ch = s[0], y = s[1], x = s[2];
        const float v = out[(static_cast<size_t>(ch) * cfg.crop_height + y) * cfg.crop_width + x];
        EXPECT_NEAR(v, s[3].get<double>(), 1e-6) << c["input"] << " c" << ch << " y" << y << " x" << x;
      }
    }
  }
}

// CLIP.png from ../shared (not in the repository): PIL's 224 and 336 outputs
// are represented by a hash, channel sums and a few pixels.
TEST(Preprocess, SharedClipPngMatchesPil) {
  const fs::path path = fs::path(CLIPFIND_SHARED_DATA) / "CLIP.png";
  if (!fs::exists(path)) GTEST_SKIP() << "shared test image not found: " << path;
  const json ref = reference();
  if (ref["shared"].empty()) GTEST_SKIP() << "reference.json has no CLIP.png entry";
  const clip::Image img = clip::decode_image_file(path);
  for (const auto& s : ref["shared"]) {
    const int edge = s["shortest_edge"], cw = s["crop_width"], ch = s["crop_height"];
    SCOPED_TRACE("CLIP.png @" + std::to_string(edge));
    const clip::Image got = resize_and_crop(img, edge, cw, ch);
    long long sums[3] = {0, 0, 0};
    for (size_t i = 0; i < got.rgb.size(); ++i) sums[i % 3] += got.rgb[i];
    for (int c = 0; c < 3; ++c) EXPECT_EQ(sums[c], s["channel_sums"][c].get<long long>());
    for (const auto& p : s["pixels"]) {
      const uint8_t* px = &got.rgb[(p[0].get<size_t>() * cw + p[1].get<size_t>()) * 3];
      EXPECT_EQ(px[0], p[2].get<int>());
      EXPECT_EQ(px[1], p[3].get<int>());
      EXPECT_EQ(px[2], p[4].get<int>());
    }
    EXPECT_EQ(fnv1a64(got.rgb), s["fnv1a64"].get<std::string>()) << "not byte-exact with PIL";

    std::vector<float> out(3 * static_cast<size_t>(cw) * ch);
    clip::preprocess_image(img, config(edge, cw, ch), out.data());
    for (const auto& v : s["normalised_samples"]) {
      const size_t idx = (v[0].get<size_t>() * ch + v[1].get<size_t>()) * cw + v[2].get<size_t>();
      EXPECT_NEAR(out[idx], v[3].get<double>(), 1e-6);
    }
  }
}

// ------------------------------------------------------------ size rules

TEST(SizeRules, ShortSideLikeTorchvision) {
  auto size = [](int w, int h, int edge) {
    int ow = 0, oh = 0;
    clip::short_side_size(w, h, edge, &ow, &oh);
    return std::make_pair(ow, oh);
  };
  EXPECT_EQ(size(640, 480, 224), std::make_pair(298, 224));  // int(298.67)
  EXPECT_EQ(size(480, 640, 224), std::make_pair(224, 298));
  EXPECT_EQ(size(37, 1000, 224), std::make_pair(224, 6054));  // int(6054.05)
  EXPECT_EQ(size(1000, 37, 224), std::make_pair(6054, 224));
  EXPECT_EQ(size(1920, 1080, 224), std::make_pair(398, 224));  // int(398.22)
  EXPECT_EQ(size(5, 7, 224), std::make_pair(224, 313));        // int(313.6): upscale
  EXPECT_EQ(size(1, 1, 224), std::make_pair(224, 224));
  EXPECT_EQ(size(300, 300, 224), std::make_pair(224, 224));
  EXPECT_EQ(size(3, 7, 6), std::make_pair(6, 14));  // exact quotient stays exact
  EXPECT_EQ(size(2162, 762, 336), std::make_pair(953, 336));
  EXPECT_THROW(size(0, 10, 224), clip::Error);
}

// torchvision: top = int(round((h - crop) / 2)) with round-half-to-even.
TEST(SizeRules, CenterCropRoundsHalfToEven) {
  struct Case {
    int size, crop, offset;
  };
  for (const Case c : {Case{10, 7, 2},                             // 1.5 -> 2
                       Case{11, 6, 2},                             // 2.5 -> 2
                       Case{8, 7, 0},                              // 0.5 -> 0
                       Case{14, 7, 4},                             // 3.5 -> 4
                       Case{12, 7, 2},                             // 2.5 -> 2
                       Case{9, 7, 1},                              // 1.0
                       Case{298, 224, 37}, Case{313, 224, 44}}) {  // 44.5 -> 44
    const clip::Image img = coordinates(c.size, c.size);
    const clip::Image out = clip::center_crop(img, c.crop, c.crop);
    EXPECT_EQ(out.rgb[0], c.offset + 1) << c.size << " -> " << c.crop;  // x of first column
    EXPECT_EQ(out.rgb[1], c.offset + 1) << c.size << " -> " << c.crop;  // y of first row
  }
}

// torchvision pads (crop - size) // 2 zeros before, the rest after.
TEST(SizeRules, CenterCropPadsWithZeros) {
  const clip::Image img = coordinates(3, 6);
  const clip::Image out = clip::center_crop(img, 6, 4);  // pad x by 1 + 2; crop y at 1
  ASSERT_EQ(out.width, 6);
  ASSERT_EQ(out.height, 4);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 6; ++x) {
      const uint8_t* p = &out.rgb[(static_cast<size_t>(y) * 6 + x) * 3];
      if (x >= 1 && x < 4) {
        EXPECT_EQ(p[0], x - 1 + 1);
        EXPECT_EQ(p[1], y + 1 + 1);
      } else {
        EXPECT_EQ(p[0] + p[1] + p[2], 0) << "x" << x << " y" << y;
      }
    }
  }
}

TEST(Resize, SameSizeIsIdentity) {
  const clip::Image img = coordinates(17, 9);
  EXPECT_EQ(clip::resize_bicubic(img, 17, 9).rgb, img.rgb);
  EXPECT_THROW(clip::resize_bicubic(img, 0, 9), clip::Error);
}

TEST(Resize, ConstantImageStaysConstant) {
  clip::Image img{13, 29, std::vector<uint8_t>(13 * 29 * 3)};
  for (size_t i = 0; i < img.rgb.size(); ++i)
    img.rgb[i] = static_cast<uint8_t>(i % 3 == 0 ? 0 : i % 3 == 1 ? 128 : 255);
  for (const clip::Resample filter : kAllFilters) {
    for (auto [w, h] : {std::pair{5, 7}, {40, 90}, {1, 1}, {13, 100}}) {
      const clip::Image out = clip::resize_image(img, w, h, filter);
      for (size_t i = 0; i < out.rgb.size(); ++i) {
        ASSERT_EQ(out.rgb[i], img.rgb[i % 3]) << clip::resample_name(filter) << " " << w << "x" << h;
      }
    }
  }
}

// ------------------------------------------------------------ PIL's filters

// Image.resize((ow, oh), filter) on synthetic images, per filter: SigLIP's
// shapes (640x480 -> 224x224, 100x37 -> 384x384, 1920x1080 -> 512x512),
// up- and downscaling, odd sizes, both pass orders, one axis unchanged,
// 1-pixel sides. Byte-exact: the hash of PIL's bytes.
class ResampleSweep : public testing::TestWithParam<clip::Resample> {};

TEST_P(ResampleSweep, MatchesPilExactly) {
  const clip::Resample filter = GetParam();
  const json ref = resample_reference();
  const std::string name = clip::resample_name(filter);
  ASSERT_EQ(ref["filters"][name].get<int>(), static_cast<int>(filter)) << "PIL's number for " << name;
  const json& rows = ref["sweep"][name];
  ASSERT_GE(rows.size(), 30u);
  int exact = 0;
  for (const auto& row : rows) {
    const int w = row[0], h = row[1], ow = row[2], oh = row[3];
    const clip::Image out = clip::resize_image(pattern(w, h, row[4].get<uint32_t>(), row[5]), ow, oh, filter);
    long long sums[3] = {0, 0, 0};
    for (size_t i = 0; i < out.rgb.size(); ++i) sums[i % 3] += out.rgb[i];
    const bool same = fnv1a64(out.rgb) == row[6].get<std::string>();
    EXPECT_TRUE(same) << name << " " << w << "x" << h << " (" << row[5].get<std::string>() << ") -> " << ow << "x" << oh
                      << ": not PIL's bytes; channel sums differ by " << sums[0] - row[7].get<long long>() << ", "
                      << sums[1] - row[8].get<long long>() << ", " << sums[2] - row[9].get<long long>();
    exact += same;
  }
  std::printf("%s: %d of %zu resizes byte-exact with Pillow %s\n", name.c_str(), exact, rows.size(),
              ref["pillow"].get<std::string>().c_str());
}

INSTANTIATE_TEST_SUITE_P(Filters, ResampleSweep, testing::ValuesIn(kAllFilters),
                         [](const testing::TestParamInfo<clip::Resample>& info) {
                           return std::string(clip::resample_name(info.param));
                         });

// SigLIP's whole pipeline on files (and CLIP.png from ../shared when there):
// the resized bytes are PIL's, the floats are transformers'
// SiglipImageProcessor's (its PIL backend), exactly. Includes a non-square
// 96 x 64 output: the plan handles it (only the engine refuses it for a
// square model).
TEST(SiglipPreprocess, PilBytesAndTransformersFloats) {
  const json ref = resample_reference();
  ASSERT_GE(ref["pipeline"].size(), 5u);
  int checked = 0;
  for (const auto& c : ref["pipeline"]) {
    const std::string input = c["input"];
    const fs::path path = c["shared"].get<bool>() ? fs::path(CLIPFIND_SHARED_DATA) / input : kImages / fs::path(input);
    if (!fs::exists(path)) {
      std::printf("  %s not found: case skipped\n", path.string().c_str());
      continue;
    }
    const int height = c["resize_height"], width = c["resize_width"];
    SCOPED_TRACE(input + " resample " + std::to_string(c["resample"].get<int>()) + " -> " + std::to_string(width) +
                 "x" + std::to_string(height));
    const clip::Image img = clip::decode_image_file(path);
    clip::PreprocessConfig cfg = siglip_config(height, width, c["resample"]);
    ASSERT_EQ(cfg.crop_width, width);
    ASSERT_EQ(cfg.crop_height, height);
    ASSERT_FALSE(cfg.do_center_crop);

    const size_t plane = static_cast<size_t>(width) * height;
    std::vector<float> out(3 * plane);
    cfg.do_rescale = cfg.do_normalize = false;  // the bytes first
    clip::preprocess_image(img, cfg, out.data());
    std::vector<uint8_t> bytes(3 * plane);
    for (size_t i = 0; i < plane; ++i)
      for (int ch = 0; ch < 3; ++ch) bytes[3 * i + ch] = static_cast<uint8_t>(out[ch * plane + i]);
    EXPECT_EQ(fnv1a64(bytes), c["fnv1a64"].get<std::string>()) << "not PIL's bytes";
    EXPECT_EQ(fnv1a64(clip::resize_image(img, width, height, cfg.resample).rgb), c["fnv1a64"].get<std::string>());

    cfg.do_rescale = cfg.do_normalize = true;
    clip::preprocess_image(img, cfg, out.data());
    for (const auto& v : c["normalised_samples"]) {
      const size_t idx = (v[0].get<size_t>() * height + v[1].get<size_t>()) * width + v[2].get<size_t>();
      EXPECT_EQ(out[idx], v[3].get<float>()) << "c" << v[0] << " y" << v[1] << " x" << v[2];
    }
    const clip::Tensor batch = clip::preprocess_batch(std::vector<clip::Image>{img, img}, cfg);
    EXPECT_EQ(batch.shape, (std::vector<int64_t>{2, 3, height, width}));
    EXPECT_TRUE(std::equal(out.begin(), out.end(), batch.ptr() + out.size()));
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

// With an exact resize and no crop every image size comes out H x W; with a
// crop (CLIPImageProcessor with "size": {"height", "width"}) it is cropped.
TEST(SiglipPreprocess, ExactResizeThenOptionalCrop) {
  clip::PreprocessConfig cfg = siglip_config(30, 50, 2);
  for (auto [w, h] : {std::pair{640, 480}, {3, 700}, {50, 30}, {1, 1}}) {
    const auto plan = clip::detail::plan_preprocess(w, h, cfg);
    EXPECT_EQ(plan.crop_w, 50);
    EXPECT_EQ(plan.crop_h, 30);
    EXPECT_EQ(plan.resize.width, 50);
    EXPECT_EQ(plan.resize.height, 30);
    EXPECT_EQ(plan.resize.horizontal, w != 50);
    EXPECT_EQ(plan.resize.vertical, h != 30);
  }
  const clip::Image img = pattern(64, 48, 5, "smooth");
  std::vector<float> out(3 * 30 * 50);
  cfg.do_rescale = cfg.do_normalize = false;
  clip::preprocess_image(img, cfg, out.data());
  const clip::Image want = clip::resize_image(img, 50, 30, clip::Resample::Bilinear);
  for (size_t i = 0; i < 30 * 50; ++i) ASSERT_EQ(out[i], want.rgb[3 * i]) << i;  // red plane

  cfg.do_center_crop = true;  // resize to 50x30, then crop 20x10 at (15, 10)
  cfg.crop_width = 20;
  cfg.crop_height = 10;
  out.resize(3 * 20 * 10);
  clip::preprocess_image(img, cfg, out.data());
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 20; ++x) ASSERT_EQ(out[y * 20 + x], want.rgb[3 * ((y + 10) * 50 + x + 15)]) << x << "," << y;
}

TEST(Resize, ResizeBicubicIsResizeImageBicubic) {
  const clip::Image img = pattern(71, 33, 9, "noise");
  EXPECT_EQ(clip::resize_bicubic(img, 40, 90).rgb, clip::resize_image(img, 40, 90, clip::Resample::Bicubic).rgb);
  EXPECT_NE(clip::resize_image(img, 40, 90, clip::Resample::Bilinear).rgb,
            clip::resize_image(img, 40, 90, clip::Resample::Bicubic).rgb);
}

// ------------------------------------------------------------ normalisation

TEST(Normalise, Arithmetic) {
  clip::Image px{1, 1, {0, 128, 255}};
  clip::PreprocessConfig cfg = config(1, 1, 1);
  cfg.do_resize = false;
  cfg.do_center_crop = false;
  float out[3];
  clip::preprocess_image(px, cfg, out);
  for (int c = 0; c < 3; ++c) {
    const float want = (static_cast<float>(px.rgb[c]) / 255.0f - cfg.mean[c]) / cfg.std[c];
    EXPECT_EQ(out[c], want) << c;
  }
  cfg.do_normalize = false;
  clip::preprocess_image(px, cfg, out);
  EXPECT_EQ(out[1], 128.0f / 255.0f);
  EXPECT_EQ(out[2], 1.0f);
  cfg.rescale_factor = 0.5f;
  clip::preprocess_image(px, cfg, out);
  EXPECT_EQ(out[1], 64.0f);
  cfg.do_rescale = false;
  cfg.do_normalize = true;
  cfg.mean = {1, 2, 3};
  cfg.std = {2, 4, 5};
  clip::preprocess_image(px, cfg, out);
  EXPECT_EQ(out[0], -0.5f);
  EXPECT_EQ(out[1], 31.5f);
  EXPECT_EQ(out[2], 50.4f);
}

TEST(Normalise, LayoutIsChw) {
  const clip::Image img = coordinates(4, 3);
  clip::PreprocessConfig cfg = config(3, 4, 3);
  cfg.do_resize = false;
  cfg.do_rescale = false;
  cfg.do_normalize = false;
  std::vector<float> out(3 * 4 * 3);
  clip::preprocess_image(img, cfg, out.data());
  EXPECT_EQ(out[0 * 12 + 1 * 4 + 2], 3.0f);  // red = x + 1 at (y 1, x 2)
  EXPECT_EQ(out[1 * 12 + 2 * 4 + 0], 3.0f);  // green = y + 1 at (y 2, x 0)
  EXPECT_EQ(out[2 * 12 + 0], 7.0f);
}

TEST(Normalise, WithoutCropTheSizeMustFit) {
  clip::PreprocessConfig cfg = config(224, 224, 224);
  cfg.do_center_crop = false;
  std::vector<float> out(3 * 224 * 224);
  EXPECT_THROW(clip::preprocess_image(coordinates(300, 200), cfg, out.data()), clip::Error);
  clip::preprocess_image(coordinates(300, 300), cfg, out.data());  // 224x224 after resize
}

TEST(Batch, MatchesSingleImagesAndNamesTheBadOne) {
  const clip::PreprocessConfig cfg = config(32, 32, 28);
  std::vector<clip::Image> images = {coordinates(50, 40), coordinates(40, 70), coordinates(5, 3)};
  const clip::Tensor t = clip::preprocess_batch(images, cfg);
  ASSERT_EQ(t.shape, (std::vector<int64_t>{3, 3, 28, 32}));
  std::vector<float> one(3 * 28 * 32);
  for (size_t i = 0; i < images.size(); ++i) {
    clip::preprocess_image(images[i], cfg, one.data());
    EXPECT_TRUE(std::equal(one.begin(), one.end(), t.ptr() + i * one.size())) << i;
  }
  images[1].rgb.pop_back();  // broken: wrong byte count
  try {
    clip::preprocess_batch(images, cfg);
    ADD_FAILURE() << "did not throw";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("image 1"), std::string::npos) << e.what();
  }
}

// Not a pass/fail test: prints the time of the 1080p -> 224 resize and of
// the whole preprocessing (which resizes only the 224 x 224 window).
TEST(Resize, Timing1080p) {
  clip::Image img{1920, 1080, std::vector<uint8_t>(1920 * 1080 * 3)};
  uint32_t s = 1;
  for (auto& b : img.rgb) b = static_cast<uint8_t>((s = s * 1103515245u + 12345u) >> 24);
  std::vector<double> ms;
  for (int i = 0; i < 15; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const clip::Image out = clip::resize_bicubic(img, 398, 224);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_EQ(out.width, 398);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("resize_bicubic 1920x1080 -> 398x224: median %.2f ms, min %.2f ms\n", ms[ms.size() / 2], ms[0]);
  std::vector<float> out(3 * 224 * 224);
  ms.clear();
  for (int i = 0; i < 15; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    clip::preprocess_image(img, config(224, 224, 224), out.data());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("preprocess_image 1920x1080 -> 3x224x224 floats: median %.2f ms, min %.2f ms\n", ms[ms.size() / 2],
              ms[0]);
}
