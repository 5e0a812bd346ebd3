// clipfind's CLIP engine: the one header applications include.
//
//   auto engine = clip::Engine::load("models/clip-vit-base-patch32", {});
//   clip::Tensor t = engine->embed_texts({"a photo of a dog"});   // [1, projection_dim]
//   clip::Tensor i = engine->embed_image_files({"dog.jpg"});
//
// Embeddings are unnormalised, equal to transformers'
// visual_projection(vision_model(...).pooler_output) and
// text_projection(text_model(...).pooler_output). Errors are clip::Error.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "clip/error.h"
#include "clip/image/image.h"
#include "clip/model/config.h"
#include "clip/precision.h"
#include "clip/tensor.h"

namespace clip {

class Tokenizer;
class Backend;

struct EngineOptions {
  // "cpu", "cuda" (= "cuda:0"), "cuda:N", or "auto": the GPU when one is
  // usable and takes the model, else the CPU, saying why on stderr.
  std::string device = "cpu";
  std::optional<Precision> precision;  // empty: the backend's default (fp32 on CPU, fp16 on CUDA)
  int threads = 0;                     // CPU threads; <= 0: all hardware threads
};

class Engine {
 public:
  static std::unique_ptr<Engine> load(const std::filesystem::path& model_dir, const EngineOptions& options = {});
  ~Engine();

  bool has_text() const;
  bool has_vision() const;
  int projection_dim() const;
  const ClipConfig& config() const;
  const PreprocessConfig& preprocess_config() const;
  std::string backend_name() const;
  // Where the model actually runs ("cpu" or "cuda:N"; with "auto" the
  // device chosen) and in which precision.
  std::string device() const;
  Precision precision() const;
  // The CUDA device ordinal the engine runs on; -1 when it is not on CUDA.
  int cuda_device() const;

  // The ids the text tower takes: start/end tokens as the model's tokenizer
  // adds them, truncated to the context length with the end token kept last;
  // SigLIP models' ids are also padded to the context length.
  std::vector<int32_t> tokenize(const std::string& text) const;

  Tensor embed_texts(const std::vector<std::string>& texts);
  Tensor embed_images(const std::vector<Image>& images);
  // The same from borrowed pixels (no copy). On CUDA the resize/crop/
  // normalise runs on the GPU, overlapped with uploading and encoding.
  Tensor embed_image_views(const std::vector<ImageView>& images);
  // The same from RGB already in the GPU memory of this engine's device
  // (cuda_device()): preprocessed and encoded there, no copy through the
  // host. Throws clip::Error on an engine that does not run on CUDA. The
  // images are read before it returns.
  Tensor embed_device_images(const std::vector<DeviceImageView>& images);
  Tensor embed_image_files(const std::vector<std::filesystem::path>& files);
  // Already preprocessed pixels [n, 3, size, size].
  Tensor embed_pixels(const Tensor& pixels);

 private:
  Engine();
  struct State;
  std::unique_ptr<State> state_;
};

// True when this build has the CUDA backend and a usable GPU; otherwise
// false and *why says what is missing (no CUDA in this build, no device,
// driver too old, ...).
bool cuda_usable(std::string* why);

// How many CUDA devices the engine could run on here (0 without the CUDA
// backend or a usable GPU).
int cuda_device_count();

// The devices a --device value names, for programs that run an engine on
// each (`clipfind index` and `serve`): "cuda:all" every GPU (cuda_count() of
// them), "cuda:0,2,3" those, anything else itself alone (Engine::load checks
// it). Throws clip::Error naming --device for a bad or repeated number, a
// GPU that is not there, or "cuda:all" with none.
std::vector<std::string> device_list(const std::string& device,
                                     const std::function<int()>& cuda_count = cuda_device_count);

// What `clipfind doctor` reports about the engine, as (topic, one line)
// pairs: the build (CUDA backend or not, Hopper kernels, experiment
// switches), whether CUDA is usable here or why not, the GPU, and the CUDA
// backend's effective switches (cuda/tuning.h, Tuning::describe). Needs no
// model; throws nothing for a missing GPU (it says so).
std::vector<std::pair<std::string, std::string>> engine_diagnostics();

// Divides each row by its L2 norm (rows of zeros stay zero).
void l2_normalize_rows(Tensor& t);

// Which position of each tokenised text transformers pools: the first
// eos_token_id, or (configs with eos_token_id == 2, from before that field
// was fixed) the position of the largest id.
int pooled_position(const std::vector<int32_t>& ids, int eos_token_id);

}  // namespace clip
