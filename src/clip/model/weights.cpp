// load_model: a Hugging Face CLIP folder into ModelWeights.
//
// The tables below are the one place that maps Hugging Face tensor names to
// roles and symbolic shapes. Loading runs in three steps per tower:
//   1. derive the sizes from a few "anchor" tensors (the weights win over
//      config.json, so a config saying 12 layers for 4 stored ones is simply
//      corrected),
//   2. check every expected tensor's presence and shape against those sizes
//      (a disagreement here is among the tensors themselves: an error),
//   3. convert to float32.
// Tensors outside the tables (position_ids buffers of old checkpoints, the
// other tower) are ignored; logit_scale and logit_bias go to the config.
// SigLIP folders have tables of their own (kSiglip*), with names below the
// tower's prefix: "text_model." / "vision_model." in a SiglipModel, nothing
// in a tower saved alone by transformers 5.
#include "clip/model/weights.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "clip/error.h"
#include "clip/model/to_f32.h"
#include "clip/model/weight_source.h"

namespace clip {

namespace {

namespace fs = std::filesystem;

// Symbolic dimensions, resolved per tower from the anchor tensors.
enum Sym { kHidden, kInter, kVocab, kPositions, kProj, kChannels, kPatch, kNumSyms };
constexpr const char* kSymNames[kNumSyms] = {"hidden size",    "intermediate size", "vocab size", "positions",
                                             "projection dim", "channels",          "patch size"};

template <typename Owner>
struct Entry {
  const char* name;  // HF name (after the tower/layer prefix for layer entries)
  Tensor& (*slot)(Owner&);
  std::vector<Sym> shape;
};

#define SLOT(Owner, member) [](Owner& o) -> Tensor& { return o.member; }

// Per encoder layer, below "<tower>_model.encoder.layers.<i>.".
const std::vector<Entry<LayerWeights>> kLayerTable = {
    {"layer_norm1.weight", SLOT(LayerWeights, ln1.weight), {kHidden}},
    {"layer_norm1.bias", SLOT(LayerWeights, ln1.bias), {kHidden}},
    {"self_attn.q_proj.weight", SLOT(LayerWeights, q.weight), {kHidden, kHidden}},
    {"self_attn.q_proj.bias", SLOT(LayerWeights, q.bias), {kHidden}},
    {"self_attn.k_proj.weight", SLOT(LayerWeights, k.weight), {kHidden, kHidden}},
    {"self_attn.k_proj.bias", SLOT(LayerWeights, k.bias), {kHidden}},
    {"self_attn.v_proj.weight", SLOT(LayerWeights, v.weight), {kHidden, kHidden}},
    {"self_attn.v_proj.bias", SLOT(LayerWeights, v.bias), {kHidden}},
    {"self_attn.out_proj.weight", SLOT(LayerWeights, out.weight), {kHidden, kHidden}},
    {"self_attn.out_proj.bias", SLOT(LayerWeights, out.bias), {kHidden}},
    {"layer_norm2.weight", SLOT(LayerWeights, ln2.weight), {kHidden}},
    {"layer_norm2.bias", SLOT(LayerWeights, ln2.bias), {kHidden}},
    {"mlp.fc1.weight", SLOT(LayerWeights, fc1.weight), {kInter, kHidden}},
    {"mlp.fc1.bias", SLOT(LayerWeights, fc1.bias), {kInter}},
    {"mlp.fc2.weight", SLOT(LayerWeights, fc2.weight), {kHidden, kInter}},
    {"mlp.fc2.bias", SLOT(LayerWeights, fc2.bias), {kHidden}},
};

const std::vector<Entry<TextWeights>> kTextTable = {
    {"text_model.embeddings.token_embedding.weight", SLOT(TextWeights, token_embedding), {kVocab, kHidden}},
    {"text_model.embeddings.position_embedding.weight", SLOT(TextWeights, position_embedding), {kPositions, kHidden}},
    {"text_model.final_layer_norm.weight", SLOT(TextWeights, final_ln.weight), {kHidden}},
    {"text_model.final_layer_norm.bias", SLOT(TextWeights, final_ln.bias), {kHidden}},
    {"text_projection.weight", SLOT(TextWeights, projection.weight), {kProj, kHidden}},
};

const std::vector<Entry<VisionWeights>> kVisionTable = {
    {"vision_model.embeddings.class_embedding", SLOT(VisionWeights, class_embedding), {kHidden}},
    {"vision_model.embeddings.patch_embedding.weight",
     SLOT(VisionWeights, patch_embedding),
     {kHidden, kChannels, kPatch, kPatch}},
    {"vision_model.embeddings.position_embedding.weight",
     SLOT(VisionWeights, position_embedding),
     {kPositions, kHidden}},
    // "pre_layrnorm" (sic) is the Hugging Face name.
    {"vision_model.pre_layrnorm.weight", SLOT(VisionWeights, pre_ln.weight), {kHidden}},
    {"vision_model.pre_layrnorm.bias", SLOT(VisionWeights, pre_ln.bias), {kHidden}},
    {"vision_model.post_layernorm.weight", SLOT(VisionWeights, post_ln.weight), {kHidden}},
    {"vision_model.post_layernorm.bias", SLOT(VisionWeights, post_ln.bias), {kHidden}},
    {"visual_projection.weight", SLOT(VisionWeights, projection.weight), {kProj, kHidden}},
};

// SigLIP, below the tower prefix (TowerSpec::prefix, or "" for a lone tower).
const std::vector<Entry<TextWeights>> kSiglipTextTable = {
    {"embeddings.token_embedding.weight", SLOT(TextWeights, token_embedding), {kVocab, kHidden}},
    {"embeddings.position_embedding.weight", SLOT(TextWeights, position_embedding), {kPositions, kHidden}},
    {"final_layer_norm.weight", SLOT(TextWeights, final_ln.weight), {kHidden}},
    {"final_layer_norm.bias", SLOT(TextWeights, final_ln.bias), {kHidden}},
    {"head.weight", SLOT(TextWeights, projection.weight), {kProj, kHidden}},
    {"head.bias", SLOT(TextWeights, projection.bias), {kProj}},
};

const std::vector<Entry<VisionWeights>> kSiglipVisionTable = {
    {"embeddings.patch_embedding.weight", SLOT(VisionWeights, patch_embedding), {kHidden, kChannels, kPatch, kPatch}},
    {"embeddings.patch_embedding.bias", SLOT(VisionWeights, patch_bias), {kHidden}},
    {"embeddings.position_embedding.weight", SLOT(VisionWeights, position_embedding), {kPositions, kHidden}},
    {"post_layernorm.weight", SLOT(VisionWeights, post_ln.weight), {kHidden}},
    {"post_layernorm.bias", SLOT(VisionWeights, post_ln.bias), {kHidden}},
};

// nn.MultiheadAttention keeps q, k and v in one in_proj; split at load.
const std::vector<Entry<AttentionPoolWeights>> kSiglipHeadTable = {
    {"head.attention.out_proj.weight", SLOT(AttentionPoolWeights, out.weight), {kHidden, kHidden}},
    {"head.attention.out_proj.bias", SLOT(AttentionPoolWeights, out.bias), {kHidden}},
    {"head.layernorm.weight", SLOT(AttentionPoolWeights, ln.weight), {kHidden}},
    {"head.layernorm.bias", SLOT(AttentionPoolWeights, ln.bias), {kHidden}},
    {"head.mlp.fc1.weight", SLOT(AttentionPoolWeights, fc1.weight), {kInter, kHidden}},
    {"head.mlp.fc1.bias", SLOT(AttentionPoolWeights, fc1.bias), {kInter}},
    {"head.mlp.fc2.weight", SLOT(AttentionPoolWeights, fc2.weight), {kHidden, kInter}},
    {"head.mlp.fc2.bias", SLOT(AttentionPoolWeights, fc2.bias), {kHidden}},
};

#undef SLOT

// A tower's layout: its name prefix and the anchors its sizes come from.
struct TowerSpec {
  const char* label;         // "text" / "vision", for messages
  const char* prefix;        // "text_model."
  const char* projection;    // "text_projection.weight"
  const char* config_scope;  // "text_config." in a full CLIPConfig
};
constexpr TowerSpec kTextSpec = {"text", "text_model.", "text_projection.weight", "text_config."};
constexpr TowerSpec kVisionSpec = {"vision", "vision_model.", "visual_projection.weight", "vision_config."};

// Sizes of one tower, each remembering the tensor it was read from so that a
// shape error can say why a number was expected.
struct Dims {
  int64_t value[kNumSyms] = {};
  std::string source[kNumSyms];

