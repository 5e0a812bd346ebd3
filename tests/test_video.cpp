// Decoding and sampling (issue 4): exact sampled timestamps on constant,
// NTSC-style and variable frame rates, rotation, key frames, scene changes,
// frame extraction, a clear error naming the file for each kind of bad input,
// and times as people type and read them.
// The videos are generated here with the `ffmpeg` command.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "clip/image/preprocess.h"
#include "video/decoder.h"
#include "video/open_video.h"
#include "video/rotate.h"
#include "video/sampler.h"
#include "video/time_format.h"
#include "video/write_jpeg.h"
#include "video_fixtures.h"

namespace fs = std::filesystem;
using namespace clipfind::video;

namespace {

fs::path g_dir;

void make(const std::string& name, const std::string& args_before_output) {
  cliptest::make_video_once(g_dir, name, args_before_output);
}

void write_once(const std::string& name, const std::string& bytes) { cliptest::write_once(g_dir, name, bytes); }

class Videos : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_dir = fs::path(CLIPFIND_BINARY_DIR) / "tests" / "video_fixtures";
    fs::create_directories(g_dir);
    const std::string d = g_dir.string() + "/";
    make("25.mp4", "-f lavfi -i testsrc2=s=160x120:r=25:d=4 -pix_fmt yuv420p");
    make("2997.mp4", "-f lavfi -i testsrc2=s=160x120:r=30000/1001:d=4 -pix_fmt yuv420p");
    make("23976.mp4", "-f lavfi -i testsrc2=s=160x120:r=24000/1001:d=4 -pix_fmt yuv420p");
    make("23976.mkv", "-f lavfi -i testsrc2=s=160x120:r=24000/1001:d=4 -pix_fmt yuv420p");
    // Variable frame rate: 25 fps for a second, then one frame every ~0.3 s.
    make("vfr.mkv",
         "-f lavfi -i testsrc2=s=160x120:r=25 -frames:v 40 -vf \"settb=1/1000,setpts='if(lt(N,25),"
         "N*0.04,1+(N-25)*0.3)/TB'\" -fps_mode passthrough -pix_fmt yuv420p");
    // Left half blue, right half red; then a phone-style display matrix.
    make("upright.mp4",
         "-f lavfi -i color=red:s=320x240:r=25:d=1 -vf drawbox=x=0:y=0:w=160:h=240:color=blue:t=fill -pix_fmt yuv420p");
    make("rotated.mp4", "-i " + d + "upright.mp4 -c copy -metadata:s:v rotate=90");
    make("gop25.mp4", "-f lavfi -i testsrc2=s=160x120:r=25:d=4 -c:v libx264 -g 25 -sc_threshold 0 -pix_fmt yuv420p");
    make("cuts.mp4",
         "-f lavfi -i color=red:s=64x64:r=25:d=1 -f lavfi -i color=blue:s=64x64:r=25:d=1 -f lavfi -i "
         "color=green:s=64x64:r=25:d=1 -filter_complex concat=n=3 -pix_fmt yuv420p");
    make("720p.mp4", "-f lavfi -i testsrc2=s=1280x720:r=25:d=1 -pix_fmt yuv420p");
    // Widths that are not a multiple of 16, odd sizes (testsrc2 rounds to
    // even ones, testsrc does not; x264 needs even 4:2:0 sizes, FFV1 not).
    make("odd_200x150.mp4", "-f lavfi -i testsrc2=s=200x150:r=10:d=2 -pix_fmt yuv420p");
    make("odd_201x149.mkv", "-f lavfi -i testsrc=s=201x149:r=10:d=2 -pix_fmt yuv420p -c:v ffv1");
    make("odd_97x33.mkv", "-f lavfi -i testsrc=s=97x33:r=10:d=2 -pix_fmt yuv420p -c:v ffv1");
    make("odd_1001x499.mkv", "-f lavfi -i testsrc=s=1001x499:r=10:d=1 -pix_fmt yuv420p10le -c:v ffv1");
    // Two minutes with short GOPs and B-frames, to split into parts.
    make("long_gop12.mp4", "-f lavfi -i testsrc2=s=64x48:r=10:d=120 -c:v libx264 -g 12 -bf 2 -pix_fmt yuv420p");
    // HEVC with open GOPs: CRA key frames whose leading pictures refer to
    // the group before (what skipping to a key frame must not break).
    make("hevc_open_gop.mp4",
         "-f lavfi -i testsrc2=s=64x48:r=10:d=20 -c:v libx265 -x265-params "
         "keyint=12:min-keyint=12:open-gop=1:bframes=3:log-level=error -pix_fmt yuv420p");
    make("audio_only.mp4", "-f lavfi -i sine=d=1 -c:a aac");
    write_once("zero.mp4", "");
    write_once("text.mp4", "this is not a video\n");
    if (!fs::exists(d + "truncated.mp4")) {
      const fs::path tmp = d + "tmp-" + std::to_string(::getpid()) + "-truncated.mp4";
      fs::copy_file(d + "25.mp4", tmp, fs::copy_options::overwrite_existing);
      fs::resize_file(tmp, fs::file_size(tmp) / 2);
      fs::rename(tmp, d + "truncated.mp4");
    }
  }

  static fs::path file(const std::string& name) { return g_dir / name; }
};

