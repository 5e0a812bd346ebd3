// The index (issue 4): SQLite catalog mechanics, exact top-k, segment merging,
// search order on planted embeddings, model fingerprints, time formatting.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "app/time_format.h"
#include "index/catalog.h"
#include "index/fingerprint.h"
#include "index/half.h"
#include "index/search.h"

namespace fs = std::filesystem;
using namespace clipfind::index;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("clipfind_test_index_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

std::vector<float> unit(int dim, int hot, float other = 0.0f) {
  std::vector<float> v(dim, other);
  v[hot] = 1.0f;
  float n = 0;
  for (float x : v) n += x * x;
  for (float& x : v) x /= std::sqrt(n);
  return v;
}

VideoRecord record(const std::string& path, const std::string& status = "ok") {
  VideoRecord r;
  r.path = path;
  r.size = 123;
  r.mtime_ns = 456;
  r.duration = 10;
  r.fps = 25;
  r.width = 320;
  r.height = 240;
  r.model = "fp";
  r.status = status;
  return r;
}

}  // namespace

TEST(Catalog, CreatesReopensAndKeepsVideos) {
  TempDir d;
  EXPECT_THROW(Catalog(d.path, false), Error);  // no index yet, and none created
  EXPECT_FALSE(fs::exists(d.path));
  {
    Catalog c(d.path, true);
    c.set_meta("dim", "4");
    c.put_video(record("/v/a.mp4"), {0.0, 1.0}, [] {
      auto a = unit(4, 0), b = unit(4, 1);
      a.insert(a.end(), b.begin(), b.end());
      return a;
    }(), 4);
    c.put_video(record("/v/bad.mp4", "error"), {}, {}, 4);
  }
  Catalog c(d.path, false);
  EXPECT_EQ(c.meta("schema_version"), std::to_string(Catalog::kSchemaVersion));
  const auto vs = c.videos();
  ASSERT_EQ(vs.size(), 2u);
  EXPECT_EQ(vs[0].path, "/v/a.mp4");
  EXPECT_EQ(vs[0].frames, 2);
  EXPECT_EQ(vs[0].width, 320);
  EXPECT_EQ(vs[1].status, "error");
  const FrameTable t = c.load_frames();  // only "ok" videos are searchable
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.dim, 4);
  EXPECT_EQ(t.time[1], 1.0);
  EXPECT_EQ(t.at(1, 1), 1.0f);
}

TEST(Catalog, PutReplacesForgetAndClearRemove) {
  TempDir d;
  Catalog c(d.path, true);
  c.set_meta("dim", "4");
  c.put_video(record("/v/a.mp4"), {0.0, 1.0, 2.0}, std::vector<float>(12, 0.5f), 4);
  c.put_video(record("/v/a.mp4"), {0.0}, std::vector<float>(4, 0.5f), 4);  // re-indexed: replaced
  c.put_video(record("/v/b.mp4"), {0.0}, std::vector<float>(4, 0.5f), 4);
  EXPECT_EQ(c.load_frames().rows(), 2u);
  EXPECT_EQ(c.find("/v/a.mp4")->frames, 1);
  c.forget("/v/a.mp4");
  EXPECT_FALSE(c.find("/v/a.mp4"));
  EXPECT_EQ(c.load_frames().rows(), 1u);
  c.clear();
  EXPECT_TRUE(c.videos().empty());
  EXPECT_EQ(c.load_frames().rows(), 0u);
}

TEST(Catalog, FailedPutLeavesNothingBehind) {
  TempDir d;
  Catalog c(d.path, true);
  c.set_meta("dim", "4");
  c.put_video(record("/v/a.mp4"), {0.0}, std::vector<float>(4, 0.5f), 4);
  // Two frames but one embedding: refused before anything is written.
  EXPECT_THROW(c.put_video(record("/v/a.mp4"), {0.0, 1.0}, std::vector<float>(4, 0.5f), 4), Error);
  EXPECT_EQ(c.find("/v/a.mp4")->frames, 1);
  EXPECT_EQ(c.load_frames().rows(), 1u);
}

TEST(Catalog, RejectsOtherSchemaVersions) {
  TempDir d;
  {
    Catalog c(d.path, true);
    c.set_meta("schema_version", "99");
  }
  try {
    Catalog c(d.path, false);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--reindex"), std::string::npos) << e.what();
  }
}