  std::vector<int64_t> shape(const std::vector<Sym>& syms) const {
    std::vector<int64_t> s;
    for (Sym d : syms) s.push_back(value[d]);
    return s;
  }
  std::string explain(const std::vector<Sym>& syms) const {
    std::string out;
    std::set<Sym> done;
    for (Sym d : syms) {
      if (!done.insert(d).second) continue;
      out += (out.empty() ? "" : "; ") + std::string(kSymNames[d]) + " " + std::to_string(value[d]) + " from '" +
             source[d] + "'";
    }
    return out;
  }
};

// Tensor lookup with errors that name the weights file and the tensor.
class Lookup {
 public:
  Lookup(const WeightSource& src, std::string weights_file) : src_(src), weights_file_(std::move(weights_file)) {}

  const TensorView& require(const std::string& name, const char* tower) const {
    const TensorView* v = src_.find(name);
    if (!v) throw Error(weights_file_ + ": tensor '" + name + "' is missing (needed by the " + tower + " tower)");
    return *v;
  }

  // An anchor: present, of the given rank, every dimension a positive int
  // (the sizes it gives go into the int fields of the config).
  const TensorView& anchor(const std::string& name, size_t rank, const char* tower) const {
    const TensorView& v = require(name, tower);
    bool ok = v.shape.size() == rank;
    for (int64_t d : v.shape) ok = ok && d > 0 && d <= std::numeric_limits<int>::max();
    if (!ok)
      throw Error(v.file + ": tensor '" + name + "' has shape " + shape_str(v.shape) + ", expected " +
                  std::to_string(rank) + " positive dimensions");
    return v;
  }

