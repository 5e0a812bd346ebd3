// Image preprocessing on the GPU: the integer resampling passes of the
// CPU's PIL-exact resize (image_resize.cpp, any of PIL's filters: the taps
// come computed from the CPU's plan), run on uint8 RGB frames already in
// device memory, the last pass also normalising into the float pixels the
// vision tower reads. Same fixed-point weights, same pass order, same
// rounding: the bytes, and so the floats, equal the CPU's.
#pragma once
#include <cstddef>
#include <cstdint>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// A detail::AxisKernel in device memory: output o reads `count[o]` inputs
// from `first[o] - shift` with weights[o * ksize + i] (22 fractional bits).
struct DevAxis {
  const int* first = nullptr;
  const int* count = nullptr;
  const int32_t* weights = nullptr;
  int ksize = 0;
};

// One pass over n images (image z starts src_frame bytes after image z-1),
// producing out_rows x out_cols RGB pixels per image.
//   horizontal: out(r, o) = sum_i src(fixed0 + r, first[o] - shift + i) * w[o][i]
//   vertical:   out(o, c) = sum_i src(first[o] - shift + i, fixed0 + c) * w[o][i]
// each rounded, shifted and clipped to a byte exactly like Pillow.
struct ResamplePass {
  bool horizontal = true;
  DevAxis kernel;
  int shift = 0;
  int fixed0 = 0;  // first source row (horizontal) or column (vertical)
  int src_w = 0;   // source row length, pixels
  int out_rows = 0, out_cols = 0;
};

// Where the last pass writes: float32 [n, 3, crop_h, crop_w] images, the
// pass's output at (place_x, place_y), each byte v of channel c written as
// table[c * 256 + v] (device memory, 768 floats).
struct NormalisedOutput {
  float* pixels = nullptr;
  int crop_w = 0, crop_h = 0;
  int place_x = 0, place_y = 0;
  const float* table = nullptr;
};

// An intermediate pass: bytes to dst (dst_frame bytes per image).
void resample(const Exec& exec, const ResamplePass& pass, const uint8_t* src, size_t src_frame, int n, uint8_t* dst,
              size_t dst_frame);

// The last pass, normalising into out.pixels.
void resample_normalise(const Exec& exec, const ResamplePass& pass, const uint8_t* src, size_t src_frame, int n,
                        const NormalisedOutput& out);

// Every pixel of n output images set to the normalised value of byte 0
// (torchvision's zero padding, when the crop is larger than the image).
void fill_padding(const Exec& exec, const NormalisedOutput& out, int n);

}  // namespace clip::cuda