TEST(Search, TopKIsExactAndOrdered) {
  // 200k rows: large enough that the scan is split across threads.
  FrameTable t;
  t.dim = 16;
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  const int n = 200000;
  for (int r = 0; r < n; ++r) {
    std::vector<float> v(16);
    float norm = 0;
    for (float& x : v) {
      x = g(rng);
      norm += x * x;
    }
    for (float& x : v) x /= std::sqrt(norm);
    t.add(r % 7, r, v.data());
  }
  std::vector<float> q(16);
  for (float& x : q) x = g(rng) / 4.0f;  // not axis-aligned: every lane of the dot counts
  const auto hits = top_k(t, q.data(), 10);
  ASSERT_EQ(hits.size(), 10u);
  std::vector<std::pair<float, size_t>> all(n);
  for (int r = 0; r < n; ++r) {
    double d = 0;
    for (int c = 0; c < 16; ++c) d += double(t.at(size_t(r), c)) * q[c];
    all[r] = {float(d), size_t(r)};
  }
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t i = 0; i < hits.size(); ++i) {
    EXPECT_NEAR(hits[i].score, all[i].first, 1e-5);
    if (i) {
      EXPECT_GE(hits[i - 1].score, hits[i].score);
    }
  }
  EXPECT_EQ(top_k(t, q.data(), 300000).size(), size_t(n));
}

TEST(Search, PlantedSegmentsComeBackMergedInOrder) {
  // Video 1: frames at 0..9 s; the query direction is planted at 3, 4, 5 s
  // (best at 4 s) and weakly at 8 s. Video 2: a single strong match at 2 s.
  FrameTable t;
  t.dim = 8;
  auto add = [&](int64_t video, double time, std::vector<float> v) { t.add(video, time, v.data()); };
  for (int s = 0; s < 10; ++s) {
    std::vector<float> v = unit(8, 1 + s % 3);  // orthogonal to the query
    if (s == 3 || s == 5) v = unit(8, 0, 0.5f);
    if (s == 4) v = unit(8, 0, 0.1f);
    if (s == 8) v = unit(8, 0, 1.0f);
    add(1, s, v);
  }
  for (int s = 0; s < 5; ++s) add(2, s, s == 2 ? unit(8, 0, 0.3f) : unit(8, 4));
  const auto q = unit(8, 0);
  const auto segs = search(t, q.data(), 3, 2.0);
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(segs[0].video, 1);
  EXPECT_EQ(segs[0].time, 4.0);
  EXPECT_EQ(segs[0].start, 3.0);
  EXPECT_EQ(segs[0].end, 5.0);
  EXPECT_EQ(segs[1].video, 2);
  EXPECT_EQ(segs[1].time, 2.0);
  EXPECT_EQ(segs[2].video, 1);
  EXPECT_EQ(segs[2].time, 8.0);
  EXPECT_GT(segs[0].score, segs[1].score);
  EXPECT_GT(segs[1].score, segs[2].score);
  // With a gap below the 1 s frame spacing nothing merges.
  const auto apart = search(t, q.data(), 3, 0.5);
  EXPECT_EQ(apart[0].start, 4.0);
  EXPECT_EQ(apart[0].end, 4.0);
  EXPECT_EQ(apart[1].video, 2);
  EXPECT_EQ(apart[2].time, 3.0);  // ties by row: 3 s before 5 s
}

TEST(Fingerprint, ChangesWithConfigAndWeights) {
  TempDir d;
  fs::create_directories(d.path);
  EXPECT_THROW(model_fingerprint(d.path), std::runtime_error);
  std::ofstream(d.path / "config.json") << R"({"projection_dim": 4})";
  std::vector<char> w(300000, 1);
  auto write_weights = [&] { std::ofstream(d.path / "model.safetensors", std::ios::binary).write(w.data(), long(w.size())); };
  write_weights();
  const std::string a = model_fingerprint(d.path);
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(model_fingerprint(d.path), a);
  w[150000] = 2;  // a weight in the middle sample
  write_weights();
  EXPECT_NE(model_fingerprint(d.path), a);
  const std::string b = model_fingerprint(d.path);
  std::ofstream(d.path / "config.json") << R"({"projection_dim": 5})";
  EXPECT_NE(model_fingerprint(d.path), b);
}

TEST(Half, RoundTripsWithinHalfPrecision) {
  for (float f : {0.0f, 1.0f, -1.0f, 0.1f, -0.0441941738f, 1e-5f, 65504.0f, 3.0e-8f}) {
    EXPECT_NEAR(half_to_float(float_to_half(f)), f, std::abs(f) * 1e-3f + 6e-8f) << f;
  }
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(1e6f), 0x7c00);  // overflow: infinity
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
