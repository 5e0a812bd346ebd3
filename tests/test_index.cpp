// The index (issue 4): SQLite catalog mechanics, exact top-k, segment merging,
// search order on planted embeddings, model fingerprints; the model record
// with its family and SigLIP's probabilities (issue 26).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "index/catalog.h"
#include "index/fingerprint.h"
#include "index/half.h"
#include "index/query.h"
#include "index/residency.h"
#include "index/search.h"
#include "index/vector_file.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace clipfind::index;

namespace {

const fs::path kClipModel = fs::path(CLIPFIND_TEST_DATA) / "models" / "full_fp32_quickgelu_p32";
const fs::path kSiglipModel = fs::path(CLIPFIND_TEST_DATA) / "models" / "siglip_vision_only";

// A SigLIP model's record: the logit parameters of google/siglip-base-patch16-224.
ModelRecord siglip_record() {
  ModelRecord m;
  m.fingerprint = "0123456789abcdef";
  m.path = "/models/siglip";
  m.dim = 768;
  m.family = "siglip";
  m.logit_scale = 4.7649f;  // exp: 117.3
  m.logit_bias = -12.932f;
  return m;
}

// The catalog creates its folder: tests get a name only.
struct TempDir : cliptest::TempDir {
  TempDir() : cliptest::TempDir(false) {}
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

// A catalog of dim 8 holding videos a (10 frames), b (error), c (5 frames)
// with random unit embeddings.
void fill(Catalog& c, unsigned seed = 3) {
  c.set_meta("dim", "8");
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  auto frames = [&](int n) {
    std::vector<float> e(size_t(n) * 8);
    for (int r = 0; r < n; ++r) {
      float norm = 0;
      for (int k = 0; k < 8; ++k) norm += (e[size_t(r) * 8 + k] = g(rng)) * e[size_t(r) * 8 + k];
      for (int k = 0; k < 8; ++k) e[size_t(r) * 8 + k] /= std::sqrt(norm);
    }
    return e;
  };
  std::vector<double> ten(10), five(5);
  for (int i = 0; i < 10; ++i) ten[i] = 0.5 * i;
  for (int i = 0; i < 5; ++i) five[i] = i;
  c.put_video(record("/v/a.mp4"), ten, frames(10), 8);
  c.put_video(record("/v/b.mp4", "error"), {}, {}, 8);
  c.put_video(record("/v/c.mp4"), five, frames(5), 8);
}

// Same rows, same bits.
void expect_same_table(const FrameTable& a, const FrameTable& b) {
  ASSERT_EQ(a.dim, b.dim);
  ASSERT_EQ(a.rows(), b.rows());
  for (size_t r = 0; r < a.rows(); ++r) {
    EXPECT_EQ(a.video[r], b.video[r]) << r;
    EXPECT_EQ(a.time[r], b.time[r]) << r;
  }
  EXPECT_TRUE(std::equal(a.embeddings.begin(), a.embeddings.end(), b.embeddings.begin(), b.embeddings.end()));
}

std::string note_of(const Catalog& c) {
  std::string note;
  c.load_frames(&note);
  return note;
}

void run_sql(const fs::path& db_file, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_file.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

}  // namespace

TEST(Catalog, CreatesReopensAndKeepsVideos) {
  TempDir d;
  EXPECT_THROW(Catalog(d.path, false), Error);  // no index yet, and none created
  EXPECT_FALSE(fs::exists(d.path));
  {
    Catalog c(d.path, true);
    c.set_meta("dim", "4");
    c.put_video(
        record("/v/a.mp4"), {0.0, 1.0},
        [] {
          auto a = unit(4, 0), b = unit(4, 1);
          a.insert(a.end(), b.begin(), b.end());
          return a;
        }(),
        4);
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

TEST(Catalog, RecordsPrecisionsAndSearchNotesAnother) {
  TempDir d;
  Catalog c(d.path, true);
  EXPECT_TRUE(c.precisions().empty());
  EXPECT_EQ(precision_note(c, "fp32"), "");  // an index from before precisions were recorded
  c.record_precision("bf16");
  c.record_precision("bf16");
  EXPECT_EQ(c.precisions(), std::vector<std::string>{"bf16"});
  EXPECT_EQ(precision_note(c, "bf16"), "");
  const std::string note = precision_note(c, "fp32");
  EXPECT_NE(note.find("indexed in bf16 but this query runs in fp32"), std::string::npos) << note;
  EXPECT_NE(note.find("--precision bf16"), std::string::npos) << note;
  c.record_precision("fp32");  // updated in another precision: both listed
  EXPECT_EQ(c.precisions(), (std::vector<std::string>{"bf16", "fp32"}));
  EXPECT_NE(precision_note(c, "fp32").find("indexed in bf16 and fp32"), std::string::npos);
  c.clear();  // --reindex: the embeddings they described are gone
  EXPECT_TRUE(c.precisions().empty());
}

TEST(Catalog, StoresHalfFloats) {
  TempDir d;
  Catalog c(d.path, true);
  c.set_meta("dim", "4");
  c.put_video(record("/v/a.mp4"), {0.0}, {0.1f, -0.2f, 0.3f, 1.0f}, 4);
  const FrameTable t = c.read_frames();
  ASSERT_EQ(t.rows(), 1u);
  EXPECT_EQ(t.embeddings[0], float_to_half(0.1f));
  EXPECT_EQ(t.embeddings[3], 0x3c00);
  // A row of another size is refused, naming the catalog.
  run_sql(d.path / "catalog.sqlite", "UPDATE frames SET embedding = x'0000'");
  try {
    c.read_frames();
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("catalog.sqlite"), std::string::npos) << e.what();
  }
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

TEST(Catalog, EveryChangeBumpsTheGeneration) {
  TempDir d;
  Catalog c(d.path, true);
  const CatalogStamp s0 = c.stamp();
  EXPECT_NE(s0.catalog_id, 0u);
  c.set_meta("dim", "4");
  EXPECT_EQ(c.stamp(), s0);  // meta alone does not change the frames
  c.put_video(record("/v/a.mp4"), {0.0}, std::vector<float>(4, 0.5f), 4);
  const CatalogStamp s1 = c.stamp();
  EXPECT_GT(s1.generation, s0.generation);
  EXPECT_EQ(s1.catalog_id, s0.catalog_id);
  c.forget("/v/a.mp4");
  const CatalogStamp s2 = c.stamp();
  EXPECT_GT(s2.generation, s1.generation);
  c.put_video(record("/v/a.mp4"), {0.0}, std::vector<float>(4, 0.5f), 4);
  c.clear();
  EXPECT_GT(c.stamp().generation, s2.generation + 1);
  // A failed put changes nothing, so neither does it change the generation.
  const CatalogStamp s3 = c.stamp();
  EXPECT_THROW(c.put_video(record("/v/a.mp4"), {0.0, 1.0}, std::vector<float>(4, 0.5f), 4), Error);
  EXPECT_EQ(c.stamp(), s3);
}

TEST(Catalog, UpgradesVersion1InPlace) {
  TempDir d;
  {
    Catalog c(d.path, true);
    c.set_meta("dim", "4");
    c.put_video(record("/v/a.mp4"), {0.0, 1.0}, std::vector<float>(8, 0.5f), 4);
  }
  // What a version 1 catalog looked like: no generation, triggers or id, and
  // float32 embeddings (0.1 is not a half float: it must be rounded on reading).
  run_sql(d.path / "catalog.sqlite",
          "DROP TRIGGER videos_insert_bumps; DROP TRIGGER videos_update_bumps; DROP TRIGGER videos_delete_bumps;"
          "DELETE FROM meta WHERE key IN ('generation', 'catalog_id');"
          "UPDATE meta SET value = '1' WHERE key = 'schema_version';"
          // 0x3dcccccd is 0.1f, little-endian.
          "UPDATE frames SET embedding = x'cdcccc3dcdcccc3dcdcccc3dcdcccc3d'");
  Catalog c(d.path, false);
  EXPECT_EQ(c.meta("schema_version"), "2");
  const CatalogStamp s = c.stamp();
  EXPECT_NE(s.catalog_id, 0u);
  const FrameTable t = c.load_frames();  // frames kept as they were, read as float32
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.embeddings[5], float_to_half(0.1f));
  EXPECT_TRUE(c.update_vector_file());
  expect_same_table(c.load_frames(), t);
  c.forget("/v/a.mp4");
  EXPECT_GT(c.stamp().generation, s.generation);  // the triggers are there
}

TEST(Catalog, RecordsTheModelWithItsFamilyAndLogitParameters) {
  TempDir d;
  const ModelRecord siglip = siglip_record();
  {
    Catalog c(d.path, true);
    EXPECT_FALSE(c.model());  // a new index: no model yet
    c.set_model(siglip);
  }
  Catalog c(d.path, false);
  EXPECT_EQ(c.model(), siglip);  // every field, the floats bit for bit
  // The keys the rest of the index (and older clipfinds) read.
  EXPECT_EQ(c.meta("model"), siglip.fingerprint);
  EXPECT_EQ(c.meta("model_path"), siglip.path);
  EXPECT_EQ(c.meta("dim"), "768");
  EXPECT_EQ(c.meta("family"), "siglip");
  // A model without logit parameters (a single tower) drops the old ones.
  ModelRecord clip;
  clip.fingerprint = "fedcba9876543210";
  clip.path = "/models/clip";
  clip.dim = 512;
  c.set_model(clip);
  EXPECT_EQ(c.model(), clip);
  EXPECT_FALSE(c.meta("logit_scale"));
  EXPECT_FALSE(c.meta("logit_bias"));
  // Floats read back exactly, whatever their digits.
  ModelRecord m = siglip;
  for (const float v : {0.1f, -12.932437f, 4.60517025f, 1e-30f, -3.4e38f, 0.0f}) {
    m.logit_scale = v;
    m.logit_bias = -v;
    c.set_model(m);
    EXPECT_EQ(c.model(), m) << v;
  }
}

TEST(Catalog, AnIndexWithoutAFamilyReadsAsClip) {
  TempDir d;
  Catalog c(d.path, true);
  // What clipfind wrote before issue 26: model, model_path and dim only.
  c.set_meta("model", "0123456789abcdef");
  c.set_meta("model_path", kClipModel.string());
  c.set_meta("dim", "32");
  auto m = c.model();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->family, "clip");
  EXPECT_EQ(m->dim, 32);
  EXPECT_EQ(m->path, kClipModel.string());
  EXPECT_FALSE(m->logit_scale);
  EXPECT_FALSE(m->logit_bias);
  EXPECT_FALSE(has_probabilities(*m));
  EXPECT_EQ(family_mismatch(c, kClipModel.string()), "");  // a CLIP model still searches it
  EXPECT_NE(family_mismatch(c, kSiglipModel.string()).find("built with a clip model"), std::string::npos);
  // The same from a record written now, with the family key deleted.
  c.set_model(siglip_record());
  run_sql(d.path / "catalog.sqlite", "DELETE FROM meta WHERE key = 'family'");
  EXPECT_EQ(c.model()->family, "clip");
}

TEST(Catalog, AnUnreadableModelNumberNamesTheCatalogAndKey) {
  TempDir d;
  Catalog c(d.path, true);
  c.set_model(siglip_record());
  run_sql(d.path / "catalog.sqlite", "UPDATE meta SET value = '4.7x' WHERE key = 'logit_scale'");
  try {
    c.model();
    ADD_FAILURE();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("catalog.sqlite"), std::string::npos) << what;
    EXPECT_NE(what.find("logit_scale is '4.7x'"), std::string::npos) << what;
  }
}

TEST(Query, AModelOfAnotherFamilyIsRefusedNamingTheIndexAndBothFamilies) {
  EXPECT_EQ(model_family(kClipModel), "clip");
  EXPECT_EQ(model_family(kSiglipModel), "siglip");
  EXPECT_EQ(model_family(kClipModel / "no-such-folder"), "");
  TempDir d;
  Catalog c(d.path, true);
  EXPECT_EQ(family_mismatch(c, kClipModel.string()), "");  // no model recorded yet
  ModelRecord m = siglip_record();
  m.fingerprint = model_fingerprint(kSiglipModel);
  m.path = kSiglipModel.string();
  c.set_model(m);
  EXPECT_EQ(family_mismatch(c, kSiglipModel.string()), "");
  EXPECT_EQ(query_model(c, ""), kSiglipModel.string());
  const std::string wrong = family_mismatch(c, kClipModel.string());
  EXPECT_EQ(wrong, d.path.string() + ": built with a siglip model (" + kSiglipModel.string() + ") but " +
                       kClipModel.string() + " is a clip model");
  // Search refuses it with that, before the fingerprint (which differs too).
  try {
    query_model(c, kClipModel.string());
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(wrong + ". Embeddings of different model families cannot be compared", 0), 0u) << what;
    EXPECT_NE(what.find("leave out --model"), std::string::npos) << what;
    EXPECT_NE(what.find("--reindex --model " + kClipModel.string()), std::string::npos) << what;
    EXPECT_EQ(what.find("fingerprint"), std::string::npos) << what;
  }
  // The index's own folder, whose model was replaced by another family's.
  m.family = "clip";
  c.set_model(m);
  EXPECT_EQ(family_mismatch(c, kSiglipModel.string()), d.path.string() + ": built with a clip model from " +
                                                           kSiglipModel.string() + ", which now holds a " +
                                                           "siglip model");
  try {
    query_model(c, "");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).find("leave out --model"), std::string::npos) << e.what();
  }
}

