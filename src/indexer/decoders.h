// The decoding stage of `clipfind index`: decoder threads that decode and
// sample files and (CPU backend) preprocess their frames for the encoder.
#pragma once
#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "clip/image/preprocess.h"
#include "indexer/bounded_queue.h"
#include "indexer/pipeline.h"
#include "indexer/stages.h"

namespace clipfind {

// Decodes files on a few threads, each taking the next file not yet taken,
// so the next videos' decoding overlaps the current one's encoding and short
// files do not leave the encoder waiting at every file boundary. The queue is
// closed when the last thread ends.
class DecoderPool {
 public:
  DecoderPool(const std::vector<std::filesystem::path>& files, const IndexRequest& req,
              const clip::PreprocessConfig* preprocess, int threads, BoundedQueue<Work>& queue, StageTimes& times);
  ~DecoderPool() { join(); }
  DecoderPool(const DecoderPool&) = delete;
  DecoderPool& operator=(const DecoderPool&) = delete;

  void join();

 private:
  struct Closed {};  // the encoder closed the queue: stop at once

  bool stopped() const { return req_.stop && req_.stop->load(); }
  void run();
  int ffmpeg_threads() const;
  void decode_file(size_t i);

  const std::vector<std::filesystem::path>& files_;
  const IndexRequest& req_;
  const clip::PreprocessConfig* preprocess_;  // null: frames go as RGB
  BoundedQueue<Work>& queue_;
  StageTimes& times_;
  std::atomic<size_t> next_{0};
  std::atomic<int> running_;
  std::atomic<int> busy_{0};  // threads decoding a file right now
  std::vector<std::thread> threads_;
};

}  // namespace clipfind
