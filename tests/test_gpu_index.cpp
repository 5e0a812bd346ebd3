// `clipfind index` with NVDEC (issue 32) against the CPU decoder, through
// run_index with the engine on CUDA: the same sampled times and embeddings
// within cosine 0.999 (min) / 0.9999 (median) per video; faulty files
// (corrupt, cut short, a profile or codec NVDEC does not take, a size change
// midway) reported or indexed per file, the rest indexed, the index
// consistent; an interrupted GPU run resumes like a CPU run. Videos:
// gpu_test_videos.h (with faults/); the model: $CLIPFIND_GPU_TEST_MODEL, else
// the tiny one in tests/data/models. Skips, saying why, without a usable GPU
// and NVDEC. On the GPU machine:
//   CLIPFIND_GPU_TEST_VIDEOS=.debs/videos build/app-gpu/tests/test_gpu_index
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "clip/clip.h"
#include "gpu_test_videos.h"
#include "index/catalog.h"
#include "indexer/gpu_decoders.h"
#include "indexer/pipeline.h"
#include "support/temp_dir.h"
#include "video_fixtures.h"

namespace fs = std::filesystem;
using clipfind::DecodeOn;

namespace {

#define SKIP_WITHOUT_GPU_DECODING()                                                 \
  do {                                                                              \
    std::string why_;                                                               \
    if (!clip::cuda_usable(&why_) || !clipfind::gpu_decoding_available(0, &why_)) { \
      std::printf("[  SKIPPED ] GPU decoding not usable: %s\n", why_.c_str());      \
      GTEST_SKIP() << "GPU decoding not usable: " << why_;                          \
    }                                                                               \
  } while (0)

fs::path model() {
  if (const char* m = std::getenv("CLIPFIND_GPU_TEST_MODEL")) return m;
  return fs::path(CLIPFIND_TEST_DATA) / "models" / "full_fp32_quickgelu_p32";
}

using cliptest::TempDir;

clipfind::IndexRequest request(const fs::path& index, std::vector<fs::path> inputs, DecodeOn decode) {
  clipfind::IndexRequest r;
  r.inputs = std::move(inputs);
  r.index_dir = index;
  r.model_dir = model();
  r.engine.device = "cuda";
  r.sampling.every = 0.25;
  r.batch = 16;
  r.decode = decode;
  return r;
}

// Per video file name: its status and its frames (time, embedding), in time order.
struct Video {
  std::string status, error;
  std::vector<double> times;
  std::vector<std::vector<float>> rows;
};
std::map<std::string, Video> read_index(const fs::path& index) {
  clipfind::index::Catalog cat(index, false);
  std::map<std::string, Video> out;
  std::map<int64_t, std::string> names;
  for (const auto& v : cat.videos()) {
    names[v.id] = fs::path(v.path).filename().string();
    out[names[v.id]] = {v.status, v.error, {}, {}};
    EXPECT_EQ(v.status == "ok", v.error.empty()) << v.path;
  }
  const auto frames = cat.read_frames();
  for (size_t r = 0; r < frames.rows(); ++r) {
    Video& v = out[names[frames.video[r]]];
    v.times.push_back(frames.time[r]);
    std::vector<float> row(size_t(frames.dim));
    for (int c = 0; c < frames.dim; ++c) row[size_t(c)] = frames.at(r, c);
    v.rows.push_back(std::move(row));
  }
  // The catalog's frame counts agree with its rows, and vectors.f16 (what
  // search maps) holds the same rows.
  for (const auto& v : cat.videos()) {
    EXPECT_EQ(size_t(v.frames), out[names[v.id]].times.size()) << v.path;
  }
  std::string note;
  const auto mapped = cat.load_frames(&note);
  EXPECT_TRUE(note.empty()) << note;
  EXPECT_EQ(mapped.rows(), frames.rows());
  return out;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

fs::path faults() { return cliptest::gpu_test_videos() / "faults"; }

// GPU-decoded frames against CPU-decoded ones of the same video: the same
// times, and embeddings within issue 32's bounds. On the H100 (2026-12-06)
// min was 0.99960-0.99970 and the median 0.99978-0.99988 with the random
// tiny model while the CPU path converted these sub-448 px clips with
// swscale's fast unscaled code (chroma repeated, not interpolated). It now
// interpolates chroma at its sited position as the GPU does
// (video/chroma_upsample.h), within 1 level of the reference both are held
// to (test_decode_colour, test_yuv_to_rgb), so the target holds.
void expect_same_frames(const Video& got, const Video& want, const std::string& name, const std::string& device) {
  ASSERT_EQ(got.times, want.times) << name;
  ASSERT_FALSE(got.times.empty()) << name;
  std::vector<double> cos;
  for (size_t i = 0; i < got.rows.size(); ++i) cos.push_back(cosine(got.rows[i], want.rows[i]));
  std::sort(cos.begin(), cos.end());
  const double min = cos.front(), median = cos[cos.size() / 2];
  std::printf("COSINE %s (%s, %s): %zu frames, GPU vs CPU decoding: min %.6f median %.6f\n", name.c_str(),
              model().filename().c_str(), device.c_str(), cos.size(), min, median);
  EXPECT_GE(min, 0.999) << name;
  EXPECT_GE(median, 0.9999) << name;
}

class GpuIndex : public ::testing::TestWithParam<const char*> {};

TEST_P(GpuIndex, SameFramesAndEmbeddingsAsTheCpuDecoder) {
  SKIP_WITHOUT_GPU_DECODING();
  const fs::path file = cliptest::gpu_test_videos() / GetParam();
  ASSERT_TRUE(fs::exists(file)) << file;
  TempDir t;
  const auto on_cpu = clipfind::run_index(request(t.path / "cpu", {file}, DecodeOn::cpu));
  const auto on_gpu = clipfind::run_index(request(t.path / "gpu", {file}, DecodeOn::gpu));
  ASSERT_EQ(on_cpu.indexed, 1);
  ASSERT_EQ(on_gpu.indexed, 1);
  EXPECT_EQ(on_cpu.gpu_decoders, 0);
  EXPECT_EQ(on_gpu.files_on_gpu, 1) << "decoded on the GPU, not handed to the CPU";
  const Video want = read_index(t.path / "cpu").begin()->second;
  const Video got = read_index(t.path / "gpu").begin()->second;
  expect_same_frames(got, want, GetParam(), on_gpu.device);
}

INSTANTIATE_TEST_SUITE_P(Files, GpuIndex,
                         ::testing::Values("h264_bt709.mp4", "hevc_bt709.mp4", "hevc_main10_bt2020.mp4",
                                           "h264_full_bt601.mp4", "h264_rotated.mp4"));

// A long video split at key frames (decode_units.h) into parts that NVDEC
// and a CPU thread decode at once: the same frames as one CPU decoder reading
// it whole (issue 32; the encoder joins the parts, test_indexer checks the
// join on the CPU).
TEST(GpuIndexParts, ALongVideoInPartsIndexesAsWhole) {
  SKIP_WITHOUT_GPU_DECODING();
  TempDir t;
  // 90 s: the 3 s clip thirty times over, each copy from its key frame.
  const fs::path src = cliptest::gpu_test_videos() / "h264_bt709.mp4";
  cliptest::make_video_once(t.path, "long.mp4", "-stream_loop 29 -i " + src.string() + " -c copy");
  const fs::path file = t.path / "long.mp4";
  ASSERT_TRUE(fs::exists(file));
  auto whole = request(t.path / "cpu", {file}, DecodeOn::cpu);
  whole.decoders = 1;
  auto parts = request(t.path / "gpu", {file}, DecodeOn::gpu);
  parts.gpu_decoders = 4;
  parts.decoders = 1;
  const auto a = clipfind::run_index(whole);
  const auto b = clipfind::run_index(parts);
  ASSERT_EQ(a.indexed, 1);
  ASSERT_EQ(b.indexed, 1);
  EXPECT_EQ(a.parts, 0);
  EXPECT_EQ(b.parts, 3) << "90 s in parts of 30 s";
  std::printf("PARTS %d parts, %d decoded on the GPU\n", b.parts, b.parts_on_gpu);
  // NVDEC threads start first and take the first parts.
  EXPECT_GE(b.parts_on_gpu, 1);
  expect_same_frames(read_index(t.path / "gpu").begin()->second, read_index(t.path / "cpu").begin()->second,
                     "long.mp4 (3 parts)", b.device);
}

// Two lanes on the one GPU (as --device cuda:all makes one per GPU, issue
// 31), each with its engine and NVDEC decoders: the frames of one lane, and
// the same again when lane 1's device "fails" midway and lane 0 takes its
// unfinished files back (nothing lost, nothing twice).
TEST(GpuIndexLanes, TwoLanesIndexLikeOneAndALostLaneHandsItsFilesOver) {
  SKIP_WITHOUT_GPU_DECODING();
  TempDir t;
  const fs::path src = cliptest::gpu_test_videos() / "h264_bt709.mp4";
  std::vector<fs::path> files;
  for (int i = 0; i < 6; ++i) {
    const std::string name = "loop" + std::to_string(i) + ".mp4";
    cliptest::make_video_once(t.path, name,
                              "-stream_loop " + std::to_string(4 + i) + " -i " + src.string() + " -c copy");
    files.push_back(t.path / name);
  }
  auto one = request(t.path / "one", files, DecodeOn::gpu);
  one.gpu_decoders = 2;
  one.decoders = 1;
  auto two = one;
  two.index_dir = t.path / "two";
  two.devices = {"cuda:0", "cuda:0"};
  auto lost = two;
  lost.index_dir = t.path / "lost";
  lost.simulate_lost_lane = 1;
  lost.simulate_lost_at_batch = 2;
  const auto a = clipfind::run_index(one);
  const auto b = clipfind::run_index(two);
  const auto c = clipfind::run_index(lost);
  ASSERT_EQ(a.indexed, 6);
  ASSERT_EQ(b.indexed, 6);
  ASSERT_EQ(c.indexed, 6);
  ASSERT_EQ(b.lanes.size(), 2u);
  ASSERT_EQ(c.lanes.size(), 2u);
  std::printf("LANES two: %ld + %ld frames; lost: %ld + %ld frames, lane 1 lost: %s\n", b.lanes[0].frames,
              b.lanes[1].frames, c.lanes[0].frames, c.lanes[1].frames, c.lanes[1].lost.c_str());
  EXPECT_GT(b.lanes[1].frames, 0);
  EXPECT_FALSE(c.lanes[1].lost.empty());
  EXPECT_EQ(c.frames, a.frames);
  const auto want = read_index(t.path / "one");
  for (const char* dir : {"two", "lost"}) {
    const auto got = read_index(t.path / dir);
    ASSERT_EQ(got.size(), want.size()) << dir;
    for (const auto& [name, video] : want) {
      ASSERT_TRUE(got.count(name)) << dir << " " << name;
      expect_same_frames(got.at(name), video, std::string(dir) + "/" + name, b.device);
    }
  }
}

TEST(GpuIndexFaults, EachFileIndexedOrReportedTheRestIndexed) {
  SKIP_WITHOUT_GPU_DECODING();
  const std::vector<std::string> names = {"corrupt_middle.mp4", "truncated.mp4", "h264_yuv444.mp4", "vp8.webm",
                                          "size_change.ts"};
  std::vector<fs::path> files = {cliptest::gpu_test_videos() / "h264_bt709.mp4"};
  for (const auto& n : names) {
    files.push_back(faults() / n);
    ASSERT_TRUE(fs::exists(files.back())) << files.back() << ": re-run scripts/gpu/make-test-videos.sh";
  }
  TempDir t;
  const auto on_cpu = clipfind::run_index(request(t.path / "cpu", files, DecodeOn::cpu));
  const auto on_gpu = clipfind::run_index(request(t.path / "gpu", files, DecodeOn::gpu));
  std::printf(
      "FAULTS GPU run: %d indexed, %zu failed; decoded on the GPU: %d files, on the CPU: %d (%d NVDEC could "
      "not take)\n",
      on_gpu.indexed, on_gpu.failed.size(), on_gpu.files_on_gpu, on_gpu.files_on_cpu, on_gpu.gpu_refused);
  for (const auto& [path, why] : on_gpu.failed) {
    std::printf("FAULTS failed: %s\n", why.c_str());
    EXPECT_EQ(why.rfind(path, 0), 0u) << "the message names the file: " << why;
  }
  // 4:4:4 H.264 at least is not NVDEC's: handed to the CPU decoder.
  EXPECT_GE(on_gpu.gpu_refused, 1);
  EXPECT_EQ(on_gpu.files_on_gpu + on_gpu.files_on_cpu, int(files.size()));
  const auto want = read_index(t.path / "cpu");
  const auto got = read_index(t.path / "gpu");
  ASSERT_EQ(got.size(), files.size());
  EXPECT_EQ(got.at("h264_bt709.mp4").status, "ok");
  for (const auto& [name, v] : got) {
    const Video& w = want.at(name);
    std::printf("FAULTS %s: GPU run %s, %zu frames%s; CPU run %s, %zu frames\n", name.c_str(), v.status.c_str(),
                v.times.size(), v.error.empty() ? "" : (" (" + v.error + ")").c_str(), w.status.c_str(),
                w.times.size());
    // Files NVDEC decodes whole, or hands to the CPU decoder from the start,
    // end as on the CPU; a corrupt stream may be concealed differently by
    // the two decoders, but is never half GPU, half CPU (times in order,
    // each once).
    if (name != "corrupt_middle.mp4") {
      EXPECT_EQ(v.status, w.status) << name;
      EXPECT_EQ(v.times, w.times) << name;
    }
    EXPECT_TRUE(std::is_sorted(v.times.begin(), v.times.end())) << name;
    EXPECT_EQ(std::adjacent_find(v.times.begin(), v.times.end()), v.times.end()) << name;
  }
}

TEST(GpuIndexResume, AnInterruptedGpuRunResumesLikeACpuRun) {
  SKIP_WITHOUT_GPU_DECODING();
  TempDir t;
  // Copies, so that there are enough files for the stop to land midway.
  std::vector<fs::path> files;
  // 24 copies finished within the stop's 1.5 s on the H100 (2026-12-06): 96,
  // one NVDEC and one CPU decoder, and a stop after 1 s land midway.
  for (int i = 0; i < 96; ++i) {
    const char* src = i % 2 ? "hevc_bt709.mp4" : "h264_bt709.mp4";
    files.push_back(t.path / "videos" / (std::to_string(i) + "_" + src));
    fs::create_directories(files.back().parent_path());
    fs::copy_file(cliptest::gpu_test_videos() / src, files.back());
  }
  std::atomic<bool> stop{false};
  auto first = request(t.path / "gpu", {t.path / "videos"}, DecodeOn::gpu);
  first.gpu_decoders = 1;  // slow enough to be stopped midway
  first.decoders = 1;
  first.stop = &stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    stop = true;
  });
  const auto a = clipfind::run_index(first);
  stopper.join();
  std::printf("RESUME first run: %s, %d indexed\n", a.interrupted ? "interrupted" : "not interrupted", a.indexed);
  EXPECT_TRUE(a.interrupted) << "the stop came after the run ended: the test did not test a resume";
  const auto b = clipfind::run_index(request(t.path / "gpu", {t.path / "videos"}, DecodeOn::gpu));
  EXPECT_FALSE(b.interrupted);
  EXPECT_EQ(b.skipped, a.indexed);
  EXPECT_EQ(a.indexed + b.indexed, int(files.size()));
  EXPECT_TRUE(b.failed.empty());
  // The result: the same frames as one uninterrupted CPU run.
  const auto c = clipfind::run_index(request(t.path / "cpu", {t.path / "videos"}, DecodeOn::cpu));
  ASSERT_EQ(c.indexed, int(files.size()));
  const auto got = read_index(t.path / "gpu");
  const auto want = read_index(t.path / "cpu");
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, v] : got) {
    EXPECT_EQ(v.status, "ok") << name;
    EXPECT_EQ(v.times, want.at(name).times) << name;
  }
}

}  // namespace
