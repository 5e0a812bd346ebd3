// The CPU reference for clip::cuda::yuv420_to_rgb (nv12_to_rgb.cuh), in
// double precision, written from the formulas in that header rather than
// from the kernel: chroma interpolated bilinearly from its sited positions,
// the matrix from Kr/Kb, rounding at the end; rotation by forward mapping.
// Also the CPU decoder's (test_decode_colour), and the pictures both convert.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace clipfind::test {

struct YuvPicture {
  int width = 0, height = 0, bits = 8;
  std::vector<uint16_t> y;   // width * height samples (the sample value, not P010's shifted word)
  std::vector<uint16_t> uv;  // cw * ch * 2, Cb Cr interleaved, cw = (width+1)/2, ch = (height+1)/2
};

struct YuvConversion {
  double kr = 0.299, kb = 0.114;
  bool full_range = false;
  bool centred_x = false, centred_y = true;
  int rotation = 0;
};

// Smooth ramps, flat blocks with sharp edges and noise, over the whole legal
// (or full) range, so clamping and every interpolation weight are exercised.
inline YuvPicture make_yuv_picture(int w, int h, int bits, bool full, uint32_t seed) {
  YuvPicture p;
  p.width = w, p.height = h, p.bits = bits;
  const int cw = (w + 1) / 2, ch = (h + 1) / 2, s = 1 << (bits - 8);
  const int lo = full ? 0 : 16 * s, yhi = full ? (1 << bits) - 1 : 235 * s, chi = full ? (1 << bits) - 1 : 240 * s;
  uint32_t r = seed;
  auto rnd = [&] { return r = r * 1664525u + 1013904223u, r >> 8; };
  p.y.resize(size_t(w) * h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      p.y[size_t(y) * w + x] =
          uint16_t((x / 9 + y / 7) % 3 == 0 ? lo + rnd() % (yhi - lo + 1) : lo + (yhi - lo) * (x + y) / (w + h));
  p.uv.resize(size_t(cw) * ch * 2);
  for (int y = 0; y < ch; ++y)
    for (int x = 0; x < cw; ++x)
      for (int k = 0; k < 2; ++k)
        p.uv[(size_t(y) * cw + x) * 2 + k] =
            uint16_t((x / 6 + y / 4) % 2 ? lo + (x / 6 * 7919 + y / 4 * 104729 + k * 31) % 97 * (chi - lo) / 96
                                         : lo + (chi - lo) * (k ? y : x) / (k ? ch : cw));
  return p;
}

inline std::vector<uint8_t> yuv_to_rgb_reference(const YuvPicture& p, const YuvConversion& c, int* out_w, int* out_h) {
  const int w = p.width, h = p.height, cw = (w + 1) / 2, ch = (h + 1) / 2;
  const double s = std::ldexp(1.0, p.bits - 8), max = std::ldexp(1.0, p.bits) - 1;
  auto chroma = [&](int comp, double u, double v) {
    u = std::clamp(u, 0.0, double(cw - 1));
    v = std::clamp(v, 0.0, double(ch - 1));
    const int u0 = int(u), v0 = int(v), u1 = std::min(u0 + 1, cw - 1), v1 = std::min(v0 + 1, ch - 1);
    const double fu = u - u0, fv = v - v0;
    auto at = [&](int i, int j) { return double(p.uv[(size_t(j) * cw + i) * 2 + comp]); };
    return (1 - fv) * ((1 - fu) * at(u0, v0) + fu * at(u1, v0)) + fv * ((1 - fu) * at(u0, v1) + fu * at(u1, v1));
  };
  const bool swap = c.rotation == 90 || c.rotation == 270;
  *out_w = swap ? h : w;
  *out_h = swap ? w : h;
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  const double kg = 1 - c.kr - c.kb;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double u = (x - (c.centred_x ? 0.5 : 0.0)) / 2, v = (y - (c.centred_y ? 0.5 : 0.0)) / 2;
      const double Y = p.y[size_t(y) * w + x], cb = chroma(0, u, v), cr = chroma(1, u, v);
      const double yn = c.full_range ? Y / max : (Y - 16 * s) / (219 * s);
      const double cbn = (cb - 128 * s) / (c.full_range ? max : 224 * s);
      const double crn = (cr - 128 * s) / (c.full_range ? max : 224 * s);
      const double r = yn + 2 * (1 - c.kr) * crn, b = yn + 2 * (1 - c.kb) * cbn;
      const double g = (yn - c.kr * r - c.kb * b) / kg;
      // Where the stored pixel (x, y) lands once turned clockwise.
      int dx = x, dy = y;
      if (c.rotation == 90) dx = h - 1 - y, dy = x;
      if (c.rotation == 180) dx = w - 1 - x, dy = h - 1 - y;
      if (c.rotation == 270) dx = y, dy = w - 1 - x;
      uint8_t* o = &rgb[(size_t(dy) * *out_w + dx) * 3];
      const double vals[3] = {r, g, b};
      for (int k = 0; k < 3; ++k) o[k] = uint8_t(std::clamp(std::lround(vals[k] * 255), 0L, 255L));
    }
  return rgb;
}

}  // namespace clipfind::test
