// config.json / preprocessor_config.json parsing and load_model on model
// folders: transformers-layout folders load with the right values; missing or
// mis-shaped tensors and configs the weights contradict give a clip::Error
// naming the file and the tensor or field.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "clip/clip.h"
#include "clip/error.h"
#include "clip/image/preprocess.h"
#include "clip/model/config.h"
#include "clip/model/to_f32.h"
#include "clip/model/weight_source.h"
#include "clip/model/weights.h"
#include "safetensors_writer.h"
#include "test_util.h"

using namespace cliptest;

namespace {

clip::ClipConfig config_from(const TempDir& tmp, const json& j) {
  write_text(tmp.path() / "config.json", j.dump());
  return clip::load_clip_config(tmp.path() / "config.json");
}

void expect_tensor(const clip::Tensor& got, const FloatTensor& want, const std::string& dtype) {
  ASSERT_EQ(got.shape, want.shape) << want.name;
  for (size_t i = 0; i < want.values.size(); ++i)
    ASSERT_EQ(got.data[i], quantize(want.values[i], dtype)) << want.name << "[" << i << "]";
}

// Every loaded tensor under its Hugging Face name (the test's own copy of
// weights.cpp's table, so a mapping mistake there cannot hide).
std::map<std::string, const clip::Tensor*> named_tensors(const clip::LoadedModel& m) {
  std::map<std::string, const clip::Tensor*> out;
  auto layers = [&](const std::vector<clip::LayerWeights>& ls, const std::string& tower) {
    for (size_t i = 0; i < ls.size(); ++i) {
      const std::string p = tower + ".encoder.layers." + std::to_string(i) + ".";
      const auto& l = ls[i];
      out[p + "layer_norm1.weight"] = &l.ln1.weight;
      out[p + "layer_norm1.bias"] = &l.ln1.bias;
      out[p + "self_attn.q_proj.weight"] = &l.q.weight;
      out[p + "self_attn.q_proj.bias"] = &l.q.bias;
      out[p + "self_attn.k_proj.weight"] = &l.k.weight;
      out[p + "self_attn.k_proj.bias"] = &l.k.bias;
      out[p + "self_attn.v_proj.weight"] = &l.v.weight;
      out[p + "self_attn.v_proj.bias"] = &l.v.bias;
      out[p + "self_attn.out_proj.weight"] = &l.out.weight;
      out[p + "self_attn.out_proj.bias"] = &l.out.bias;
      out[p + "layer_norm2.weight"] = &l.ln2.weight;
      out[p + "layer_norm2.bias"] = &l.ln2.bias;
      out[p + "mlp.fc1.weight"] = &l.fc1.weight;
      out[p + "mlp.fc1.bias"] = &l.fc1.bias;
      out[p + "mlp.fc2.weight"] = &l.fc2.weight;
      out[p + "mlp.fc2.bias"] = &l.fc2.bias;
    }
  };
  if (m.weights.text) {
    const auto& t = *m.weights.text;
    out["text_model.embeddings.token_embedding.weight"] = &t.token_embedding;
    out["text_model.embeddings.position_embedding.weight"] = &t.position_embedding;
    out["text_model.final_layer_norm.weight"] = &t.final_ln.weight;
    out["text_model.final_layer_norm.bias"] = &t.final_ln.bias;
    out["text_projection.weight"] = &t.projection.weight;
    EXPECT_TRUE(t.projection.bias.empty());
    layers(t.layers, "text_model");
  }
  if (m.weights.vision) {
    const auto& v = *m.weights.vision;
    out["vision_model.embeddings.class_embedding"] = &v.class_embedding;
    out["vision_model.embeddings.patch_embedding.weight"] = &v.patch_embedding;
    out["vision_model.embeddings.position_embedding.weight"] = &v.position_embedding;
    out["vision_model.pre_layrnorm.weight"] = &v.pre_ln.weight;
    out["vision_model.pre_layrnorm.bias"] = &v.pre_ln.bias;
    out["vision_model.post_layernorm.weight"] = &v.post_ln.weight;
    out["vision_model.post_layernorm.bias"] = &v.post_ln.bias;
    out["visual_projection.weight"] = &v.projection.weight;
    EXPECT_TRUE(v.projection.bias.empty());
    layers(v.layers, "vision_model");
  }
  return out;
}

// Every loaded tensor equals the written one, and every written parameter was loaded.
void expect_all_values(const clip::LoadedModel& m, const std::vector<FloatTensor>& ts, const std::string& dtype) {
  const auto loaded = named_tensors(m);
  size_t found = 0;
  for (const auto& t : ts) {
    const auto it = loaded.find(t.name);
    if (it == loaded.end()) {
      EXPECT_EQ(t.name, "logit_scale") << "written but not loaded";
      continue;
    }
    ++found;
    expect_tensor(*it->second, t, dtype);
  }
  EXPECT_EQ(found, loaded.size());
}

void expect_spec(const clip::LoadedModel& m, const TinyClipSpec& s) {
  EXPECT_EQ(m.config.projection_dim, s.projection_dim);
  ASSERT_EQ(m.config.text.has_value(), s.text);
  ASSERT_EQ(m.config.vision.has_value(), s.vision);
  ASSERT_EQ(m.weights.text.has_value(), s.text);
  ASSERT_EQ(m.weights.vision.has_value(), s.vision);
  if (s.text) {
    const auto& t = *m.config.text;
    EXPECT_EQ(t.hidden_size, s.text_hidden);
    EXPECT_EQ(t.intermediate_size, s.text_intermediate);
    EXPECT_EQ(t.num_layers, s.text_layers);
    EXPECT_EQ(t.num_heads, s.text_heads);
    EXPECT_EQ(t.vocab_size, s.vocab_size);
    EXPECT_EQ(t.max_positions, s.max_positions);
    EXPECT_EQ(m.weights.text->layers.size(), static_cast<size_t>(s.text_layers));
  }
  if (s.vision) {
    const auto& v = *m.config.vision;
    EXPECT_EQ(v.hidden_size, s.vision_hidden);
    EXPECT_EQ(v.intermediate_size, s.vision_intermediate);
    EXPECT_EQ(v.num_layers, s.vision_layers);
    EXPECT_EQ(v.num_heads, s.vision_heads);
    EXPECT_EQ(v.image_size, s.image_size);
    EXPECT_EQ(v.patch_size, s.patch_size);
    EXPECT_EQ(v.num_channels, s.num_channels);
    EXPECT_EQ(m.weights.vision->layers.size(), static_cast<size_t>(s.vision_layers));
  }
}

}  // namespace

