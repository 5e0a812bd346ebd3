// Entry points of the CUDA backend; the only CUDA header the engine includes.
// Compiled only when CMake finds nvcc (CLIPFIND_HAVE_CUDA); it must not need
// a GPU to compile, and reports a missing GPU or driver at run time.
#pragma once
#include <memory>
#include <string>

#include "clip/backend.h"

namespace clip {

enum class Precision { FP32, TF32, FP16, BF16 };

// "fp32" | "tf32" | "fp16" | "bf16"; throws clip::Error on anything else.
Precision parse_precision(const std::string& name);

struct CudaOptions {
  int device = 0;
  Precision precision = Precision::FP16;
  // Replay CUDA Graphs of the whole forward pass for batch shapes seen
  // before (saves ~100 launches per call; matters at small batches).
  // CLIPFIND_CUDA_GRAPHS=0 in the environment turns them off too.
  bool graphs = true;
};

// True when a usable GPU and driver are present; otherwise false and *why
// says what is missing (no device, driver too old, ...).
bool cuda_available(std::string* why);

const char* precision_name(Precision p);

// The CUDA backend's own interface, beyond Backend: device-resident entry
// points for callers that keep data on the GPU (the video pipeline, the
// benchmarks), and memory figures. make_cuda_backend's result is one of
// these (dynamic_cast). The stream is exposed as void* so this header needs
// no CUDA include.
class CudaBackend : public Backend {
 public:
  // pixels: float32 [n, channels, image_size, image_size] in GPU memory;
  // out: float32 [n, projection_dim] in GPU memory. Asynchronous on stream().
  virtual void encode_images_device(const float* pixels, int n, float* out) = 0;
  // ids come from the host batch; out: float32 [count, projection_dim] in GPU
  // memory. Asynchronous on stream().
  virtual void encode_texts_device(const TextBatch& batch, float* out) = 0;
  virtual void* stream() const = 0;  // cudaStream_t
  virtual void synchronize() = 0;
  virtual Precision precision() const = 0;
  virtual size_t weight_bytes() const = 0;     // GPU memory held by the weights
  virtual size_t allocated_bytes() const = 0;  // all GPU memory this backend holds now
};

// Uploads the weights (converted once to the chosen precision) and returns
// the backend. Throws clip::Error with a clear message on failure.
std::unique_ptr<Backend> make_cuda_backend(const ClipConfig& config, const ModelWeights& weights,
                                           const CudaOptions& options);

}  // namespace clip
