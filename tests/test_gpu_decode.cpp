// NVDEC decoding (video/gpu_decoder.h) against the CPU decoder on the same
// files: the same sampled times (every, keyframes, scenes), the same frames
// decoded, and RGB from the GPU conversion close to the CPU path's. Videos:
// gpu_test_videos.h. Skips, saying why, where NVDEC is not usable. With
// $CLIPFIND_GPU_DECODE_RATE naming a video it also prints decode rates for
// 1 to 14 decoders in parallel.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

extern "C" {
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "clip/cuda/nv12_to_rgb.cuh"
#include "gpu_test_videos.h"
#include "video/decoder.h"
#include "video/gpu_decoder.h"

namespace fs = std::filesystem;
using namespace clipfind::video;

namespace {

#define SKIP_WITHOUT_NVDEC()                                            \
  do {                                                                  \
    std::string why_;                                                   \
    if (!gpu_decoding_available(0, &why_)) {                            \
      std::printf("[  SKIPPED ] NVDEC not usable: %s\n", why_.c_str()); \
      GTEST_SKIP() << "NVDEC not usable: " << why_;                     \
    }                                                                   \
  } while (0)

fs::path videos() { return cliptest::gpu_test_videos(); }

struct DeviceBytes {
  uint8_t* p = nullptr;
  size_t n = 0;
  void reserve(size_t bytes) {
    if (bytes <= n) return;
    cudaFree(p);
    if (cudaMalloc(reinterpret_cast<void**>(&p), bytes) != cudaSuccess) throw std::runtime_error("cudaMalloc failed");
    n = bytes;
  }
  ~DeviceBytes() { cudaFree(p); }
};

struct HostFrame {
  double time;
  int w, h;
  std::vector<uint8_t> rgb;
};

// The GPU conversion of one frame, downloaded (on the frame's stream).
HostFrame convert(const clip::cuda::Yuv420Frame& pic, cudaStream_t stream, DeviceBytes& buf, double t) {
  HostFrame out{t, upright_width(pic), upright_height(pic), {}};
  const size_t pitch = size_t(out.w) * 3;
  buf.reserve(pitch * out.h);
  clip::cuda::yuv420_to_rgb({stream}, pic, buf.p, pitch);
  out.rgb.resize(pitch * out.h);
  if (cudaMemcpyAsync(out.rgb.data(), buf.p, out.rgb.size(), cudaMemcpyDeviceToHost, stream) != cudaSuccess ||
      cudaStreamSynchronize(stream) != cudaSuccess) {
    throw std::runtime_error("download failed");
  }
  return out;
}

// swscale's conversion of the same NV12/P010 planes, full chroma
// interpolation, told the frame's siting. swscale cannot place chroma
// between rows at full size (its vertical position moves by whole rows), so
// the comparison frames are co-sited vertically on both sides.
std::vector<uint8_t> swscale_rgb(const clip::cuda::Yuv420Frame& pic, cudaStream_t stream) {
  const int bps = pic.bit_depth == 8 ? 1 : 2, cw = (pic.width + 1) / 2, ch = (pic.height + 1) / 2;
  std::vector<uint8_t> y(size_t(pic.width) * pic.height * bps), c(size_t(cw) * 2 * ch * bps);
  cudaMemcpy2DAsync(y.data(), size_t(pic.width) * bps, pic.luma, pic.luma_pitch, size_t(pic.width) * bps, pic.height,
                    cudaMemcpyDeviceToHost, stream);
  cudaMemcpy2DAsync(c.data(), size_t(cw) * 2 * bps, pic.chroma, pic.chroma_pitch, size_t(cw) * 2 * bps, ch,
                    cudaMemcpyDeviceToHost, stream);
  cudaStreamSynchronize(stream);
  SwsContext* s = sws_alloc_context();
  av_opt_set_int(s, "srcw", pic.width, 0);
  av_opt_set_int(s, "srch", pic.height, 0);
  av_opt_set_int(s, "src_format", pic.bit_depth == 8 ? AV_PIX_FMT_NV12 : AV_PIX_FMT_P010LE, 0);
  av_opt_set_int(s, "dstw", pic.width, 0);
  av_opt_set_int(s, "dsth", pic.height, 0);
  av_opt_set_int(s, "dst_format", AV_PIX_FMT_RGB24, 0);
  av_opt_set_int(s, "sws_flags", SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP, 0);
  av_opt_set_int(s, "src_h_chr_pos", pic.chroma_centred_x ? 128 : 0, 0);
  av_opt_set_int(s, "src_v_chr_pos", -128, 0);  // measured: co-sited with even rows
  EXPECT_GE(sws_init_context(s, nullptr, nullptr), 0);
  const int cs = pic.matrix == clip::cuda::YuvMatrix::bt709    ? SWS_CS_ITU709
                 : pic.matrix == clip::cuda::YuvMatrix::bt2020 ? SWS_CS_BT2020
                                                               : SWS_CS_ITU601;
  sws_setColorspaceDetails(s, sws_getCoefficients(cs), pic.full_range, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                           1 << 16, 1 << 16);
  std::vector<uint8_t> rgb(size_t(pic.width) * pic.height * 3);
  const uint8_t* src[4] = {y.data(), c.data(), nullptr, nullptr};
  const int src_stride[4] = {pic.width * bps, cw * 2 * bps, 0, 0};
  uint8_t* dst[4] = {rgb.data(), nullptr, nullptr, nullptr};
  const int dst_stride[4] = {pic.width * 3, 0, 0, 0};
  sws_scale(s, src, src_stride, 0, pic.height, dst, dst_stride);
  sws_freeContext(s);
  return rgb;
}

struct Diff {
  int max = 0;
  double mean = 0;
  long over2 = 0;  // bytes more than 2 levels apart
  void add(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, long& n, double& sum) {
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      const int d = std::abs(int(a[i]) - int(b[i]));
      max = std::max(max, d);
      over2 += d > 2;
      sum += d;
    }
    n += long(std::min(a.size(), b.size()));
  }
};

std::vector<double> times_of(const std::vector<HostFrame>& f) {
  std::vector<double> t;
  for (const auto& x : f) t.push_back(x.time);
  return t;
}

class GpuDecode : public ::testing::TestWithParam<const char*> {};

TEST_P(GpuDecode, SameFramesAsTheCpuDecoder) {
  SKIP_WITHOUT_NVDEC();
  const fs::path file = videos() / GetParam();
  ASSERT_TRUE(fs::exists(file)) << file;
  DecodeOptions cpu;
  cpu.sampling.every = 0.5;
  cpu.max_short_side = 0;  // full size, as the GPU conversion
  std::vector<HostFrame> want;
  const VideoInfo cpu_info = decode_video(file, cpu, [&](Frame&& f) {
    want.push_back({f.time, f.image.width, f.image.height, f.image.rgb});
  });

  GpuDecodeOptions gpu;
  gpu.sampling = cpu.sampling;
  DeviceBytes buf;
  std::vector<HostFrame> got;
  Diff vs_cpu, vs_sws;
  long n_cpu = 0, n_sws = 0;
  double s_cpu = 0, s_sws = 0;
  std::string format;
  const VideoInfo gpu_info = decode_video_gpu(file, gpu, [&](const GpuFrame& f) {
    got.push_back(convert(f.picture, f.stream, buf, f.time));
    // The same planes with vertically co-sited chroma, against swscale.
    clip::cuda::Yuv420Frame top = f.picture;
    top.chroma_centred_y = false;
    top.rotation = 0;
    const HostFrame t = convert(top, f.stream, buf, f.time);
    vs_sws.add(t.rgb, swscale_rgb(f.picture, f.stream), n_sws, s_sws);
    format = std::to_string(f.picture.bit_depth) + "-bit, matrix " + std::to_string(int(f.picture.matrix)) +
             (f.picture.full_range ? ", full" : ", limited") + ", rotation " + std::to_string(f.picture.rotation);
  });
  EXPECT_EQ(times_of(got), times_of(want));
  // NVDEC skips the non-reference frames before each sample; the CPU path,
  // with frame threads, decodes some of them anyway (seen on the H100: 57
  // against 90 of 90). The GPU path never decodes more.
  EXPECT_GT(gpu_info.decoded, 0);
  EXPECT_LE(gpu_info.decoded, cpu_info.decoded);
  EXPECT_EQ(gpu_info.width, cpu_info.width);
  EXPECT_EQ(gpu_info.rotation, cpu_info.rotation);
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    ASSERT_EQ(got[i].w, want[i].w);
    ASSERT_EQ(got[i].h, want[i].h);
    vs_cpu.add(got[i].rgb, want[i].rgb, n_cpu, s_cpu);
  }
  vs_cpu.mean = n_cpu ? s_cpu / n_cpu : 0;
  vs_sws.mean = n_sws ? s_sws / n_sws : 0;
  const double share_over2 = n_sws ? double(vs_sws.over2) / double(n_sws) : 0;
  std::printf(
      "%s (%s): %zu frames, %ld decoded (CPU %ld); GPU vs swscale (same siting) max %d mean %.4f, "
      "%.4f%% over 2 levels; GPU vs the CPU path's RGB max %d mean %.3f\n",
      GetParam(), format.c_str(), got.size(), gpu_info.decoded, cpu_info.decoded, vs_sws.max, vs_sws.mean,
      100 * share_over2, vs_cpu.max, vs_cpu.mean);
  // Same formula, float against swscale's 14/15-bit fixed point: 2 levels,
  // except at a handful of pixels on testsrc2's one-pixel chroma edges where
  // the two interpolate chroma differently (H100: max 185-207 but mean
  // 0.005-0.02, so about 1 byte in 10,000): at most 0.1% of bytes.
  EXPECT_LE(share_over2, 1e-3);
  EXPECT_LE(vs_sws.mean, 0.1);
  // The CPU path converted with swscale's fast unscaled code (chroma not
  // interpolated; H100: mean 1.8-3.1 on these sharp synthetic clips). It
  // now interpolates chroma at the sited position like the GPU, both within
  // 1 level of tests/yuv_reference.h (test_decode_colour: mean <= 0.005 on
  // the CPU); not yet measured here, so the bound leaves room.
  EXPECT_LE(vs_cpu.mean, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Files, GpuDecode,
                         ::testing::Values("h264_bt709.mp4", "hevc_bt709.mp4", "hevc_main10_bt2020.mp4",
                                           "h264_full_bt601.mp4", "h264_rotated.mp4"));

TEST(GpuDecodeSampling, KeyframesAndScenesKeepTheSameTimes) {
  SKIP_WITHOUT_NVDEC();
  const fs::path file = videos() / "h264_bt709.mp4";
  for (Sampling mode : {Sampling::keyframes, Sampling::scenes}) {
    DecodeOptions cpu;
    cpu.sampling.mode = mode;
    cpu.sampling.scene_threshold = 0.02;
    std::vector<double> want, got;
    decode_video(file, cpu, [&](Frame&& f) { want.push_back(f.time); });
    GpuDecodeOptions gpu;
    gpu.sampling = cpu.sampling;
    decode_video_gpu(file, gpu, [&](const GpuFrame& f) { got.push_back(f.time); });
    EXPECT_EQ(got, want) << "mode " << int(mode);
    EXPECT_FALSE(got.empty());
  }
}

TEST(GpuDecodeErrors, WhatNvdecCannotTakeIsReportedForFallback) {
  SKIP_WITHOUT_NVDEC();
  // Not a video at all: a plain Error (no decoder could), not a GPU refusal.
  const fs::path junk = fs::temp_directory_path() / "clipfind_not_a_video.mp4";
  {
    FILE* f = std::fopen(junk.c_str(), "wb");
    std::fputs("not a video", f);
    std::fclose(f);
  }
  try {
    decode_video_gpu(junk, {}, [](const GpuFrame&) {});
    ADD_FAILURE() << "no error";
  } catch (const GpuDecodeError& e) {
    ADD_FAILURE() << "a GPU refusal for a broken file: " << e.what();
  } catch (const Error& e) {
    std::printf("broken file: %s\n", e.what());
  }
  fs::remove(junk);
}

TEST(GpuDecodeRate, ParallelDecoders) {
  const char* file = std::getenv("CLIPFIND_GPU_DECODE_RATE");
  if (!file) GTEST_SKIP() << "set CLIPFIND_GPU_DECODE_RATE to a video to measure";
  SKIP_WITHOUT_NVDEC();
  auto run = [&](int decoders, double every, bool gpu) {
    std::vector<long> frames(decoders, 0), kept(decoders, 0);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < decoders; ++i) {
      threads.emplace_back([&, i] {
        if (gpu) {
          GpuDecodeOptions o;
          o.sampling.every = every;
          DeviceBytes buf;
          frames[i] = decode_video_gpu(file, o, [&](const GpuFrame& f) {
                        buf.reserve(size_t(upright_width(f.picture)) * upright_height(f.picture) * 3);
                        clip::cuda::yuv420_to_rgb({f.stream}, f.picture, buf.p, size_t(upright_width(f.picture)) * 3);
                        ++kept[i];
                      }).decoded;
        } else {
          DecodeOptions o;
          o.sampling.every = every;
          o.threads = 2;
          frames[i] = decode_video(file, o, [&](Frame&&) { ++kept[i]; }).decoded;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    long total = 0, k = 0;
    for (int i = 0; i < decoders; ++i) total += frames[i], k += kept[i];
    std::printf("RATE %s decoders=%2d every=%g: %ld frames decoded, %ld kept, %.2f s, %.0f frames/s\n",
                gpu ? "nvdec" : "cpu  ", decoders, every, total, k, s, total / s);
  };
  run(1, 1e-4, true);  // warm-up: module load, first decoder
  for (int n : {1, 2, 4, 8, 14, 21}) run(n, 1e-4, true);
  run(14, 1.0, true);
  run(8, 1e-4, false);
}

}  // namespace