TEST(Probability, IsTheSigmoidOfTheScaledCosinePlusTheBias) {
  EXPECT_EQ(match_probability(0.0f, std::log(10.0f), 0.0f), 0.5f);
  // exp(log 10) * 0.3 - 2 = 1: sigmoid(1).
  EXPECT_NEAR(match_probability(0.3f, std::log(10.0f), -2.0f), 0.7310585786, 1e-6);
  // The textbook formula, where it is safe to compute naively.
  for (const float scale : {0.0f, 2.3f, 4.7649f}) {
    for (const float bias : {-12.932f, -1.0f, 0.0f, 3.0f}) {
      for (float cos = -1.0f; cos <= 1.0f; cos += 0.125f) {
        const double naive = 1.0 / (1.0 + std::exp(-(std::exp(double(scale)) * cos + bias)));
        const float p = match_probability(cos, scale, bias);
        // Relative, down to float's smallest normal numbers.
        EXPECT_NEAR(p, naive, std::max(1e-6 * naive, 1e-37)) << cos << " " << scale << " " << bias;
        // sigmoid(-z) = 1 - sigmoid(z)
        EXPECT_NEAR(p + match_probability(-cos, scale, -bias), 1.0, 1e-6);
      }
    }
  }
  // Monotonic in the cosine (ranking by score = ranking by probability).
  float last = 0.0f;
  for (float cos = -1.0f; cos <= 1.0f; cos += 1.0f / 64) {
    const float p = match_probability(cos, 4.7649f, -12.932f);
    EXPECT_GE(p, last) << cos;
    last = p;
  }
}

