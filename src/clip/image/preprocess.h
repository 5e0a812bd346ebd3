// Image preprocessing as openai/CLIP (PIL) and transformers' CLIP / SigLIP
// image processors on PIL images do it: resize (the short side, or to exactly
// H x W) with PIL's antialiased filter (bicubic unless the config says
// otherwise), center crop at round((h - size) / 2) (CLIP), scale to [0,1],
// normalise with mean/std.
#pragma once
#include "clip/image/image.h"
#include "clip/model/config.h"
#include "clip/tensor.h"

namespace clip {

// PIL's Image.resize((out_width, out_height), filter) on 8-bit RGB: for the
// convolution filters separable, antialiased when shrinking, fixed-point
// like PIL; nearest neighbour as PIL picks pixels. Results agree to the byte.
Image resize_image(const Image& src, int out_width, int out_height, Resample filter);
// resize_image(src, out_width, out_height, Resample::Bicubic).
Image resize_bicubic(const Image& src, int out_width, int out_height);

// Output size of the short-side resize: short side -> `shortest_edge`,
// long side -> int(shortest_edge * long / short) (as torchvision / HF).
void short_side_size(int width, int height, int shortest_edge, int* out_w, int* out_h);

Image center_crop(const Image& src, int crop_width, int crop_height);

// Whole pipeline for one image into `out` ([3, crop_h, crop_w] floats, CHW).
void preprocess_image(const Image& image, const PreprocessConfig& cfg, float* out);
void preprocess_image(const ImageView& image, const PreprocessConfig& cfg, float* out);

// [n, 3, crop_h, crop_w].
Tensor preprocess_batch(const std::vector<Image>& images, const PreprocessConfig& cfg);
Tensor preprocess_batch(const std::vector<ImageView>& images, const PreprocessConfig& cfg);

}  // namespace clip
