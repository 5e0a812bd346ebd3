// An index folder's vectors.ann (ann.h) kept in step with its catalog: when
// `clipfind index` builds, extends or drops it, and which one search may use.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "index/ann.h"
#include "index/catalog.h"

namespace clipfind::index {

// `clipfind index --ann`: automatic builds it from kAnnAutoFrames frames
// (below that the exact scan is fast enough: bench/video/RESULTS.md) and
// keeps one that exists up to date; on builds it at any size; off removes it.
enum class AnnMode { automatic, on, off };
inline constexpr size_t kAnnAutoFrames = 1000000;

inline std::filesystem::path ann_file(const Catalog& catalog) { return catalog.dir() / "vectors.ann"; }

struct AnnFileUpdate {
  // "" (nothing to do), "built", "extended", "retrained" (drifted: built
  // again), "removed".
  std::string action;
  double seconds = 0.0;
  AnnInfo info;  // of the index written
};

// Brings vectors.ann to the catalog's current state after vectors.f16 was
// (Catalog::update_vector_file): extends it when it is of an older state of
// the same catalog, else trains a new one (recall measured on a new build).
// Throws index::Error naming the file when it cannot (vectors.f16 not
// current, --ann on without FAISS, a write failing).
AnnFileUpdate update_ann_file(const Catalog& catalog, AnnMode mode);

// The ANN index search may use for `table` (the catalog's current frames, as
// load_frames mapped them): nullptr when there is none, or, with *note
// saying why it is bypassed, when it is torn, stale, or of other rows.
std::shared_ptr<const AnnIndex> load_ann(const Catalog& catalog, const FrameTable& table, std::string* note);

// One line for `clipfind info` / `doctor`: "ANN: 1000000 frames, ..." or why
// there is none.
std::string ann_status(const Catalog& catalog);

}  // namespace clipfind::index
