// The threads that run the model for the server, one per engine (one per
// GPU with --device cuda:all). A clip::Engine is not made for concurrent
// calls, and one encoder call on 32 texts costs little more than on one:
// requests queue their text (or image) and wait on a future; an idle thread
// takes everything queued, up to max_batch, per call.
//
//   QueryBatcher b(std::move(engine), {.max_batch = 32});
//   std::vector<float> q = b.embed_text("a red circle").get();  // L2-normalised
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "clip/clip.h"

namespace clipfind::server {

// The queue is full: the caller should answer 503 rather than wait.
class Busy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BatcherOptions {
  size_t max_batch = 32;     // texts (or images) per encoder call
  size_t max_queued = 1024;  // more waiting queries than this: Busy
};

struct BatcherStats {
  uint64_t texts = 0, images = 0, calls = 0;  // queries taken by the model thread, and its calls
  size_t largest_batch = 0;
  std::vector<uint64_t> engine_calls;  // calls by engine
};

class QueryBatcher {
 public:
  QueryBatcher(std::unique_ptr<clip::Engine> engine, BatcherOptions options);
  // Engines of one model (on several GPUs), each with its own thread.
  QueryBatcher(std::vector<std::unique_ptr<clip::Engine>> engines, BatcherOptions options);
  ~QueryBatcher();  // answers what is still queued with an error, then joins
  QueryBatcher(const QueryBatcher&) = delete;
  QueryBatcher& operator=(const QueryBatcher&) = delete;

  // L2-normalised embeddings of projection_dim() floats. Throw Busy when full;
  // the futures carry the engine's error (clip::Error) if embedding fails.
  std::future<std::vector<float>> embed_text(std::string text);
  std::future<std::vector<float>> embed_image(clip::Image image);

  int projection_dim() const { return dim_; }
  std::string device() const { return device_; }  // the engines' backend names, joined by " + "
  bool has_text() const { return has_text_; }
  bool has_vision() const { return has_vision_; }
  BatcherStats stats() const;

 private:
  struct Job {
    std::string text;  // a text job when image.width == 0
    clip::Image image;
    std::promise<std::vector<float>> done;
  };
  std::future<std::vector<float>> enqueue(Job job);
  void run(size_t engine);
  void embed_batch(clip::Engine& engine, std::vector<Job>& jobs, bool texts);

  std::vector<std::unique_ptr<clip::Engine>> engines_;
  BatcherOptions options_;
  int dim_ = 0;
  std::string device_;
  bool has_text_ = false, has_vision_ = false;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> texts_, images_;
  bool stopping_ = false;
  BatcherStats stats_;
  std::vector<std::thread> workers_;  // last: start once everything above exists
};

}  // namespace clipfind::server
