// The ANN index (issue 30): vectors.ann round trip, torn and stale files,
// incremental add and remove, drift, recall on planted clustered vectors,
// and search through it against the exact scan.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "index/ann.h"
#include "index/ann_catalog.h"
#include "index/catalog.h"
#include "index/search.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace clipfind::index;

namespace {

constexpr int kDim = 64;

// Clustered like CLIP frames: each video is near one of 40 topic centres
// (around a shared mean),
// its scenes (30 frames each) near the video, its frames near their scene
// (consecutive frames: cosine ~0.98; same topic: ~0.7).
struct Planted {
  std::vector<float> centres;
  Planted() {
    std::mt19937 rng(3);
    std::normal_distribution<float> g;
    // Topics share a mean, as CLIP's image embeddings share a cone: an
    // unseen topic is still nearer the trained centroids than a frame
    // unlike all of them (ADriftedDistributionAsksForRetraining).
    std::vector<float> mean(kDim);
    for (float& x : mean) x = g(rng);
    centres.resize(40 * kDim);
    for (size_t i = 0; i < centres.size(); ++i) centres[i] = mean[i % kDim] + g(rng);
  }
  // `frames` unit rows of `video` (its number picks the topic); the same
  // rows each time it is asked for.
  std::vector<float> video(int video, size_t frames) const {
    std::mt19937 rng(uint32_t(video) * 7919u + 1u);
    std::normal_distribution<float> g(0.0f, 0.5f), frame_noise(0.0f, 0.15f);
    std::vector<float> base(kDim), scene(kDim), out(frames * kDim);
    const float* c = &centres[size_t(video % 40) * kDim];
    for (int i = 0; i < kDim; ++i) base[i] = c[i] + g(rng);
    for (size_t r = 0; r < frames; ++r) {
      if (r % 30 == 0) {
        for (int i = 0; i < kDim; ++i) scene[i] = base[i] + g(rng);
      }
      float* row = &out[r * kDim];
      float n = 0;
      for (int i = 0; i < kDim; ++i) {
        row[i] = scene[i] + frame_noise(rng);
        n += row[i] * row[i];
      }
      for (int i = 0; i < kDim; ++i) row[i] /= std::sqrt(n);
    }
    return out;
  }
};

// Videos [first, first + count) with `frames` rows each, as a table.
FrameTable table_of(const Planted& p, const std::vector<int>& videos, size_t frames) {
  FrameTableBuilder b(kDim);
  for (int v : videos) {
    const auto rows = p.video(v, frames);
    for (size_t r = 0; r < frames; ++r) b.add(v, double(r), &rows[r * kDim]);
  }
  return b.build();
}

std::vector<int> range(int first, int count) {
  std::vector<int> v(count);
  for (int i = 0; i < count; ++i) v[i] = first + i;
  return v;
}

struct TempDir : cliptest::TempDir {
  TempDir() : cliptest::TempDir(true) {}
};

}  // namespace

TEST(Ann, ReportsItsBackend) {
  ASSERT_TRUE(ann_available()) << "this test file is built only with FAISS";
  EXPECT_NE(ann_backend().find("FAISS"), std::string::npos) << ann_backend();
}

TEST(Ann, RecallOnPlantedClustersAndSearchAgreesWithTheScan) {
  Planted p;
  const FrameTable t = table_of(p, range(1, 40), 500);
  auto ann = AnnIndex::build(t);
  EXPECT_EQ(ann->info().vectors, t.rows());
  const float recall = ann->measure_recall(t, 30);
  EXPECT_GE(recall, 0.95f);
  EXPECT_EQ(ann->info().recall_at_10, recall);
  // Re-ranked scores are the exact ones: the best hit of a stored row is itself.
  for (size_t row : {size_t(0), size_t(777), t.rows() - 1}) {
    std::vector<float> q(kDim);
    for (int i = 0; i < kDim; ++i) q[i] = t.at(row, i);
    const auto hits = ann->top_k(t, q.data(), 10);
    ASSERT_FALSE(hits.empty());
    EXPECT_EQ(hits[0].row, row);
    EXPECT_EQ(hits[0].score, row_score(t, row, q.data()));
    const auto exact = search(t, q.data(), 3, 2.0);
    const auto approx = search(t, q.data(), 3, 2.0, ann.get());
    ASSERT_EQ(approx.size(), exact.size());
    EXPECT_EQ(approx[0].video, exact[0].video);
    EXPECT_EQ(approx[0].time, exact[0].time);
    EXPECT_EQ(approx[0].score, exact[0].score);
  }
}

