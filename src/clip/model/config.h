// Model configuration read from a Hugging Face CLIP or SigLIP folder.
//
// config.json is either a full CLIPConfig / SiglipConfig (text_config +
// vision_config) or the config of a single tower saved from
// CLIPVisionModelWithProjection / CLIPTextModelWithProjection /
// SiglipVisionModel / SiglipTextModel (model_type "clip_vision_model",
// "clip_text_model", "siglip_vision_model", "siglip_text_model"; fields at
// top level). The family comes from model_type, never from a folder name.
// The weights have the last word: load_model() corrects these numbers from
// the tensor shapes and reports disagreements it cannot reconcile.
#pragma once
#include <array>
#include <filesystem>
#include <optional>
#include <string>

namespace clip {

// "clip" or "siglip" (SigLIP and fixed-resolution SigLIP 2 share the architecture).
enum class ModelFamily { Clip, Siglip };
const char* family_name(ModelFamily f);  // "clip" / "siglip"

// "quick_gelu", "gelu" (exact erf) and "gelu_pytorch_tanh" (SigLIP).
enum class Activation { QuickGelu, Gelu, GeluTanh };

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
  // CLIP: causal mask, pooled at the first end token (pooled_position), texts
  // run only as far as the batch needs. SigLIP: no mask, every text padded to
  // max_positions with pad_token_id and pooled at the last position, then a
  // `head` linear layer with a bias (TextWeights::projection).
  bool causal = true;
  bool pool_last = false;
};

struct VisionConfig : TowerConfig {
  int image_size = 224;
  int patch_size = 32;
  int num_channels = 3;
  // CLIP: a class token in front of the patches, pre_layrnorm, pooled at the
  // class token. SigLIP: patches only (the patch conv has a bias), no
  // pre-norm, pooled by the attention head (VisionWeights::head).
  bool class_token = true;
  bool attention_pool = false;
  int grid() const { return patch_size > 0 ? image_size / patch_size : 0; }
  int num_positions() const { return grid() * grid() + (class_token ? 1 : 0); }  // [class token +] patches
};

struct ClipConfig {
  ModelFamily family = ModelFamily::Clip;
  std::optional<TextConfig> text;
  std::optional<VisionConfig> vision;
  // The embedding width of both towers (CLIP: projection_dim; SigLIP: the
  // vision hidden size, which the text head's output must equal).
  int projection_dim = 512;
  // The learned logit_scale (log of the temperature, as stored) and, for
  // SigLIP, logit_bias: a pair's probability is
  // sigmoid(exp(logit_scale) * cos + logit_bias). Empty when the folder's
  // weights do not have them (single-tower checkpoints).
  std::optional<float> logit_scale;
  std::optional<float> logit_bias;
};

// Parses <dir>/config.json. Throws clip::Error naming the file on any problem.
ClipConfig load_clip_config(const std::filesystem::path& config_json);

// PIL's resampling filters, numbered as PIL.Image.Resampling (and
// transformers' PILImageResampling): the "resample" field of
// preprocessor_config.json. Each is reproduced as Image.resize applies it.
enum class Resample { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };
const char* resample_name(Resample r);  // "nearest", "lanczos", "bilinear", ...

// preprocessor_config.json (CLIPImageProcessor or SiglipImageProcessor).
// Missing file: CLIP defaults with crop/size taken from the vision config's
// image_size.
struct PreprocessConfig {
  int shortest_edge = 224;  // "size": {"shortest_edge": N} or an int
  // "size": {"height": H, "width": W} asks transformers for a resize to
  // exactly H x W (aspect ratio not kept); 0 when "size" is a shortest edge.
  // shortest_edge is then min(H, W), so code ignoring these still works.
  int resize_height = 0;
  int resize_width = 0;
  // The size of the preprocessed image: the center crop's ("crop_size":
  // {"height","width"} or an int), or without a crop after an exact H x W
  // resize, H x W.
  int crop_height = 224;
  int crop_width = 224;
  // "resample": the filter of the resize. Absent: bicubic, the default of
  // both CLIPImageProcessor and SiglipImageProcessor.
  Resample resample = Resample::Bicubic;
  bool do_resize = true;
  // Absent: true for CLIPImageProcessor, false for SiglipImageProcessor
  // (which has no crop step).
  bool do_center_crop = true;
  bool do_rescale = true;
  float rescale_factor = 1.0f / 255.0f;
  bool do_normalize = true;
  std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std = {0.26862954f, 0.26130258f, 0.27577711f};
};

// The image_processor_type decides the defaults of absent fields:
// "SiglipImageProcessor..." has an exact default_image_size square resize,
// no crop and mean = std = 0.5; anything else CLIPImageProcessor's. A
// missing file gives the defaults of the family's processor.
PreprocessConfig load_preprocess_config(const std::filesystem::path& json_file, int default_image_size,
                                        ModelFamily family = ModelFamily::Clip);

}  // namespace clip