// ---- config.json ----------------------------------------------------------------

TEST(ClipConfig, FullConfigAsTransformersWritesIt) {
  TempDir tmp;
  TinyClipSpec s;
  s.hidden_act = "gelu";
  const auto c = config_from(tmp, tiny_clip_config(s));
  ASSERT_TRUE(c.text && c.vision);
  EXPECT_EQ(c.projection_dim, 16);  // top level, not the sub-configs' 512
  EXPECT_EQ(c.text->hidden_size, 32);
  EXPECT_EQ(c.text->num_layers, 2);
  EXPECT_EQ(c.text->num_heads, 4);
  EXPECT_EQ(c.text->vocab_size, 50);
  EXPECT_EQ(c.text->max_positions, 12);
  EXPECT_EQ(c.text->eos_token_id, 49407);
  EXPECT_EQ(c.text->activation, clip::Activation::Gelu);
  EXPECT_EQ(c.vision->hidden_size, 24);
  EXPECT_EQ(c.vision->image_size, 24);
  EXPECT_EQ(c.vision->patch_size, 8);
  EXPECT_EQ(c.vision->activation, clip::Activation::Gelu);
}

TEST(ClipConfig, MissingFieldsTakeTransformersDefaults) {
  TempDir tmp;
  const auto c = config_from(tmp, {{"model_type", "clip"}, {"text_config", json::object()}});
  ASSERT_TRUE(c.text && c.vision);  // vision_config absent: the default vision config
  EXPECT_EQ(c.projection_dim, 512);
  EXPECT_EQ(c.text->hidden_size, 512);
  EXPECT_EQ(c.text->intermediate_size, 2048);
  EXPECT_EQ(c.text->num_layers, 12);
  EXPECT_EQ(c.text->num_heads, 8);
  EXPECT_EQ(c.text->vocab_size, 49408);
  EXPECT_EQ(c.text->max_positions, 77);
  EXPECT_EQ(c.text->bos_token_id, 49406);
  EXPECT_EQ(c.text->eos_token_id, 49407);
  EXPECT_EQ(c.text->pad_token_id, 1);
  EXPECT_EQ(c.text->activation, clip::Activation::QuickGelu);
  EXPECT_FLOAT_EQ(c.text->layer_norm_eps, 1e-5f);
  EXPECT_EQ(c.vision->hidden_size, 768);
  EXPECT_EQ(c.vision->intermediate_size, 3072);
  EXPECT_EQ(c.vision->num_layers, 12);
  EXPECT_EQ(c.vision->num_heads, 12);
  EXPECT_EQ(c.vision->image_size, 224);
  EXPECT_EQ(c.vision->patch_size, 32);
  EXPECT_EQ(c.vision->num_channels, 3);
}

TEST(ClipConfig, OldOpenAiStyleEosAndNulls) {
  // openai/clip-vit-base-patch32 says bos 0 / eos 2 (pooling by argmax); nulls mean default.
  TempDir tmp;
  const auto c =
      config_from(tmp, {{"model_type", "clip"},
                        {"text_config", {{"bos_token_id", 0}, {"eos_token_id", 2}, {"pad_token_id", nullptr}}},
                        {"vision_config", {{"layer_norm_eps", 1e-6}}}});
  EXPECT_EQ(c.text->bos_token_id, 0);
  EXPECT_EQ(c.text->eos_token_id, 2);
  EXPECT_EQ(c.text->pad_token_id, 1);
  EXPECT_FLOAT_EQ(c.vision->layer_norm_eps, 1e-6f);
}

TEST(ClipConfig, SingleTowerConfigs) {
  TempDir tmp;
  TinyClipSpec vs;
  vs.text = false;
  auto c = config_from(tmp, tiny_clip_config(vs));
  EXPECT_FALSE(c.text);
  ASSERT_TRUE(c.vision);
  EXPECT_EQ(c.projection_dim, 16);  // inside the single-tower config
  EXPECT_EQ(c.vision->num_layers, 3);

  TinyClipSpec ts;
  ts.vision = false;
  c = config_from(tmp, tiny_clip_config(ts));
  ASSERT_TRUE(c.text);
  EXPECT_FALSE(c.vision);
  EXPECT_EQ(c.text->num_layers, 2);
}

