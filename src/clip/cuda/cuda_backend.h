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
};

// True when a usable GPU and driver are present; otherwise false and *why
// says what is missing (no device, driver too old, ...).
bool cuda_available(std::string* why);

// Uploads the weights (converted once to the chosen precision) and returns
// the backend. Throws clip::Error with a clear message on failure.
std::unique_ptr<Backend> make_cuda_backend(const ClipConfig& config, const ModelWeights& weights,
                                           const CudaOptions& options);

}  // namespace clip
