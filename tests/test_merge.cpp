// Combining indexes (issue 30): `clipfind merge` (merge.h) and searching
// several at once (multi_search.h), on catalogs with planted embeddings.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "index/catalog.h"
#include "index/merge.h"
#include "index/multi_search.h"
#include "index/search.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace clipfind::index;

namespace {

constexpr int kDim = 8;

ModelRecord model(const std::string& fingerprint = "00000000000000aa") {
  ModelRecord m;
  m.fingerprint = fingerprint;
  m.path = "/models/tiny";
  m.dim = kDim;
  return m;
}

// An index at `dir` with the given videos, each with `frames` random unit frames.
void make_index(const fs::path& dir, const std::vector<std::string>& videos, unsigned seed, int frames = 5,
                const ModelRecord& m = model(), const std::string& shard = "") {
  Catalog c(dir, true);
  c.set_model(m);
  c.record_precision("fp32");
  c.set_meta("sampling", "every 1.000000");
  c.set_meta("interval", "1.000000");
  c.set_meta("shard", shard);
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  for (const auto& path : videos) {
    VideoRecord r;
    r.path = path;
    r.size = 1;
    r.model = m.fingerprint;
    r.status = path.find("bad") == std::string::npos ? "ok" : "error";
    std::vector<double> times;
    std::vector<float> emb;
    for (int f = 0; r.status == "ok" && f < frames; ++f) {
      times.push_back(f * 1.0);
      float n = 0;
      for (int d = 0; d < kDim; ++d) emb.push_back(g(rng)), n += emb.back() * emb.back();
      for (int d = 0; d < kDim; ++d) emb[emb.size() - kDim + d] /= std::sqrt(n);
    }
    c.put_video(r, times, emb, kDim);
  }
  c.update_vector_file();
}

// Each video's path with its frames' times and embedding bits, by path:
// what must be equal whatever ids the videos got.
std::map<std::string, std::pair<std::vector<double>, std::vector<uint16_t>>> contents(const fs::path& dir) {
  Catalog c(dir, false);
  std::map<int64_t, std::string> paths;
  std::map<std::string, std::pair<std::vector<double>, std::vector<uint16_t>>> out;
  for (const auto& v : c.videos()) paths[v.id] = v.path, out[v.path];
  const FrameTable t = c.read_frames();
  for (size_t r = 0; r < t.rows(); ++r) {
    auto& [times, bits] = out[paths.at(t.video[r])];
    times.push_back(t.time[r]);
    bits.insert(bits.end(), t.row(r), t.row(r) + kDim);
  }
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

struct Shards : ::testing::Test {
  cliptest::TempDir tmp;
  fs::path a = tmp.path / "shard0", b = tmp.path / "shard1", out = tmp.path / "merged";
  void SetUp() override {
    make_index(a, {"/v/a1.mp4", "/v/bad.mp4", "/v/a2.mp4"}, 1, 5, model(), "0/2");
    make_index(b, {"/v/b1.mp4"}, 2, 7, model(), "1/2");
  }
};

TEST_F(Shards, MergeCopiesEveryVideoBitExact) {
  std::vector<std::string> lines;
  const MergeSummary s = merge_indexes({a, b}, out, [&](const std::string& l) { lines.push_back(l); });
  EXPECT_FALSE(s.appended);
  EXPECT_EQ(s.videos, 4);
  EXPECT_EQ(s.frames, 5 + 5 + 7);
  ASSERT_EQ(s.sources.size(), 2u);
  EXPECT_EQ(s.sources[0].shard, "0/2");
  EXPECT_EQ(s.sources[0].videos, 3);
  EXPECT_EQ(s.sources[1].frames, 7);
  EXPECT_TRUE(s.missing_shards.empty());
  EXPECT_EQ(lines.size(), 2u);

  auto expected = contents(a);
  expected.merge(contents(b));
  EXPECT_EQ(contents(out), expected);
  Catalog m(out, false);
  EXPECT_EQ(m.model(), model());
  EXPECT_EQ(m.meta("shard"), "");
  EXPECT_EQ(m.meta("sampling"), "every 1.000000");
  EXPECT_EQ(m.find("/v/bad.mp4")->status, "error");
  // vectors.f16 holds the merged state: search maps it.
  std::string note;
  EXPECT_EQ(m.load_frames(&note).rows(), 17u);
  EXPECT_EQ(note, "");
  // Built without a journal (set_bulk_load), it ends in WAL mode like every catalog.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((out / "catalog.sqlite").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
  // Nothing left beside it.
  for (const auto& e : fs::directory_iterator(tmp.path)) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".merged.merging-")) << e.path();
  }
}

// A merge killed midway left its temporary folder: the next one removes it.
TEST_F(Shards, LeftoversOfAKilledMergeGo) {
  const fs::path left = tmp.path / ".merged.merging-999999999";  // no such process
  fs::create_directories(left);
  std::ofstream(left / "catalog.sqlite") << "half";
  merge_indexes({a, b}, out, nullptr);
  EXPECT_FALSE(fs::exists(left));
  EXPECT_EQ(contents(out).size(), 4u);
}

TEST_F(Shards, MissingShardsAreNamed) {
  const MergeSummary s = merge_indexes({b}, out, nullptr);
  EXPECT_EQ(s.missing_shards, std::vector<std::string>{"0/2"});
}

TEST_F(Shards, MergesIntoAnEmptyFolder) {
  fs::create_directories(out);
  merge_indexes({a, b}, out, nullptr);
  EXPECT_EQ(contents(out).size(), 4u);
}

