// The CPU backend's own worker threads: `threads - 1` workers plus the calling
// thread. One pool per backend, no process-wide state, so two backends in one
// process never share or fight over threads.
//
// Work is handed out as numbered tasks from a shared counter rather than as
// one fixed share per thread: on a busy machine a worker may be descheduled
// for a whole time slice, and with fixed shares every other thread would wait
// for it at each of the few hundred joins of a forward pass. With a counter
// the threads that run take the remaining tasks, and a join waits at most for
// tasks already started.
//
// Workers spin for a short while after each job before they sleep: a pass
// issues hundreds of short jobs back to back and a futex wake-up per job
// would cost more than many of the jobs. When idle, the spin ends within
// a fraction of a millisecond and the cores are free again.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace clip::cpu {

class ThreadPool {
 public:
  // on_worker_start runs once on each worker thread before it takes tasks
  // (the backend uses it to make the GEMM library single-threaded there).
  explicit ThreadPool(int threads, std::function<void()> on_worker_start = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Runs task(i, thread) for i in [0, tasks) and returns when all are done.
  // `thread` in [0, size()) names the executing thread (0: the caller) for
  // per-thread buffers; which thread runs which task is not fixed. If tasks
  // throw, the first exception is rethrown here after all tasks finished.
  // Not reentrant: tasks must not call run(); one run() at a time.
  void run(int64_t tasks, const std::function<void(int64_t task, int thread)>& task);

  // Splits [0, n) into chunks of at least `grain` indices (about four per
  // thread, for balance) and runs body(thread, begin, end) on the pool; runs
  // inline when there is only one chunk.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int thread, int64_t begin, int64_t end)>& body);

 private:
  void worker_loop(int thread, const std::function<void()>& on_start);
  // Takes and runs tasks of the current job until none is left.
  void take_tasks(int thread);
  void record(std::exception_ptr e);

  int threads_;
  std::vector<std::thread> workers_;

  // The current job. ticket_ packs (job number, task count, next task) so one
  // compare-and-swap both claims a task and checks that it belongs to the job
  // the claimer saw: a worker waking late cannot take a task of a newer job
  // with a stale count.
  const std::function<void(int64_t, int)>* task_ = nullptr;
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int64_t> done_{0};         // tasks of the current job finished
  std::atomic<uint32_t> generation_{0};  // bumped per job; idle workers watch it
  std::atomic<bool> stop_{false};
  // Sleeping after the spin: a condition variable, with a count of sleepers so
  // that publishing a job costs no lock while all workers are spinning.
  void wake_sleepers();
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
  std::mutex error_mutex_;
  std::exception_ptr error_;  // first exception of the current job
};

}  // namespace clip::cpu