  bool has_prefix(const std::string& prefix) const {
    for (const auto& n : src_.names())
      if (n.compare(0, prefix.size(), prefix) == 0) return true;
    return false;
  }

  // Number of encoder layers = highest "<prefix>encoder.layers.<i>." + 1.
  // Gaps are caught later as missing tensors of the absent layer.
  int count_layers(const std::string& prefix) const {
    const std::string stem = prefix + "encoder.layers.";
    long long highest = -1;
    for (const auto& n : src_.names()) {
      if (n.compare(0, stem.size(), stem) != 0) continue;
      size_t i = stem.size(), digits = 0;
      long long idx = 0;
      while (i < n.size() && n[i] >= '0' && n[i] <= '9' && digits < 6) {
        idx = idx * 10 + (n[i++] - '0');
        ++digits;
      }
      if (digits > 0 && i < n.size() && n[i] == '.') highest = std::max(highest, idx);
    }
    return static_cast<int>(highest + 1);
  }

  template <typename Owner>
  void load(Owner& owner, const Entry<Owner>& e, const std::string& name, const Dims& dims, const char* tower) const {
    const TensorView& v = require(name, tower);
    const std::vector<int64_t> want = dims.shape(e.shape);
    if (v.shape != want)
      throw Error(v.file + ": tensor '" + name + "' has shape " + shape_str(v.shape) + ", expected " + shape_str(want) +
                  " (" + dims.explain(e.shape) + ")");
    e.slot(owner) = to_f32(v, want);
  }

