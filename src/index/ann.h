// DIR/vectors.ann: an approximate nearest-neighbour index of the catalog's
// frames (FAISS IVF with 4-bit PQ fast-scan codes; from 2,048 lists on, the
// lists are grouped for a cheaper coarse step: ann_coarse.h), beside
// vectors.f16 and
// bound to the same catalog stamp. Search asks it for a few hundred
// candidates and re-ranks them with the exact fp16 rows of vectors.f16, so
// scores are exact; only which frames are looked at is approximate.
//
// Rows are named by (slot, frame ordinal): a slot is a video as it was added
// (a re-indexed video gets a new slot), so the ANN survives the row shifts of
// vectors.f16 when videos come and go. Removed videos become tombstones that
// search skips (Debian's FAISS 1.7.3 cannot delete from fast-scan lists);
// once they are more than a tenth of the index the lists are refilled
// without retraining. New videos are added without retraining until the
// catalog has doubled or halved since training or their distance to the
// coarse centroids says the trained distribution no longer fits (drift).
//
// Layout (little-endian): a 4096-byte header page (magic, version, stamp,
// counts, section offsets, its checksum), FAISS's own serialisation of the
// index, the slot table (per slot: video id, frames; -1 for a tombstone),
// and a trailer repeating the header's checksum and stamp. The trust and
// atomic-write rules are vectors.f16's (vector_file.h): a missing, torn,
// foreign or stale file is reported and search scans exactly instead.
//
// Built without FAISS (CMake CLIPFIND_ANN=OFF or FAISS not found),
// ann_absent.cpp stands in: ann_available() is false and build and open
// say kAnnNotBuilt.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "index/frame_table.h"
#include "index/search.h"
#include "index/vector_file.h"

namespace clipfind::index {

bool ann_available();
// For `clipfind doctor`: "FAISS 1.7.3 (IVF-PQ 4-bit fast-scan)", or kAnnNotBuilt.
std::string ann_backend();
inline constexpr const char* kAnnNotBuilt =
    "ANN not built: this clipfind was compiled without FAISS (CLIPFIND_ANN=OFF or libfaiss-dev missing); "
    "search scans every frame";

struct AnnInfo {
  size_t vectors = 0;          // live frames it holds
  size_t tombstones = 0;       // frames of removed videos still in its lists
  size_t lists = 0;            // IVF lists (nlist)
  size_t coarse_groups = 0;    // groups of lists (ann_coarse.h); 0: every list centroid is compared
  int code_bytes = 0;          // PQ code bytes per frame
  size_t trained_on = 0;       // frames in the catalog when it was trained
  uint64_t memory_bytes = 0;   // what it occupies in memory (ann.cpp counts it)
  float recall_at_10 = -1.0f;  // measured when last written (see measure_recall); -1: not measured
  // Mean distance of frames added since training to their nearest centroid,
  // over that of held-out rows at training (1: they fit as well; update
  // retrains past kAnnDriftRatio); 0 before any was added.
  float drift = 0.0f;
  int nprobe = 0;  // lists probed per query
};

// How search uses it: lists probed, and how many candidates (a multiple of
// the rows asked for) are re-ranked exactly. Defaults chosen by measurement
// (bench/video/RESULTS.md).
// Retrain when added frames sit this much farther from the centroids than
// held-out rows did at training.
inline constexpr double kAnnDriftRatio = 1.25;

struct AnnSearchParams {
  int nprobe = 64;
  size_t rerank_factor = 4;
};

class AnnIndex {
 public:
  ~AnnIndex();
  AnnIndex(const AnnIndex&) = delete;
  AnnIndex& operator=(const AnnIndex&) = delete;

  // Trains the quantisers on a sample of `table`'s rows and adds every row.
  static std::unique_ptr<AnnIndex> build(const FrameTable& table);

  enum class Update { unchanged, updated, needs_retraining };
  // Tombstones videos no longer in `table` (or whose frame count changed) and
  // adds the videos it lacks, or changes nothing and returns
  // needs_retraining when the catalog drifted from what it was trained on
  // (unless `ignore_drift`: the benchmark times the add itself).
  Update update(const FrameTable& table, bool ignore_drift = false);

  // Recall@10 against the exact scan: the share of the exact 10 best frames
  // among the 10 best of the candidates search takes for k = 10
  // (kCandidatesPerResult per result), for `queries` stored rows with noise
  // added (real queries are not frames of the index); kept in info().
  float measure_recall(const FrameTable& table, int queries);

  // Atomic write (temporary file, fsync, rename) stamped with `stamp`. Not
  // while another thread searches: grouped lists hand FAISS their flat
  // centroids for the time of the write.
  void write(const std::filesystem::path& file, const CatalogStamp& stamp) const;
  // Reads `file`; nullptr with *why saying what is wrong (missing, torn, not
  // built ...). The caller compares *stamp with the catalog's.
  static std::unique_ptr<AnnIndex> open(const std::filesystem::path& file, CatalogStamp* stamp, std::string* why);

  // The best `n` rows of `table` by exact score among the candidates the ANN
  // finds (n * rerank_factor of them), best first, as index::top_k gives.
  std::vector<Hit> top_k(const FrameTable& table, const float* query, size_t n) const;

  AnnInfo info() const;
  const AnnSearchParams& params() const;
  // Not while another thread searches (the server sets them before serving).
  void set_params(const AnnSearchParams& p);

 private:
  AnnIndex();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clipfind::index