TEST(ClipConfigBad, ErrorsNameFileAndField) {
  TempDir tmp;
  const auto path = (tmp.path() / "config.json").string();
  auto msg = error_of([&] { clip::load_clip_config(tmp.path() / "config.json"); });
  EXPECT_CONTAINS(msg, path);  // missing

  write_text(tmp.path() / "config.json", "{\"model_type\": ");
  msg = error_of([&] { clip::load_clip_config(tmp.path() / "config.json"); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "not valid JSON");

  msg = error_of([&] { config_from(tmp, json::array()); });
  EXPECT_CONTAINS(msg, "not a JSON object");

  msg = error_of([&] { config_from(tmp, {{"model_type", "clip"}, {"vision_config", {{"hidden_act", "gelu_new"}}}}); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "vision_config.hidden_act 'gelu_new' is not supported");

  // SigLIP 2's NaFlex checkpoints (Siglip2Model) are named and refused.
  msg = error_of([&] { config_from(tmp, {{"model_type", "siglip2"}}); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "model_type 'siglip2'");
  EXPECT_CONTAINS(msg, "NaFlex");

  msg = error_of([&] { config_from(tmp, {{"model_type", "blip"}}); });
  EXPECT_CONTAINS(msg, "model_type 'blip' is not supported");

  msg = error_of([&] {
    config_from(tmp, {{"model_type", "siglip"}, {"vision_config", {{"vision_use_head", false}}}});
  });
  EXPECT_CONTAINS(msg, "vision_config.vision_use_head");

  msg = error_of([&] { config_from(tmp, {{"hidden_size", 5}}); });
  EXPECT_CONTAINS(msg, "not a CLIP or SigLIP config");

  msg = error_of([&] { config_from(tmp, {{"model_type", "clip"}, {"text_config", {{"hidden_size", "big"}}}}); });
  EXPECT_CONTAINS(msg, "text_config.hidden_size must be an integer");

  msg = error_of([&] { config_from(tmp, {{"model_type", "clip_text_model"}, {"num_attention_heads", 0}}); });
  EXPECT_CONTAINS(msg, "num_attention_heads");

  msg = error_of([&] { config_from(tmp, {{"model_type", "clip"}, {"text_config", 3}}); });
  EXPECT_CONTAINS(msg, "text_config must be a JSON object");
}

// ---- preprocessor_config.json ------------------------------------------------------

TEST(PreprocessConfig, MissingFileUsesImageSize) {
  TempDir tmp;
  const auto p = clip::load_preprocess_config(tmp.path() / "preprocessor_config.json", 336);
  EXPECT_EQ(p.shortest_edge, 336);
  EXPECT_EQ(p.crop_height, 336);
  EXPECT_EQ(p.crop_width, 336);
  EXPECT_EQ(p.resize_height, 0);
  EXPECT_TRUE(p.do_resize && p.do_center_crop && p.do_rescale && p.do_normalize);
  EXPECT_FLOAT_EQ(p.mean[0], 0.48145466f);
  EXPECT_FLOAT_EQ(p.std[2], 0.27577711f);
}

TEST(PreprocessConfig, SizeForms) {
  TempDir tmp;
  const auto path = tmp.path() / "preprocessor_config.json";
  write_text(path, tiny_preprocessor_config(64).dump());
  auto p = clip::load_preprocess_config(path, 224);
  EXPECT_EQ(p.shortest_edge, 64);
  EXPECT_EQ(p.crop_height, 64);
  EXPECT_EQ(p.crop_width, 64);

  // Old files: plain ints.
  write_text(path, R"({"size": 40, "crop_size": 32, "do_center_crop": false,
                       "image_mean": [0.5, 0.5, 0.5], "image_std": 0.25,
                       "rescale_factor": 0.5, "do_normalize": false})");
  p = clip::load_preprocess_config(path, 224);
  EXPECT_EQ(p.shortest_edge, 40);
  EXPECT_EQ(p.crop_height, 32);
  EXPECT_EQ(p.crop_width, 32);
  EXPECT_FALSE(p.do_center_crop);
  EXPECT_FALSE(p.do_normalize);
  EXPECT_FLOAT_EQ(p.mean[1], 0.5f);
  EXPECT_FLOAT_EQ(p.std[2], 0.25f);
  EXPECT_FLOAT_EQ(p.rescale_factor, 0.5f);

  // {"height","width"}: an exact resize; shortest_edge falls back to the smaller.
  write_text(path, R"({"size": {"height": 48, "width": 40}, "crop_size": {"height": 30, "width": 20}})");
  p = clip::load_preprocess_config(path, 224);
  EXPECT_EQ(p.resize_height, 48);
  EXPECT_EQ(p.resize_width, 40);
  EXPECT_EQ(p.shortest_edge, 40);
  EXPECT_EQ(p.crop_height, 30);
  EXPECT_EQ(p.crop_width, 20);

  // Absent fields: the model's image size.
  write_text(path, "{}");
  p = clip::load_preprocess_config(path, 96);
  EXPECT_EQ(p.shortest_edge, 96);
  EXPECT_EQ(p.crop_width, 96);
}

TEST(PreprocessConfigBad, ErrorsNameFileAndField) {
  TempDir tmp;
  const auto path = tmp.path() / "preprocessor_config.json";
  auto err = [&](const std::string& text) {
    write_text(path, text);
    return error_of([&] { clip::load_preprocess_config(path, 224); });
  };
  auto msg = err("{");
  EXPECT_CONTAINS(msg, path.string());
  EXPECT_CONTAINS(msg, "not valid JSON");
  msg = err(R"({"size": {"longest": 3}})");
  EXPECT_CONTAINS(msg, path.string());
  EXPECT_CONTAINS(msg, "size");
  EXPECT_CONTAINS(err(R"({"crop_size": {"height": -1, "width": 3}})"), "crop_size");
  EXPECT_CONTAINS(err(R"({"image_mean": [0.5, 0.5]})"), "image_mean must be a list of 3");
  EXPECT_CONTAINS(err(R"({"image_std": [0.5, 0, 0.5]})"), "image_std must not contain 0");
  EXPECT_CONTAINS(err(R"({"do_resize": "yes"})"), "do_resize must be true or false");
  EXPECT_CONTAINS(err(R"({"size": 0})"), "size");
  // "resample": PIL's filter numbers 0..5 only, the value named.
  for (const char* bad : {"6", "-1", "2.5", "\"bilinear\"", "[2]"}) {
    msg = err(std::string(R"({"resample": )") + bad + "}");
    EXPECT_CONTAINS(msg, path.string());
    EXPECT_CONTAINS(msg, std::string("resample is ") + bad);
    EXPECT_CONTAINS(msg, "2 bilinear, 3 bicubic");
  }
  msg = err(R"({"image_processor_type": "Siglip2ImageProcessor", "max_num_patches": 256})");
  EXPECT_CONTAINS(msg, path.string());
  EXPECT_CONTAINS(msg, "image_processor_type 'Siglip2ImageProcessor'");
  EXPECT_CONTAINS(msg, "not supported");
}

// "resample" as PIL numbers its filters (PIL.Image.Resampling); absent:
// bicubic, CLIP's filter (and SiglipImageProcessor's default).
TEST(PreprocessConfig, Resample) {
  TempDir tmp;
  const auto path = tmp.path() / "preprocessor_config.json";
  write_text(path, "{}");
  EXPECT_EQ(clip::load_preprocess_config(path, 224).resample, clip::Resample::Bicubic);
  EXPECT_EQ(clip::load_preprocess_config(tmp.path() / "absent.json", 224).resample, clip::Resample::Bicubic);
  const std::map<int, std::pair<clip::Resample, std::string>> pil = {
      {0, {clip::Resample::Nearest, "nearest"}},   {1, {clip::Resample::Lanczos, "lanczos"}},
      {2, {clip::Resample::Bilinear, "bilinear"}}, {3, {clip::Resample::Bicubic, "bicubic"}},
      {4, {clip::Resample::Box, "box"}},           {5, {clip::Resample::Hamming, "hamming"}}};
  for (const auto& [number, want] : pil) {
    write_text(path, R"({"resample": )" + std::to_string(number) + "}");
    const auto p = clip::load_preprocess_config(path, 224);
    EXPECT_EQ(p.resample, want.first) << number;
    EXPECT_EQ(clip::resample_name(p.resample), want.second);
    EXPECT_TRUE(p.do_center_crop);  // a CLIP config: nothing else changes
    EXPECT_EQ(p.shortest_edge, 224);
  }
}

// SiglipImageProcessor's file as transformers writes it (SigLIP 2 fixed
// resolution: bilinear): an exact resize, no crop, the output H x W.
TEST(PreprocessConfig, SiglipProcessor) {
  TempDir tmp;
  const auto path = tmp.path() / "preprocessor_config.json";
  write_text(path, R"({"do_convert_rgb": null, "do_normalize": true, "do_rescale": true, "do_resize": true,
                       "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
                       "image_std": [0.5, 0.5, 0.5], "processor_class": "SiglipProcessor", "resample": 2,
                       "rescale_factor": 0.00392156862745098, "size": {"height": 384, "width": 384}})");
  auto p = clip::load_preprocess_config(path, 224);
  EXPECT_EQ(p.resample, clip::Resample::Bilinear);
  EXPECT_EQ(p.resize_height, 384);
  EXPECT_EQ(p.resize_width, 384);
  EXPECT_FALSE(p.do_center_crop);
  EXPECT_EQ(p.crop_height, 384);  // the output size
  EXPECT_EQ(p.crop_width, 384);
  EXPECT_EQ(p.rescale_factor, 1.0f / 255.0f);
  EXPECT_EQ(p.mean[1], 0.5f);
  EXPECT_EQ(p.std[2], 0.5f);

  // Absent fields: SiglipImageProcessor's defaults, the square of the
  // model's image size, bicubic.
  write_text(path, R"({"image_processor_type": "SiglipImageProcessorFast"})");
  p = clip::load_preprocess_config(path, 256);
  EXPECT_EQ(p.resize_height, 256);
  EXPECT_EQ(p.resize_width, 256);
  EXPECT_EQ(p.crop_height, 256);
  EXPECT_FALSE(p.do_center_crop);
  EXPECT_EQ(p.resample, clip::Resample::Bicubic);
  EXPECT_EQ(p.mean[0], 0.5f);
  EXPECT_EQ(p.std[0], 0.5f);

  // Not square: the output is H x W all the same (the engine refuses it for
  // a square model, see EnginePreprocess).
  write_text(path, R"({"image_processor_type": "SiglipImageProcessor", "size": {"height": 48, "width": 64},
                       "crop_size": 30})");
  p = clip::load_preprocess_config(path, 224);
  EXPECT_EQ(p.crop_height, 48);
  EXPECT_EQ(p.crop_width, 64);

  // A CLIPImageProcessor with an exact size still crops, as transformers does.
  write_text(path, R"({"size": {"height": 48, "width": 64}, "crop_size": 30})");
  p = clip::load_preprocess_config(path, 224);
  EXPECT_TRUE(p.do_center_crop);
  EXPECT_EQ(p.crop_height, 30);
  EXPECT_EQ(p.crop_width, 30);
  EXPECT_EQ(p.mean[0], 0.48145466f);
}

