#include "indexer/writer.h"

#include <cstdio>
#include <utility>

namespace clipfind {

void bring_vectors_up_to_date(const index::Catalog& cat, IndexSummary& sum) {
  const auto t0 = Clock::now();
  try {
    if (cat.update_vector_file()) ++sum.vectors_written;
    sum.vectors_error.clear();
  } catch (const std::exception& e) {
    sum.vectors_error = e.what();  // not fatal: search reads SQLite meanwhile
  }
  sum.vectors_s += since(t0);
}

Writer::Writer(index::Catalog& cat, const std::vector<std::filesystem::path>& files, const std::vector<FileStat>& stats,
               const std::string& fingerprint, int dim, BoundedQueue<FinishedFile>& in, StageTimes& times,
               Progress& progress, IndexSummary& sum, bool log_lines)
    : cat_(cat),
      files_(files),
      stats_(stats),
      fingerprint_(fingerprint),
      dim_(dim),
      in_(in),
      times_(times),
      progress_(progress),
      sum_(sum),
      log_lines_(log_lines) {
  thread_ = std::thread([this] { run(); });
}

Writer::~Writer() {
  in_.close();
  if (thread_.joinable()) thread_.join();
}

void Writer::join() {
  in_.close();
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void Writer::run() {
  name_this_thread("cf-write");
  try {
    while (auto f = in_.pop()) {
      commit(*f);
      if (since(last_rewrite_end_) >= kRewriteEvery * last_rewrite_cost_) rewrite_vectors();
    }
  } catch (...) {  // SQLite failed: the run stops (run_index rethrows)
    error_ = std::current_exception();
    in_.close();
  }
}

void Writer::commit(FinishedFile& f) {
  const size_t i = f.end.file;
  index::VideoRecord rec;
  rec.path = files_[i].string();
  rec.size = stats_[i].size;
  rec.mtime_ns = stats_[i].mtime_ns;
  rec.model = fingerprint_;
  if (f.end.ok) {
    rec.status = "ok";
    rec.duration = f.end.info.duration;
    rec.fps = f.end.info.fps;
    rec.width = f.end.info.width;
    rec.height = f.end.info.height;
  } else {
    rec.status = "error";
    rec.error = f.end.error;
  }
  const auto t0 = Clock::now();
  cat_.put_video(rec, f.times, f.embeddings, dim_);
  times_.write.add(since(t0));
  if (f.end.ok) {
    ++sum_.indexed;
    sum_.frames += long(f.times.size());
    sum_.decoded += f.end.info.decoded;
    sum_.video_seconds += f.end.info.duration;
    if (log_lines_) std::fprintf(stderr, "indexed %s (%zu frames)\n", rec.path.c_str(), f.times.size());
  } else {
    sum_.failed.emplace_back(rec.path, f.end.error);
    progress_.print("error: " + f.end.error);
  }
  progress_.file_done(rec.size);
}

void Writer::rewrite_vectors() {
  const auto t0 = Clock::now();
  bring_vectors_up_to_date(cat_, sum_);
  last_rewrite_cost_ = since(t0);
  last_rewrite_end_ = Clock::now();
}

}  // namespace clipfind
