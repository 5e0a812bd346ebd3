// Test helper: writes safetensors files (valid and deliberately broken) and
// tiny Hugging Face CLIP folders with random weights, laid out as
// transformers 5 save_pretrained writes them. Header-only; needs nlohmann-json.
//
//   cliptest::TempDir tmp;
//   cliptest::TinyClipSpec spec;               // both towers, small sizes
//   auto tensors = cliptest::tiny_clip_tensors(spec);
//   cliptest::write_clip_folder(tmp.path(), cliptest::tiny_clip_config(spec), tensors);
//   auto model = clip::load_model(tmp.path());
//
// Tests edit `tensors` (drop one, change a shape) or the config JSON before
// writing to make broken folders.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace cliptest {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- element encoding ------------------------------------------------------

inline uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// float -> bfloat16, round to nearest even (NaN kept quiet).
inline uint16_t float_to_bf16(float f) {
  const uint32_t b = float_bits(f);
  if (std::isnan(f)) return static_cast<uint16_t>((b >> 16) | 0x40);
  return static_cast<uint16_t>((b + 0x7fff + ((b >> 16) & 1)) >> 16);
}

// float -> IEEE half, round to nearest even, with subnormals, inf and NaN.
inline uint16_t float_to_half(float f) {
  const uint32_t b = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00;  // rounds to infinity
  if (a < 6.103515625e-05f) {               // below the smallest normal, 2^-14
    // Subnormal: a / 2^-24 rounded to nearest even (nearbyint honours the
    // default rounding mode, which is to-nearest-even).
    return sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f));
  }
  const uint32_t ab = float_bits(a);
  uint32_t exp = (ab >> 23) - 127 + 15;
  uint32_t mant = ab & 0x7fffff;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // may carry into the exponent
  return sign | static_cast<uint16_t>(h);
}

inline size_t dtype_bytes(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  return 1;
}

