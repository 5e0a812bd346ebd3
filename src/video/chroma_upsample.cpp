#include "video/chroma_upsample.h"

extern "C" {
#include <libavutil/pixdesc.h>
}
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

namespace clipfind::video::detail {

namespace {

// One component of f as a packed plane of its sample values (interleaved
// chroma separated, P010's shift undone): w x h ints.
std::vector<int32_t> unpack(const AVFrame* f, const AVPixFmtDescriptor* d, int k, int w, int h) {
  const AVComponentDescriptor& c = d->comp[k];
  std::vector<int32_t> out(size_t(w) * h);
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = f->data[c.plane] + size_t(y) * f->linesize[c.plane] + c.offset;
    int32_t* o = out.data() + size_t(y) * w;
    if (c.depth <= 8) {
      for (int x = 0; x < w; ++x) o[x] = row[size_t(x) * c.step];
    } else {
      for (int x = 0; x < w; ++x) {
        uint16_t v;
        std::memcpy(&v, row + size_t(x) * c.step, 2);
        o[x] = v >> c.shift;
      }
    }
  }
  return out;
}

// Interpolation taps along one axis, in quarters: luma index i reads chroma
// (i - centred/2) / 2, clamped at the edges, = lo + frac4 / 4 (the weights
// are always whole quarters).
struct Taps {
  std::vector<int> lo, hi, frac4;
  Taps(int luma, int chroma, bool centred) : lo(size_t(luma)), hi(size_t(luma)), frac4(size_t(luma)) {
    for (int i = 0; i < luma; ++i) {
      const double c = std::clamp((i - (centred ? 0.5 : 0.0)) / 2, 0.0, double(chroma - 1));
      lo[size_t(i)] = int(c);
      hi[size_t(i)] = std::min(lo[size_t(i)] + 1, chroma - 1);
      frac4[size_t(i)] = int(std::lround((c - lo[size_t(i)]) * 4));
    }
  }
};

uint16_t to16(double v) { return uint16_t(std::clamp(v, 0.0, 65535.0) + 0.5); }

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
  // 16..235 * 256, C' = -0.5..0.5 at 16..240 * 256. Luma through a table;
  // chroma interpolated in integers (16 * the sample), then mapped.
  const double max = std::ldexp(1.0, bits) - 1, s = std::ldexp(1.0, bits - 8);
  const double y_zero = full_range ? 0.0 : 16 * s, y_span = full_range ? max : 219 * s;
  const double c_span = full_range ? max : 224 * s, c_zero = 128 * s;
  std::vector<uint16_t> luma(size_t(max) + 1);
  for (size_t v = 0; v < luma.size(); ++v) luma[v] = to16((16 + 219 * (double(v) - y_zero) / y_span) * 256);
  // Chroma at 16 * the sample (the weights are whole quarters on each
  // axis) -> 16-bit level: a table up to 12 bits.
  const double k1 = 224 * 256 / (16 * c_span), k0 = (128 - 224 * c_zero / c_span) * 256;
  std::vector<uint16_t> chroma_table(bits <= 12 ? size_t(16 * max) + 1 : 0);
  for (size_t v = 0; v < chroma_table.size(); ++v) chroma_table[v] = to16(k0 + k1 * double(v));
  auto chroma16 = [&](int32_t v16) { return chroma_table.empty() ? to16(k0 + k1 * v16) : chroma_table[size_t(v16)]; };
  const std::vector<int32_t> y = unpack(f, d, 0, w, h);
  for (int j = 0; j < h; ++j) {
    auto* row = reinterpret_cast<uint16_t*>(out->data[0] + size_t(j) * out->linesize[0]);
    const int32_t* in = y.data() + size_t(j) * w;
    for (int i = 0; i < w; ++i) row[i] = luma[size_t(in[i])];
  }
  const Taps ty(h, ch, siting.centred_y);
  std::vector<int32_t> column(static_cast<size_t>(cw));  // a row interpolated vertically (4 * the sample)
  for (int k = 0; k < 2; ++k) {
    const std::vector<int32_t> c = unpack(f, d, 1 + k, cw, ch);
    for (int j = 0; j < h; ++j) {
      const int32_t* a = c.data() + size_t(ty.lo[size_t(j)]) * cw;
      const int32_t* b = c.data() + size_t(ty.hi[size_t(j)]) * cw;
      const int32_t fb = ty.frac4[size_t(j)], fa = 4 - fb;
      for (int i = 0; i < cw; ++i) column[size_t(i)] = fa * a[i] + fb * b[i];
      auto* row = reinterpret_cast<uint16_t*>(out->data[1 + k] + size_t(j) * out->linesize[1 + k]);
      // Columns 2i and 2i+1 from chroma columns i-1, i, i+1 (clamped):
      // co-sited, on i and halfway to i+1; centred, a quarter before and
      // after i.
      for (int i = 0; i < cw; ++i) {
        const int32_t prev = column[size_t(std::max(i - 1, 0))], here = column[size_t(i)],
                      next = column[size_t(std::min(i + 1, cw - 1))];
        const int32_t even = siting.centred_x ? prev + 3 * here : 4 * here;
        const int32_t odd = siting.centred_x ? 3 * here + next : 2 * (here + next);
        row[2 * i] = chroma16(even);
        if (2 * i + 1 < w) row[2 * i + 1] = chroma16(odd);
      }
    }
  }
}

}  // namespace clipfind::video::detail