TEST(Probability, StaysFiniteForHugeAndTinyLogits) {
  auto finite_unit = [](float p) { return std::isfinite(p) && p >= 0.0f && p <= 1.0f; };
  // exp(logit_scale) overflows double: 1 or 0 by the cosine's sign, the bias alone at cosine 0 (not NaN).
  EXPECT_EQ(match_probability(0.5f, 1000.0f, 0.0f), 1.0f);
  EXPECT_EQ(match_probability(-0.5f, 1000.0f, 0.0f), 0.0f);
  EXPECT_NEAR(match_probability(0.0f, 1000.0f, -3.0f), 1.0 / (1.0 + std::exp(3.0)), 1e-7);
  // exp overflows float but not double.
  EXPECT_EQ(match_probability(-1.0f, 200.0f, 0.0f), 0.0f);
  EXPECT_EQ(match_probability(1.0f, 200.0f, 0.0f), 1.0f);
  // A vanishing temperature: the bias alone.
  EXPECT_NEAR(match_probability(1.0f, -1000.0f, 2.0f), 1.0 / (1.0 + std::exp(-2.0)), 1e-7);
  // Huge biases.
  EXPECT_EQ(match_probability(1.0f, 0.0f, 1e30f), 1.0f);
  EXPECT_EQ(match_probability(1.0f, 0.0f, -1e30f), 0.0f);
  EXPECT_EQ(match_probability(0.0f, 0.0f, 3.4e38f), 1.0f);
  // Tiny probabilities keep their relative precision (logit -80: 1.8e-35, a normal float).
  const float tiny = match_probability(-1.0f, std::log(70.0f), -10.0f);
  EXPECT_NEAR(tiny / std::exp(-80.0), 1.0, 1e-4);
  // Logit +-700: exp(700) is near double's limit.
  EXPECT_EQ(match_probability(1.0f, std::log(700.0f), 0.0f), 1.0f);
  EXPECT_EQ(match_probability(-1.0f, std::log(700.0f), 0.0f), 0.0f);
  for (const float cos : {-1.0f, -1e-30f, 0.0f, 1e-30f, 1.0f}) {
    for (const float scale : {-1e30f, -100.0f, 0.0f, 88.8f, 709.8f, 1e30f}) {
      for (const float bias : {-3.4e38f, -100.0f, 0.0f, 100.0f, 3.4e38f}) {
        EXPECT_TRUE(finite_unit(match_probability(cos, scale, bias))) << cos << " " << scale << " " << bias;
      }
    }
  }
}

