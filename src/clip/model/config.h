// Model configuration read from a Hugging Face CLIP folder.
//
// config.json is either a full CLIPConfig (text_config + vision_config +
// projection_dim) or the config of a single tower saved from
// CLIPVisionModelWithProjection / CLIPTextModelWithProjection
// (model_type "clip_vision_model" / "clip_text_model", fields at top level).
// The weights have the last word: load_model() corrects these numbers from
// the tensor shapes and reports disagreements it cannot reconcile.
#pragma once
#include <array>
#include <filesystem>
#include <optional>
#include <string>

namespace clip {

enum class Activation { QuickGelu, Gelu };  // "quick_gelu" and "gelu" (exact erf)

struct TowerConfig {
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  float layer_norm_eps = 1e-5f;
  Activation activation = Activation::QuickGelu;
  int head_dim() const { return num_heads > 0 ? hidden_size / num_heads : 0; }
};

struct TextConfig : TowerConfig {
  int vocab_size = 0;
  int max_positions = 77;  // max_position_embeddings: the context length
  int bos_token_id = 49406;
  int eos_token_id = 49407;
  int pad_token_id = 1;
};

struct VisionConfig : TowerConfig {
  int image_size = 224;
  int patch_size = 32;
  int num_channels = 3;
  int grid() const { return patch_size > 0 ? image_size / patch_size : 0; }
  int num_positions() const { return grid() * grid() + 1; }  // patches + class token
};

struct ClipConfig {
  std::optional<TextConfig> text;
  std::optional<VisionConfig> vision;
  int projection_dim = 512;
};

// Parses <dir>/config.json. Throws clip::Error naming the file on any problem.
ClipConfig load_clip_config(const std::filesystem::path& config_json);

// preprocessor_config.json (CLIPImageProcessor). Missing file: CLIP defaults
// with crop/size taken from the vision config's image_size.
struct PreprocessConfig {
  int shortest_edge = 224;  // "size": {"shortest_edge": N} or an int
  // "size": {"height": H, "width": W} asks transformers for a resize to
  // exactly H x W (aspect ratio not kept); 0 when "size" is a shortest edge.
  // shortest_edge is then min(H, W), so code ignoring these still works.
  int resize_height = 0;
  int resize_width = 0;
  int crop_height = 224;  // "crop_size": {"height","width"} or an int
  int crop_width = 224;
  bool do_resize = true;
  bool do_center_crop = true;
  bool do_rescale = true;
  float rescale_factor = 1.0f / 255.0f;
  bool do_normalize = true;
  std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std = {0.26862954f, 0.26130258f, 0.27577711f};
};

PreprocessConfig load_preprocess_config(const std::filesystem::path& json_file, int default_image_size);

}  // namespace clip
