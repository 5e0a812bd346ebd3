// GPU colour conversion (clip::cuda::yuv420_to_rgb) against the CPU
// reference in tests/yuv_reference.h: NV12 and P010, the three matrices,
// both ranges, every chroma siting, the four rotations, odd sizes and
// padded pitches. The kernel computes in float, the reference in double:
// they may round a value lying within float error of .5 apart, so the
// tolerance is 1 level, and almost every byte must be equal.
// The argument checks run everywhere; the rest skips without a usable GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "clip/cuda/nv12_to_rgb.cuh"
#include "clip/error.h"
#include "yuv_reference.h"

namespace {

using clip::cuda::Yuv420Frame;
using clip::cuda::YuvMatrix;
using clipfind::test::make_yuv_picture;
using clipfind::test::YuvConversion;
using clipfind::test::YuvPicture;

bool gpu_usable(std::string* why) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess)
    *why = cudaGetErrorString(err);
  else if (n == 0)
    *why = "no CUDA device";
  return err == cudaSuccess && n > 0;
}

#define SKIP_WITHOUT_GPU()                                           \
  do {                                                               \
    std::string why_;                                                \
    if (!gpu_usable(&why_)) {                                        \
      std::printf("[  SKIPPED ] no usable GPU: %s\n", why_.c_str()); \
      GTEST_SKIP() << "no usable GPU: " << why_;                     \
    }                                                                \
  } while (0)

#define CHECK_CUDA(x) ASSERT_EQ((x), cudaSuccess) << #x

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t n) { cudaMalloc(&p, n); }
  ~DeviceBuffer() { cudaFree(p); }
};

// Uploads p as NV12/P010 with padded pitches, converts, downloads.
std::vector<uint8_t> convert_on_gpu(const YuvPicture& p, const Yuv420Frame& settings) {
  const size_t bps = p.bits == 8 ? 1 : 2, shift = p.bits == 8 ? 0 : 16 - p.bits;
  const int cw = (p.width + 1) / 2, ch = (p.height + 1) / 2;
  const size_t ypitch = bps * p.width + 64, cpitch = bps * cw * 2 + 32;
  std::vector<uint8_t> host_y(ypitch * p.height, 0xEE), host_c(cpitch * ch, 0xEE);
  auto put = [&](std::vector<uint8_t>& dst, size_t off, uint16_t v) {
    if (bps == 1)
      dst[off] = uint8_t(v);
    else {
      const uint16_t w = uint16_t(v << shift);
      std::memcpy(&dst[off], &w, 2);
    }
  };
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x) put(host_y, y * ypitch + x * bps, p.y[size_t(y) * p.width + x]);
  for (int y = 0; y < ch; ++y)
    for (int i = 0; i < 2 * cw; ++i) put(host_c, y * cpitch + i * bps, p.uv[size_t(y) * cw * 2 + i]);
  Yuv420Frame f = settings;
  f.width = p.width, f.height = p.height, f.bit_depth = p.bits;
  const int out_w = upright_width(f), out_h = upright_height(f);
  const size_t opitch = size_t(out_w) * 3 + 5;
  DeviceBuffer dy(host_y.size()), dc(host_c.size()), dout(opitch * out_h);
  EXPECT_EQ(cudaMemcpy(dy.p, host_y.data(), host_y.size(), cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(dc.p, host_c.data(), host_c.size(), cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemset(dout.p, 0xA5, opitch * out_h), cudaSuccess);  // poison: every byte must be written
  f.luma = dy.p, f.luma_pitch = ypitch, f.chroma = dc.p, f.chroma_pitch = cpitch;
  clip::cuda::yuv420_to_rgb({}, f, static_cast<uint8_t*>(dout.p), opitch);
  std::vector<uint8_t> out(size_t(out_w) * out_h * 3);
  EXPECT_EQ(
      cudaMemcpy2D(out.data(), size_t(out_w) * 3, dout.p, opitch, size_t(out_w) * 3, out_h, cudaMemcpyDeviceToHost),
      cudaSuccess);
  return out;
}

YuvConversion reference_settings(const Yuv420Frame& f) {
  YuvConversion c;
  if (f.matrix == YuvMatrix::bt709) c.kr = 0.2126, c.kb = 0.0722;
  if (f.matrix == YuvMatrix::bt2020) c.kr = 0.2627, c.kb = 0.0593;
  c.full_range = f.full_range;
  c.centred_x = f.chroma_centred_x;
  c.centred_y = f.chroma_centred_y;
  c.rotation = f.rotation;
  return c;
}

TEST(YuvToRgb, MatchesReferenceEverywhere) {
  SKIP_WITHOUT_GPU();
  int cases = 0;
  for (int bits : {8, 10})
    for (YuvMatrix m : {YuvMatrix::bt601, YuvMatrix::bt709, YuvMatrix::bt2020})
      for (bool full : {false, true})
        for (int siting = 0; siting < 4; ++siting)
          for (int rot : {0, 90, 180, 270}) {
            const int w = 33 + 14 * (siting & 1) + rot / 90, h = 17 + 6 * (siting >> 1);  // odd and even sizes
            const YuvPicture p = make_yuv_picture(w, h, bits, full, uint32_t(cases + 1));
            Yuv420Frame f;
            f.matrix = m, f.full_range = full, f.rotation = rot;
            f.chroma_centred_x = siting & 1, f.chroma_centred_y = siting & 2;
            int rw = 0, rh = 0;
            const std::vector<uint8_t> want = clipfind::test::yuv_to_rgb_reference(p, reference_settings(f), &rw, &rh);
            const std::vector<uint8_t> got = convert_on_gpu(p, f);
            ASSERT_EQ(got.size(), want.size());
            int worst = 0;
            size_t off = 0;
            for (size_t i = 0; i < got.size(); ++i) {
              const int d = std::abs(int(got[i]) - int(want[i]));
              worst = std::max(worst, d);
              off += d != 0;
            }
            EXPECT_LE(worst, 1) << bits << " bits, matrix " << int(m) << ", full " << full << ", siting " << siting
                                << ", rotation " << rot;
            EXPECT_LE(off, got.size() / 100 + 1) << "more than 1% of bytes off by one";
            ++cases;
          }
  std::printf("yuv420_to_rgb: %d cases within 1 level of the double-precision reference\n", cases);
}

TEST(YuvToRgb, ChecksItsArguments) {
  uint8_t dummy[64];
  Yuv420Frame f;
  f.luma = dummy, f.chroma = dummy, f.width = 4, f.height = 4, f.luma_pitch = 4, f.chroma_pitch = 4;
  const clip::cuda::Exec exec;
  auto rejects = [&](Yuv420Frame g, size_t pitch, const char* what) {
    EXPECT_THROW(clip::cuda::yuv420_to_rgb(exec, g, dummy, pitch), clip::Error) << what;
  };
  Yuv420Frame g = f;
  g.luma = nullptr;
  rejects(g, 12, "null luma");
  g = f, g.bit_depth = 12;
  rejects(g, 12, "12-bit");
  g = f, g.rotation = 45;
  rejects(g, 12, "rotation 45");
  g = f, g.luma_pitch = 3;
  rejects(g, 12, "short luma pitch");
  g = f, g.width = 0;
  rejects(g, 12, "empty");
  rejects(f, 11, "short output pitch");
  g = f, g.bit_depth = 10, g.luma_pitch = 4;
  rejects(g, 12, "P010 pitch of an 8-bit row");
}

}  // namespace
