// The engine: ties the model folder, tokenizer, preprocessing and a compute
// backend together. Backends only run towers; everything model-independent
// (tokenising, pooling positions, truncation, batching) happens here once.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "clip/backend.h"
#include "clip/clip.h"
#include "clip/cpu/cpu_precision.h"
#include "clip/image/preprocess.h"
#include "clip/image/preprocess_plan.h"
#include "clip/model/weights.h"
#include "clip/text/model_tokenizer.h"
#ifdef CLIPFIND_HAVE_CUDA
#include "clip/cuda/cuda_backend.h"
#include "clip/cuda/device.h"
#endif

namespace clip {

namespace {

// Largest number of images sent to the backend at once: bounds the
// activation memory (ViT-L/14 holds ~1 MB of activations per image and layer
// on the CPU) while keeping GEMMs large enough to run at full rate.
constexpr size_t kMaxImageChunk = 64;
constexpr size_t kMaxTextChunk = 256;

struct DeviceChoice {
  bool cuda = false;
  int index = 0;
  bool automatic = false;  // "auto"
  std::string why_cpu;     // "auto" on a CUDA build without a usable GPU: why
};

// "cpu", "cuda", "cuda:N" or "auto".
DeviceChoice parse_device(const std::string& device) {
  if (device == "cpu") return {};
  if (device == "auto") {
    DeviceChoice auto_choice{false, 0, true, ""};
#ifdef CLIPFIND_HAVE_CUDA
    auto_choice.cuda = cuda_available(&auto_choice.why_cpu);
#endif
    return auto_choice;
  }
  if (device.rfind("cuda", 0) == 0) {
    int index = 0;
    if (device.size() > 4) {
      if (device[4] != ':' || device.size() == 5 || !std::all_of(device.begin() + 5, device.end(), ::isdigit)) {
        throw Error("bad device '" + device + "': expected cpu, auto, cuda or cuda:N");
      }
      index = std::stoi(device.substr(5));
    }
#ifdef CLIPFIND_HAVE_CUDA
    std::string why;
    if (!cuda_available(&why)) throw Error("device '" + device + "' is not usable: " + why);
    return {true, index, false, ""};
#else
    (void)index;
    throw Error("device '" + device + "': this build of clipfind has no CUDA backend");
#endif
  }
  throw Error("bad device '" + device + "': expected cpu, auto, cuda or cuda:N");
}

#ifdef CLIPFIND_HAVE_CUDA
// "auto" on a build with CUDA that ends on the CPU says so, and why, in one
// line on stderr, once per process (an indexer makes several engines): the
// user of a CUDA build expects the GPU. A build without CUDA stays quiet.
void say_auto_runs_on_cpu(const std::string& why) {
  static std::once_flag once;
  std::call_once(once, [&] { std::fprintf(stderr, "clipfind: device auto: running on the CPU: %s\n", why.c_str()); });
}
#endif

std::unique_ptr<Backend> make_backend(const LoadedModel& model, const EngineOptions& options) {
  const DeviceChoice choice = parse_device(options.device);
  if (!choice.cuda) {
#ifdef CLIPFIND_HAVE_CUDA
    if (choice.automatic) say_auto_runs_on_cpu(choice.why_cpu);
#endif
    // Device "auto" on the CPU keeps a CPU precision the user asked for; a
    // GPU-only one (tf32, fp16) becomes fp32 (see cpu_precision_for).
    return make_cpu_backend(model.config, model.weights, options.threads,
                            cpu_precision_for(options.precision, choice.automatic));
  }
#ifdef CLIPFIND_HAVE_CUDA
  CudaOptions cuda;
  cuda.device = choice.index;
  if (options.precision && *options.precision != Precision::AUTO) cuda.precision = *options.precision;
  if (!choice.automatic) return make_cuda_backend(model.config, model.weights, cuda);
  // "auto" promises a working engine: a GPU that cannot take the model (out
  // of memory, a failing driver) falls back to the CPU, saying so.
  try {
    return make_cuda_backend(model.config, model.weights, cuda);
  } catch (const Error& e) {
    say_auto_runs_on_cpu(std::string("the GPU could not be used (") + e.what() + ")");
    return make_cpu_backend(model.config, model.weights, options.threads, cpu_precision_for(options.precision, true));
  }
#else
  throw Error("this build of clipfind has no CUDA backend");
#endif
}

}  // namespace

struct Engine::State {
  std::filesystem::path dir;  // the model folder, for messages
  LoadedModel model;
  std::optional<ModelTokenizer> tokenizer;
  std::unique_ptr<Backend> backend;
};

Engine::Engine() : state_(std::make_unique<State>()) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::filesystem::path& model_dir, const EngineOptions& options) {
  std::unique_ptr<Engine> engine(new Engine());
  State& s = *engine->state_;
  s.dir = model_dir;
  s.model = load_model(model_dir);
  // CLIP BPE or SigLIP SentencePiece, by the config's family.
  if (s.model.config.text) s.tokenizer.emplace(ModelTokenizer::load(model_dir, s.model.config));
  s.backend = make_backend(s.model, options);
  // Backends keep their own copies (packed for the CPU GEMMs, or on the GPU):
  // the host float32 weights are not needed again.
  s.model.weights = ModelWeights{};
  return engine;
}

