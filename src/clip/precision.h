// The arithmetic precision of a backend, shared by EngineOptions, the CPU
// backend (fp32, bf16, int8) and the CUDA backend (fp32, tf32, fp16, bf16).
// Header-only: the CUDA library, which the engine links and not the reverse,
// uses it too.
#pragma once
#include <string>

#include "clip/error.h"

namespace clip {

enum class Precision {
  FP32,  // float32 everywhere
  TF32,  // float32 storage, TF32 tensor-core products (CUDA)
  FP16,  // fp16 GEMM operands, float32 accumulation and residual stream (CUDA)
  BF16,  // the same with bfloat16 (CUDA; CPU with native bf16 dot products)
  INT8,  // int8 weights per output channel, activations per token, int32
         // accumulation; attention and norms in float32 (CPU with VNNI)
  AUTO,  // a request, never a backend's state: the fastest precision that
         // keeps the 0.9999 cosine bar (CPU: bf16 where native, else fp32;
         // CUDA: fp16)
};

inline const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::FP16: return "fp16";
    case Precision::BF16: return "bf16";
    case Precision::INT8: return "int8";
    case Precision::AUTO: return "auto";
  }
  return "?";
}

// "fp32" | "tf32" | "fp16" | "bf16" | "int8" | "auto"; throws clip::Error on
// anything else.
inline Precision parse_precision(const std::string& name) {
  for (Precision p :
       {Precision::FP32, Precision::TF32, Precision::FP16, Precision::BF16, Precision::INT8, Precision::AUTO})
    if (name == precision_name(p)) return p;
  throw Error("unknown precision '" + name + "' (expected fp32, tf32, fp16, bf16, int8 or auto)");
}

}  // namespace clip
