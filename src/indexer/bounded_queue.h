// A blocking FIFO with a capacity: decoder threads wait when the encoder
// falls behind, so memory stays bounded whatever the video length.
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace clipfind {

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}

  // false when the queue was closed (the consumer gave up): stop producing.
  bool push(T item) {
    std::unique_lock lock(m_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // nullopt once closed and drained.
  std::optional<T> pop() {
    std::unique_lock lock(m_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // nullopt when nothing is ready right now (or closed and drained): lets the
  // consumer do something useful instead of waiting.
  std::optional<T> try_pop() {
    std::lock_guard lock(m_);
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // True once closed and drained: pop() would return nullopt at once.
  bool finished() {
    std::lock_guard lock(m_);
    return closed_ && items_.empty();
  }

  // Items waiting now (a hint: it may change at once).
  size_t size() {
    std::lock_guard lock(m_);
    return items_.size();
  }

  void close() {
    std::lock_guard lock(m_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  size_t capacity_;
  std::mutex m_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace clipfind