std::vector<double> sample_times(const fs::path& p, SamplingOptions s, VideoInfo* info = nullptr,
                                 std::vector<Frame>* frames = nullptr) {
  std::vector<double> t;
  DecodeOptions o;
  o.sampling = s;
  VideoInfo i = decode_video(p, o, [&](Frame&& f) {
    t.push_back(f.time);
    if (frames) frames->push_back(std::move(f));
  });
  if (info) *info = i;
  return t;
}

SamplingOptions every(double s) {
  SamplingOptions o;
  o.every = s;
  return o;
}

// Expected times of the first frame at or after each multiple of `every`, for
// a constant rate num/den fps: frame n = ceil(j * every * num / den).
std::vector<double> expected_cfr(double every, long num, long den, int frames) {
  std::vector<double> out;
  long last = -1;
  for (int j = 0;; ++j) {
    const long n = long(std::ceil(j * every * double(num) / double(den) - 1e-9));
    if (n >= frames) break;
    if (n > last) out.push_back(double(n) * double(den) / double(num));
    last = n;
  }
  return out;
}

void expect_times(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "sample " << i;
}

// All frame times as ffprobe reports them: an independent reading of the file.
std::vector<double> ffprobe_times(const fs::path& p) {
  const std::string cmd = "ffprobe -v error -select_streams v -show_entries frame=pts_time -of csv=p=0 " + p.string();
  FILE* f = popen(cmd.c_str(), "r");
  std::vector<double> t;
  char line[256];
  while (f && std::fgets(line, sizeof line, f)) {
    char* end = nullptr;
    const double v = std::strtod(line, &end);
    if (end != line) t.push_back(v);
  }
  if (f) pclose(f);
  return t;
}

// For each multiple of `every`, the first of `all` (sorted) at or after it; once.
std::vector<double> first_at_multiples(const std::vector<double>& all, double every) {
  std::vector<double> out;
  for (int j = 0; all.size() && j * every <= all.back() + 1e-9; ++j) {
    for (double t : all) {
      if (t >= j * every - 1e-9) {
        if (out.empty() || t > out.back()) out.push_back(t);
        break;
      }
    }
  }
  return out;
}

}  // namespace

TEST(EverySampler, KeepsFirstFrameAtOrAfterEachMultiple) {
  EverySampler s(1.0);
  std::vector<double> kept;
  for (double t : {0.0, 0.4, 0.999, 1.0, 1.5, 3.7, 3.9, 4.0, 4.01}) {
    if (s.keep(t)) kept.push_back(t);
  }
  EXPECT_EQ(kept, (std::vector<double>{0.0, 1.0, 3.7, 4.0}));
}

TEST(EverySampler, FloatingPointMultiplesAreNotMissed) {
  EverySampler s(0.1);
  int kept = 0;
  for (int i = 0; i < 100; ++i) kept += s.keep(i * 0.02);  // 50 fps for 2 s
  EXPECT_EQ(kept, 20);
}

// Parts decoded apart are joined by dropping a part's first sample when the
// whole video's sampler, having kept the previous part's last, would not.
TEST(EverySampler, JoinsSayWhetherAPartsFirstSampleBelongs) {
  const EverySampler s(1.0);
  EXPECT_FALSE(s.joins(3.0, 3.9));
  EXPECT_TRUE(s.joins(3.0, 4.0));
  EXPECT_TRUE(s.joins(3.9, 4.0 - 1e-7));  // the sampler's 1 us slack
  EXPECT_TRUE(s.joins(3.9, 6.5));
}

