#include "video/rotate.h"

extern "C" {
#include <libavutil/display.h>
}
#include <cmath>
#include <cstring>

namespace clipfind::video {

int clockwise_degrees(const int32_t* m) {
  if (!m) return 0;
  // av_display_rotation_get is counter-clockwise; ffmpeg's own autorotate
  // negates it the same way.
  const double ccw = av_display_rotation_get(m);
  if (std::isnan(ccw)) return 0;
  long q = std::lround(-ccw / 90.0) % 4;
  if (q < 0) q += 4;
  return static_cast<int>(q * 90);
}

clip::Image rotate_clockwise(const clip::Image& in, int degrees) {
  const int w = in.width, h = in.height;
  if (degrees % 360 == 0) return in;
  clip::Image out;
  const bool swap = degrees == 90 || degrees == 270;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.rgb.resize(in.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx, sy;  // source pixel for out(x, y)
      if (degrees == 90) {
        sx = y;
        sy = h - 1 - x;
      } else if (degrees == 270) {
        sx = w - 1 - y;
        sy = x;
      } else {
        sx = w - 1 - x;
        sy = h - 1 - y;
      }
      std::memcpy(&out.rgb[(size_t(y) * out.width + x) * 3], &in.rgb[(size_t(sy) * w + sx) * 3], 3);
    }
  }
  return out;
}

}  // namespace clipfind::video
