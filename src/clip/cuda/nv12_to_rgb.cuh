// Colour conversion on the GPU: a decoded 4:2:0 picture with interleaved
// chroma (NV12, or P010 for 10-bit: NVDEC's output formats) to the 8-bit
// interleaved RGB that GpuPreprocessor takes, with the stream's matrix,
// range and chroma siting, turned upright by the display rotation.
//
// What it computes, per output pixel (the same as swscale with full chroma
// interpolation, SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT |
// SWS_FULL_CHR_H_INP, told the same siting):
//   chroma: bilinear between the two nearest chroma samples in each axis,
//           which sit at luma x = 2j + (centred_x ? 0.5 : 0) and
//           y = 2i + (centred_y ? 0.5 : 0); edges clamp;
//   limited range, n bits (s = 2^(n-8)): Y' = (Y - 16s) / 219s,
//           C' = (C - 128s) / 224s; full range: Y' = Y / (2^n - 1),
//           C' = (C - 2^(n-1)) / (2^n - 1);
//   R = Y' + 2(1-Kr) Cr', B = Y' + 2(1-Kb) Cb', G = (Y' - Kr R - Kb B) / Kg,
//   each rounded from 255 x, clamped to [0, 255].
#pragma once
#include <cstddef>
#include <cstdint>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// Kr/Kb of ITU-R BT.601 (0.299/0.114), BT.709 (0.2126/0.0722) and BT.2020
// non-constant luminance (0.2627/0.0593).
enum class YuvMatrix { bt601, bt709, bt2020 };

// A 4:2:0 picture with interleaved CbCr in device memory.
struct Yuv420Frame {
  const void* luma = nullptr;    // width x height samples
  size_t luma_pitch = 0;         // bytes between rows
  const void* chroma = nullptr;  // (width+1)/2 x (height+1)/2 CbCr pairs
  size_t chroma_pitch = 0;
  int width = 0, height = 0;  // picture size, as stored (before rotation)
  int bit_depth = 8;          // 8: NV12 (bytes); 10: P010 (16-bit words, the sample in the top 10 bits)
  YuvMatrix matrix = YuvMatrix::bt601;
  bool full_range = false;
  bool chroma_centred_x = false;  // false: co-sited with even columns (H.264/HEVC "left", the default)
  bool chroma_centred_y = true;   // true: between rows (the default); false: co-sited ("top-left")
  int rotation = 0;               // clockwise degrees to turn it upright: 0, 90, 180 or 270
};

// The upright picture's size: width/height swapped for 90 and 270.
inline int upright_width(const Yuv420Frame& f) { return f.rotation % 180 ? f.height : f.width; }
inline int upright_height(const Yuv420Frame& f) { return f.rotation % 180 ? f.width : f.height; }

// Writes upright_width x upright_height RGB pixels to rgb (device memory,
// rgb_pitch >= 3 * upright_width bytes between rows). On exec.stream, which
// must be ordered after whatever wrote the frame. Checks its arguments
// (clip::Error "yuv420_to_rgb: ..."): planes set, sizes positive, pitches
// large enough, bit depth 8 or 10, rotation a multiple of 90.
void yuv420_to_rgb(const Exec& exec, const Yuv420Frame& frame, uint8_t* rgb, size_t rgb_pitch);

}  // namespace clip::cuda