// The vision tower takes image_size x image_size: a preprocessor config that
// makes anything else is refused when images are embedded, naming the file,
// while a square exact resize with another filter works like the CPU
// preprocessing it asks for.
TEST(EnginePreprocess, NonSquareOutputIsRefusedNamingTheFile) {
  TempDir tmp;
  TinyClipSpec s;
  s.text = false;
  json pre = {{"image_processor_type", "SiglipImageProcessor"},
              {"resample", 2},
              {"image_mean", {0.5, 0.5, 0.5}},
              {"image_std", {0.5, 0.5, 0.5}},
              {"size", {{"height", s.image_size}, {"width", s.image_size + 8}}}};
  write_clip_folder(tmp.path(), tiny_clip_config(s), tiny_clip_tensors(s), "F32", 1, pre);
  clip::Image img{40, 30, std::vector<uint8_t>(40 * 30 * 3)};
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>(i * 7 % 251);
  {
    const auto engine = clip::Engine::load(tmp.path());
    EXPECT_EQ(engine->preprocess_config().crop_width, s.image_size + 8);
    const std::string msg = error_of([&] { engine->embed_images({img}); });
    EXPECT_CONTAINS(msg, (tmp.path() / "preprocessor_config.json").string());
    EXPECT_CONTAINS(msg, "makes 32x24 (width x height) images");
    EXPECT_CONTAINS(msg, "\"size\": {\"height\": 24, \"width\": 32}");
    EXPECT_CONTAINS(msg, "square 24x24");
  }
  pre["size"]["width"] = s.image_size;
  write_text(tmp.path() / "preprocessor_config.json", pre.dump());
  const auto engine = clip::Engine::load(tmp.path());
  const clip::PreprocessConfig& cfg = engine->preprocess_config();
  EXPECT_EQ(cfg.resample, clip::Resample::Bilinear);
  const clip::Tensor got = engine->embed_images({img});
  const clip::Tensor want = engine->embed_pixels(clip::preprocess_batch(std::vector<clip::Image>{img}, cfg));
  EXPECT_EQ(got.data, want.data);
}

