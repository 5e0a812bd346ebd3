#include "video/sampler.h"

#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace clipfind::video {

EverySampler::EverySampler(double every) : every_(every) {
  if (!(every > 0.0)) throw std::invalid_argument("--every must be a positive number of seconds");
}

// Which multiple of `every` a time has reached: a frame is kept when it is
// in a later interval than the last kept one.
int64_t EverySampler::interval(double time) const { return int64_t(std::floor((time + kTimeSlack) / every_)); }

bool EverySampler::keep(double time) {
  const int64_t i = interval(time);
  if (i <= last_) return false;
  last_ = i;
  return true;
}

bool EverySampler::joins(double last_kept, double time) const { return interval(time) > interval(last_kept); }

SceneSampler::SceneSampler(double threshold) : threshold_(threshold) {}

bool SceneSampler::keep(const uint8_t* thumb) {
  const size_t n = static_cast<size_t>(kSide) * kSide;
  if (last_.empty()) {
    last_.assign(thumb, thumb + n);
    return true;
  }
  long sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::abs(int(thumb[i]) - int(last_[i]));
  if (double(sum) / (255.0 * double(n)) <= threshold_) return false;
  last_.assign(thumb, thumb + n);
  return true;
}

}  // namespace clipfind::video
