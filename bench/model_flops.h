// FLOPs (multiply-adds x2) of one pass of a CLIP or SigLIP tower, the
// yardstick of the GFLOP/s and TFLOP/s that bench_cpu and bench_gpu print.
// Every layer counts on every token, even where the engine runs the last
// layer only for the pooled token.
#pragma once
#include "clip/model/config.h"

namespace bench {

using clip::ClipConfig, clip::TowerConfig, clip::VisionConfig;

// GEMMs + attention of one tower pass over `seq` tokens.
inline double tower_flops(const TowerConfig& c, int seq) {
  const double H = c.hidden_size, I = c.intermediate_size, S = seq;
  const double per_layer = 2 * S * H * (3 * H + H + 2 * I) + 2 * 2 * S * S * H;
  return per_layer * c.num_layers;
}

// One image: the patch convolution, the tower, then CLIP's projection or
// SigLIP's pooling head.
inline double image_flops(const ClipConfig& c) {
  const VisionConfig& v = *c.vision;
  const double patches = double(v.grid()) * v.grid();
  const double S = v.num_positions(), H = v.hidden_size;
  // SigLIP's pooling head: k|v over every token, then one query's out_proj and MLP.
  const double head = v.attention_pool ? 2 * S * H * 2 * H + 4 * S * H + 2 * H * H + 4 * H * v.intermediate_size : 0;
  return tower_flops(v, v.num_positions()) +
         2 * patches * v.num_channels * v.patch_size * v.patch_size * v.hidden_size +
         (v.attention_pool ? head : 2.0 * v.hidden_size * c.projection_dim);
}

// One text of `seq` tokens, with its projection (SigLIP: its head).
inline double text_flops(const ClipConfig& c, int seq) {
  return tower_flops(*c.text, seq) + 2.0 * c.text->hidden_size * c.projection_dim;
}

}  // namespace bench
