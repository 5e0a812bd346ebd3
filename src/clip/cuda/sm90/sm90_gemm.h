// Hopper (sm_90a) GEMMs with the epilogue fused, built from CUTLASS's
// warp-specialised TMA/wgmma kernels. cuBLASLt has no epilogue for CLIP's
// QuickGELU (its GELU is the tanh form) and needs a separate pass over the
// fc1 output for it; these kernels apply bias + activation (or bias +
// float32 residual) on the accumulators before the single store.
//
// The GEMM convention is GemmRunner's: out[M, N] = x[M, K] * w[N, K]^T,
// fp16 operands, float32 accumulation, bias float32 [N].
//
// Plain C++ interface: CUTLASS is only seen by the .cu files here, which
// are compiled for sm_90a alone. Without CUTLASS in the build (or without
// sm_90 among its architectures) variants() is empty.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace clip::cuda::sm90 {

enum class Epilogue {
  Bias,           // out fp16 = acc + bias
  BiasQuickGelu,  // out fp16 = quick_gelu(acc + bias)   x * sigmoid(1.702 x)
  BiasGelu,       // out fp16 = gelu(acc + bias)         exact erf form
  BiasGeluTanh,   // out fp16 = gelu_tanh(acc + bias)    SigLIP's tanh form
  BiasResidual,   // out fp32 = acc + bias + out          (the residual stream, in place)
  // A LayerNorm folded into the next GEMM (gemm.h, LnFold): the residual
  // GEMM before it also writes an fp16 copy of the updated stream and each
  // row's partial sums and sums of squares; the GEMM after it, whose weights
  // carry the norm's gamma and beta and sum to zero along k (fold_norm.h),
  // reads that copy and normalises in its epilogue: out = act(scale[m] acc
  // + bias[n]).
  BiasResidualLnStats,  // BiasResidual + copy (fp16) + row_partials; N a multiple of tile_n
  LnFoldBias,           // out fp16 = scale acc + bias
  LnFoldQuickGelu,      // quick_gelu of that
  LnFoldGelu,           // gelu of that
  LnFoldGeluTanh,       // gelu_tanh of that
};
const char* epilogue_name(Epilogue e);

struct Problem {
  int64_t M = 0, N = 0, K = 0;
  const void* x = nullptr;      // fp16 [M, K], row-major
  const void* w = nullptr;      // fp16 [N, K], row-major (PyTorch's [out, in])
  const float* bias = nullptr;  // [N]
  void* out = nullptr;          // [M, N] row-major: fp16, or fp32 for BiasResidual
  int sm_count = 0;             // the device's SMs (0: queried)
  // BiasResidualLnStats: the fp16 [M, N] copy of out, and the partial row
  // statistics, float32 [2][ceil(N / tile_n)][round_up(M, tile_m)]: per
  // tile column, the sum over its columns of each row, then the same of
  // the squares (the caller adds the tile columns up: ln_fold.cuh).
  void* copy = nullptr;
  float* row_partials = nullptr;
  // LnFold*: per row 1/sqrt(var + eps) [M].
  const float* row_scale = nullptr;
};

enum class Status { Ok, Unsupported, Failed };

// One compiled kernel: a tile shape and schedule for one epilogue.
struct Variant {
  const char* name;
  Epilogue epilogue;
  // A 64-row tile for products of few rows (a batch-1 image: 50 tokens),
  // where the large tiles leave most SMs idle; the runner tries these below
  // its large-product threshold only (gemm.cpp).
  bool few_rows;
  int tile_m, tile_n;  // the output tile one CTA computes
  // Unsupported: the shape or alignment is outside what the kernel takes
  // (K or N not a multiple of 8, unaligned pointers, workspace too small).
  Status (*run)(const Problem& p, void* workspace, size_t workspace_bytes, cudaStream_t stream);
};

// Every compiled variant (empty without CUTLASS/sm_90 in the build).
const std::vector<Variant>& variants();

// Floats of Problem::row_partials that a BiasResidualLnStats product of
// M x N needs, whichever variant runs it (0 when none is compiled).
int64_t ln_partials_floats(int64_t M, int64_t N);

// Whether `device` can run them: compute capability 9.0 exactly (sm_90a
// code runs on no other architecture).
bool device_supported(int device);

}  // namespace clip::cuda::sm90
