#include "video/chroma_upsample.h"

extern "C" {
#include <libavutil/pixdesc.h>
}
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <vector>

namespace clipfind::video::detail {

namespace {

// One component's sample at (x, y) of its plane, as the descriptor lays it out.
struct Component {
  const uint8_t* data;
  int linesize, step, offset, shift;
  bool wide;  // 16-bit words
  double at(int x, int y) const {
    const uint8_t* p = data + size_t(y) * linesize + size_t(x) * step + offset;
    if (!wide) return *p;
    uint16_t v;
    std::copy(p, p + 2, reinterpret_cast<uint8_t*>(&v));
    return double(v >> shift);
  }
};

Component component(const AVFrame* f, const AVPixFmtDescriptor* d, int k) {
  const AVComponentDescriptor& c = d->comp[k];
  return {f->data[c.plane], f->linesize[c.plane], c.step, c.offset, c.shift, c.depth > 8};
}

// Interpolation taps along one axis: chroma coordinate (i - centred/2) / 2
// for luma index i, clamped at the edges.
struct Taps {
  std::vector<int> lo, hi;
  std::vector<double> frac;
  Taps(int luma, int chroma, bool centred) : lo(size_t(luma)), hi(size_t(luma)), frac(size_t(luma)) {
    for (int i = 0; i < luma; ++i) {
      const double c = std::clamp((i - (centred ? 0.5 : 0.0)) / 2, 0.0, double(chroma - 1));
      lo[size_t(i)] = int(c);
      hi[size_t(i)] = std::min(lo[size_t(i)] + 1, chroma - 1);
      frac[size_t(i)] = c - lo[size_t(i)];
    }
  }
};

}  // namespace

ChromaSiting chroma_siting(const AVFrame* f) {
  switch (f->chroma_location) {
    case AVCHROMA_LOC_CENTER: return {true, true};
    case AVCHROMA_LOC_TOPLEFT: return {false, false};
    case AVCHROMA_LOC_TOP: return {true, false};
    default: return {false, true};
  }
}

bool upsamples_420(int av_pixel_format) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(AVPixelFormat(av_pixel_format));
  if (!d || d->nb_components != 3 || d->log2_chroma_w != 1 || d->log2_chroma_h != 1) return false;
  if (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_BE | AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_HWACCEL |
                  AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM))
    return false;
  for (int k = 0; k < 3; ++k) {
    const AVComponentDescriptor& c = d->comp[k];
    if (c.depth < 8 || c.depth > 16 ||
        c.step != (c.depth > 8 ? 2 : 1) * (k && d->comp[1].plane == d->comp[2].plane ? 2 : 1))
      return false;
  }
  return true;
}

void upsample_420(const AVFrame* f, ChromaSiting siting, bool full_range, AVFrame* out) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(AVPixelFormat(f->format));
  if (!upsamples_420(f->format)) throw std::invalid_argument("upsample_420: not a 4:2:0 YUV format");
  const int w = f->width, h = f->height, cw = (w + 1) / 2, ch = (h + 1) / 2, bits = d->comp[0].depth;
  if (out->width != w || out->height != h || out->format != AV_PIX_FMT_YUV444P16) {
    av_frame_unref(out);
    out->width = w;
    out->height = h;
    out->format = AV_PIX_FMT_YUV444P16;
    if (av_frame_get_buffer(out, 0) < 0) throw std::bad_alloc();
  }
  // 16-bit limited-range levels whatever the stream's range (swscale's
  // 16-bit full range measured up to 219 levels off at white): Y' = 0..1 at
  // 16..235 * 256, C' = -0.5..0.5 at 16..240 * 256.
  const double max = std::ldexp(1.0, bits) - 1, s = std::ldexp(1.0, bits - 8);
  const double y_zero = full_range ? 0.0 : 16 * s, y_span = full_range ? max : 219 * s;
  const double c_span = full_range ? max : 224 * s, c_zero = 128 * s;
  auto to16 = [](double v) { return uint16_t(std::clamp(std::lround(v * 256), 0L, 65535L)); };
  const Component y = component(f, d, 0), cb = component(f, d, 1), cr = component(f, d, 2);
  for (int j = 0; j < h; ++j) {
    auto* row = reinterpret_cast<uint16_t*>(out->data[0] + size_t(j) * out->linesize[0]);
    for (int i = 0; i < w; ++i) row[i] = to16(16 + 219 * (y.at(i, j) - y_zero) / y_span);
  }
  const Taps tx(w, cw, siting.centred_x), ty(h, ch, siting.centred_y);
  const Component* chroma[2] = {&cb, &cr};
  for (int k = 0; k < 2; ++k) {
    const Component& c = *chroma[k];
    for (int j = 0; j < h; ++j) {
      auto* row = reinterpret_cast<uint16_t*>(out->data[1 + k] + size_t(j) * out->linesize[1 + k]);
      const int v0 = ty.lo[size_t(j)], v1 = ty.hi[size_t(j)];
      const double fv = ty.frac[size_t(j)];
      for (int i = 0; i < w; ++i) {
        const int u0 = tx.lo[size_t(i)], u1 = tx.hi[size_t(i)];
        const double fu = tx.frac[size_t(i)];
        const double v = (1 - fv) * ((1 - fu) * c.at(u0, v0) + fu * c.at(u1, v0)) +
                         fv * ((1 - fu) * c.at(u0, v1) + fu * c.at(u1, v1));
        row[i] = to16(128 + 224 * (v - c_zero) / c_span);
      }
    }
  }
}

}  // namespace clipfind::video::detail