bool Engine::has_text() const { return state_->model.config.text.has_value(); }
bool Engine::has_vision() const { return state_->model.config.vision.has_value(); }
int Engine::projection_dim() const { return state_->model.config.projection_dim; }
const ClipConfig& Engine::config() const { return state_->model.config; }
const PreprocessConfig& Engine::preprocess_config() const { return state_->model.preprocess; }
std::string Engine::backend_name() const { return state_->backend->name(); }
std::string Engine::device() const { return state_->backend->device(); }
Precision Engine::precision() const { return state_->backend->precision(); }

std::vector<int32_t> Engine::tokenize(const std::string& text) const {
  if (!state_->tokenizer) throw Error("this model has no text tower, so no tokenizer");
  return state_->tokenizer->encode(text);
}

int pooled_position(const std::vector<int32_t>& ids, int eos_token_id) {
  if (ids.empty()) return 0;
  if (eos_token_id == 2) {
    // transformers keeps the pre-2023 rule for such configs: argmax of the ids
    // (the end token has the largest id in CLIP's vocabulary); first on ties.
    return static_cast<int>(std::max_element(ids.begin(), ids.end()) - ids.begin());
  }
  auto it = std::find(ids.begin(), ids.end(), eos_token_id);
  // No end token: torch's argmax over an all-false mask gives 0.
  return it == ids.end() ? 0 : static_cast<int>(it - ids.begin());
}

namespace {

// Appends the rows of `src` to `dst` (both [rows, cols]).
void append_rows(Tensor& dst, const Tensor& src) {
  if (dst.shape.empty()) {
    dst = src;
    return;
  }
  dst.data.insert(dst.data.end(), src.data.begin(), src.data.end());
  dst.shape[0] += src.shape[0];
}

}  // namespace

Tensor Engine::embed_texts(const std::vector<std::string>& texts) {
  if (!has_text()) throw Error("this model has no text tower: it cannot embed text");
  const TextConfig& tc = *state_->model.config.text;
  Tensor result({0, projection_dim()});
  for (size_t start = 0; start < texts.size(); start += kMaxTextChunk) {
    const size_t count = std::min(kMaxTextChunk, texts.size() - start);
    std::vector<std::vector<int32_t>> ids(count);
    TextBatch batch;
    batch.count = static_cast<int>(count);
    batch.pool_at.resize(count);
    for (size_t i = 0; i < count; ++i) ids[i] = tokenize(texts[start + i]);
    if (tc.pool_last) {
      // SigLIP: no mask; every text padded to the full context and pooled at
      // its last position, as transformers' processor pads (max_length).
      batch.seq_len = tc.max_positions;
      std::fill(batch.pool_at.begin(), batch.pool_at.end(), batch.seq_len - 1);
    } else {
      for (size_t i = 0; i < count; ++i) batch.pool_at[i] = pooled_position(ids[i], tc.eos_token_id);
      // Under the causal mask, tokens after the pooled one cannot change it:
      // run only up to the last pooled position of the batch.
      batch.seq_len = 1 + *std::max_element(batch.pool_at.begin(), batch.pool_at.end());
    }
    batch.ids.assign(count * batch.seq_len, state_->tokenizer->pad_id());
    for (size_t i = 0; i < count; ++i) {
      const size_t n = std::min<size_t>(ids[i].size(), batch.seq_len);
      std::copy_n(ids[i].begin(), n, batch.ids.begin() + i * batch.seq_len);
    }
    append_rows(result, state_->backend->encode_texts(batch));
  }
  return result;
}

