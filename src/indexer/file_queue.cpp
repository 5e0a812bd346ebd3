#include "indexer/file_queue.h"

namespace clipfind {

std::optional<size_t> FileQueue::next_new() {
  std::lock_guard lock(m_);
  if (next_ >= files_) return std::nullopt;
  return next_++;
}

std::optional<FileQueue::Take> FileQueue::next_for_cpu() {
  std::unique_lock lock(m_);
  changed_.wait(lock, [&] { return !handed_back_.empty() || next_ < files_ || gpu_running_ == 0; });
  if (!handed_back_.empty()) {
    const size_t f = handed_back_.front();
    handed_back_.pop_front();
    return Take{f, true};
  }
  if (next_ < files_) return Take{next_++, false};
  return std::nullopt;
}

void FileQueue::hand_back(size_t file) {
  std::lock_guard lock(m_);
  handed_back_.push_back(file);
  changed_.notify_one();
}

void FileQueue::gpu_thread_done() {
  std::lock_guard lock(m_);
  if (--gpu_running_ == 0) changed_.notify_all();
}

}  // namespace clipfind