TEST_F(Shards, AppendsToACompatibleIndex) {
  merge_indexes({a}, out, nullptr);
  const MergeSummary s = merge_indexes({b}, out, nullptr);
  EXPECT_TRUE(s.appended);
  EXPECT_EQ(s.videos, 4);
  auto expected = contents(a);
  expected.merge(contents(b));
  EXPECT_EQ(contents(out), expected);
}

TEST_F(Shards, RefusesAVideoTwiceLeavingTheIndexAsItWas) {
  merge_indexes({a, b}, out, nullptr);
  const auto before = contents(out);
  EXPECT_NE(error_of([&] { merge_indexes({b}, out, nullptr); }).find("/v/b1.mp4 is in both"), std::string::npos);
  EXPECT_EQ(contents(out), before);
  fs::path c = tmp.path / "c";
  make_index(c, {"/v/a2.mp4"}, 3);
  const fs::path out2 = tmp.path / "out2";
  EXPECT_NE(error_of([&] { merge_indexes({a, c}, out2, nullptr); }).find("/v/a2.mp4 is in both"), std::string::npos);
  EXPECT_FALSE(fs::exists(out2));
}

// A torn embedding in a source is found while copying: the transaction is
// rolled back (an existing index stays as it was), a new index never appears.
TEST_F(Shards, ATornSourceMergesNothing) {
  merge_indexes({a}, out, nullptr);
  const auto before = contents(out);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((b / "catalog.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE frames SET embedding = x'0000' WHERE rowid = 3", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  std::string e = error_of([&] { merge_indexes({b}, out, nullptr); });
  EXPECT_NE(e.find("/v/b1.mp4: frame embedding of 2 bytes, expected 8 half floats"), std::string::npos) << e;
  EXPECT_EQ(contents(out), before);
  const fs::path fresh = tmp.path / "fresh";
  e = error_of([&] { merge_indexes({a, b}, fresh, nullptr); });
  EXPECT_NE(e.find("frame embedding of 2 bytes"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(fresh));
  for (const auto& entry : fs::directory_iterator(tmp.path)) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".fresh.merging-")) << entry.path();
  }
}

TEST_F(Shards, RefusesAnotherModel) {
  const fs::path c = tmp.path / "c";
  make_index(c, {"/v/c.mp4"}, 3, 5, model("00000000000000bb"));
  const std::string e = error_of([&] { merge_indexes({a, c}, out, nullptr); });
  EXPECT_NE(e.find("cannot be combined: model"), std::string::npos) << e;
  EXPECT_NE(e.find("00000000000000bb"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(out));
  ModelRecord wide = model();
  wide.dim = 16;
  const fs::path d = tmp.path / "d";
  { Catalog(d, true).set_model(wide); }
  EXPECT_NE(error_of([&] { merge_indexes({a, d}, out, nullptr); }).find("embedding width 8 vs 16"), std::string::npos);
}

TEST_F(Shards, RefusesOtherSampling) {
  { Catalog(b, false).set_meta("sampling", "keyframes"); }
  EXPECT_NE(error_of([&] {
              merge_indexes({a, b}, out, nullptr);
            }).find("frames sampled every 1.000000 vs keyframes"),
            std::string::npos);
}

TEST_F(Shards, RefusesAFolderThatIsNoIndex) {
  fs::create_directories(out);
  std::ofstream(out / "notes.txt") << "mine\n";
  EXPECT_NE(error_of([&] {
              merge_indexes({a, b}, out, nullptr);
            }).find("a folder with files in it and no index"),
            std::string::npos);
  EXPECT_TRUE(fs::exists(out / "notes.txt"));
  EXPECT_NE(error_of([&] { merge_indexes({a, a}, tmp.path / "x", nullptr); }).find("given twice"), std::string::npos);
  EXPECT_NE(error_of([&] { merge_indexes({a}, a, nullptr); }).find("is the --index folder"), std::string::npos);
  EXPECT_NE(error_of([&] { merge_indexes({tmp.path / "none"}, tmp.path / "y", nullptr); }).find("no index here"),
            std::string::npos);
}

// Searching the shards together ranks exactly as the merged index.
TEST_F(Shards, SearchingSeveralEqualsSearchingTheMerge) {
  merge_indexes({a, b}, out, nullptr);
  const IndexSet both({a.string(), b.string()});
  const IndexSet merged({out.string()});
  EXPECT_EQ(both.videos().size(), 4u);
  EXPECT_EQ(both.default_gap(), merged.default_gap());
  const FrameTable t1 = both.load_frames(nullptr), t2 = merged.load_frames(nullptr);
  ASSERT_EQ(t1.rows(), t2.rows());
  std::map<int64_t, std::string> p1, p2;
  for (const auto& v : both.videos()) p1[v.id] = v.path;
  for (const auto& v : merged.videos()) p2[v.id] = v.path;
  std::mt19937 rng(9);
  std::normal_distribution<float> g;
  for (int q = 0; q < 20; ++q) {
    std::vector<float> query(kDim);
    float n = 0;
    for (float& x : query) x = g(rng), n += x * x;
    for (float& x : query) x /= std::sqrt(n);
    const auto s1 = search(t1, query.data(), 3, 2.0), s2 = search(t2, query.data(), 3, 2.0);
    ASSERT_EQ(s1.size(), s2.size());
    for (size_t i = 0; i < s1.size(); ++i) {
      EXPECT_EQ(p1[s1[i].video], p2[s2[i].video]);
      EXPECT_EQ(s1[i].time, s2[i].time);
      EXPECT_EQ(s1[i].score, s2[i].score);
    }
  }
  const fs::path c = tmp.path / "c";
  make_index(c, {"/v/c.mp4"}, 3, 5, model("00000000000000bb"));
  EXPECT_NE(error_of([&] { IndexSet({a.string(), c.string()}); }).find("cannot be combined"), std::string::npos);
}

}  // namespace