// ---- load_model -------------------------------------------------------------------

struct LoadCase {
  std::string dtype;
  int shards;
  bool text, vision;
  std::string act;
};

void PrintTo(const LoadCase& c, std::ostream* os) {
  *os << c.dtype << " x" << c.shards << (c.text ? " text" : "") << (c.vision ? " vision" : "") << " " << c.act;
}

class LoadModel : public ::testing::TestWithParam<LoadCase> {};

TEST_P(LoadModel, ValuesAndSizes) {
  const LoadCase& c = GetParam();
  TempDir tmp;
  TinyClipSpec s;
  s.text = c.text;
  s.vision = c.vision;
  s.hidden_act = c.act;
  const auto tensors = tiny_clip_tensors(s);
  write_clip_folder(tmp.path(), tiny_clip_config(s), tensors, c.dtype, c.shards,
                    tiny_preprocessor_config(s.image_size));
  const auto m = clip::load_model(tmp.path());
  expect_spec(m, s);
  expect_all_values(m, tensors, c.dtype);
  const auto act = c.act == "gelu" ? clip::Activation::Gelu : clip::Activation::QuickGelu;
  if (m.config.text) {
    EXPECT_EQ(m.config.text->activation, act);
  }
  if (m.config.vision) {
    EXPECT_EQ(m.config.vision->activation, act);
  }
  EXPECT_EQ(m.preprocess.shortest_edge, s.image_size);
}

INSTANTIATE_TEST_SUITE_P(
    Folders, LoadModel,
    ::testing::Values(LoadCase{"F32", 1, true, true, "quick_gelu"}, LoadCase{"F16", 1, true, true, "gelu"},
                      LoadCase{"BF16", 1, true, true, "quick_gelu"}, LoadCase{"F32", 5, true, true, "gelu"},
                      LoadCase{"F16", 3, false, true, "quick_gelu"}, LoadCase{"F32", 1, false, true, "gelu"},
                      LoadCase{"BF16", 1, true, false, "quick_gelu"}),
    [](const auto& info) {
      const LoadCase& c = info.param;
      return c.dtype + "_" + std::to_string(c.shards) + "shard_" +
             (c.text && c.vision ? "both"
              : c.text           ? "text"
                                 : "vision") +
             "_" + c.act;
    });

TEST(LoadModel, ExtraTensorsIgnoredAndPreprocessDefaultsToImageSize) {
  TempDir tmp;
  TinyClipSpec s;
  s.image_size = 40;  // 5 x 5 patches of 8
  auto tensors = tiny_clip_tensors(s);
  // What older transformers versions saved besides the parameters.
  tensors.push_back({"text_model.embeddings.position_ids", {1, s.max_positions}, std::vector<float>(s.max_positions)});
  tensors.push_back({"vision_model.embeddings.position_ids", {1, 26}, std::vector<float>(26)});
  write_clip_folder(tmp.path(), tiny_clip_config(s), tensors);  // no preprocessor_config.json
  const auto m = clip::load_model(tmp.path());
  expect_spec(m, s);
  EXPECT_EQ(m.preprocess.shortest_edge, 40);
  EXPECT_EQ(m.preprocess.crop_height, 40);
}

TEST(LoadModel, WeightsWinOverConfig) {
  TempDir tmp;
  TinyClipSpec s;
  json cfg = tiny_clip_config(s);
  // Every number the shapes determine is wrong in the config; the head counts
  // still divide the real hidden sizes (32 / 4, 24 / 3).
  cfg["projection_dim"] = 512;
  cfg["text_config"]["num_hidden_layers"] = 12;
  cfg["text_config"]["hidden_size"] = 768;
  cfg["text_config"]["intermediate_size"] = 3072;
  cfg["text_config"]["vocab_size"] = 49408;
  cfg["text_config"]["max_position_embeddings"] = 77;
  cfg["vision_config"]["num_hidden_layers"] = 1;
  cfg["vision_config"]["hidden_size"] = 768;
  cfg["vision_config"]["image_size"] = 224;
  cfg["vision_config"]["patch_size"] = 32;
  cfg["vision_config"]["num_channels"] = 1;
  write_clip_folder(tmp.path(), cfg, tiny_clip_tensors(s));
  const auto m = clip::load_model(tmp.path());
  expect_spec(m, s);
}

TEST(LoadModel, ImageSizeNotAMultipleOfPatchIsKept) {
  // transformers floors image_size / patch_size: 30 / 8 = 3 patches a side.
  TempDir tmp;
  TinyClipSpec s;
  json cfg = tiny_clip_config(s);
  cfg["vision_config"]["image_size"] = 30;
  s.image_size = 24;  // the tensors: a 3 x 3 grid
  write_clip_folder(tmp.path(), cfg, tiny_clip_tensors(s));
  EXPECT_EQ(clip::load_model(tmp.path()).config.vision->image_size, 30);
}

TEST(LoadModel, FullConfigWithOneTowerOfWeightsLoadsThatTower) {
  TempDir tmp;
  TinyClipSpec s;
  TinyClipSpec vision_only = s;
  vision_only.text = false;
  write_clip_folder(tmp.path(), tiny_clip_config(s), tiny_clip_tensors(vision_only));
  const auto m = clip::load_model(tmp.path());
  EXPECT_FALSE(m.config.text);
  EXPECT_FALSE(m.weights.text);
  ASSERT_TRUE(m.weights.vision);
}