// From 2,048 lists on the lists are grouped by a two-level k-means and
// found through their groups: recall holds, and the file round-trips.
TEST(Ann, ManyListsAreGrouped) {
  TempDir d;
  Planted p;
  const FrameTable t = table_of(p, range(1, 540), 500);  // 270k frames: 2,078 lists
  auto ann = AnnIndex::build(t);
  ASSERT_GE(ann->info().lists, 2048u);
  EXPECT_GE(ann->info().coarse_groups, 40u);
  EXPECT_EQ(ann->info().vectors, t.rows());
  EXPECT_GE(ann->measure_recall(t, 30), 0.95f);
  ann->write(d.path / "vectors.ann", {1, 2, 3});
  std::string why;
  auto back = AnnIndex::open(d.path / "vectors.ann", nullptr, &why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->info().coarse_groups, ann->info().coarse_groups);
  std::vector<float> q(kDim);
  for (int i = 0; i < kDim; ++i) q[i] = t.at(123456, i);
  const auto a = ann->top_k(t, q.data(), 20), b = back->top_k(t, q.data(), 20);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a[0].row, 123456u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].row, b[i].row);
}

TEST(Ann, RoundTripsThroughItsFile) {
  TempDir d;
  Planted p;
  const FrameTable t = table_of(p, range(1, 20), 300);
  auto ann = AnnIndex::build(t);
  ann->measure_recall(t, 5);
  const CatalogStamp stamp{11, 22, 33};
  ann->write(d.path / "vectors.ann", stamp);
  CatalogStamp read_stamp;
  std::string why;
  auto back = AnnIndex::open(d.path / "vectors.ann", &read_stamp, &why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(read_stamp, stamp);
  EXPECT_EQ(back->info().vectors, ann->info().vectors);
  EXPECT_EQ(back->info().lists, ann->info().lists);
  EXPECT_EQ(back->info().recall_at_10, ann->info().recall_at_10);
  EXPECT_GT(back->info().memory_bytes, 0u);
  std::vector<float> q(kDim);
  for (int i = 0; i < kDim; ++i) q[i] = t.at(1234, i);
  const auto a = ann->top_k(t, q.data(), 20), b = back->top_k(t, q.data(), 20);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].row, b[i].row);
  // No temporary file is left beside it.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(d.path)) files += e.path().filename() != "vectors.ann";
  EXPECT_EQ(files, 0u);
}

TEST(Ann, TornOrDamagedFilesAreRefusedSayingWhy) {
  TempDir d;
  Planted p;
  const FrameTable t = table_of(p, range(1, 10), 300);
  const fs::path file = d.path / "vectors.ann";
  AnnIndex::build(t)->write(file, {1, 2, 3});
  const auto size = fs::file_size(file);
  std::string why;
  fs::resize_file(file, size - 100);
  EXPECT_FALSE(AnnIndex::open(file, nullptr, &why));
  EXPECT_NE(why.find("torn"), std::string::npos) << why;
  EXPECT_NE(why.find(file.string()), std::string::npos) << why;
  fs::resize_file(file, 100);
  EXPECT_FALSE(AnnIndex::open(file, nullptr, &why));
  EXPECT_NE(why.find("torn"), std::string::npos) << why;
  std::ofstream(file) << std::string(8192, 'x');
  EXPECT_FALSE(AnnIndex::open(file, nullptr, &why));
  EXPECT_NE(why.find("bad magic"), std::string::npos) << why;
  fs::remove(file);
  EXPECT_FALSE(AnnIndex::open(file, nullptr, &why));
  EXPECT_NE(why.find("missing"), std::string::npos) << why;
}

TEST(Ann, AddsNewVideosAndForgetsRemovedOnesWithoutRetraining) {
  Planted p;
  const FrameTable before = table_of(p, range(1, 30), 300);
  auto ann = AnnIndex::build(before);
  const size_t lists = ann->info().lists;
  EXPECT_EQ(ann->update(before), AnnIndex::Update::unchanged);
  // Videos 1 and 2 removed, 31 and 32 added (1% of a build would be fewer,
  // but two videos show both directions).
  std::vector<int> now = range(3, 28);
  now.push_back(31);
  now.push_back(32);
  const FrameTable after = table_of(p, now, 300);
  ASSERT_EQ(ann->update(after), AnnIndex::Update::updated);
  EXPECT_EQ(ann->info().lists, lists);  // same quantisers
  EXPECT_EQ(ann->info().vectors, after.rows());
  EXPECT_EQ(ann->info().tombstones, 600u);
  // A new video's frame finds itself; hits never name a removed video's rows.
  for (size_t row = 0; row < after.rows(); row += 997) {
    std::vector<float> q(kDim);
    for (int i = 0; i < kDim; ++i) q[i] = after.at(row, i);
    const auto hits = ann->top_k(after, q.data(), 50);
    ASSERT_FALSE(hits.empty());
    EXPECT_EQ(hits[0].row, row);
    for (const Hit& h : hits) EXPECT_EQ(h.score, row_score(after, h.row, q.data()));
  }
  EXPECT_GE(ann->measure_recall(after, 20), 0.95f);
}