TEST(Probability, SiglipSegmentsCarryTheirBestFramesAndClipNone) {
  // Video 1: the query direction at 3, 4, 5 s (best at 4 s) merges into one segment.
  FrameTableBuilder b(8);
  for (int s = 0; s < 10; ++s) {
    std::vector<float> v = unit(8, 1 + s % 3);
    if (s == 3 || s == 5) v = unit(8, 0, 0.5f);
    if (s == 4) v = unit(8, 0, 0.1f);
    b.add(1, s, v.data());
  }
  const FrameTable t = b.build();
  const auto q = unit(8, 0);
  // A mild temperature, so that these cosines (0.97 and 0.60) are not all ~100%.
  ModelRecord siglip = siglip_record();
  siglip.logit_scale = std::log(10.0f);
  siglip.logit_bias = -8.0f;
  auto segs = search(t, q.data(), 2, 2.0);
  ASSERT_GE(segs.size(), 1u);
  ASSERT_EQ(segs[0].start, 3.0);
  ASSERT_EQ(segs[0].end, 5.0);
  for (const auto& s : segs) EXPECT_FALSE(s.probability);  // search alone sets none
  add_probabilities(segs, siglip);
  for (const auto& s : segs) {
    ASSERT_TRUE(s.probability);
    EXPECT_EQ(*s.probability, match_probability(s.score, *siglip.logit_scale, *siglip.logit_bias));
  }
  // The merged segment's is its best frame's (4 s), above its neighbours'.
  const float at3 = match_probability(top_k(t, q.data(), 3)[1].score, *siglip.logit_scale, *siglip.logit_bias);
  EXPECT_EQ(segs[0].time, 4.0);
  EXPECT_GT(*segs[0].probability, at3 + 0.5f);
  // CLIP, and SigLIP without both logit parameters: no probability.
  ModelRecord clip = siglip;
  clip.family = "clip";
  ModelRecord no_bias = siglip;
  no_bias.logit_bias.reset();
  for (const ModelRecord& m : {clip, no_bias}) {
    EXPECT_FALSE(has_probabilities(m));
    auto plain = search(t, q.data(), 2, 2.0);
    add_probabilities(plain, m);
    for (const auto& s : plain) EXPECT_FALSE(s.probability);
  }
  EXPECT_TRUE(has_probabilities(siglip));
}

