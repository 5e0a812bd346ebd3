#include "video/decoder.h"

#include <algorithm>
#include <cmath>

#include "video/open_video.h"

namespace clipfind::video {

using detail::OpenVideo;

VideoInfo decode_video(const std::filesystem::path& path, const DecodeOptions& o,
                       const std::function<void(Frame&&)>& on_frame) {
  OpenVideo v(path, o.threads, o.sampling.mode == Sampling::keyframes);
  return detail::sample_frames(v, o.sampling, o.stop, [&](const AVFrame* f, double t) {
    on_frame(Frame{t, v.to_rgb(f, o.max_short_side)});
  });
}

Frame frame_at(const std::filesystem::path& path, double seconds, double* duration) {
  if (!(seconds >= 0.0)) throw Error(path.string() + ": time must be >= 0");
  OpenVideo v(path, 0, false);
  v.seek(seconds);
  // Keep the last frame starting at or before the requested time; decoding
  // goes on from the key frame the seek landed on.
  Frame best;
  bool have = false;
  while (const AVFrame* f = v.next()) {
    const double t = v.time_of(f);
    if (have && !std::isnan(t) && t > seconds + 1e-6) break;
    best = Frame{std::isnan(t) ? 0.0 : std::max(t, 0.0), v.to_rgb(f, 0)};
    have = true;
    if (!std::isnan(t) && t > seconds + 1e-6) break;  // first frame already after the time
  }
  if (!have) throw Error(path.string() + ": no frame could be decoded");
  if (duration) *duration = v.info().duration;
  return best;
}

}  // namespace clipfind::video