TEST(Ann, ManyRemovalsRefillTheListsAndGrowthAsksForRetraining) {
  Planted p;
  auto ann = AnnIndex::build(table_of(p, range(1, 30), 300));
  ASSERT_EQ(ann->update(table_of(p, range(5, 26), 300)), AnnIndex::Update::updated);
  EXPECT_EQ(ann->info().tombstones, 0u);  // 4 of 30 videos removed: past a tenth, refilled
  EXPECT_EQ(ann->info().vectors, 26u * 300);
  // Three times the size it was trained on: its lists no longer fit.
  EXPECT_EQ(ann->update(table_of(p, range(1, 90), 300)), AnnIndex::Update::needs_retraining);
  EXPECT_EQ(ann->info().vectors, 26u * 300);  // unchanged
}

TEST(Ann, ADriftedDistributionAsksForRetraining) {
  Planted p;
  auto ann = AnnIndex::build(table_of(p, range(1, 30), 300));
  // Frames unlike any it was trained on: the trained frames negated, as far
  // from every centroid as a unit vector gets. (Uniform noise is not: the
  // planted topics are random directions, so an unseen topic, like the
  // held-out videos, is already that far.)
  FrameTableBuilder b(kDim);
  const FrameTable old = table_of(p, range(1, 30), 300);
  for (size_t r = 0; r < old.rows(); ++r) b.add_half(old.video[r], old.time[r], old.row(r));
  for (size_t r = 0; r < 20 * 300; ++r) {  // 6000 frames: enough sampled rows (every 16th) to judge
    std::vector<float> row(kDim);
    for (int i = 0; i < kDim; ++i) row[size_t(i)] = -old.at(r, i);
    b.add(31 + int(r / 300), double(r % 300), row.data());
  }
  EXPECT_EQ(ann->update(b.build()), AnnIndex::Update::needs_retraining);
}

TEST(Ann, TheCatalogsFileIsBuiltUsedAndBypassedWhenStale) {
  TempDir d;
  Planted p;
  Catalog c(d.path / "idx", true);
  c.set_meta("dim", std::to_string(kDim));
  auto put = [&](int v) {
    VideoRecord r;
    r.path = "/v/" + std::to_string(v) + ".mp4";
    r.status = "ok";
    const auto rows = p.video(v, 200);
    std::vector<double> times(200);
    for (int i = 0; i < 200; ++i) times[size_t(i)] = i;
    c.put_video(r, times, rows, kDim);
  };
  for (int v = 1; v <= 20; ++v) put(v);
  ASSERT_TRUE(c.update_vector_file());
  // automatic: below kAnnAutoFrames nothing is built.
  EXPECT_EQ(update_ann_file(c, AnnMode::automatic).action, "");
  EXPECT_FALSE(fs::exists(ann_file(c)));
  const AnnFileUpdate built = update_ann_file(c, AnnMode::on);
  EXPECT_EQ(built.action, "built");
  EXPECT_GE(built.info.recall_at_10, 0.9f);
  std::string note;
  EXPECT_TRUE(load_ann(c, c.load_frames(), &note)) << note;
  EXPECT_EQ(note, "");
  EXPECT_EQ(update_ann_file(c, AnnMode::automatic).action, "");  // current
  // A new video: stale until `index` extends it (automatic keeps one that exists).
  put(21);
  ASSERT_TRUE(c.update_vector_file());
  EXPECT_FALSE(load_ann(c, c.load_frames(), &note));
  EXPECT_NE(note.find("stale"), std::string::npos) << note;
  EXPECT_NE(ann_status(c).find("stale"), std::string::npos) << ann_status(c);
  EXPECT_EQ(update_ann_file(c, AnnMode::automatic).action, "extended");
  EXPECT_TRUE(load_ann(c, c.load_frames(), &note)) << note;
  EXPECT_NE(ann_status(c).find("4200 frames"), std::string::npos) << ann_status(c);
  // One that is there but unusable (here torn; an older format alike) is
  // built again, small as the catalog is.
  fs::resize_file(ann_file(c), fs::file_size(ann_file(c)) / 2);
  EXPECT_NE(ann_status(c).find("unusable"), std::string::npos) << ann_status(c);
  EXPECT_EQ(update_ann_file(c, AnnMode::automatic).action, "built");
  EXPECT_TRUE(load_ann(c, c.load_frames(), &note)) << note;
  EXPECT_EQ(update_ann_file(c, AnnMode::off).action, "removed");
  EXPECT_FALSE(fs::exists(ann_file(c)));
}
