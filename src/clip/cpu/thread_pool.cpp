#include "clip/cpu/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "clip/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CLIP_CPU_RELAX() _mm_pause()
#else
#define CLIP_CPU_RELAX() std::this_thread::yield()
#endif

namespace clip::cpu {

namespace {

// Long enough to bridge the gap between two jobs of one forward pass (a few
// microseconds), short enough that an idle backend frees the cores at once.
constexpr auto kSpin = std::chrono::microseconds(100);

// ticket_ layout: job number (24 bits) | task count (20) | next task (20).
constexpr int kCountBits = 20;
constexpr uint64_t kCountMask = (uint64_t(1) << kCountBits) - 1;
constexpr int64_t kMaxTasks = int64_t(kCountMask);

uint64_t pack(uint64_t job, uint64_t count, uint64_t next) {
  return (job << (2 * kCountBits)) | (count << kCountBits) | next;
}

}  // namespace

ThreadPool::ThreadPool(int threads, std::function<void()> on_worker_start) : threads_(threads < 1 ? 1 : threads) {
  workers_.reserve(threads_ - 1);
  for (int t = 1; t < threads_; ++t)
    workers_.emplace_back([this, t, on_worker_start] { worker_loop(t, on_worker_start); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  wake_sleepers();
  for (auto& w : workers_) w.join();
}

void ThreadPool::wake_sleepers() {
  // seq_cst against the worker's sleepers_ increment and its check of
  // generation_ / stop_: either we see the sleeper, or it sees the change.
  if (sleepers_.load() == 0) return;
  { std::lock_guard<std::mutex> lock(sleep_mutex_); }
  wake_.notify_all();
}

void ThreadPool::worker_loop(int thread, const std::function<void()>& on_start) {
  if (on_start) on_start();
  uint32_t seen = generation_.load();
  // A new job, or the pool shutting down (possibly before this thread ever
  // got to run, so stop_ is checked as well as the job number).
  const auto ready = [&] { return generation_.load() != seen || stop_.load(); };
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    for (int i = 1; !ready(); ++i) {
      CLIP_CPU_RELAX();
      if (i % 64 == 0 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, ready);
        sleepers_.fetch_sub(1);
        break;
      }
    }
    if (stop_.load()) return;
    seen = generation_.load();
    take_tasks(thread);
  }
}

void ThreadPool::take_tasks(int thread) {
  for (;;) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    const uint64_t count = (t >> kCountBits) & kCountMask, next = t & kCountMask;
    if (next >= count) return;
    if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
    // The job cannot finish, nor task_ change, before this task is done.
    try {
      (*task_)(static_cast<int64_t>(next), thread);
    } catch (...) {
      record(std::current_exception());
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::record(std::exception_ptr e) {
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!error_) error_ = std::move(e);
}

void ThreadPool::run(int64_t tasks, const std::function<void(int64_t, int)>& task) {
  if (tasks <= 0) return;
  if (threads_ == 1 || tasks == 1) {
    for (int64_t i = 0; i < tasks; ++i) task(i, 0);
    return;
  }
  if (tasks > kMaxTasks) throw Error("cpu backend: too many tasks for one pool job");
  task_ = &task;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t job = (ticket_.load() >> (2 * kCountBits)) + 1;
  ticket_.store(pack(job & 0xFFFFFF, uint64_t(tasks), 0), std::memory_order_release);
  generation_.fetch_add(1);
  wake_sleepers();

  take_tasks(0);
  // What is left are tasks other threads started. Yield now and then in case
  // one of them was descheduled (the machine may be shared).
  for (int i = 1; done_.load(std::memory_order_acquire) != tasks; ++i) {
    CLIP_CPU_RELAX();
    if (i % 256 == 0) std::this_thread::yield();
  }
  if (error_) {
    std::exception_ptr e = std::move(error_);
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int, int64_t, int64_t)>& body) {
  if (n <= 0) return;
  const int64_t chunk = std::max<int64_t>(std::max<int64_t>(grain, 1), n / (4 * threads_));
  const int64_t chunks = (n + chunk - 1) / chunk;
  if (chunks == 1) {
    body(0, 0, n);
    return;
  }
  run(chunks, [&](int64_t c, int thread) { body(thread, c * chunk, std::min(n, (c + 1) * chunk)); });
}

}  // namespace clip::cpu