TEST(VectorFile, MapsTheSameFramesAsSQLiteAndSearchesAlike) {
  TempDir d;
  Catalog c(d.path, true);
  fill(c);
  EXPECT_NE(note_of(c).find("missing"), std::string::npos);
  EXPECT_TRUE(c.update_vector_file());
  EXPECT_FALSE(c.update_vector_file());  // already current: not rewritten
  std::string note;
  const FrameTable mapped = c.load_frames(&note);
  EXPECT_EQ(note, "");
  EXPECT_EQ(mapped.rows(), 15u);  // a and c; b failed
  const FrameTable read = c.read_frames();
  expect_same_table(mapped, read);
  // A mapped table stays valid and unchanged when the file is replaced.
  fill(c, 9);
  ASSERT_TRUE(c.update_vector_file());
  expect_same_table(mapped, read);
  for (int hot = 0; hot < 8; ++hot) {
    const auto q = unit(8, hot, 0.2f);
    const auto a = search(c.load_frames(), q.data(), 4, 1.0);
    const auto b = search(c.read_frames(), q.data(), 4, 1.0);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].video, b[i].video);
      EXPECT_EQ(a[i].time, b[i].time);
      EXPECT_EQ(a[i].start, b[i].start);
      EXPECT_EQ(a[i].end, b[i].end);
      EXPECT_EQ(a[i].score, b[i].score);
    }
  }
}

