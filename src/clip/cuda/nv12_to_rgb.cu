#include <string>

#include "clip/cuda/nv12_to_rgb.cuh"

namespace clip::cuda {
namespace {

// Everything the kernel needs, reduced on the host to a few floats.
struct Coeffs {
  float y_off, y_scale;  // Y' = (Y - y_off) * y_scale, all in 0..1 units of 255 after *255
  float c_off, c_scale;  // C' = (C - c_off) * c_scale
  float rv, gu, gv, bu;  // R = Y' + rv Cr', G = Y' - gu Cb' - gv Cr', B = Y' + bu Cb'
  float cx0, cy0;        // luma position of chroma sample 0, in chroma units (0 or 0.25)
};

Coeffs coeffs_for(const Yuv420Frame& f) {
  double kr = 0.299, kb = 0.114;
  if (f.matrix == YuvMatrix::bt709) kr = 0.2126, kb = 0.0722;
  if (f.matrix == YuvMatrix::bt2020) kr = 0.2627, kb = 0.0593;
  const double kg = 1.0 - kr - kb;
  const double s = double(1 << (f.bit_depth - 8));
  const double max = double((1 << f.bit_depth) - 1);
  Coeffs c;
  // Scaled by 255 here so the kernel's results are already 8-bit levels.
  c.y_off = f.full_range ? 0.0f : float(16 * s);
  c.y_scale = float(255.0 / (f.full_range ? max : 219 * s));
  c.c_off = float(128 * s);
  c.c_scale = float(255.0 / (f.full_range ? max : 224 * s));
  c.rv = float(2 * (1 - kr));
  c.bu = float(2 * (1 - kb));
  c.gu = float(2 * kb * (1 - kb) / kg);
  c.gv = float(2 * kr * (1 - kr) / kg);
  // Luma x sits at chroma coordinate (x - offset) / 2.
  c.cx0 = f.chroma_centred_x ? 0.25f : 0.0f;
  c.cy0 = f.chroma_centred_y ? 0.25f : 0.0f;
  return c;
}

template <typename T>
__device__ __forceinline__ float sample(const void* plane, size_t pitch, int x, int y, int shift) {
  const T* row = reinterpret_cast<const T*>(static_cast<const uint8_t*>(plane) + size_t(y) * pitch);
  return float(unsigned(row[x]) >> shift);
}

__device__ __forceinline__ uint8_t to_byte(float v) { return uint8_t(fminf(fmaxf(rintf(v), 0.0f), 255.0f)); }

// One thread per output pixel: reads its luma sample and the four chroma
// pairs around it (neighbours share them through L1).
template <typename T>
__global__ void yuv420_to_rgb_kernel(Yuv420Frame f, Coeffs k, uint8_t* __restrict__ rgb, size_t rgb_pitch, int out_w,
                                     int out_h) {
  const int ox = blockIdx.x * blockDim.x + threadIdx.x;
  const int oy = blockIdx.y * blockDim.y + threadIdx.y;
  if (ox >= out_w || oy >= out_h) return;
  // The stored pixel shown at (ox, oy) once turned clockwise (video/rotate.cpp).
  int x, y;
  switch (f.rotation) {
    case 90:
      x = oy;
      y = f.height - 1 - ox;
      break;
    case 180:
      x = f.width - 1 - ox;
      y = f.height - 1 - oy;
      break;
    case 270:
      x = f.width - 1 - oy;
      y = ox;
      break;
    default:
      x = ox;
      y = oy;
      break;
  }
  const int shift = sizeof(T) == 2 ? 16 - f.bit_depth : 0;
  const float luma = (sample<T>(f.luma, f.luma_pitch, x, y, shift) - k.y_off) * k.y_scale;
  const int cw = (f.width + 1) >> 1, ch = (f.height + 1) >> 1;
  const float u = fmaxf(0.5f * x - k.cx0, 0.0f), v = fmaxf(0.5f * y - k.cy0, 0.0f);
  const int u0 = min(int(u), cw - 1), v0 = min(int(v), ch - 1);
  const int u1 = min(u0 + 1, cw - 1), v1 = min(v0 + 1, ch - 1);
  const float fu = u - float(u0) > 1.0f ? 1.0f : u - float(u0), fv = v - float(v0) > 1.0f ? 1.0f : v - float(v0);
  float cb = 0.0f, cr = 0.0f;
  const int cols[2] = {u0, u1};
  const int rows[2] = {v0, v1};
  const float wu[2] = {1.0f - fu, fu};
  const float wv[2] = {1.0f - fv, fv};
#pragma unroll
  for (int j = 0; j < 2; ++j) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float w = wu[i] * wv[j];
      cb += w * sample<T>(f.chroma, f.chroma_pitch, 2 * cols[i], rows[j], shift);
      cr += w * sample<T>(f.chroma, f.chroma_pitch, 2 * cols[i] + 1, rows[j], shift);
    }
  }
  cb = (cb - k.c_off) * k.c_scale;
  cr = (cr - k.c_off) * k.c_scale;
  uint8_t* out = rgb + size_t(oy) * rgb_pitch + size_t(ox) * 3;
  out[0] = to_byte(luma + k.rv * cr);
  out[1] = to_byte(luma - k.gu * cb - k.gv * cr);
  out[2] = to_byte(luma + k.bu * cb);
}

}  // namespace

void yuv420_to_rgb(const Exec& exec, const Yuv420Frame& f, uint8_t* rgb, size_t rgb_pitch) {
  const char* op = "yuv420_to_rgb";
  require(f.luma && f.chroma && rgb, op, "null plane or output pointer");
  require(f.width > 0 && f.height > 0, op, "bad size " + std::to_string(f.width) + "x" + std::to_string(f.height));
  require(f.bit_depth == 8 || f.bit_depth == 10, op,
          "bit depth must be 8 (NV12) or 10 (P010), not " + std::to_string(f.bit_depth));
  require(f.rotation == 0 || f.rotation == 90 || f.rotation == 180 || f.rotation == 270, op,
          "rotation must be 0, 90, 180 or 270, not " + std::to_string(f.rotation));
  const size_t bytes = f.bit_depth == 8 ? 1 : 2;
  require(f.luma_pitch >= bytes * size_t(f.width), op, "luma pitch smaller than a row");
  require(f.chroma_pitch >= bytes * 2 * size_t((f.width + 1) / 2), op, "chroma pitch smaller than a row");
  const int out_w = upright_width(f), out_h = upright_height(f);
  require(rgb_pitch >= 3 * size_t(out_w), op, "output pitch smaller than a row");
  const dim3 block(32, 8);
  const dim3 grid((out_w + block.x - 1) / block.x, (out_h + block.y - 1) / block.y);
  const Coeffs k = coeffs_for(f);
  if (f.bit_depth == 8) {
    yuv420_to_rgb_kernel<uint8_t><<<grid, block, 0, exec.stream>>>(f, k, rgb, rgb_pitch, out_w, out_h);
  } else {
    yuv420_to_rgb_kernel<uint16_t><<<grid, block, 0, exec.stream>>>(f, k, rgb, rgb_pitch, out_w, out_h);
  }
  CLIP_CHECK_LAUNCH(exec, op);
}

}  // namespace clip::cuda
