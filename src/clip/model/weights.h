// The model's parameters in float32, grouped by role.
//
// Hugging Face names (one table in weights.cpp maps them to these fields):
//   {tower}.encoder.layers.{i}.layer_norm1 / self_attn.{q,k,v,out}_proj /
//   layer_norm2 / mlp.fc1 / mlp.fc2                      -> LayerWeights
//   text_model.embeddings.{token,position}_embedding, text_model.final_layer_norm,
//   text_projection                                       -> TextWeights
//   vision_model.embeddings.{class_embedding,patch_embedding,position_embedding},
//   vision_model.pre_layrnorm, vision_model.post_layernorm,
//   visual_projection                                     -> VisionWeights
// SigLIP (siglip_names in weights.cpp): text_model.head (bias) is the text
// projection; vision_model.embeddings.patch_embedding has a bias, there is
// no class embedding, pre-norm or visual projection; vision_model.head.*
// (probe, attention.in_proj_*, attention.out_proj, layernorm, mlp) is the
// attention pooling head -> AttentionPoolWeights. logit_scale/logit_bias go
// to ClipConfig.
// Linear weights keep the PyTorch layout [out_features, in_features].
#pragma once
#include <filesystem>
#include <optional>
#include <vector>

#include "clip/model/config.h"
#include "clip/tensor.h"

namespace clip {

struct LinearWeights {
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], empty for the bias-free projections
};

struct NormWeights {
  Tensor weight;  // [hidden]
  Tensor bias;    // [hidden]
};

struct LayerWeights {
  NormWeights ln1;
  LinearWeights q, k, v, out;  // each [hidden, hidden]
  NormWeights ln2;
  LinearWeights fc1;  // [intermediate, hidden]
  LinearWeights fc2;  // [hidden, intermediate]
};

struct TextWeights {
  Tensor token_embedding;     // [vocab, hidden]
  Tensor position_embedding;  // [max_positions, hidden]
  std::vector<LayerWeights> layers;
  NormWeights final_ln;
  LinearWeights projection;  // [projection_dim, hidden]: CLIP's text_projection (no bias), SigLIP's head (bias)
};

// SigLIP's multi-head attention pooling (SiglipMultiheadAttentionPoolingHead):
//   a = out(MHA(query = probe, keys/values = post_layernorm(h)));
//   embedding = a + fc2(act(fc1(LN(a))))
struct AttentionPoolWeights {
  Tensor probe;                // [hidden] (stored [1, 1, hidden])
  LinearWeights q, k, v, out;  // in_proj_weight/bias split in three; each [hidden, hidden]
  NormWeights ln;
  LinearWeights fc1, fc2;  // as a layer's MLP
};

struct VisionWeights {
  Tensor class_embedding;     // [hidden]; empty for SigLIP
  Tensor patch_embedding;     // [hidden, channels, patch, patch] (conv)
  Tensor patch_bias;          // [hidden]; SigLIP only (CLIP's conv has no bias)
  Tensor position_embedding;  // [num_positions, hidden]
  NormWeights pre_ln;         // empty for SigLIP
  std::vector<LayerWeights> layers;
  NormWeights post_ln;
  LinearWeights projection;                  // [projection_dim, hidden], no bias; empty for SigLIP
  std::optional<AttentionPoolWeights> head;  // SigLIP
};

struct ModelWeights {
  std::optional<TextWeights> text;
  std::optional<VisionWeights> vision;
};

// A loaded model folder: configuration corrected from the weight shapes, the
// preprocessing settings and the parameters.
struct LoadedModel {
  ClipConfig config;
  PreprocessConfig preprocess;
  ModelWeights weights;
};

// Reads config.json, preprocessor_config.json and the safetensors weights of
// a Hugging Face CLIP folder. Every expected tensor is checked for presence
// and shape; the shapes win over config.json where they determine a number
// (hidden size, layers, vocab, positions, patch size, projection dim), and a
// clip::Error names the file and tensor when they cannot be reconciled.
LoadedModel load_model(const std::filesystem::path& dir);

}  // namespace clip