  // A tensor of exactly `want`, converted to float32.
  Tensor load_exact(const std::string& name, const std::vector<int64_t>& want, const char* tower,
                    const std::string& why) const {
    const TensorView& v = require(name, tower);
    if (v.shape != want)
      throw Error(v.file + ": tensor '" + name + "' has shape " + shape_str(v.shape) + ", expected " + shape_str(want) +
                  " (" + why + ")");
    return to_f32(v, want);
  }

  const TensorView* find(const std::string& name) const { return src_.find(name); }

 private:
  const WeightSource& src_;
  std::string weights_file_;
};

void set_dim(Dims& d, Sym s, int64_t value, const std::string& source) {
  d.value[s] = value;
  d.source[s] = source;
}

// Sizes every tower has: hidden (set by the caller), intermediate, projection.
void common_dims(const Lookup& w, const TowerSpec& t, Dims& d) {
  const std::string fc1 = std::string(t.prefix) + "encoder.layers.0.mlp.fc1.weight";
  set_dim(d, kInter, w.anchor(fc1, 2, t.label).shape[0], fc1);
  set_dim(d, kProj, w.anchor(t.projection, 2, t.label).shape[0], t.projection);
}

// The config's head count is the one size the weights cannot tell.
void check_heads(const TowerConfig& c, const TowerSpec& t, const std::string& config_file, const std::string& scope,
                 const Dims& d) {
  if (c.num_heads <= 0 || c.hidden_size % c.num_heads != 0)
    throw Error(config_file + ": " + scope + "num_attention_heads " + std::to_string(c.num_heads) +
                " does not divide the " + t.label + " hidden size " + std::to_string(c.hidden_size) +
                " of the weights ('" + d.source[kHidden] + "')");
}

void load_layers(const Lookup& w, const std::string& prefix, const char* label, int num_layers, const Dims& d,
                 std::vector<LayerWeights>& layers) {
  for (int i = 0; i < num_layers; ++i) {
    LayerWeights& l = layers.emplace_back();
    const std::string p = prefix + "encoder.layers." + std::to_string(i) + ".";
    for (const auto& e : kLayerTable) w.load(l, e, p + e.name, d, label);
  }
}

void load_layers(const Lookup& w, const TowerSpec& t, int num_layers, const Dims& d,
                 std::vector<LayerWeights>& layers) {
  load_layers(w, t.prefix, t.label, num_layers, d, layers);
}

int require_layers(const Lookup& w, const std::string& prefix, const char* label) {
  const int n = w.count_layers(prefix);
  if (n == 0) w.require(prefix + "encoder.layers.0.layer_norm1.weight", label);
  return n;
}

int require_layers(const Lookup& w, const TowerSpec& t) { return require_layers(w, t.prefix, t.label); }

TextWeights load_text(const Lookup& w, TextConfig& c, const std::string& config_file, const std::string& scope) {
  const TowerSpec& t = kTextSpec;
  Dims d;
  const char* tok = kTextTable[0].name;
  const char* pos = kTextTable[1].name;
  const TensorView& tv = w.anchor(tok, 2, t.label);
  set_dim(d, kVocab, tv.shape[0], tok);
  set_dim(d, kHidden, tv.shape[1], tok);
  set_dim(d, kPositions, w.anchor(pos, 2, t.label).shape[0], pos);
  common_dims(w, t, d);

  c.vocab_size = static_cast<int>(d.value[kVocab]);
  c.hidden_size = static_cast<int>(d.value[kHidden]);
  c.max_positions = static_cast<int>(d.value[kPositions]);
  c.intermediate_size = static_cast<int>(d.value[kInter]);
  c.num_layers = require_layers(w, t);
  check_heads(c, t, config_file, scope, d);

  TextWeights tw;
  for (const auto& e : kTextTable) w.load(tw, e, e.name, d, t.label);
  load_layers(w, t, c.num_layers, d, tw.layers);
  return tw;
}

VisionWeights load_vision(const Lookup& w, VisionConfig& c, const std::string& config_file, const std::string& scope) {
  const TowerSpec& t = kVisionSpec;
  Dims d;
  const char* cls = kVisionTable[0].name;
  const char* patch = kVisionTable[1].name;
  const char* pos = kVisionTable[2].name;
  set_dim(d, kHidden, w.anchor(cls, 1, t.label).shape[0], cls);
  const TensorView& pv = w.anchor(patch, 4, t.label);
  set_dim(d, kChannels, pv.shape[1], patch);
  set_dim(d, kPatch, pv.shape[2], patch);  // a non-square kernel fails the shape check
  const TensorView& posv = w.anchor(pos, 2, t.label);
  set_dim(d, kPositions, posv.shape[0], pos);
  common_dims(w, t, d);

  // positions = grid^2 + 1 (class token); the image size follows from it.
  const int64_t patches = d.value[kPositions] - 1;
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(patches))));
  if (patches < 1 || grid * grid != patches)
    throw Error(posv.file + ": tensor '" + pos + "' has " + std::to_string(d.value[kPositions]) +
                " positions; expected a square number of patches plus one class token");

  c.hidden_size = static_cast<int>(d.value[kHidden]);
  c.intermediate_size = static_cast<int>(d.value[kInter]);
  c.num_channels = static_cast<int>(d.value[kChannels]);
  c.patch_size = static_cast<int>(d.value[kPatch]);
  // Keep the config's image size when it yields this grid (transformers floors
  // image_size / patch_size); otherwise it was wrong and the grid decides.
  if (c.image_size / c.patch_size != grid) c.image_size = static_cast<int>(grid * c.patch_size);
  c.num_layers = require_layers(w, t);
  check_heads(c, t, config_file, scope, d);

  VisionWeights vw;
  for (const auto& e : kVisionTable) w.load(vw, e, e.name, d, t.label);
  load_layers(w, t, c.num_layers, d, vw.layers);
  return vw;
}