Tensor Engine::embed_pixels(const Tensor& pixels) {
  if (!has_vision()) throw Error("this model has no vision tower: it cannot embed images");
  const VisionConfig& vc = *state_->model.config.vision;
  if (pixels.shape.size() != 4 || pixels.shape[1] != vc.num_channels || pixels.shape[2] != vc.image_size ||
      pixels.shape[3] != vc.image_size) {
    throw Error("pixels of shape " + shape_str(pixels.shape) + " given; the model takes [n, " +
                std::to_string(vc.num_channels) + ", " + std::to_string(vc.image_size) + ", " +
                std::to_string(vc.image_size) + "]");
  }
  return state_->backend->encode_images(pixels);
}

Tensor Engine::embed_images(const std::vector<Image>& images) {
  return embed_image_views(checked_views(images, "image"));
}

namespace {

using PlansBySize = std::map<std::pair<int, int>, detail::PreprocessPlan>;

// Host ImageViews and DeviceImageViews alike (the same fields).
template <class View>
void check_views(const std::vector<View>& images) {
  for (size_t i = 0; i < images.size(); ++i) {
    if (images[i].width <= 0 || images[i].height <= 0 || images[i].rgb == nullptr) {
      throw Error("image " + std::to_string(i) + ": not a valid RGB image (" + std::to_string(images[i].width) + "x" +
                  std::to_string(images[i].height) + ")");
    }
  }
}

// Each image's preprocessing plan, one per distinct size (a video's frames
// share one); the pointers returned point into `by_size`.
template <class View>
std::vector<const detail::PreprocessPlan*> plan_views(const std::vector<View>& images, const PreprocessConfig& cfg,
                                                      PlansBySize& by_size) {
  check_views(images);
  std::vector<const detail::PreprocessPlan*> plans;
  plans.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const auto key = std::make_pair(images[i].width, images[i].height);
    auto it = by_size.find(key);
    if (it == by_size.end()) {
      try {
        it = by_size.emplace(key, detail::plan_preprocess(key.first, key.second, cfg)).first;
      } catch (const Error& e) {
        throw Error("image " + std::to_string(i) + " of the batch: " + e.what());
      }
    }
    plans.push_back(&it->second);
  }
  return plans;
}

// The vision tower takes image_size x image_size pixels. A preprocessor
// config that makes anything else (a non-square "size" {"height", "width"}
// without a crop, or a crop_size unlike the model's) is refused before any
// image is read, naming the file, rather than as a tensor shape later.
void check_preprocess_output(const std::filesystem::path& dir, const LoadedModel& m) {
  const PreprocessConfig& p = m.preprocess;
  const int s = m.config.vision->image_size;
  if (p.crop_width == s && p.crop_height == s) return;
  const bool exact = p.do_resize && !p.do_center_crop && p.resize_height > 0;
  throw Error((dir / "preprocessor_config.json").string() + ": preprocessing makes " + std::to_string(p.crop_width) +
              "x" + std::to_string(p.crop_height) + " (width x height) images" +
              (exact ? " (\"size\": {\"height\": " + std::to_string(p.resize_height) +
                           ", \"width\": " + std::to_string(p.resize_width) + "} and no crop)"
                     : " (\"crop_size\")") +
              " but the vision tower takes square " + std::to_string(s) + "x" + std::to_string(s) + " images");
}

}  // namespace