// Floats stored as `dtype` (F32, F16, BF16 or F64), little-endian.
inline std::vector<uint8_t> encode(const std::vector<float>& v, const std::string& dtype) {
  std::vector<uint8_t> out(v.size() * dtype_bytes(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    uint8_t* p = out.data() + i * dtype_bytes(dtype);
    if (dtype == "F32") {
      std::memcpy(p, &v[i], 4);
    } else if (dtype == "F64") {
      const double d = v[i];
      std::memcpy(p, &d, 8);
    } else if (dtype == "F16" || dtype == "BF16") {
      const uint16_t h = dtype == "F16" ? float_to_half(v[i]) : float_to_bf16(v[i]);
      std::memcpy(p, &h, 2);
    } else {
      throw std::invalid_argument("encode: unsupported dtype " + dtype);
    }
  }
  return out;
}

// What a float becomes after a trip through `dtype` (for expected values).
inline float quantize(float f, const std::string& dtype) {
  if (dtype == "BF16") {
    const uint32_t b = static_cast<uint32_t>(float_to_bf16(f)) << 16;
    float r;
    std::memcpy(&r, &b, 4);
    return r;
  }
  if (dtype == "F16") {
    const uint16_t h = float_to_half(f);
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const float mag = e == 0    ? std::ldexp(static_cast<float>(m), -24)
                      : e == 31 ? (m ? NAN : INFINITY)
                                : std::ldexp(static_cast<float>(m | 0x400), e - 25);
    return (h & 0x8000) ? -mag : mag;
  }
  return f;  // F32 (F64 widens exactly)
}

// ---- safetensors files -------------------------------------------------------

struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// header length (u64 LE) + header + data, exactly as given: for broken files.
inline std::vector<uint8_t> safetensors_raw(const std::string& header, const std::vector<uint8_t>& data = {}) {
  // Sized once and filled in place: growing an 8-byte vector with insert()
  // made GCC 12 warn (-Warray-bounds) about its own reallocating memmove.
  std::vector<uint8_t> out(8 + header.size() + data.size());
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::copy(header.begin(), header.end(), out.begin() + 8);
  std::copy(data.begin(), data.end(), out.begin() + 8 + static_cast<std::ptrdiff_t>(header.size()));
  return out;
}

// A valid file: tensors stored back to back in the given order, header padded
// with spaces to a multiple of 8 bytes as the reference writer does.
inline std::vector<uint8_t> safetensors_bytes(const std::vector<RawTensor>& tensors,
                                              const json& metadata = {{"format", "pt"}}) {
  json h = json::object();
  if (!metadata.is_null()) h["__metadata__"] = metadata;
  std::vector<uint8_t> data;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  return safetensors_raw(header, data);
}

inline void write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline void write_text(const fs::path& path, const std::string& text) {
  write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/clipfind-test-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// ---- tiny CLIP folders -------------------------------------------------------

// Deliberately odd, distinct sizes so that a swapped dimension cannot pass.
struct TinyClipSpec {
  bool text = true, vision = true;
  std::string hidden_act = "quick_gelu";
  int projection_dim = 16;
  // text tower
  int text_hidden = 32, text_intermediate = 40, text_layers = 2, text_heads = 4;
  int vocab_size = 50, max_positions = 12;
  // vision tower
  int vision_hidden = 24, vision_intermediate = 36, vision_layers = 3, vision_heads = 3;
  int image_size = 24, patch_size = 8, num_channels = 3;
  uint32_t seed = 1;
};

struct FloatTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

inline size_t numel(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

// Deterministic values in [-scale, scale): tests must not depend on <random>'s
// distribution details, which differ between standard libraries.
class Lcg {
 public:
  explicit Lcg(uint32_t seed) : s_(seed * 2654435761u + 1) {}
  float next(float scale) {
    s_ = s_ * 6364136223846793005ull + 1442695040888963407ull;
    return scale * (static_cast<float>(s_ >> 40) / 8388608.0f - 1.0f);
  }

 private:
  uint64_t s_;
};

// Every tensor of the folder, in the names and order transformers 5 saves
// (logit_scale first when both towers are present; no position_ids buffers).
// LayerNorm weights are near 1, everything else small, so the model's
// activations stay of unit scale.
inline std::vector<FloatTensor> tiny_clip_tensors(const TinyClipSpec& s) {
  std::vector<FloatTensor> out;
  Lcg rng(s.seed);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float offset = 0.0f) {
    FloatTensor t{name, std::move(shape), {}};
    t.values.resize(numel(t.shape));
    for (float& v : t.values) v = offset + rng.next(scale);
    out.push_back(std::move(t));
  };
  auto layers = [&](const std::string& tower, int n, int h, int inter) {
    for (int i = 0; i < n; ++i) {
      const std::string p = tower + ".encoder.layers." + std::to_string(i) + ".";
      add(p + "layer_norm1.bias", {h}, 0.1f);
      add(p + "layer_norm1.weight", {h}, 0.1f, 1.0f);
      add(p + "layer_norm2.bias", {h}, 0.1f);
      add(p + "layer_norm2.weight", {h}, 0.1f, 1.0f);
      add(p + "mlp.fc1.bias", {inter}, 0.1f);
      add(p + "mlp.fc1.weight", {inter, h}, 0.2f);
      add(p + "mlp.fc2.bias", {h}, 0.1f);
      add(p + "mlp.fc2.weight", {h, inter}, 0.2f);
      for (const char* proj : {"k_proj", "out_proj", "q_proj", "v_proj"}) {
        add(p + "self_attn." + proj + ".bias", {h}, 0.1f);
        add(p + "self_attn." + proj + ".weight", {h, h}, 0.2f);
      }
    }
  };
  if (s.text && s.vision) add("logit_scale", {}, 0.0f, 2.6592f);
  if (s.text) {
    add("text_model.embeddings.position_embedding.weight", {s.max_positions, s.text_hidden}, 0.5f);
    add("text_model.embeddings.token_embedding.weight", {s.vocab_size, s.text_hidden}, 0.5f);
    layers("text_model", s.text_layers, s.text_hidden, s.text_intermediate);
    add("text_model.final_layer_norm.bias", {s.text_hidden}, 0.1f);
    add("text_model.final_layer_norm.weight", {s.text_hidden}, 0.1f, 1.0f);
    add("text_projection.weight", {s.projection_dim, s.text_hidden}, 0.2f);
  }
  if (s.vision) {
    const int g = s.image_size / s.patch_size;
    add("vision_model.embeddings.class_embedding", {s.vision_hidden}, 0.5f);
    add("vision_model.embeddings.patch_embedding.weight", {s.vision_hidden, s.num_channels, s.patch_size, s.patch_size},
        0.1f);
    add("vision_model.embeddings.position_embedding.weight", {g * g + 1, s.vision_hidden}, 0.5f);
    layers("vision_model", s.vision_layers, s.vision_hidden, s.vision_intermediate);
    add("vision_model.post_layernorm.bias", {s.vision_hidden}, 0.1f);
    add("vision_model.post_layernorm.weight", {s.vision_hidden}, 0.1f, 1.0f);
    add("vision_model.pre_layrnorm.bias", {s.vision_hidden}, 0.1f);
    add("vision_model.pre_layrnorm.weight", {s.vision_hidden}, 0.1f, 1.0f);
    add("visual_projection.weight", {s.projection_dim, s.vision_hidden}, 0.2f);
  }
  return out;
}

// config.json as transformers 5 writes it: a CLIPConfig for both towers, the
// single tower's config (fields at top level) otherwise.
inline json tiny_clip_config(const TinyClipSpec& s) {
  json text = {{"model_type", "clip_text_model"},
               {"hidden_size", s.text_hidden},
               {"intermediate_size", s.text_intermediate},
               {"num_hidden_layers", s.text_layers},
               {"num_attention_heads", s.text_heads},
               {"vocab_size", s.vocab_size},
               {"max_position_embeddings", s.max_positions},
               {"hidden_act", s.hidden_act},
               {"layer_norm_eps", 1e-5},
               {"bos_token_id", 49406},
               {"eos_token_id", 49407},
               {"pad_token_id", 1},
               {"projection_dim", 512}};  // transformers writes the sub-config default
  json vision = {{"model_type", "clip_vision_model"},
                 {"hidden_size", s.vision_hidden},
                 {"intermediate_size", s.vision_intermediate},
                 {"num_hidden_layers", s.vision_layers},
                 {"num_attention_heads", s.vision_heads},
                 {"image_size", s.image_size},
                 {"patch_size", s.patch_size},
                 {"num_channels", s.num_channels},
                 {"hidden_act", s.hidden_act},
                 {"layer_norm_eps", 1e-5},
                 {"projection_dim", 512}};
  if (s.text && s.vision)
    return {{"architectures", {"CLIPModel"}},   {"model_type", "clip"}, {"projection_dim", s.projection_dim},
            {"logit_scale_init_value", 2.6592}, {"text_config", text},  {"vision_config", vision}};
  json single = s.text ? text : vision;
  single["architectures"] = {s.text ? "CLIPTextModelWithProjection" : "CLIPVisionModelWithProjection"};
  single["projection_dim"] = s.projection_dim;
  return single;
}

// preprocessor_config.json as CLIPImageProcessor saves it.
inline json tiny_preprocessor_config(int image_size) {
  return {{"crop_size", {{"height", image_size}, {"width", image_size}}},
          {"do_center_crop", true},
          {"do_convert_rgb", true},
          {"do_normalize", true},
          {"do_rescale", true},
          {"do_resize", true},
          {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
          {"image_processor_type", "CLIPImageProcessor"},
          {"image_std", {0.26862954, 0.26130258, 0.27577711}},
          {"resample", 3},
          {"rescale_factor", 1.0 / 255.0},
          {"size", {{"shortest_edge", image_size}}}};
}

// Writes config.json, the weights (as `dtype`; num_shards > 1 writes
// model-0000i-of-0000n.safetensors + model.safetensors.index.json the way
// transformers names them) and, unless null, preprocessor_config.json.
inline void write_clip_folder(const fs::path& dir, const json& config, const std::vector<FloatTensor>& tensors,
                              const std::string& dtype = "F32", int num_shards = 1, const json& preprocessor = json()) {
  fs::create_directories(dir);
  write_text(dir / "config.json", config.dump(2));
  if (!preprocessor.is_null()) write_text(dir / "preprocessor_config.json", preprocessor.dump(2));

  std::vector<RawTensor> raw;
  for (const auto& t : tensors) raw.push_back({t.name, dtype, t.shape, encode(t.values, dtype)});
  if (num_shards <= 1) {
    write_file(dir / "model.safetensors", safetensors_bytes(raw));
    return;
  }
  auto shard_name = [&](int i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, num_shards);
    return std::string(buf);
  };
  json weight_map = json::object();
  size_t total = 0;
  for (int i = 0; i < num_shards; ++i) {  // contiguous runs of tensors per shard
    const size_t b = raw.size() * i / num_shards, e = raw.size() * (i + 1) / num_shards;
    std::vector<RawTensor> part(raw.begin() + b, raw.begin() + e);
    for (const auto& t : part) {
      weight_map[t.name] = shard_name(i);
      total += t.bytes.size();
    }
    write_file(dir / shard_name(i), safetensors_bytes(part));
  }
  const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_text(dir / "model.safetensors.index.json", index.dump(2));
}

inline FloatTensor* find_tensor(std::vector<FloatTensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return &t;
  return nullptr;
}

inline void erase_tensor(std::vector<FloatTensor>& ts, const std::string& name) {
  std::erase_if(ts, [&](const FloatTensor& t) { return t.name == name; });
}

}  // namespace cliptest
