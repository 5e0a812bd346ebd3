// Internal to preprocessing: everything about preprocessing one image size
// that does not depend on its pixels -- the resize window and the per-axis
// fixed-point taps of the config's filter, where the window lands in the
// crop (or, for an exact H x W resize without a crop, the whole output), and
// the byte -> normalised value tables. The CPU path (preprocess.cpp) and the
// CUDA kernels (cuda/preprocess.cu) both follow it, which is why they give
// the same floats.
#pragma once
#include "clip/image/image_resize.h"
#include "clip/model/config.h"

namespace clip::detail {

struct PreprocessPlan {
  ResizePlan resize;           // the part of the resized image the crop keeps
  int crop_w = 0, crop_h = 0;  // output size
  // Where that part sits in the crop; around it is torchvision's zero
  // padding (byte 0, so table[c][0] after normalisation).
  int place_x = 0, place_y = 0;
  float table[3][256] = {};  // channel, byte -> (byte / 255 - mean) / std
};

// Throws clip::Error for invalid configs or sizes.
PreprocessPlan plan_preprocess(int width, int height, const PreprocessConfig& cfg);

}  // namespace clip::detail
