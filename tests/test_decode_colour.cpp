// The CPU decoder's colour conversion (issue 32) against the independent
// reference in yuv_reference.h, which the GPU conversion is also held to
// (test_yuv_to_rgb): BT.601, BT.709 and BT.2020, limited and full range, 8-
// and 10-bit, the three chroma sitings, odd sizes. The videos are known YUV
// planes stored losslessly (FFV1 in Matroska, which keeps the matrix, range
// and siting; one H.264 lossless), decoded by decode_video at full size.
// Per byte at most 1 level off (swscale's fixed point against double), and
// the tiny CLIP model's embeddings of both pictures within cosine 1e-5.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "clip/clip.h"
#include "video/decoder.h"
#include "video_fixtures.h"
#include "yuv_reference.h"

namespace fs = std::filesystem;
using clipfind::test::make_yuv_picture;
using clipfind::test::YuvConversion;
using clipfind::test::YuvPicture;

namespace {

const fs::path kModel = fs::path(CLIPFIND_TEST_DATA) / "models" / "full_fp32_quickgelu_p32";

struct Case {
  const char* name;
  int width, height, bits;
  const char* matrix;  // ffmpeg's -colorspace
  double kr, kb;
  bool full_range;
  const char* siting;  // ffmpeg's -chroma_sample_location
  bool centred_x, centred_y;
  const char* codec = "ffv1";
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

constexpr double k601r = 0.299, k601b = 0.114, k709r = 0.2126, k709b = 0.0722, k2020r = 0.2627, k2020b = 0.0593;

const Case kCases[] = {
    {"bt601_limited_8bit", 160, 120, 8, "smpte170m", k601r, k601b, false, "left", false, true},
    {"bt601_full_8bit", 160, 120, 8, "smpte170m", k601r, k601b, true, "left", false, true},
    {"bt709_limited_8bit", 160, 120, 8, "bt709", k709r, k709b, false, "left", false, true},
    {"bt709_full_8bit", 160, 120, 8, "bt709", k709r, k709b, true, "left", false, true},
    {"bt709_limited_10bit", 160, 120, 10, "bt709", k709r, k709b, false, "left", false, true},
    {"bt709_full_10bit", 160, 120, 10, "bt709", k709r, k709b, true, "left", false, true},
    {"bt601_limited_10bit", 160, 120, 10, "smpte170m", k601r, k601b, false, "left", false, true},
    {"bt2020_limited_10bit", 160, 120, 10, "bt2020nc", k2020r, k2020b, false, "left", false, true},
    {"centre_sited_odd_201x149", 201, 149, 8, "bt709", k709r, k709b, false, "center", true, true},
    {"topleft_sited_97x33_10bit", 97, 33, 10, "bt709", k709r, k709b, false, "topleft", false, false},
    {"h264_lossless_bt709", 160, 120, 8, "bt709", k709r, k709b, false, "left", false, true, "libx264"},
};

// The pictures of a case's two frames (one second apart).
std::vector<YuvPicture> pictures(const Case& c) {
  return {make_yuv_picture(c.width, c.height, c.bits, c.full_range, 7),
          make_yuv_picture(c.width, c.height, c.bits, c.full_range, 8)};
}

// Planar yuv420p / yuv420p10le bytes of the pictures, as ffmpeg's rawvideo reads them.
std::string raw_planes(const std::vector<YuvPicture>& pics) {
  std::string out;
  auto put = [&](uint16_t v, int bits) {
    out.push_back(char(v & 0xff));
    if (bits > 8) out.push_back(char(v >> 8));
  };
  for (const YuvPicture& p : pics) {
    for (uint16_t v : p.y) put(v, p.bits);
    for (int k = 0; k < 2; ++k)
      for (size_t i = 0; i < p.uv.size() / 2; ++i) put(p.uv[2 * i + size_t(k)], p.bits);
  }
  return out;
}

fs::path make_video(const Case& c) {
  const fs::path dir = fs::path(CLIPFIND_BINARY_DIR) / "tests" / "colour_fixtures";
  fs::create_directories(dir);
  const std::string name = std::string(c.name) + (std::string(c.codec) == "ffv1" ? ".mkv" : ".mp4");
  if (fs::exists(dir / name)) return dir / name;
  const fs::path raw = dir / ("tmp-" + std::to_string(::getpid()) + "-" + c.name + ".yuv");
  std::ofstream(raw, std::ios::binary) << raw_planes(pictures(c));
  const std::string fmt = c.bits == 8 ? "yuv420p" : "yuv420p10le";
  const std::string codec = std::string(c.codec) == "ffv1" ? "-c:v ffv1" : "-c:v libx264 -qp 0 -preset ultrafast";
  cliptest::make_video_once(dir, name,
                            "-f rawvideo -pix_fmt " + fmt + " -s " + std::to_string(c.width) + "x" +
                                std::to_string(c.height) + " -r 1 -i " + raw.string() + " " + codec + " -pix_fmt " +
                                fmt + " -colorspace " + c.matrix + " -color_range " + (c.full_range ? "pc" : "tv") +
                                " -chroma_sample_location " + c.siting);
  fs::remove(raw);
  return dir / name;
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

class DecodeColour : public ::testing::TestWithParam<Case> {};

TEST_P(DecodeColour, CpuFramesMatchTheReferenceConversion) {
  const Case& c = GetParam();
  const fs::path file = make_video(c);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  clipfind::video::DecodeOptions o;
  o.max_short_side = 0;
  std::vector<clip::Image> got;
  clipfind::video::decode_video(file, o, [&](clipfind::video::Frame&& f) { got.push_back(std::move(f.image)); });
  const std::vector<YuvPicture> pics = pictures(c);
  ASSERT_EQ(got.size(), pics.size()) << file;

  YuvConversion conv;
  conv.kr = c.kr, conv.kb = c.kb, conv.full_range = c.full_range;
  conv.centred_x = c.centred_x, conv.centred_y = c.centred_y;
  std::vector<clip::Image> want;
  int max_diff = 0;
  double sum = 0;
  size_t n = 0;
  for (size_t f = 0; f < pics.size(); ++f) {
    clip::Image ref;
    ref.rgb = clipfind::test::yuv_to_rgb_reference(pics[f], conv, &ref.width, &ref.height);
    ASSERT_EQ(got[f].width, ref.width);
    ASSERT_EQ(got[f].height, ref.height);
    ASSERT_EQ(got[f].rgb.size(), ref.rgb.size());
    for (size_t i = 0; i < ref.rgb.size(); ++i) {
      const int d = std::abs(int(got[f].rgb[i]) - int(ref.rgb[i]));
      max_diff = std::max(max_diff, d);
      sum += d;
    }
    n += ref.rgb.size();
    want.push_back(std::move(ref));
  }
  const double mean = sum / double(n);

  auto engine = clip::Engine::load(kModel);
  clip::Tensor a = engine->embed_images(got), b = engine->embed_images(want);
  double min_cos = 1.0;
  for (int64_t r = 0; r < a.dim(0); ++r)
    min_cos = std::min(min_cos, cosine(a.ptr() + r * a.dim(1), b.ptr() + r * b.dim(1), a.dim(1)));
  std::printf("COLOUR %s: max %d mean %.4f levels, embedding min cosine %.7f\n", c.name, max_diff, mean, min_cos);
  // Measured (x86-64, FFmpeg 5.1): max 1, mean 0.002-0.005.
  EXPECT_LE(max_diff, 1);
  EXPECT_LE(mean, 0.02);
  EXPECT_GE(min_cos, 0.99999);
}

INSTANTIATE_TEST_SUITE_P(Cases, DecodeColour, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

}  // namespace
