#include "indexer/progress.h"

#include <cstdio>

#include "video/time_format.h"

namespace clipfind {

void Progress::embedded(long frames, size_t in_flight, int lane) {
  std::lock_guard lock(m_);
  frames_ += frames;
  if (in_flight_.size() <= size_t(lane)) in_flight_.resize(size_t(lane) + 1);
  in_flight_[size_t(lane)] = in_flight;
  draw(false);
}

void Progress::file_done(int64_t bytes) {
  std::lock_guard lock(m_);
  ++files_done_;
  bytes_done_ += bytes;
  draw(true);
}

void Progress::print(const std::string& line) {
  std::lock_guard lock(m_);
  std::fprintf(stderr, "%s%s\n", enabled_ ? "\r\033[K" : "", line.c_str());
  if (enabled_) draw(true);
}

void Progress::finish() {
  std::lock_guard lock(m_);
  if (enabled_) std::fprintf(stderr, "\n");
}

void Progress::draw(bool force) {
  if (!enabled_ || (!force && since(last_draw_) < 0.2)) return;
  last_draw_ = Clock::now();
  const double el = since(start_);
  std::string eta = "?";  // by bytes of whole files done, once there is one
  if (bytes_done_ > 0) eta = format_hms(el * double(bytes_ - bytes_done_) / double(bytes_done_)).substr(0, 8);
  size_t in_flight = 0;
  for (size_t n : in_flight_) in_flight += n;
  std::fprintf(stderr, "\r\033[K%zu/%zu files (%zu in flight) · %ld frames · %.1f frames/s · ETA %s", files_done_,
               files_, in_flight, frames_, el > 0 ? double(frames_) / el : 0.0, eta.c_str());
}

}  // namespace clipfind