TEST(EverySampler, RejectsNonPositiveInterval) { EXPECT_THROW(EverySampler(0.0), std::invalid_argument); }

TEST_F(Videos, Every1s25fps) {
  VideoInfo info;
  expect_times(sample_times(file("25.mp4"), every(1.0), &info), {0, 1, 2, 3});
  EXPECT_EQ(info.width, 160);
  EXPECT_EQ(info.height, 120);
  EXPECT_NEAR(info.fps, 25.0, 1e-9);
  EXPECT_NEAR(info.duration, 4.0, 0.05);
  // Frames nothing refers to and shown between samples are not decoded.
  EXPECT_LE(info.decoded, 100);
}

TEST_F(Videos, EveryHalfSecond25fps) {
  expect_times(sample_times(file("25.mp4"), every(0.5)), expected_cfr(0.5, 25, 1, 100));
}

TEST_F(Videos, Ntsc2997KeepsEverySecondNotJustFrameZero) {
  // clifs' frame counting kept only frame 0 here; by timestamp: 0, 1.001, 2.002, 3.003.
  expect_times(sample_times(file("2997.mp4"), every(1.0)), {0, 1.001, 2.002, 3.003});
  expect_times(sample_times(file("2997.mp4"), every(0.25)), expected_cfr(0.25, 30000, 1001, 120));
}

TEST_F(Videos, Film23976) {
  expect_times(sample_times(file("23976.mp4"), every(1.0)), {0, 1.001, 2.002, 3.003});
  expect_times(sample_times(file("23976.mp4"), every(0.5)), expected_cfr(0.5, 24000, 1001, 96));
}

TEST_F(Videos, Film23976InMatroskaMillisecondTimeBase) {
  // Matroska stores milliseconds: 0.5005 s is written as 0.501 s. The samples
  // are the container's times, as ffprobe reads them.
  expect_times(sample_times(file("23976.mkv"), every(1.0)), {0, 1.001, 2.002, 3.003});
  expect_times(sample_times(file("23976.mkv"), every(0.5)), first_at_multiples(ffprobe_times(file("23976.mkv")), 0.5));
}

TEST_F(Videos, VariableFrameRate) {
  const auto all = ffprobe_times(file("vfr.mkv"));
  ASSERT_EQ(all.size(), 40u);
  const std::vector<double> want = first_at_multiples(all, 1.0);
  // Dense first second, then sparse: 0, 1, then the first frames after 2, 3, 4, 5.
  ASSERT_EQ(want.size(), 6u);
  EXPECT_NEAR(want[1], 1.0, 1e-9);
  expect_times(sample_times(file("vfr.mkv"), every(1.0)), want);
}

TEST_F(Videos, RotationIsApplied) {
  VideoInfo info;
  std::vector<Frame> frames;
  sample_times(file("rotated.mp4"), every(1.0), &info, &frames);
  ASSERT_FALSE(frames.empty());
  // ffmpeg 5's `rotate=90` tag stores a display matrix of +90 degrees
  // counter-clockwise, i.e. 270 clockwise; the ffmpeg command's own autorotate
  // turns the blue left half to the bottom, and so must we.
  EXPECT_EQ(info.rotation, 270);
  const clip::Image& im = frames[0].image;
  ASSERT_EQ(im.width, 240);
  ASSERT_EQ(im.height, 320);
  auto px = [&](int x, int y) { return &im.rgb[(size_t(y) * im.width + x) * 3]; };
  EXPECT_GT(px(120, 40)[0], 200);  // red on top
  EXPECT_LT(px(120, 40)[2], 60);
  EXPECT_GT(px(120, 280)[2], 200);  // blue below
  EXPECT_LT(px(120, 280)[0], 60);
}

TEST_F(Videos, KeyframesOnly) {
  VideoInfo info;
  SamplingOptions s;
  s.mode = Sampling::keyframes;
  expect_times(sample_times(file("gop25.mp4"), s, &info), {0, 1, 2, 3});
  EXPECT_EQ(info.decoded, 4);  // the other 96 frames never reached the decoder
}

TEST_F(Videos, ScenesOnePerCut) {
  SamplingOptions s;
  s.mode = Sampling::scenes;
  expect_times(sample_times(file("cuts.mp4"), s), {0, 1, 2});
}

TEST_F(Videos, FramesAreBoundedInSize) {
  std::vector<Frame> frames;
  sample_times(file("720p.mp4"), every(1.0), nullptr, &frames);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].image.height, 448);
  EXPECT_EQ(frames[0].image.width, 796);
}

