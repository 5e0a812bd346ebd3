// The arithmetic precision of a backend, shared by EngineOptions, the CPU
// backend (fp32 only) and the CUDA backend (all four). Header-only: the CUDA
// library, which the engine links and not the reverse, uses it too.
#pragma once
#include <string>

#include "clip/error.h"

namespace clip {

enum class Precision {
  FP32,  // float32 everywhere
  TF32,  // float32 storage, TF32 tensor-core products (CUDA)
  FP16,  // fp16 GEMM operands, float32 accumulation and residual stream (CUDA)
  BF16,  // the same with bfloat16 (CUDA)
};

inline const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32:
      return "fp32";
    case Precision::TF32:
      return "tf32";
    case Precision::FP16:
      return "fp16";
    case Precision::BF16:
      return "bf16";
  }
  return "?";
}

// "fp32" | "tf32" | "fp16" | "bf16"; throws clip::Error on anything else.
inline Precision parse_precision(const std::string& name) {
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::FP16, Precision::BF16})
    if (name == precision_name(p)) return p;
  throw Error("unknown precision '" + name + "' (expected fp32, tf32, fp16 or bf16)");
}

}  // namespace clip
