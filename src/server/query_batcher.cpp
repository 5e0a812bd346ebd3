#include "server/query_batcher.h"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <utility>

namespace clipfind::server {

namespace {

std::vector<std::unique_ptr<clip::Engine>> one(std::unique_ptr<clip::Engine> engine) {
  std::vector<std::unique_ptr<clip::Engine>> v;
  v.push_back(std::move(engine));
  return v;
}

}  // namespace

QueryBatcher::QueryBatcher(std::unique_ptr<clip::Engine> engine, BatcherOptions options)
    : QueryBatcher(one(std::move(engine)), options) {}

QueryBatcher::QueryBatcher(std::vector<std::unique_ptr<clip::Engine>> engines, BatcherOptions options)
    : engines_(std::move(engines)), options_(options) {
  if (engines_.empty()) throw std::invalid_argument("QueryBatcher: no engine");
  options_.max_batch = std::max<size_t>(1, options_.max_batch);
  const clip::Engine& first = *engines_.front();
  dim_ = first.projection_dim();
  has_text_ = first.has_text();
  has_vision_ = first.has_vision();
  for (const auto& e : engines_) device_ += (device_.empty() ? "" : " + ") + e->backend_name();
  stats_.engine_calls.assign(engines_.size(), 0);
  for (size_t i = 0; i < engines_.size(); ++i) workers_.emplace_back([this, i] { run(i); });
}

QueryBatcher::~QueryBatcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
  for (auto* queue : {&texts_, &images_}) {
    for (Job& job : *queue) {
      job.done.set_exception(std::make_exception_ptr(Busy("the server is shutting down")));
    }
  }
}

std::future<std::vector<float>> QueryBatcher::embed_text(std::string text) {
  Job job;
  job.text = std::move(text);
  return enqueue(std::move(job));
}

std::future<std::vector<float>> QueryBatcher::embed_image(clip::Image image) {
  if (image.width <= 0 || image.height <= 0) throw std::invalid_argument("empty image");
  Job job;
  job.image = std::move(image);
  return enqueue(std::move(job));
}

BatcherStats QueryBatcher::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::future<std::vector<float>> QueryBatcher::enqueue(Job job) {
  auto future = job.done.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw Busy("the server is shutting down");
    if (texts_.size() + images_.size() >= options_.max_queued) {
      throw Busy("too many queries waiting for the model (" + std::to_string(options_.max_queued) + ")");
    }
    (job.image.width ? images_ : texts_).push_back(std::move(job));
  }
  wake_.notify_one();
  return future;
}

void QueryBatcher::run(size_t engine) {
  for (;;) {
    std::vector<Job> batch;
    bool texts = true;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !texts_.empty() || !images_.empty(); });
      if (stopping_) return;
      // Texts first (the common, cheap query); images take turns with them
      // since each pass empties up to a batch of one kind.
      texts = !texts_.empty();
      auto& queue = texts ? texts_ : images_;
      const size_t n = std::min(options_.max_batch, queue.size());
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      // Counted before the answers go out, so a client that reads the
      // status right after its answer sees its query counted.
      (texts ? stats_.texts : stats_.images) += n;
      stats_.calls += 1;
      stats_.engine_calls[engine] += 1;
      stats_.largest_batch = std::max(stats_.largest_batch, n);
    }
    embed_batch(*engines_[engine], batch, texts);
  }
}

void QueryBatcher::embed_batch(clip::Engine& engine, std::vector<Job>& jobs, bool texts) {
  auto encode = [&](size_t begin, size_t end) {
    clip::Tensor t;
    if (texts) {
      std::vector<std::string> in;
      for (size_t i = begin; i < end; ++i) in.push_back(jobs[i].text);
      t = engine.embed_texts(in);
    } else {
      std::vector<clip::Image> in;
      for (size_t i = begin; i < end; ++i) in.push_back(std::move(jobs[i].image));
      t = engine.embed_images(in);
    }
    clip::l2_normalize_rows(t);
    const size_t cols = size_t(t.dim(1));
    for (size_t i = begin; i < end; ++i) {
      const float* row = t.ptr() + (i - begin) * cols;
      jobs[i].done.set_value(std::vector<float>(row, row + cols));
    }
  };
  try {
    encode(0, jobs.size());
    return;
  } catch (...) {
    if (!texts || jobs.size() == 1) {
      // Images were moved into the failed call: they all get its error.
      for (Job& job : jobs) job.done.set_exception(std::current_exception());
      return;
    }
  }
  // One bad text must not fail the others batched with it: retry each alone.
  for (size_t i = 0; i < jobs.size(); ++i) {
    try {
      encode(i, i + 1);
    } catch (...) {
      jobs[i].done.set_exception(std::current_exception());
    }
  }
}

}  // namespace clipfind::server