// Widths not a multiple of 16 crashed `clipfind index` ("malloc(): invalid
// size": swscale's unscaled YUV->RGB code wrote past the picture). Decode,
// the bounded shrink (1001x499 -> 448 short side) and CLIP preprocessing of
// each frame; the crash was a heap overrun, so this also runs under
// valgrind (see the commit) to catch smaller ones.
TEST_F(Videos, OddSizesDecodeAndPreprocess) {
  struct Want {
    const char* name;
    int width, height;
  };
  for (const Want& v : {Want{"odd_200x150.mp4", 200, 150}, Want{"odd_201x149.mkv", 201, 149},
                        Want{"odd_97x33.mkv", 97, 33}, Want{"odd_1001x499.mkv", 899, 448}}) {
    clip::PreprocessConfig cfg;
    std::vector<float> pixels(size_t(3) * cfg.crop_height * cfg.crop_width);
    std::vector<Frame> frames;
    sample_times(file(v.name), every(0.5), nullptr, &frames);
    ASSERT_FALSE(frames.empty()) << v.name;
    for (const Frame& f : frames) {
      ASSERT_EQ(f.image.width, v.width) << v.name;
      ASSERT_EQ(f.image.height, v.height) << v.name;
      ASSERT_EQ(f.image.rgb.size(), size_t(v.width) * v.height * 3) << v.name;
      clip::preprocess_image(f.image, cfg, pixels.data());
      EXPECT_TRUE(std::all_of(pixels.begin(), pixels.end(), [](float x) { return std::isfinite(x); })) << v.name;
    }
    // frame_at converts at full size.
    const Frame one = frame_at(file(v.name), 0.5);
    EXPECT_EQ(one.image.rgb.size(), size_t(one.image.width) * one.image.height * 3) << v.name;
  }
}

// A long video split at key frames and each part decoded apart gives, once
// joined, exactly the unsplit decoding's samples: times and pixels.
TEST_F(Videos, SplitAtKeyframesJoinsToTheWholeDecoding) {
  const fs::path f = file("long_gop12.mp4");
  const std::vector<VideoPart> parts = split_at_keyframes(f, 4, 30.0);
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts.front().from, INT64_MIN);
  EXPECT_EQ(parts.back().to, INT64_MAX);
  for (size_t i = 1; i < parts.size(); ++i) EXPECT_EQ(parts[i].from, parts[i - 1].to);
  EXPECT_EQ(split_at_keyframes(f, 4, 61.0).size(), 1u);                 // too short for two such parts
  EXPECT_EQ(split_at_keyframes(file("gop25.mp4"), 3, 1.0).size(), 3u);  // key frames each second
  SamplingOptions keyframes;
  keyframes.mode = Sampling::keyframes;
  for (const SamplingOptions& s : {every(1.0), every(0.7), every(7.0), every(0.1), keyframes}) {
    std::vector<Frame> whole, joined;
    sample_times(f, s, nullptr, &whole);
    const EverySampler sampler(s.every);
    for (const VideoPart& part : parts) {
      DecodeOptions o;
      o.sampling = s;
      o.part = part;
      bool first = true;
      decode_video(f, o, [&](Frame&& fr) {
        const bool dropped =
            first && s.mode == Sampling::every && !joined.empty() && !sampler.joins(joined.back().time, fr.time);
        if (!dropped) joined.push_back(std::move(fr));
        first = false;
      });
    }
    ASSERT_EQ(joined.size(), whole.size()) << "every " << s.every << " mode " << int(s.mode);
    for (size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(joined[i].time, whole[i].time) << i;
      EXPECT_EQ(joined[i].image.rgb, whole[i].image.rgb) << i;
    }
  }
  SamplingOptions scenes;
  scenes.mode = Sampling::scenes;
  DecodeOptions o;
  o.sampling = scenes;
  o.part = parts[1];
  EXPECT_THROW(decode_video(f, o, [](Frame&&) {}), std::invalid_argument);
}