// SigLIP's text tower: like CLIP's without the causal mask, pooled at the
// last position and projected by a `head` with a bias (projection_size).
TextWeights load_siglip_text(const Lookup& w, const std::string& prefix, TextConfig& c, const std::string& config_file,
                             const std::string& scope) {
  const TowerSpec& t = kTextSpec;
  Dims d;
  const std::string tok = prefix + kSiglipTextTable[0].name;
  const std::string pos = prefix + kSiglipTextTable[1].name;
  const std::string head = prefix + "head.weight";
  const std::string fc1 = prefix + "encoder.layers.0.mlp.fc1.weight";
  const TensorView& tv = w.anchor(tok, 2, t.label);
  set_dim(d, kVocab, tv.shape[0], tok);
  set_dim(d, kHidden, tv.shape[1], tok);
  set_dim(d, kPositions, w.anchor(pos, 2, t.label).shape[0], pos);
  set_dim(d, kProj, w.anchor(head, 2, t.label).shape[0], head);
  c.num_layers = require_layers(w, prefix, t.label);
  set_dim(d, kInter, c.num_layers > 0 ? w.anchor(fc1, 2, t.label).shape[0] : c.intermediate_size, fc1);

  c.vocab_size = static_cast<int>(d.value[kVocab]);
  c.hidden_size = static_cast<int>(d.value[kHidden]);
  c.max_positions = static_cast<int>(d.value[kPositions]);
  c.intermediate_size = static_cast<int>(d.value[kInter]);
  check_heads(c, t, config_file, scope, d);

  TextWeights tw;
  for (const auto& e : kSiglipTextTable) w.load(tw, e, prefix + e.name, d, t.label);
  load_layers(w, prefix, t.label, c.num_layers, d, tw.layers);
  return tw;
}