// ---- load_model: bad folders ------------------------------------------------------

class LoadModelBad : public ::testing::Test {
 protected:
  std::string load_error(const std::string& dtype = "F32", int shards = 1) {
    write_clip_folder(tmp.path(), config, tensors, dtype, shards);
    return error_of([&] { clip::load_model(tmp.path()); });
  }
  std::string weights() const { return (tmp.path() / "model.safetensors").string(); }
  std::string config_path() const { return (tmp.path() / "config.json").string(); }
  TempDir tmp;
  TinyClipSpec spec;
  std::vector<FloatTensor> tensors = tiny_clip_tensors(spec);
  json config = tiny_clip_config(spec);
};

TEST_F(LoadModelBad, MissingConfig) {
  write_clip_folder(tmp.path(), config, tensors);
  fs::remove(tmp.path() / "config.json");
  const auto msg = error_of([&] { clip::load_model(tmp.path()); });
  EXPECT_CONTAINS(msg, config_path());
}

TEST_F(LoadModelBad, MissingWeights) {
  write_clip_folder(tmp.path(), config, tensors);
  fs::remove(tmp.path() / "model.safetensors");
  const auto msg = error_of([&] { clip::load_model(tmp.path()); });
  EXPECT_CONTAINS(msg, tmp.path().string());
  EXPECT_CONTAINS(msg, "model.safetensors");
}

TEST_F(LoadModelBad, MissingFolder) {
  const auto msg = error_of([&] { clip::load_model(tmp.path() / "absent"); });
  EXPECT_CONTAINS(msg, (tmp.path() / "absent").string());
}

TEST_F(LoadModelBad, MissingTensorIsNamed) {
  for (const std::string name : {"text_model.encoder.layers.1.self_attn.v_proj.bias", "text_projection.weight",
                                 "vision_model.pre_layrnorm.weight", "vision_model.embeddings.class_embedding",
                                 "vision_model.encoder.layers.0.mlp.fc1.weight", "text_model.final_layer_norm.bias"}) {
    tensors = tiny_clip_tensors(spec);
    erase_tensor(tensors, name);
    const auto msg = load_error();
    EXPECT_CONTAINS(msg, weights());
    EXPECT_CONTAINS(msg, "tensor '" + name + "' is missing");
  }
}

TEST_F(LoadModelBad, MissingTensorInShardedFolderNamesIndex) {
  erase_tensor(tensors, "vision_model.post_layernorm.bias");
  const auto msg = load_error("F16", 3);
  EXPECT_CONTAINS(msg, (tmp.path() / "model.safetensors.index.json").string());
  EXPECT_CONTAINS(msg, "'vision_model.post_layernorm.bias' is missing");
}

TEST_F(LoadModelBad, MissingMiddleLayer) {
  // Layers 0 and 2 present, 1 gone: 3 layers are expected, layer 1 is missing.
  std::erase_if(tensors, [](const FloatTensor& t) { return t.name.rfind("vision_model.encoder.layers.1.", 0) == 0; });
  const auto msg = load_error();
  EXPECT_CONTAINS(msg, "'vision_model.encoder.layers.1.");
  EXPECT_CONTAINS(msg, "is missing");
}

TEST_F(LoadModelBad, MisShapedTensorIsNamed) {
  const std::pair<std::string, std::vector<int64_t>> cases[] = {
      {"text_model.encoder.layers.1.mlp.fc1.weight", {40, 31}},
      {"text_model.encoder.layers.0.self_attn.q_proj.weight", {32, 32, 1}},
      {"vision_model.post_layernorm.weight", {25}},
      {"vision_model.embeddings.patch_embedding.weight", {24, 3, 8, 4}},  // not square
      {"text_model.final_layer_norm.bias", {}},
  };
  for (const auto& [name, shape] : cases) {
    tensors = tiny_clip_tensors(spec);
    FloatTensor* t = find_tensor(tensors, name);
    ASSERT_NE(t, nullptr) << name;
    t->shape = shape;
    t->values.assign(numel(shape), 0.5f);
    const auto msg = load_error("BF16");
    EXPECT_CONTAINS(msg, weights());
    EXPECT_CONTAINS(msg, "tensor '" + name + "' has shape " + clip::shape_str(shape));
    EXPECT_CONTAINS(msg, "expected");
  }
}

TEST_F(LoadModelBad, AnchorWithWrongRank) {
  FloatTensor* t = find_tensor(tensors, "text_model.embeddings.token_embedding.weight");
  t->shape = {50 * 32};
  const auto msg = load_error();
  EXPECT_CONTAINS(msg, "'text_model.embeddings.token_embedding.weight' has shape [1600]");
}

TEST_F(LoadModelBad, PositionCountNotAGrid) {
  FloatTensor* t = find_tensor(tensors, "vision_model.embeddings.position_embedding.weight");
  t->shape = {11, 24};
  t->values.assign(11 * 24, 0.0f);
  const auto msg = load_error();
  EXPECT_CONTAINS(msg, weights());
  EXPECT_CONTAINS(msg, "'vision_model.embeddings.position_embedding.weight' has 11 positions");
}

TEST_F(LoadModelBad, ProjectionDimsDisagree) {
  FloatTensor* t = find_tensor(tensors, "visual_projection.weight");
  t->shape = {20, 24};
  t->values.assign(20 * 24, 0.0f);
  const auto msg = load_error();
  EXPECT_CONTAINS(msg, "text_projection.weight");
  EXPECT_CONTAINS(msg, "visual_projection.weight");
}