TEST(VectorFile, StaleFileIsBypassedThenRebuilt) {
  TempDir d;
  Catalog c(d.path, true);
  fill(c);
  ASSERT_TRUE(c.update_vector_file());
  c.forget("/v/c.mp4");
  const std::string note = note_of(c);
  EXPECT_NE(note.find("stale"), std::string::npos) << note;
  EXPECT_NE(note.find("vectors.f16"), std::string::npos) << note;
  EXPECT_EQ(c.load_frames().rows(), 10u);  // the catalog's frames, not the file's 15
  EXPECT_TRUE(c.update_vector_file());
  EXPECT_EQ(note_of(c), "");
  EXPECT_EQ(c.load_frames().rows(), 10u);
}

TEST(VectorFile, GenerationWrittenTwiceIsStillStale) {
  // As after a power failure that lost the last commits: the catalog goes
  // back to an older generation, and new writes reach the file's number again.
  TempDir d;
  Catalog c(d.path, true);
  fill(c);
  const CatalogStamp before = c.stamp();
  ASSERT_TRUE(c.update_vector_file());
  c.forget("/v/c.mp4");
  run_sql(d.path / "catalog.sqlite",
          ("UPDATE meta SET value = '" + std::to_string(before.generation) + "' WHERE key = 'generation'").c_str());
  EXPECT_EQ(c.stamp().generation, before.generation);
  const std::string note = note_of(c);
  EXPECT_NE(note.find("written again"), std::string::npos) << note;
  EXPECT_EQ(c.load_frames().rows(), 10u);
}

TEST(VectorFile, RecreatedCatalogDoesNotTrustTheOldFile) {
  TempDir d;
  {
    Catalog c(d.path, true);
    fill(c);
    ASSERT_TRUE(c.update_vector_file());
  }
  const fs::path keep = d.path.string() + ".vectors";
  fs::copy_file(d.path / "vectors.f16", keep);
  fs::remove_all(d.path);
  Catalog c(d.path, true);  // the same writes again: the same generation
  fill(c, 5);
  fs::copy_file(keep, d.path / "vectors.f16");
  fs::remove(keep);
  const std::string note = note_of(c);
  EXPECT_NE(note.find("another catalog"), std::string::npos) << note;
  expect_same_table(c.load_frames(), c.read_frames());
}

TEST(VectorFile, TornOrDamagedFilesAreBypassed) {
  TempDir d;
  Catalog c(d.path, true);
  fill(c);
  const FrameTable truth = c.read_frames();
  const fs::path f = c.vector_file();
  ASSERT_TRUE(c.update_vector_file());
  const auto whole_size = fs::file_size(f);
  std::string whole;
  {
    std::ifstream in(f, std::ios::binary);
    whole.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& bytes) { std::ofstream(f, std::ios::binary | std::ios::trunc) << bytes; };
  struct Case {
    const char* what;
    std::string bytes;
    const char* expect;
  };
  std::string flipped_header = whole, flipped_trailer = whole, other_version = whole;
  flipped_header[20] ^= 1;                 // the row count
  flipped_trailer[whole.size() - 9] ^= 1;  // the trailer's generation
  other_version[8] = 9;                    // version 9 (and a checksum to match: no)
  const Case cases[] = {
      {"empty", "", "torn"},
      {"cut in the header", whole.substr(0, 100), "torn"},
      {"cut in the embeddings", whole.substr(0, 4096 + 50), "torn"},
      {"cut before the trailer", whole.substr(0, whole_size - 32), "torn"},
      {"longer", whole + std::string(64, '\0'), "torn"},
      {"header bit flip", flipped_header, "damaged header"},
      {"trailer bit flip", flipped_trailer, "trailer"},
      {"other version", other_version, "damaged header"},
      {"not ours", std::string(8192, 'x'), "bad magic"},
  };
  for (const Case& k : cases) {
    write(k.bytes);
    std::string note;
    const FrameTable t = c.load_frames(&note);
    EXPECT_NE(note.find(k.expect), std::string::npos) << k.what << ": " << note;
    expect_same_table(t, truth);                    // from SQLite, whole
    EXPECT_TRUE(c.update_vector_file()) << k.what;  // and rebuilt
    EXPECT_EQ(note_of(c), "") << k.what;
  }
}

