// Which file each decoder thread of `clipfind index` takes next, when NVDEC
// and CPU decoders work side by side.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

namespace clipfind {

// New files go, in order, to whichever decoder thread asks first, GPU or
// CPU, so that both kinds are busy and their sum sets the pace. A file NVDEC
// cannot take is handed back and goes to the next CPU thread before any new
// file (it is late already). CPU threads therefore keep asking until every
// GPU thread is done, since one may still hand a file back.
class FileQueue {
 public:
  FileQueue(size_t files, int gpu_threads) : files_(files), gpu_running_(gpu_threads) {}

  struct Take {
    size_t file;
    bool handed_back;  // NVDEC gave it up: decode it again from the start
  };

  // For GPU threads: the next new file, or nullopt when none is left.
  std::optional<size_t> next_new();
  // For CPU threads: a handed-back file, else the next new file; nullopt once
  // neither is left and no GPU thread runs (waits for that meanwhile).
  std::optional<Take> next_for_cpu();
  void hand_back(size_t file);
  // A GPU thread takes no more files (call once per GPU thread, also when it
  // stops early).
  void gpu_thread_done();

 private:
  std::mutex m_;
  std::condition_variable changed_;
  size_t files_, next_ = 0;
  std::deque<size_t> handed_back_;
  int gpu_running_;
};

}  // namespace clipfind
