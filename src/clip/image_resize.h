// Internal to preprocessing: the bicubic resize computing only a window of
// its output. Not part of the public API (that is resize_bicubic in
// preprocess.h).
#pragma once
#include "clip/image.h"
#include "clip/image_codecs.h"  // kMaxImagePixels

namespace clip::detail {

// The pixels [x0, x0 + width) x [y0, y0 + height) of
// resize_bicubic(src, out_width, out_height), byte for byte, without
// computing the rest: each output pixel depends only on its own filter
// taps, so a center crop needs only the rows and columns it keeps. This is
// what keeps a 1 x 100000 image preprocessed at 224 (a 224 x 22400000
// resize) small and fast. Windows above kMaxImagePixels are refused.
Image resize_bicubic_window(const Image& src, int out_width, int out_height, int x0, int y0,
                            int width, int height);

}  // namespace clip::detail
