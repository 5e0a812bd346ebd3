// `clipfind merge`: several index folders (the shards of `clipfind index
// --shard I/N`, or any indexes of one model) combined into one.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "index/catalog.h"

namespace clipfind::index {

struct MergedSource {
  std::string index;  // the folder, as given
  std::string shard;  // its "I/N", or "" when it is not a shard
  int videos = 0;     // copied from it (every record, failed files too)
  long frames = 0;    // searchable frames among them
};

struct MergeSummary {
  std::string out;
  bool appended = false;  // `out` was an index already and kept its videos
  std::vector<MergedSource> sources;
  int videos = 0;   // in `out` afterwards
  long frames = 0;  // searchable, in `out` afterwards
  // "I/N" of the shards of a split that none of the sources is (all sources
  // being shards of N): a Slurm task or Kubernetes pod that did not finish.
  std::vector<std::string> missing_shards;
  std::vector<std::string> precisions;  // of the merged embeddings (see Catalog::precisions)
  double seconds = 0.0;
};

// Copies every video of `sources` into `out`, embeddings byte for byte
// (Catalog::append_from), after checking they combine (compat.h): one model,
// one sampling, no video twice (nor one already in `out`).
//
// A new `out` (missing, or an empty folder) is built in a temporary folder
// beside it, then renamed into place: a crash leaves no `out` or a whole
// one, never half (the temporary folder a killed merge leaves, .OUT.merging-PID,
// is removed by the next merge to OUT). An existing index at `out` takes the videos in one
// transaction (the catalog's own crash safety), then its vectors.f16 is
// rewritten. Anything else at `out` is refused; so is a source that is
// `out`. `log`: a line per source as it is done (progress). Errors are
// index::Error naming the folder.
MergeSummary merge_indexes(const std::vector<std::filesystem::path>& sources, const std::filesystem::path& out,
                           const std::function<void(const std::string& line)>& log);

}  // namespace clipfind::index
