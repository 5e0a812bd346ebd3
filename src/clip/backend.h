// The interface every compute backend (CPU, CUDA) implements. The engine
// (engine.cpp) does tokenisation, pooling positions and preprocessing; a
// backend only runs the towers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clip/error.h"
#include "clip/image/image.h"
#include "clip/model/config.h"
#include "clip/model/weights.h"
#include "clip/precision.h"
#include "clip/tensor.h"

namespace clip {

namespace detail {
struct PreprocessPlan;
}

struct TextBatch {
  int count = 0;                 // number of texts
  int seq_len = 0;               // tokens per text actually run (<= max_positions)
  std::vector<int32_t> ids;      // [count, seq_len], row-major
  std::vector<int32_t> pool_at;  // [count]: position whose final hidden state is pooled
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Where the towers run: "cpu" or "cuda:N".
  virtual std::string device() const = 0;
  virtual Precision precision() const = 0;
  // pixels: [n, channels, image_size, image_size], already normalised.
  // Returns [n, projection_dim], unnormalised.
  virtual Tensor encode_images(const Tensor& pixels) = 0;
  // Returns [count, projection_dim], unnormalised.
  virtual Tensor encode_texts(const TextBatch& batch) = 0;
  // Backends that preprocess 8-bit RGB images themselves (the CUDA one, on
  // the GPU, to the same floats as preprocess_batch) say so here; the engine
  // then calls encode_rgb for the whole list, with plans[i] =
  // detail::plan_preprocess(images[i]'s size, the model's config). Others
  // get pixels preprocessed on the CPU through encode_images.
  virtual bool takes_rgb() const { return false; }
  virtual Tensor encode_rgb(const std::vector<ImageView>& images,
                            const std::vector<const detail::PreprocessPlan*>& plans) {
    (void)images, (void)plans;
    throw Error(name() + " backend does not preprocess images");
  }
  // Backends whose memory is a GPU's (CUDA) take 8-bit RGB already there:
  // encode_device_rgb, as encode_rgb but without the upload. The images must
  // not be written until it returns.
  virtual bool takes_device_rgb() const { return false; }
  virtual Tensor encode_device_rgb(const std::vector<DeviceImageView>& images,
                                   const std::vector<const detail::PreprocessPlan*>& plans) {
    (void)images, (void)plans;
    throw Error(name() + " backend does not read images in GPU memory");
  }
};

// threads <= 0: all hardware threads. The CPU runs fp32, bf16 and int8
// (clip/cpu/cpu_precision.h); any other precision throws clip::Error.
std::unique_ptr<Backend> make_cpu_backend(const ClipConfig& config, const ModelWeights& weights, int threads,
                                          Precision precision = Precision::FP32);

}  // namespace clip
