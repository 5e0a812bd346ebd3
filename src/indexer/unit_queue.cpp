#include "indexer/unit_queue.h"

#include <limits>
#include <utility>

namespace clipfind {

UnitQueue::UnitQueue(size_t units, int gpu_threads, int lanes)
    : units_(units),
      lane_of_(units, -1),
      attempts_(units, 0),
      done_(units, false),
      alive_(size_t(lanes), true),
      in_flight_(size_t(lanes), 0),
      live_lanes_(lanes),
      gpu_running_(gpu_threads),
      gpu_unasked_(gpu_threads) {}

bool UnitQueue::may_requeue() const { return live_lanes_ >= 2 && done_count_ < units_; }

int UnitQueue::least_behind(const std::function<size_t(int)>& backlog) const {
  if (alive_.size() == 1) return 0;
  int best = -1;
  std::pair<int, size_t> best_load{std::numeric_limits<int>::max(), 0};
  for (int l = 0; l < int(alive_.size()); ++l) {
    if (!alive_[size_t(l)]) continue;
    const std::pair<int, size_t> load{in_flight_[size_t(l)], backlog(l)};
    if (best < 0 || load < best_load) best = l, best_load = load;
  }
  return best;
}

std::optional<size_t> UnitQueue::next_unit() {
  if (!again_.empty()) {
    const size_t u = again_.front();
    again_.pop_front();
    return u;
  }
  if (next_ < units_) return next_++;
  return std::nullopt;
}

UnitQueue::Take UnitQueue::take_for(size_t unit, int lane) {
  lane_of_[unit] = lane;
  ++in_flight_[size_t(lane)];
  return Take{unit, attempts_[unit]++, lane};
}

std::optional<UnitQueue::Take> UnitQueue::next_for_gpu(int lane, bool first) {
  std::lock_guard lock(m_);
  // Notified after the take (the lock is held until return), so a waiting
  // CPU thread never sees the unit this call takes.
  if (first && --gpu_unasked_ == 0) changed_.notify_all();
  if (closed_ || !alive_[size_t(lane)]) return std::nullopt;
  const auto u = next_unit();
  if (!u) return std::nullopt;
  return take_for(*u, lane);
}

std::optional<UnitQueue::Take> UnitQueue::next_for_cpu(const std::function<size_t(int)>& backlog) {
  std::unique_lock lock(m_);
  changed_.wait(lock, [&] {
    return closed_ || (gpu_unasked_ == 0 && (!handed_back_.empty() || !again_.empty() || next_ < units_ ||
                                             (gpu_running_ == 0 && !may_requeue())));
  });
  if (closed_) return std::nullopt;
  if (!handed_back_.empty()) {
    const Take t = handed_back_.front();
    handed_back_.pop_front();
    return t;
  }
  const auto u = next_unit();
  if (!u) return std::nullopt;
  return take_for(*u, least_behind(backlog));
}

void UnitQueue::hand_back(const Take& take) {
  std::lock_guard lock(m_);
  // A lost lane's units went to again_ already (lose_lane).
  if (!alive_[size_t(take.lane)]) return;
  handed_back_.push_back({take.unit, attempts_[take.unit]++, take.lane});
  changed_.notify_one();
}

void UnitQueue::gpu_thread_done(bool asked) {
  std::lock_guard lock(m_);
  if (!asked) --gpu_unasked_;
  --gpu_running_;
  if (gpu_running_ == 0 || (!asked && gpu_unasked_ == 0)) changed_.notify_all();
}

void UnitQueue::done(size_t unit) {
  std::lock_guard lock(m_);
  if (done_[unit]) return;
  done_[unit] = true;
  if (lane_of_[unit] >= 0) --in_flight_[size_t(lane_of_[unit])];
  if (++done_count_ == units_) changed_.notify_all();
}

bool UnitQueue::lose_lane(int lane) {
  std::lock_guard lock(m_);
  if (!alive_[size_t(lane)]) return true;
  if (live_lanes_ < 2) return false;
  alive_[size_t(lane)] = false;
  --live_lanes_;
  // What the lane had: taken for it and not done, including units NVDEC
  // handed back for it that no CPU thread took yet.
  std::erase_if(handed_back_, [&](const Take& t) { return t.lane == lane; });
  for (size_t u = 0; u < units_; ++u) {
    if (lane_of_[u] == lane && !done_[u]) {
      lane_of_[u] = -1;
      --in_flight_[size_t(lane)];
      again_.push_back(u);
    }
  }
  changed_.notify_all();
  return true;
}

bool UnitQueue::lane_alive(int lane) {
  std::lock_guard lock(m_);
  return alive_[size_t(lane)];
}

void UnitQueue::close() {
  std::lock_guard lock(m_);
  closed_ = true;
  changed_.notify_all();
}

}  // namespace clipfind
