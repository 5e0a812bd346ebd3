// The commit stage of `clipfind index`: the writer thread that puts each
// finished file in the catalog, and keeps vectors.f16 close behind it.
#pragma once
#include <exception>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "index/catalog.h"
#include "indexer/bounded_queue.h"
#include "indexer/inputs.h"
#include "indexer/pipeline.h"
#include "indexer/progress.h"
#include "indexer/stages.h"

namespace clipfind {

// Rewrites vectors.f16 if the catalog changed since it was written.
void bring_vectors_up_to_date(const index::Catalog& cat, IndexSummary& sum);

// Commits finished files, one transaction each, on its own thread so that
// SQLite never holds up the encoder. Also rewrites vectors.f16 now and then
// during long runs (when the time since the last rewrite is at least
// kRewriteEvery times what it cost), so a search during indexing or after a
// kill mostly finds it current; run_index rewrites it once more at the end.
class Writer {
 public:
  static constexpr double kRewriteEvery = 10.0;

  Writer(index::Catalog& cat, const std::vector<std::filesystem::path>& files, const std::vector<FileStat>& stats,
         const std::string& fingerprint, int dim, BoundedQueue<FinishedFile>& in, StageTimes& times, Progress& progress,
         IndexSummary& sum, bool log_lines);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // After the encoder is done: commits what is left, then returns, or
  // rethrows what stopped the writer.
  void join();

 private:
  void run();
  void commit(FinishedFile& f);
  void rewrite_vectors();

  index::Catalog& cat_;
  const std::vector<std::filesystem::path>& files_;
  const std::vector<FileStat>& stats_;
  const std::string& fingerprint_;
  int dim_;
  BoundedQueue<FinishedFile>& in_;
  StageTimes& times_;
  Progress& progress_;
  IndexSummary& sum_;  // indexed, frames, failed, vectors_*: this thread's until join()
  bool log_lines_;
  Clock::time_point last_rewrite_end_ = Clock::now();
  double last_rewrite_cost_ = 0.0;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace clipfind