// SigLIP's vision tower: patches only (the conv has a bias), no pre-norm,
// post_layernorm over every token, then the attention pooling head.
VisionWeights load_siglip_vision(const Lookup& w, const std::string& prefix, VisionConfig& c,
                                 const std::string& config_file, const std::string& scope) {
  const TowerSpec& t = kVisionSpec;
  Dims d;
  const std::string patch = prefix + kSiglipVisionTable[0].name;
  const std::string pos = prefix + kSiglipVisionTable[2].name;
  const std::string fc1 = prefix + "head.mlp.fc1.weight";  // the head always has an MLP, even with 0 layers
  const TensorView& pv = w.anchor(patch, 4, t.label);
  set_dim(d, kHidden, pv.shape[0], patch);
  set_dim(d, kChannels, pv.shape[1], patch);
  set_dim(d, kPatch, pv.shape[2], patch);
  const TensorView& posv = w.anchor(pos, 2, t.label);
  set_dim(d, kPositions, posv.shape[0], pos);
  set_dim(d, kInter, w.anchor(fc1, 2, t.label).shape[0], fc1);

  // positions = grid^2 (no class token); the image size follows from it.
  const int64_t patches = d.value[kPositions];
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(patches))));
  if (grid * grid != patches)
    throw Error(posv.file + ": tensor '" + pos + "' has " + std::to_string(patches) +
                " positions; expected a square number of patches");

  c.hidden_size = static_cast<int>(d.value[kHidden]);
  c.intermediate_size = static_cast<int>(d.value[kInter]);
  c.num_channels = static_cast<int>(d.value[kChannels]);
  c.patch_size = static_cast<int>(d.value[kPatch]);
  if (c.image_size / c.patch_size != grid) c.image_size = static_cast<int>(grid * c.patch_size);
  c.num_layers = require_layers(w, prefix, t.label);
  check_heads(c, t, config_file, scope, d);

  VisionWeights vw;
  for (const auto& e : kSiglipVisionTable) w.load(vw, e, prefix + e.name, d, t.label);
  load_layers(w, prefix, t.label, c.num_layers, d, vw.layers);

  AttentionPoolWeights& h = vw.head.emplace();
  const int64_t H = d.value[kHidden];
  const std::string hidden_why = "hidden size " + std::to_string(H) + " from '" + patch + "'";
  h.probe = w.load_exact(prefix + "head.probe", {1, 1, H}, t.label, hidden_why);
  h.probe.shape = {H};
  const Tensor in_w = w.load_exact(prefix + "head.attention.in_proj_weight", {3 * H, H}, t.label, hidden_why);
  const Tensor in_b = w.load_exact(prefix + "head.attention.in_proj_bias", {3 * H}, t.label, hidden_why);
  LinearWeights* parts[3] = {&h.q, &h.k, &h.v};
  for (int i = 0; i < 3; ++i) {
    parts[i]->weight = Tensor({H, H});
    std::copy_n(in_w.ptr() + i * H * H, H * H, parts[i]->weight.ptr());
    parts[i]->bias = Tensor({H});
    std::copy_n(in_b.ptr() + i * H, H, parts[i]->bias.ptr());
  }
  for (const auto& e : kSiglipHeadTable) w.load(h, e, prefix + e.name, d, t.label);
  return vw;
}

// The scalar logit_scale / logit_bias of a two-tower checkpoint, if stored.
std::optional<float> load_scalar(const Lookup& w, const char* name) {
  const TensorView* v = w.find(name);
  if (!v) return std::nullopt;
  int64_t n = 1;
  for (int64_t dim : v->shape) n *= dim;
  if (n != 1)
    throw Error(v->file + ": tensor '" + name + "' has shape " + shape_str(v->shape) + ", expected one value");
  return to_f32(*v, v->shape).data.at(0);
}

