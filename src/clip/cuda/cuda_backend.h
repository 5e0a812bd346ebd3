// Entry points of the CUDA backend; the only CUDA header the engine includes.
// Compiled only when CMake finds nvcc (CLIPFIND_HAVE_CUDA); it must not need
// a GPU to compile, and reports a missing GPU or driver at run time.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "clip/backend.h"
#include "clip/cuda/tuning.h"
#include "clip/precision.h"

namespace clip {

struct CudaOptions {
  int device = 0;
  Precision precision = Precision::FP16;
  // The backend's switches (cuda/tuning.h: CUDA graphs, GPU preprocessing,
  // debugging aids, experiments); empty: Tuning::from_environment(), read
  // when the backend is made.
  std::optional<cuda::Tuning> tuning;
};

// True when a usable GPU and driver are present; otherwise false and *why
// says what is missing (no device, driver too old, ...).
bool cuda_available(std::string* why);

// One line about CUDA device `device` ("cuda:0 NVIDIA H100 ... (compute
// capability 9.0, 132 SMs, 79.1 GiB; driver ...)"); throws clip::Error
// saying why when it is not usable.
std::string cuda_device_description(int device);

// One line about what this build of the backend holds: the CUDA runtime,
// the Hopper kernels, whether experiment switches are read. Needs no GPU.
std::string cuda_build_description();

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
  virtual const cuda::Tuning& tuning() const = 0;
  virtual size_t weight_bytes() const = 0;     // GPU memory held by the weights
  virtual size_t allocated_bytes() const = 0;  // all GPU memory this backend holds now
};

// Uploads the weights (converted once to the chosen precision) and returns
// the backend. Throws clip::Error with a clear message on failure.
std::unique_ptr<Backend> make_cuda_backend(const ClipConfig& config, const ModelWeights& weights,
                                           const CudaOptions& options);

}  // namespace clip
