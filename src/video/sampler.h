// Which decoded frames to keep, decided from presentation timestamps only.
// Counting frames breaks on 29.97 fps, VFR and odd time bases (clifs kept only
// frame 0 of a 29.97 fps video that way), so nothing here knows a frame rate.
#pragma once
#include <cstdint>
#include <vector>

namespace clipfind::video {

enum class Sampling { every, keyframes, scenes };

// Timestamps come from integer pts times a rational time base; 1 us of slack
// keeps a frame at exactly 2.0 s from losing to 1.9999999 in floating point.
constexpr double kTimeSlack = 1e-6;

struct SamplingOptions {
  Sampling mode = Sampling::every;
  double every = 1.0;             // seconds between samples (Sampling::every)
  double scene_threshold = 0.12;  // mean |grey diff| in [0, 1] that counts as a cut
};

// Keeps the first frame at or after each multiple of `every` seconds:
// 0, every, 2*every, ... A frame that jumps over several multiples (VFR, gaps)
// is kept once, and the next target is the first multiple after it. What it
// keeps next depends only on the last frame kept (the interval it fell in),
// so samples of a video decoded in parts can be joined exactly (joins()).
class EverySampler {
 public:
  explicit EverySampler(double every);
  bool keep(double time);
  // keep() refuses every frame before this time (less its 1 us slack).
  double next() const { return double(last_ + 1) * every_; }
  // Whether a sampler whose last kept frame was at `last_kept` keeps a
  // frame at `time`: the first sample of a part decoded apart (whose own
  // sampler kept its first frame) belongs to the whole only then.
  bool joins(double last_kept, double time) const;

 private:
  int64_t interval(double time) const;

  double every_;
  int64_t last_ = -1;  // interval of the last kept frame
};

// Keeps the first frame and every frame whose 32x32 grey thumbnail differs
// from the last kept one by more than the threshold (mean absolute difference).
class SceneSampler {
 public:
  static constexpr int kSide = 32;
  explicit SceneSampler(double threshold);
  // thumb: kSide * kSide grey bytes.
  bool keep(const uint8_t* thumb);

 private:
  double threshold_;
  std::vector<uint8_t> last_;
};

}  // namespace clipfind::video