// With samples further apart than the key frames, decoding skips ahead to
// the last key frame shown by the next sample time (OpenVideo::next): the
// kept frames must be the ones a full decode picks, to the byte (the
// reference keeps every frame, so nothing is skipped), and far fewer frames
// are decoded.
TEST_F(Videos, SkippingToKeyFramesKeepsTheSameFrames) {
  struct Case {
    const char* file;
    double every;
    long max_decoded;  // about 1.2x what it decodes; skipping only non-reference frames decodes more
  };
  // long_gop12: 1,200 frames at 10 fps, a key frame every 1.2 s, B-frames.
  // gop25: 100 frames at 25 fps, a key frame each second. Decoded on
  // 2026-12-07 with skipping to key frames, and without it: long_gop12 91 /
  // 849 (every 7 s), 245 / 883 (2.5 s), 645 / 974 (1 s); gop25 25 / 63;
  // hevc_open_gop 24 / 126 (3 s), 113 / 143 (1 s).
  for (const Case c :
       {Case{"long_gop12.mp4", 7.0, 110}, Case{"long_gop12.mp4", 2.5, 300}, Case{"long_gop12.mp4", 1.0, 780},
        Case{"gop25.mp4", 1.5, 30}, Case{"hevc_open_gop.mp4", 3.0, 30}, Case{"hevc_open_gop.mp4", 1.0, 136}}) {
    const fs::path f = file(c.file);
    VideoInfo info, all_info;
    std::vector<Frame> kept, all;
    const std::vector<double> times = sample_times(f, every(c.every), &info, &kept);
    expect_times(times, first_at_multiples(ffprobe_times(f), c.every));
    EXPECT_LE(info.decoded, c.max_decoded) << c.file << " every " << c.every;
    sample_times(f, every(1e-4), &all_info, &all);  // every frame
    EXPECT_GT(all_info.decoded, info.decoded) << c.file;
    for (const Frame& k : kept) {
      const auto ref = std::find_if(all.begin(), all.end(), [&](const Frame& a) { return a.time == k.time; });
      ASSERT_NE(ref, all.end()) << c.file << " at " << k.time;
      EXPECT_EQ(ref->image.rgb, k.image.rgb) << c.file << " every " << c.every << " at " << k.time;
    }
  }
}

// A look ahead cut short by its size limit still finds the key frames
// before the next sample: it goes on once its packets are used, and after
// each jump (OpenVideo::key_frame_ahead). Sampling every 7 s with a look
// ahead of one packet, about 3 and about 10 keeps the same frames; the
// larger two skip about as much as an unlimited one.
TEST_F(Videos, SkippingToKeyFramesWithASmallLookAhead) {
  const fs::path f = file("long_gop12.mp4");
  std::vector<Frame> expected;
  VideoInfo info;
  sample_times(f, every(7.0), &info, &expected);
  for (size_t limit : {size_t(1), size_t(600), size_t(2048)}) {
    detail::OpenVideo v(f, 1, false);
    v.set_read_ahead_limit(limit);
    std::vector<Frame> got;
    const VideoInfo small = detail::sample_frames(v, every(7.0), nullptr, [&](const AVFrame* fr, double t) {
      got.push_back(Frame{t, v.to_rgb(fr, 0)});
    });
    ASSERT_EQ(got.size(), expected.size()) << limit;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].time, expected[i].time) << limit << " sample " << i;
      EXPECT_EQ(got[i].image.rgb, expected[i].image.rgb) << limit << " sample " << i;
    }
    EXPECT_GT(v.key_frame_jumps(), 0) << limit;
    // 2026-12-07: 624, 198 and 90 frames decoded at these limits, 91
    // unlimited, 849 with no key frame skipping.
    EXPECT_LE(small.decoded, limit >= 600 ? 3 * info.decoded : 800) << limit;
  }
}

// With key frame jumps off (the NVDEC path: gpu_decoder.cpp), decoding
// never restarts at a later key frame and keeps the same frames; it only
// skips frames nothing refers to, so it decodes more.
TEST_F(Videos, KeyFrameJumpsOffKeepTheSameFrames) {
  const fs::path f = file("long_gop12.mp4");
  std::vector<Frame> expected;
  VideoInfo jumping;
  sample_times(f, every(7.0), &jumping, &expected);
  detail::OpenVideo v(f, 1, false);
  v.set_key_frame_jumps(false);
  std::vector<Frame> got;
  const VideoInfo info = detail::sample_frames(v, every(7.0), nullptr, [&](const AVFrame* fr, double t) {
    got.push_back(Frame{t, v.to_rgb(fr, 0)});
  });
  EXPECT_EQ(v.key_frame_jumps(), 0);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].time, expected[i].time) << i;
    EXPECT_EQ(got[i].image.rgb, expected[i].image.rgb) << i;
  }
  // 2026-12-07: 91 frames decoded with jumps, 849 without.
  EXPECT_GT(info.decoded, 4 * jumping.decoded);
}