TEST_F(LoadModelBad, HeadsDoNotDivideHiddenOfWeights) {
  // The config's 768 / 12 would divide; the weights' 32 does not divide by 12.
  config["text_config"]["hidden_size"] = 768;
  config["text_config"]["num_attention_heads"] = 12;
  const auto msg = load_error();
  EXPECT_CONTAINS(msg, config_path());
  EXPECT_CONTAINS(msg, "text_config.num_attention_heads 12 does not divide the text hidden size 32");
}

TEST_F(LoadModelBad, HeadsInSingleTowerConfig) {
  spec.text = false;
  tensors = tiny_clip_tensors(spec);
  config = tiny_clip_config(spec);
  config["num_attention_heads"] = 5;
  const auto msg = load_error();
  EXPECT_CONTAINS(msg, config_path());
  EXPECT_CONTAINS(msg, ": num_attention_heads 5 does not divide the vision hidden size 24");
}

TEST_F(LoadModelBad, SingleTowerConfigWithOtherTowersWeights) {
  // config.json says vision model; the weights are a text model.
  TinyClipSpec text_only = spec;
  text_only.vision = false;
  tensors = tiny_clip_tensors(text_only);
  spec.text = false;
  config = tiny_clip_config(spec);
  const auto msg = load_error();
  EXPECT_CONTAINS(msg, weights());
  EXPECT_CONTAINS(msg, "vision_model.");
  EXPECT_CONTAINS(msg, "is missing");
}

TEST_F(LoadModelBad, NoTowerAtAll) {
  tensors = {{"logit_scale", {}, {1.0f}}};
  const auto msg = load_error();
  EXPECT_CONTAINS(msg, weights());
  EXPECT_CONTAINS(msg, "no text_model");
}

TEST_F(LoadModelBad, IntegerWeights) {
  // Hand-build: one tensor stored as I32 where a float is expected.
  write_clip_folder(tmp.path(), config, tensors);
  std::vector<RawTensor> raw;
  for (const auto& t : tensors) raw.push_back({t.name, "F32", t.shape, encode(t.values, "F32")});
  for (auto& r : raw)
    if (r.name == "text_model.final_layer_norm.weight") r.dtype = "I32";
  write_file(tmp.path() / "model.safetensors", safetensors_bytes(raw));
  const auto msg = error_of([&] { clip::load_model(tmp.path()); });
  EXPECT_CONTAINS(msg, "'text_model.final_layer_norm.weight' has dtype I32");
}

TEST_F(LoadModelBad, TruncatedWeights) {
  write_clip_folder(tmp.path(), config, tensors);
  const auto path = tmp.path() / "model.safetensors";
  fs::resize_file(path, fs::file_size(path) - 100);
  const auto msg = error_of([&] { clip::load_model(tmp.path()); });
  EXPECT_CONTAINS(msg, path.string());
  EXPECT_CONTAINS(msg, "truncated");
}

// ---- folders saved by transformers (tests/data/loader, see make_loader_fixtures.py) ----

class TransformersFolder : public ::testing::TestWithParam<std::string> {};

TEST_P(TransformersFolder, LoadsWithExpectedSizesAndValues) {
  const fs::path dir = fs::path(CLIPFIND_TEST_DATA) / "loader" / GetParam();
  std::ifstream in(dir / "expected.json");
  ASSERT_TRUE(in) << dir;
  const json want = json::parse(in);
  const auto m = clip::load_model(dir);

  EXPECT_EQ(m.config.projection_dim, want["projection_dim"].get<int>());
  const auto act = want["hidden_act"] == "gelu" ? clip::Activation::Gelu : clip::Activation::QuickGelu;
  ASSERT_EQ(m.config.text.has_value(), want.contains("text"));
  ASSERT_EQ(m.config.vision.has_value(), want.contains("vision"));
  if (m.config.text) {
    const auto& t = *m.config.text;
    const auto& w = want["text"];
    EXPECT_EQ(t.hidden_size, w["hidden_size"].get<int>());
    EXPECT_EQ(t.intermediate_size, w["intermediate_size"].get<int>());
    EXPECT_EQ(t.num_layers, w["num_hidden_layers"].get<int>());
    EXPECT_EQ(t.num_heads, w["num_attention_heads"].get<int>());
    EXPECT_EQ(t.vocab_size, w["vocab_size"].get<int>());
    EXPECT_EQ(t.max_positions, w["max_position_embeddings"].get<int>());
    EXPECT_EQ(t.eos_token_id, 49407);
    EXPECT_EQ(t.activation, act);
  }
  if (m.config.vision) {
    const auto& v = *m.config.vision;
    const auto& w = want["vision"];
    EXPECT_EQ(v.hidden_size, w["hidden_size"].get<int>());
    EXPECT_EQ(v.intermediate_size, w["intermediate_size"].get<int>());
    EXPECT_EQ(v.num_layers, w["num_hidden_layers"].get<int>());
    EXPECT_EQ(v.num_heads, w["num_attention_heads"].get<int>());
    EXPECT_EQ(v.image_size, w["image_size"].get<int>());
    EXPECT_EQ(v.patch_size, w["patch_size"].get<int>());
    EXPECT_EQ(v.activation, act);
    EXPECT_EQ(m.preprocess.shortest_edge, w["image_size"].get<int>());
    EXPECT_EQ(m.preprocess.crop_height, w["image_size"].get<int>());
  }

  // Every saved parameter was loaded into its role with its values.
  const auto loaded = named_tensors(m);
  size_t checked = 0;
  for (const auto& [name, w] : want["tensors"].items()) {
    const auto it = loaded.find(name);
    if (it == loaded.end()) {
      EXPECT_EQ(name, "logit_scale") << "saved but not loaded";
      continue;
    }
    ++checked;
    const clip::Tensor& t = *it->second;
    EXPECT_EQ(t.shape, w["shape"].get<std::vector<int64_t>>()) << name;
    const auto first = w["first"].get<std::vector<double>>();
    for (size_t i = 0; i < first.size(); ++i)
      EXPECT_EQ(t.data[i], static_cast<float>(first[i])) << name << "[" << i << "]";
    double sum = 0;
    for (float x : t.data) sum += x;
    EXPECT_NEAR(sum, w["sum"].get<double>(), 1e-9 * (1 + std::abs(sum))) << name;
  }
  EXPECT_EQ(checked, loaded.size());
}