Tensor Engine::embed_image_views(const std::vector<ImageView>& images) {
  if (!has_vision()) throw Error("this model has no vision tower: it cannot embed images");
  check_preprocess_output(state_->dir, state_->model);
  if (state_->backend->takes_rgb()) {
    PlansBySize by_size;
    const auto plans = plan_views(images, state_->model.preprocess, by_size);
    return state_->backend->encode_rgb(images, plans);
  }
  check_views(images);
  Tensor result({0, projection_dim()});
  for (size_t start = 0; start < images.size(); start += kMaxImageChunk) {
    const size_t count = std::min(kMaxImageChunk, images.size() - start);
    std::vector<ImageView> chunk(images.begin() + start, images.begin() + start + count);
    append_rows(result, embed_pixels(preprocess_batch(chunk, state_->model.preprocess)));
  }
  return result;
}

Tensor Engine::embed_device_images(const std::vector<DeviceImageView>& images) {
  if (!has_vision()) throw Error("this model has no vision tower: it cannot embed images");
  if (!state_->backend->takes_device_rgb()) {
    throw Error("embed_device_images: the engine runs on " + device() +
                ", which cannot read images in GPU memory (load it with device cuda)");
  }
  check_preprocess_output(state_->dir, state_->model);
  PlansBySize by_size;
  const auto plans = plan_views(images, state_->model.preprocess, by_size);
  return state_->backend->encode_device_rgb(images, plans);
}

int Engine::cuda_device() const {
  const std::string d = device();
  return d.rfind("cuda:", 0) == 0 ? std::stoi(d.substr(5)) : -1;
}

Tensor Engine::embed_image_files(const std::vector<std::filesystem::path>& files) {
  Tensor result({0, projection_dim()});
  for (size_t start = 0; start < files.size(); start += kMaxImageChunk) {
    const size_t count = std::min(kMaxImageChunk, files.size() - start);
    std::vector<Image> chunk;
    chunk.reserve(count);
    for (size_t i = 0; i < count; ++i) chunk.push_back(decode_image_file(files[start + i]));
    append_rows(result, embed_images(chunk));
  }
  return result;
}

bool cuda_usable(std::string* why) {
#ifdef CLIPFIND_HAVE_CUDA
  return cuda_available(why);
#else
  if (why) *why = "this build of clipfind has no CUDA backend";
  return false;
#endif
}

int cuda_device_count() {
#ifdef CLIPFIND_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

std::vector<std::pair<std::string, std::string>> engine_diagnostics() {
  std::vector<std::pair<std::string, std::string>> out;
#ifdef CLIPFIND_HAVE_CUDA
  out.emplace_back("cuda build", cuda_build_description());
  std::string why;
  if (cuda_available(&why)) {
    out.emplace_back("cuda", "usable");
    try {
      out.emplace_back("gpu", cuda_device_description(0));
    } catch (const Error& e) {
      out.emplace_back("gpu", e.what());
    }
  } else {
    out.emplace_back("cuda", "not usable: " + why + " (device auto runs on the CPU)");
  }
  try {
    out.emplace_back("cuda tuning", cuda::Tuning::from_environment().describe());
  } catch (const Error& e) {
    out.emplace_back("cuda tuning", std::string("error: ") + e.what());
  }
#else
  out.emplace_back("cuda build", "no CUDA backend in this build (device auto runs on the CPU)");
#endif
  return out;
}

void l2_normalize_rows(Tensor& t) {
  if (t.shape.size() != 2) throw Error("l2_normalize_rows needs a 2-d tensor, got " + shape_str(t.shape));
  const size_t cols = static_cast<size_t>(t.shape[1]);
  for (size_t r = 0; r < static_cast<size_t>(t.shape[0]); ++r) {
    float* row = t.ptr() + r * cols;
    double sum = 0;
    for (size_t c = 0; c < cols; ++c) sum += double(row[c]) * row[c];
    if (sum == 0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(sum));
    for (size_t c = 0; c < cols; ++c) row[c] *= inv;
  }
}

}  // namespace clip
