// The interface every compute backend (CPU, CUDA) implements. The engine
// (engine.cpp) does tokenisation, pooling positions and preprocessing; a
// backend only runs the towers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clip/config.h"
#include "clip/tensor.h"
#include "clip/weights.h"

namespace clip {

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
  // pixels: [n, channels, image_size, image_size], already normalised.
  // Returns [n, projection_dim], unnormalised.
  virtual Tensor encode_images(const Tensor& pixels) = 0;
  // Returns [count, projection_dim], unnormalised.
  virtual Tensor encode_texts(const TextBatch& batch) = 0;
};

// threads <= 0: all hardware threads.
std::unique_ptr<Backend> make_cpu_backend(const ClipConfig& config, const ModelWeights& weights,
                                          int threads);

}  // namespace clip
