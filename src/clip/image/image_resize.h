// Internal to preprocessing: the PIL-exact resize computing only a window
// of its output, and the plan it follows (shared with the CUDA backend, whose
// kernels run the same integer passes and so give the same bytes). Not part
// of the public API (that is resize_image in preprocess.h).
#pragma once
#include <cstdint>
#include <vector>

#include "clip/image/image.h"
#include "clip/image/image_codecs.h"  // kMaxImagePixels
#include "clip/model/config.h"        // Resample

namespace clip::detail {

// Pillow's fixed point: weights carry 22 fractional bits (32 - 8 - 2: 8 bits
// of pixel, 2 of headroom for the negative lobes).
constexpr int kResizePrecisionBits = 32 - 8 - 2;

// One separable pass along an axis: output o is the sum over
// i < count[o] of input[first[o] + i] * weights[o * ksize + i], plus half,
// shifted right by kResizePrecisionBits and clipped to [0, 255]. Every
// filter comes down to this: PIL's convolution filters as their normalised
// taps, nearest neighbour as one tap of weight 1 (an exact copy).
struct AxisKernel {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;  // outputs * ksize, zero padded

  int outputs() const { return static_cast<int>(first.size()); }
  int span_begin() const { return first.front(); }
  int span_end() const { return first.back() + count.back(); }  // first[] only grows
};

// How the window [x0, x0 + width) x [y0, y0 + height) of a resize of a
// src_w x src_h image to out_w x out_h is computed, in Pillow's pass order.
struct ResizePlan {
  bool horizontal = false;      // the width changes: a horizontal pass
  bool vertical = false;        // the height changes: a vertical pass
  bool vertical_first = false;  // both passes, vertical one first (Pillow 13)
  int x0 = 0, y0 = 0, width = 0, height = 0;
  AxisKernel kh;  // over the window's columns; first[] in source columns
  AxisKernel kv;  // over the window's rows; first[] in source rows
  // With both passes, the intermediate image: vertical first, the source
  // columns [span0, span0 + span) the horizontal pass reads (height rows);
  // horizontal first, the source rows [span0, span0 + span) the vertical
  // pass reads (width columns).
  int span0 = 0, span = 0;
};

// Checks the sizes (throws clip::Error) and computes the kernels of `filter`.
ResizePlan plan_resize(int src_w, int src_h, int out_w, int out_h, int x0, int y0, int width, int height,
                       Resample filter);

// The pixels [x0, x0 + width) x [y0, y0 + height) of
// resize_image(src, out_width, out_height, filter), byte for byte, without
// computing the rest: each output pixel depends only on its own filter
// taps, so a center crop needs only the rows and columns it keeps. This is
// what keeps a 1 x 100000 image preprocessed at 224 (a 224 x 22400000
// resize) small and fast. Windows above kMaxImagePixels are refused.
Image resize_window(const ImageView& src, Resample filter, int out_width, int out_height, int x0, int y0, int width,
                    int height);

// Runs a plan from plan_resize on an image of the size it was made for.
Image resize_with_plan(const ImageView& src, ResizePlan plan);

}  // namespace clip::detail