TEST(VectorFile, WriterLeavesNothingBehindAndCleansUpAfterTheKilled) {
  TempDir d;
  Catalog c(d.path, true);
  fill(c);
  // A temporary file of a writer that died (no such process).
  const fs::path orphan = d.path / "vectors.f16.tmp.2147483646.0";
  std::ofstream(orphan) << "half written";
  {
    VectorFileWriter w(c.vector_file(), 8);  // abandoned: not committed
    const std::vector<uint16_t> e(8, float_to_half(0.5f));
    w.add(1, 0.0, e.data());
  }
  EXPECT_TRUE(c.update_vector_file());
  for (const auto& e : fs::directory_iterator(d.path)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  }
  // An index without frames yet has an empty, valid file.
  TempDir d2;
  Catalog empty(d2.path, true);
  EXPECT_FALSE(empty.update_vector_file());  // no dim yet: nothing to write
  empty.set_meta("dim", "8");
  empty.put_video(record("/v/x.mp4", "error"), {}, {}, 8);
  EXPECT_TRUE(empty.update_vector_file());
  std::string note;
  EXPECT_EQ(empty.load_frames(&note).rows(), 0u);
  EXPECT_EQ(note, "");
}

TEST(Search, TopKIsExactAndOrdered) {
  // 200k rows: large enough that the scan is split across threads.
  FrameTableBuilder b(16);
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
    b.add(r % 7, r, v.data());
  }
  const FrameTable t = b.build();
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
  FrameTableBuilder b(8);
  auto add = [&](int64_t video, double time, std::vector<float> v) { b.add(video, time, v.data()); };
  for (int s = 0; s < 10; ++s) {
    std::vector<float> v = unit(8, 1 + s % 3);  // orthogonal to the query
    if (s == 3 || s == 5) v = unit(8, 0, 0.5f);
    if (s == 4) v = unit(8, 0, 0.1f);
    if (s == 8) v = unit(8, 0, 1.0f);
    add(1, s, v);
  }
  for (int s = 0; s < 5; ++s) add(2, s, s == 2 ? unit(8, 0, 0.3f) : unit(8, 4));
  const FrameTable t = b.build();
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
  auto write_weights = [&] {
    std::ofstream(d.path / "model.safetensors", std::ios::binary).write(w.data(), long(w.size()));
  };
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

// Whether a scan would read the disk (search's choice of the ANN index):
// pages dropped from the page cache count as out, read ones as in.
TEST(Residency, TellsPagesOnDiskFromPagesInMemory) {
  cliptest::TempDir d(true);
  const fs::path file = d.path / "rows.bin";
  {
    std::ofstream out(file, std::ios::binary);
    const std::vector<char> block(1 << 20, 'x');
    for (int i = 0; i < 16; ++i) out.write(block.data(), std::streamsize(block.size()));
  }
  const int fd = ::open(file.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  const size_t bytes = 16 << 20;
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(map, MAP_FAILED);
  const auto* rows = static_cast<const char*>(map) + 100;  // not page-aligned, as rows after a header
  const double out = resident_share(rows, bytes - 200);
  if (out > 0.0) {
    ::munmap(map, bytes);
    GTEST_SKIP() << file << ": the page cache kept it after POSIX_FADV_DONTNEED (" << out
                 << " resident; tmpfs?): cannot test";
  }
  EXPECT_EQ(out, 0.0);
  long sum = 0;
  for (size_t i = 0; i < bytes; i += 4096) sum += static_cast<const char*>(map)[i];
  EXPECT_GT(sum, 0);
  EXPECT_EQ(resident_share(rows, bytes - 200), 1.0);
  EXPECT_EQ(resident_share(rows, 10), 1.0);  // no whole page: cannot tell, so "in memory"
  std::vector<uint16_t> heap(1 << 20, 1);
  EXPECT_EQ(resident_share(heap.data(), heap.size() * 2), 1.0);
  ::munmap(map, bytes);
}
