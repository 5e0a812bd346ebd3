// What a dense layer does to y = x W^T + b before it lands in the output;
// shared by the GEMM (gemm.h, as oneDNN post-ops) and the int8 path's own
// epilogue (quantize.h).
#pragma once

namespace clip::cpu {

enum class Epilogue {
  Store,       // out = y
  QuickGelu,   // out = y * sigmoid(1.702 y)
  Gelu,        // out = 0.5 y (1 + erf(y / sqrt 2))
  GeluTanh,    // out = 0.5 y (1 + tanh(sqrt(2/pi) (y + 0.044715 y^3)))  (SigLIP)
  Accumulate,  // out += y   (the residual connection)
};

}  // namespace clip::cpu
