#include "video/decoder.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "video/open_video.h"

namespace clipfind::video {

using detail::OpenVideo;

VideoInfo decode_video(const std::filesystem::path& path, const DecodeOptions& o,
                       const std::function<void(Frame&&)>& on_frame) {
  if (o.sampling.mode == Sampling::scenes && !o.part.whole())
    throw std::invalid_argument("scene sampling decodes whole videos only");
  OpenVideo v(path, o.threads, o.sampling.mode == Sampling::keyframes);
  return detail::sample_frames(
      v, o.sampling, o.stop,
      [&](const AVFrame* f, double t) {
        on_frame(Frame{t, v.to_rgb(f, o.max_short_side, o.sited_chroma)});
      },
      o.part);
}

std::vector<VideoPart> split_at_keyframes(const std::filesystem::path& path, int parts, double min_seconds) {
  return split_at_keyframes(
      path, [parts](double) { return parts; }, min_seconds);
}

std::vector<VideoPart> split_at_keyframes(const std::filesystem::path& path,
                                          const std::function<int(double)>& parts_for, double min_seconds) {
  OpenVideo v(path, 1, false);
  const double duration = v.info().duration;
  int parts = parts_for(duration > 0.0 ? duration : 0.0);
  std::vector<VideoPart> out(1);
  if (parts < 2 || !(duration >= 2 * min_seconds)) return out;
  parts = std::min(parts, int(duration / min_seconds));
  // A key frame near each even share of the duration, kept when it leaves
  // min_seconds to the part before and to the end.
  for (int i = 1; i < parts; ++i) {
    const auto key = v.key_pts_near(duration * i / parts);
    if (!key) continue;
    const double at = v.seconds_of(*key),
                 last_from = out.back().from == INT64_MIN ? 0.0 : v.seconds_of(out.back().from);
    if (at - last_from < min_seconds || duration - at < min_seconds) continue;
    out.back().to = *key;
    out.push_back(VideoPart{*key, INT64_MAX});
  }
  return out;
}

Frame frame_at(const std::filesystem::path& path, double seconds, double* duration) {
  if (!(seconds >= 0.0)) throw Error(path.string() + ": time must be >= 0");
  OpenVideo v(path, 0, false);
  // Decoding starts at a key frame shown at or before the time (start_at
  // steps back past one that a seek by decoding time lands on after it; if
  // no seek works, decoding goes on from where the demuxer is). Keep the
  // last frame starting at or before the requested time.
  v.start_at(v.pts_at(seconds));
  Frame best;
  bool have = false;
  while (const AVFrame* f = v.next()) {
    const double t = v.time_of(f);
    if (have && !std::isnan(t) && t > seconds + kTimeSlack) break;
    best = Frame{std::isnan(t) ? 0.0 : std::max(t, 0.0), v.to_rgb(f, 0)};
    have = true;
    if (!std::isnan(t) && t > seconds + kTimeSlack) break;  // first frame already after the time
  }
  if (!have) throw Error(path.string() + ": no frame could be decoded");
  if (duration) *duration = v.info().duration;
  return best;
}

}  // namespace clipfind::video