// A SigLIP folder: "text_model." / "vision_model." prefixes in a SiglipModel;
// a tower saved alone by transformers 5 has none.
void load_siglip(const Lookup& w, const std::string& weights_file, const std::string& config_file, LoadedModel& m) {
  const bool full = m.config.text && m.config.vision;
  auto prefix_of = [&](const TowerSpec& t) -> std::string {
    if (full || w.has_prefix(t.prefix)) return t.prefix;
    return "";
  };
  auto present = [&](const TowerSpec& t) { return w.has_prefix(t.prefix); };
  if (full && !present(kTextSpec) && !present(kVisionSpec))
    throw Error(weights_file + ": holds no text_model.* or vision_model.* tensors");
  if (m.config.text && (!full || present(kTextSpec)))
    m.weights.text =
        load_siglip_text(w, prefix_of(kTextSpec), *m.config.text, config_file, full ? kTextSpec.config_scope : "");
  else
    m.config.text.reset();
  if (m.config.vision && (!full || present(kVisionSpec)))
    m.weights.vision = load_siglip_vision(w, prefix_of(kVisionSpec), *m.config.vision, config_file,
                                          full ? kVisionSpec.config_scope : "");
  else
    m.config.vision.reset();

  // The two towers meet in one space: the text head must map to the
  // vision width, which is the image embedding's.
  const int64_t tp = m.weights.text ? m.weights.text->projection.weight.dim(0) : 0;
  const int64_t vp = m.weights.vision ? m.config.vision->hidden_size : 0;
  if (tp && vp && tp != vp)
    throw Error(weights_file + ": 'text_model.head.weight' projects to " + std::to_string(tp) +
                " but the vision tower's embeddings have " + std::to_string(vp) + " values (its hidden size)");
  m.config.projection_dim = static_cast<int>(tp ? tp : vp);
}

}  // namespace

LoadedModel load_model(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": model folder does not exist or is not a directory");
  LoadedModel m;
  const fs::path config_file = dir / "config.json";
  m.config = load_clip_config(config_file);
  const WeightSource src = WeightSource::open_folder(dir);

  const fs::path weights_file =
      fs::exists(dir / "model.safetensors", ec) ? dir / "model.safetensors" : dir / "model.safetensors.index.json";
  const Lookup w(src, weights_file.string());
  m.config.logit_scale = load_scalar(w, "logit_scale");
  m.config.logit_bias = load_scalar(w, "logit_bias");

  if (m.config.family == ModelFamily::Siglip) {
    load_siglip(w, weights_file.string(), config_file.string(), m);
    m.preprocess = load_preprocess_config(dir / "preprocessor_config.json",
                                          m.config.vision ? m.config.vision->image_size : 224, ModelFamily::Siglip);
    return m;
  }

  // A tower is loaded when the config declares it and the weights hold any
  // of it; a CLIPConfig folder whose weights hold one tower loads that one.
  auto present = [&](const TowerSpec& t) { return w.has_prefix(t.prefix) || src.find(t.projection) != nullptr; };
  const bool full = m.config.text && m.config.vision;
  if (full && !present(kTextSpec) && !present(kVisionSpec))
    throw Error(weights_file.string() + ": holds no text_model.* or vision_model.* tensors");
  if (m.config.text && (!full || present(kTextSpec)))
    m.weights.text = load_text(w, *m.config.text, config_file.string(), full ? kTextSpec.config_scope : "");
  else
    m.config.text.reset();
  if (m.config.vision && (!full || present(kVisionSpec)))
    m.weights.vision = load_vision(w, *m.config.vision, config_file.string(), full ? kVisionSpec.config_scope : "");
  else
    m.config.vision.reset();

  // Both projections map into the one shared embedding space.
  const int64_t tp = m.weights.text ? m.weights.text->projection.weight.dim(0) : 0;
  const int64_t vp = m.weights.vision ? m.weights.vision->projection.weight.dim(0) : 0;
  if (tp && vp && tp != vp)
    throw Error(weights_file.string() + ": 'text_projection.weight' projects to " + std::to_string(tp) +
                " but 'visual_projection.weight' to " + std::to_string(vp));
  m.config.projection_dim = static_cast<int>(tp ? tp : vp);

  m.preprocess =
      load_preprocess_config(dir / "preprocessor_config.json", m.config.vision ? m.config.vision->image_size : 224);
  return m;
}

}  // namespace clip