// frame_at on open GOPs: a seek to a time just before a CRA key frame
// lands on the CRA (MP4 seeks by decoding time), whose leading pictures are
// then dropped; frame_at must seek further back and still return the frame
// on screen at that time, the same bytes as a full decode.
TEST_F(Videos, FrameAtTimeOnOpenGops) {
  const fs::path f = file("hevc_open_gop.mp4");
  std::vector<Frame> all;
  sample_times(f, every(1e-4), nullptr, &all);  // every frame
  ASSERT_GT(all.size(), 150u);
  int checked = 0;
  for (size_t i = 0; i < all.size(); i += 3) {
    const Frame got = frame_at(f, all[i].time + 0.01);  // inside frame i's 0.1 s on screen
    ASSERT_NEAR(got.time, all[i].time, 1e-9) << "at " << all[i].time;
    EXPECT_EQ(got.image.rgb, all[i].image.rgb) << "at " << all[i].time;
    ++checked;
  }
  EXPECT_GT(checked, 50);
}

TEST_F(Videos, FrameAtTime) {
  Frame f = frame_at(file("25.mp4"), 1.5);
  EXPECT_NEAR(f.time, 1.48, 1e-6);  // the frame on screen at 1.5 s started at 1.48
  EXPECT_EQ(f.image.width, 160);
  f = frame_at(file("2997.mp4"), 2.002);
  EXPECT_NEAR(f.time, 2.002, 1e-6);
  f = frame_at(file("rotated.mp4"), 0.0);
  EXPECT_EQ(f.image.width, 240);
  const fs::path out = file("thumb-" + std::to_string(::getpid()) + ".jpg");
  write_jpeg(f.image, out);
  EXPECT_GT(fs::file_size(out), 100u);
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
  fs::remove(out);
}

TEST_F(Videos, BadFilesNameTheFileAndSayWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"audio_only.mp4", "no video stream"}, {"zero.mp4", "empty file"}, {"text.mp4", "cannot open"},
      {"truncated.mp4", "cannot open"},  // the moov atom is at the end, so half a file has none
      {"missing.mp4", "cannot open"},
  };
  for (const auto& [name, why] : cases) {
    try {
      sample_times(file(name), every(1.0));
      ADD_FAILURE() << name << " decoded without error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(file(name).string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
}

TEST_F(Videos, StopFlagEndsEarly) {
  std::atomic<bool> stop{false};
  DecodeOptions o;
  o.sampling = every(0.04);
  o.stop = &stop;
  int n = 0;
  decode_video(file("25.mp4"), o, [&](Frame&&) {
    if (++n == 3) stop = true;
  });
  EXPECT_EQ(n, 3);
}

TEST(Rotate, QuarterTurns) {
  clip::Image in;
  in.width = 2;
  in.height = 1;
  in.rgb = {1, 1, 1, 2, 2, 2};  // [1 2]
  clip::Image cw = rotate_clockwise(in, 90);
  ASSERT_EQ(cw.width, 1);
  ASSERT_EQ(cw.height, 2);
  EXPECT_EQ(cw.rgb[0], 1);  // 1 on top, 2 below
  EXPECT_EQ(cw.rgb[3], 2);
  clip::Image ccw = rotate_clockwise(in, 270);
  EXPECT_EQ(ccw.rgb[0], 2);
  clip::Image half = rotate_clockwise(in, 180);
  EXPECT_EQ(half.rgb[0], 2);
}

TEST(TimeFormat, FormatsAndParses) {
  using clipfind::format_hms;
  using clipfind::parse_time;
  EXPECT_EQ(format_hms(0), "00:00:00.000");
  EXPECT_EQ(format_hms(3723.5), "01:02:03.500");
  EXPECT_EQ(format_hms(1.0005), "00:00:01.001");
  EXPECT_DOUBLE_EQ(*parse_time("00:01:02.5"), 62.5);
  EXPECT_DOUBLE_EQ(*parse_time("1:02.5"), 62.5);
  EXPECT_DOUBLE_EQ(*parse_time("62.5"), 62.5);
  EXPECT_FALSE(parse_time("1:60"));
  EXPECT_FALSE(parse_time("-1"));
  EXPECT_FALSE(parse_time("abc"));
  EXPECT_FALSE(parse_time("1::2"));
  EXPECT_FALSE(parse_time("1:2:3:4"));
}
