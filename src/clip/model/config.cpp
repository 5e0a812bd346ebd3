// config.json and preprocessor_config.json of a Hugging Face CLIP folder.
//
// Absent fields take the defaults of transformers' CLIPTextConfig /
// CLIPVisionConfig / CLIPImageProcessor, so a config trimmed to its
// non-default fields reads as transformers reads it. load_model() then
// corrects the sizes from the weight shapes.
#include "clip/model/config.h"

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

#include "clip/error.h"
#include "clip/model/json_fields.h"

namespace clip {

namespace {

using json = nlohmann::json;
using detail::JsonFields;

Activation read_activation(const JsonFields& f, const char* def) {
  const std::string act = f.get_string("hidden_act", def);
  if (act == "quick_gelu") return Activation::QuickGelu;
  if (act == "gelu") return Activation::Gelu;  // exact erf form, as torch's nn.GELU()
  if (act == "gelu_pytorch_tanh") return Activation::GeluTanh;
  f.fail("hidden_act", "'" + act + "' is not supported (quick_gelu, gelu or gelu_pytorch_tanh)");
}

// Fields shared by both towers; `d` carries the tower's defaults.
void read_tower(const JsonFields& f, TowerConfig& d, ModelFamily family) {
  d.hidden_size = f.get_int("hidden_size", d.hidden_size, 1);
  d.intermediate_size = f.get_int("intermediate_size", d.intermediate_size, 1);
  d.num_layers = f.get_int("num_hidden_layers", d.num_layers, 0);
  d.num_heads = f.get_int("num_attention_heads", d.num_heads, 1);
  d.layer_norm_eps = f.get_float("layer_norm_eps", family == ModelFamily::Siglip ? 1e-6f : 1e-5f);
  d.activation = read_activation(f, family == ModelFamily::Siglip ? "gelu_pytorch_tanh" : "quick_gelu");
}

// transformers.CLIPTextConfig / SiglipTextConfig defaults.
TextConfig read_text(const JsonFields& f, ModelFamily family) {
  const bool siglip = family == ModelFamily::Siglip;
  TextConfig c;
  c.hidden_size = siglip ? 768 : 512;
  c.intermediate_size = siglip ? 3072 : 2048;
  c.num_layers = 12;
  c.num_heads = siglip ? 12 : 8;
  read_tower(f, c, family);
  c.vocab_size = f.get_int("vocab_size", siglip ? 32000 : 49408, 1);
  c.max_positions = f.get_int("max_position_embeddings", siglip ? 64 : 77, 1);
  c.causal = !siglip;
  c.pool_last = siglip;
  // Old checkpoints (openai/clip-vit-*) say bos 0 / eos 2; the text model
  // then pools at argmax(ids) instead of the first eos, so keep them as read.
  c.bos_token_id = f.get_int("bos_token_id", 49406, INT_MIN);
  c.eos_token_id = f.get_int("eos_token_id", 49407, INT_MIN);
  c.pad_token_id = f.get_int("pad_token_id", 1, INT_MIN);
  return c;
}

// transformers.CLIPVisionConfig / SiglipVisionConfig defaults.
VisionConfig read_vision(const JsonFields& f, ModelFamily family) {
  const bool siglip = family == ModelFamily::Siglip;
  VisionConfig c;
  c.hidden_size = 768;
  c.intermediate_size = 3072;
  c.num_layers = 12;
  c.num_heads = 12;
  read_tower(f, c, family);
  c.image_size = f.get_int("image_size", 224, 1);
  c.patch_size = f.get_int("patch_size", siglip ? 16 : 32, 1);
  c.num_channels = f.get_int("num_channels", 3, 1);
  c.class_token = !siglip;
  c.attention_pool = siglip;
  // Without its pooling head a SigLIP vision model has no pooler_output:
  // nothing that SiglipModel would compare with a text.
  if (siglip && !f.get_bool("vision_use_head", true))
    f.fail("vision_use_head", "is false: a SigLIP vision tower without its pooling head gives no image embedding");
  return c;
}

// The sub-config object of a CLIPConfig; very old files used "<name>_dict".
// Absent: transformers builds the default sub-config, so do we.
json sub_config(const JsonFields& top, const char* name, const char* old_name) {
  for (const char* key : {name, old_name}) {
    if (const json* v = top.get(key)) {
      if (!v->is_object()) top.fail(key, "must be a JSON object");
      return *v;
    }
  }
  return json::object();
}

}  // namespace

const char* family_name(ModelFamily f) { return f == ModelFamily::Siglip ? "siglip" : "clip"; }

ClipConfig load_clip_config(const std::filesystem::path& config_json) {
  const json j = detail::read_json_file(config_json);
  const std::string file = config_json.string();
  if (!j.is_object()) throw Error(file + ": not a JSON object");
  const JsonFields top(j, file);

  ClipConfig cfg;
  cfg.projection_dim = top.get_int("projection_dim", 512, 1);
  const std::string type = top.get_string("model_type", "");
  const bool siglip = type.rfind("siglip", 0) == 0;
  cfg.family = siglip ? ModelFamily::Siglip : ModelFamily::Clip;
  if (type == "clip_vision_model" || type == "siglip_vision_model") {  // a vision tower saved alone
    cfg.vision = read_vision(top, cfg.family);
  } else if (type == "clip_text_model" || type == "siglip_text_model") {  // a text tower saved alone
    cfg.text = read_text(top, cfg.family);
  } else if (type == "clip" || type == "siglip" ||
             (type.empty() && (top.has("text_config") || top.has("vision_config")))) {
    // CLIP's sub-configs carry a projection_dim of their own (512 by
    // default); CLIPModel uses only the top-level one. SigLIP has none: the
    // embedding width is the vision hidden size.
    const json tj = sub_config(top, "text_config", "text_config_dict");
    const json vj = sub_config(top, "vision_config", "vision_config_dict");
    cfg.text = read_text(JsonFields(tj, file, "text_config."), cfg.family);
    cfg.vision = read_vision(JsonFields(vj, file, "vision_config."), cfg.family);
  } else if (type == "siglip2" || type == "siglip2_vision_model" || type == "siglip2_text_model") {
    throw Error(file + ": model_type '" + type +
                "' is a SigLIP 2 NaFlex checkpoint (Siglip2Model, variable resolution), which clipfind does not "
                "run yet; the fixed-resolution SigLIP 2 checkpoints (model_type 'siglip') load");
  } else if (type.empty()) {
    throw Error(file + ": no model_type and no text_config/vision_config; not a CLIP or SigLIP config");
  } else {
    throw Error(file + ": model_type '" + type +
                "' is not supported (clip, clip_vision_model, clip_text_model, siglip, siglip_vision_model or "
                "siglip_text_model)");
  }
  return cfg;
}

namespace {

// "size"/"crop_size": an int, {"shortest_edge": N} or {"height": H, "width": W}.
struct SizeField {
  int shortest_edge = 0;      // set for an int or shortest_edge
  int height = 0, width = 0;  // set for height/width
};

SizeField read_size(const JsonFields& f, const char* key, int def) {
  SizeField s;
  const json* v = f.get(key);
  if (!v) {
    s.shortest_edge = s.height = s.width = def;
    return s;
  }
  if (v->is_number()) {
    s.shortest_edge = s.height = s.width = f.get_int(key, def, 1);
    return s;
  }
  if (!v->is_object()) f.fail(key, "must be an integer or an object");
  auto field = [&](const char* k) -> int {
    const auto it = v->find(k);
    if (it == v->end() || !it->is_number_integer() || it->get<long long>() < 1 || it->get<long long>() > INT_MAX)
      f.fail(key, std::string("field \"") + k + "\" must be a positive integer");
    return static_cast<int>(it->get<long long>());
  };
  if (v->contains("shortest_edge")) {
    s.shortest_edge = s.height = s.width = field("shortest_edge");
  } else if (v->contains("height") && v->contains("width")) {
    s.height = field("height");
    s.width = field("width");
  } else {
    f.fail(key, "needs \"shortest_edge\" or \"height\" and \"width\"");
  }
  return s;
}

std::array<float, 3> read_rgb(const JsonFields& f, const char* key, std::array<float, 3> def) {
  const json* v = f.get(key);
  if (!v) return def;
  if (v->is_number()) {  // one value for all channels
    const float x = v->get<float>();
    return {x, x, x};
  }
  if (!v->is_array() || v->size() != 3 || !(*v)[0].is_number() || !(*v)[1].is_number() || !(*v)[2].is_number())
    f.fail(key, "must be a list of 3 numbers");
  return {(*v)[0].get<float>(), (*v)[1].get<float>(), (*v)[2].get<float>()};
}

// "resample": PIL's filter number. Only PIL's six filters (transformers'
// PILImageResampling): Pillow 13's MKS2013 / MKS2021 (6, 7) are not
// accepted by transformers either.
Resample read_resample(const JsonFields& f) {
  const json* v = f.get("resample");
  if (!v) return Resample::Bicubic;
  if (!v->is_number_integer() || v->get<long long>() < 0 || v->get<long long>() > 5) {
    f.fail("resample", "is " + v->dump() +
                           ": not a PIL filter number (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)");
  }
  return static_cast<Resample>(v->get<int>());
}

}  // namespace

const char* resample_name(Resample r) {
  switch (r) {
    case Resample::Nearest: return "nearest";
    case Resample::Lanczos: return "lanczos";
    case Resample::Bilinear: return "bilinear";
    case Resample::Bicubic: return "bicubic";
    case Resample::Box: return "box";
    case Resample::Hamming: return "hamming";
  }
  return "unknown";
}

PreprocessConfig load_preprocess_config(const std::filesystem::path& json_file, int default_image_size,
                                        ModelFamily family) {
  PreprocessConfig p;
  p.shortest_edge = p.crop_height = p.crop_width = default_image_size;
  std::error_code ec;
  if (!std::filesystem::exists(json_file, ec)) {  // a model without its processor file
    if (family == ModelFamily::Siglip) {          // SiglipImageProcessor's defaults
      p.resize_height = p.resize_width = default_image_size;
      p.do_center_crop = false;
      p.mean = p.std = {0.5f, 0.5f, 0.5f};
    }
    return p;
  }

  const json j = detail::read_json_file(json_file);
  const std::string file = json_file.string();
  if (!j.is_object()) throw Error(file + ": not a JSON object");
  const JsonFields f(j, file);

  // SiglipImageProcessor (and its Fast / Pil variants) differs from
  // CLIPImageProcessor only in its defaults: an exact square resize, no
  // crop, mean = std = 0.5. Siglip2ImageProcessor (NaFlex: patches at the
  // image's own aspect ratio) is another pipeline altogether.
  const std::string type = f.get_string("image_processor_type", "");
  if (type.rfind("Siglip2ImageProcessor", 0) == 0) {
    f.fail("image_processor_type", "'" + type +
                                       "' (SigLIP 2 NaFlex, variable resolution) is not supported; fixed-resolution "
                                       "checkpoints use SiglipImageProcessor");
  }
  const bool siglip = type.rfind("SiglipImageProcessor", 0) == 0;
  if (siglip) {
    p.do_center_crop = false;
    p.mean = p.std = {0.5f, 0.5f, 0.5f};
  }

  SizeField size = read_size(f, "size", default_image_size);
  if (siglip && !f.get("size")) size.shortest_edge = 0;  // {"height": N, "width": N}
  if (size.shortest_edge > 0) {
    p.shortest_edge = size.shortest_edge;
  } else {
    p.resize_height = size.height;
    p.resize_width = size.width;
    p.shortest_edge = std::min(size.height, size.width);
  }
  const SizeField crop = read_size(f, "crop_size", default_image_size);
  p.crop_height = crop.height;
  p.crop_width = crop.width;

  p.resample = read_resample(f);
  p.do_resize = f.get_bool("do_resize", p.do_resize);
  p.do_center_crop = f.get_bool("do_center_crop", p.do_center_crop);
  p.do_rescale = f.get_bool("do_rescale", p.do_rescale);
  p.rescale_factor = f.get_float("rescale_factor", p.rescale_factor);
  p.do_normalize = f.get_bool("do_normalize", p.do_normalize);
  p.mean = read_rgb(f, "image_mean", p.mean);
  p.std = read_rgb(f, "image_std", p.std);
  for (float s : p.std)
    if (!(s != 0.0f)) f.fail("image_std", "must not contain 0");
  // Without a crop, an exact resize decides the output size: crop_size
  // (which SiglipImageProcessor does not even have) plays no part.
  if (p.do_resize && !p.do_center_crop && p.resize_height > 0) {
    p.crop_height = p.resize_height;
    p.crop_width = p.resize_width;
  }
  return p;
}

}  // namespace clip
