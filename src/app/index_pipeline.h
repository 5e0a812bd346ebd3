// `clipfind index` without the command line: find files, skip unchanged ones,
// decode + sample on one thread while the engine embeds on this one, and write
// each video in one transaction.
#pragma once
#include <atomic>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "clip/clip.h"
#include "video/sampler.h"

namespace clipfind {

struct IndexRequest {
  std::vector<std::filesystem::path> inputs;  // files and folders
  std::filesystem::path index_dir = "clipfind-index";
  std::filesystem::path model_dir;            // empty: the one the index was built with
  clip::EngineOptions engine;
  video::SamplingOptions sampling;
  bool reindex = false;
  int batch = 32;           // frames per embed call
  int max_short_side = 448;
  bool progress = false;    // a progress line on stderr (a terminal) instead of log lines
  const std::atomic<bool>* stop = nullptr;
};

struct IndexSummary {
  int indexed = 0, skipped = 0, forgotten = 0;
  long frames = 0;
  double seconds = 0.0, decode_s = 0.0, embed_s = 0.0, write_s = 0.0;
  double pipeline_s = 0.0;  // from the model being loaded to the end: what the encoder could fill
  std::vector<std::pair<std::string, std::string>> failed;  // path, why
  bool interrupted = false;
};

// Throws (naming the index or model) only for problems that stop the whole
// run; a bad input file is recorded in `failed` and the others go on.
IndexSummary run_index(const IndexRequest& request);

// Files under `inputs` that index would look at: files as given, folders
// searched recursively for video and image extensions; absolute, sorted.
std::vector<std::filesystem::path> collect_inputs(const std::vector<std::filesystem::path>& inputs);

}  // namespace clipfind