INSTANTIATE_TEST_SUITE_P(Saved, TransformersFolder,
                         ::testing::Values("hf_clip_fp16", "hf_vision_sharded", "hf_text_bf16"));

// ---- SigLIP --------------------------------------------------------------------------

TEST(SiglipConfig, FamilyAndTransformersDefaults) {
  TempDir tmp;
  const clip::ClipConfig c = config_from(tmp, {{"model_type", "siglip"}});
  EXPECT_EQ(c.family, clip::ModelFamily::Siglip);
  EXPECT_STREQ(clip::family_name(c.family), "siglip");
  ASSERT_TRUE(c.text && c.vision);
  EXPECT_EQ(c.text->vocab_size, 32000);
  EXPECT_EQ(c.text->max_positions, 64);
  EXPECT_EQ(c.text->activation, clip::Activation::GeluTanh);
  EXPECT_FLOAT_EQ(c.text->layer_norm_eps, 1e-6f);
  EXPECT_FALSE(c.text->causal);
  EXPECT_TRUE(c.text->pool_last);
  EXPECT_EQ(c.vision->patch_size, 16);
  EXPECT_FALSE(c.vision->class_token);
  EXPECT_TRUE(c.vision->attention_pool);
  EXPECT_EQ(c.vision->num_positions(), 14 * 14);  // patches only

  const clip::ClipConfig v = config_from(tmp, {{"model_type", "siglip_vision_model"}, {"image_size", 384}});
  EXPECT_EQ(v.family, clip::ModelFamily::Siglip);
  EXPECT_FALSE(v.text);
  EXPECT_EQ(v.vision->num_positions(), 24 * 24);
  const clip::ClipConfig t = config_from(tmp, {{"model_type", "siglip_text_model"}});
  EXPECT_FALSE(t.vision);
  EXPECT_TRUE(t.text->pool_last);

  const clip::ClipConfig clip_cfg = config_from(tmp, {{"model_type", "clip"}});
  EXPECT_EQ(clip_cfg.family, clip::ModelFamily::Clip);
  EXPECT_TRUE(clip_cfg.text->causal);
  EXPECT_TRUE(clip_cfg.vision->class_token);
}

// Without preprocessor_config.json: SiglipImageProcessor's defaults.
TEST(SiglipConfig, MissingPreprocessorFileTakesSiglipDefaults) {
  TempDir tmp;
  const auto p = clip::load_preprocess_config(tmp.path() / "preprocessor_config.json", 384, clip::ModelFamily::Siglip);
  EXPECT_EQ(p.resize_height, 384);
  EXPECT_EQ(p.resize_width, 384);
  EXPECT_FALSE(p.do_center_crop);
  EXPECT_FLOAT_EQ(p.mean[1], 0.5f);
  EXPECT_FLOAT_EQ(p.std[2], 0.5f);
}

// A lone vision tower saved by transformers 5 (no "vision_model." prefix):
// the head, the patch bias and no class token; no logit parameters.
TEST(SiglipLoad, VisionTowerSavedAlone) {
  const auto m = clip::load_model(fs::path(CLIPFIND_TEST_DATA) / "models" / "siglip_vision_only");
  EXPECT_EQ(m.config.family, clip::ModelFamily::Siglip);
  ASSERT_TRUE(m.weights.vision && m.weights.vision->head);
  const auto& v = *m.weights.vision;
  const int64_t H = m.config.vision->hidden_size;
  EXPECT_EQ(m.config.projection_dim, H);
  EXPECT_TRUE(v.class_embedding.empty());
  EXPECT_EQ(v.patch_bias.shape, std::vector<int64_t>({H}));
  EXPECT_EQ(v.head->probe.shape, std::vector<int64_t>({H}));
  for (const auto* l : {&v.head->q, &v.head->k, &v.head->v}) EXPECT_EQ(l->weight.shape, std::vector<int64_t>({H, H}));
  EXPECT_FALSE(m.config.logit_scale);
}

// A SiglipModel folder missing one tensor of the head, or with a mis-shaped
// in_proj: the error names the weights file and the tensor.
TEST(SiglipLoad, MissingOrMisShapedHeadTensor) {
  const fs::path src = fs::path(CLIPFIND_TEST_DATA) / "models" / "siglip_vision_only";
  const auto source = clip::WeightSource::open_folder(src);
  std::vector<FloatTensor> tensors;
  for (const std::string& name : source.names()) {
    const clip::TensorView* t = source.find(name);
    const clip::Tensor f = clip::to_f32(*t, t->shape);
    tensors.push_back({name, t->shape, f.data});
  }
  std::ifstream in(src / "config.json");
  const json cfg = json::parse(in);

  TempDir tmp;
  std::vector<FloatTensor> missing;
  for (const auto& t : tensors)
    if (t.name != "head.probe") missing.push_back(t);
  write_clip_folder(tmp.path() / "a", cfg, missing);
  std::string msg = error_of([&] { clip::load_model(tmp.path() / "a"); });
  EXPECT_CONTAINS(msg, "model.safetensors");
  EXPECT_CONTAINS(msg, "'head.probe' is missing");

  std::vector<FloatTensor> bad = tensors;
  for (auto& t : bad)
    if (t.name == "head.attention.in_proj_bias") {
      t.shape = {t.shape[0] - 3};
      t.values.resize(t.shape[0]);
    }
  write_clip_folder(tmp.path() / "b", cfg, bad);
  msg = error_of([&] { clip::load_model(tmp.path() / "b"); });
  EXPECT_CONTAINS(msg, "'head.attention.in_proj_bias' has shape");
}
