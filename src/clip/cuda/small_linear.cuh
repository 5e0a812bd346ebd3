// Linear layers on a few rows: a text query (7 tokens), the pooled rows of
// the last layer. There a layer's weights are read once and the arithmetic
// is nothing, so the time is latency: kernel launches and memory round
// trips. cuBLASLt's small-M kernels took 5-8 us for products whose weights
// stream in 1-2 us, plus separate LayerNorm and bias/activation passes.
//
// One kernel does a whole linear layer with what surrounds it:
//   prologue  A = x (fp16/bf16), or A = LayerNorm(h) of the float32
//             residual stream (the rows are few, so every block normalises
//             them itself from shared memory)
//   product   tensor cores (mma.sync); a block owns 8 output columns, its 4
//             warps a quarter of K each, summed through shared memory in a
//             fixed order (deterministic)
//   epilogue  out = act(A w^T + bias) in the 16-bit type, or
//             h += A w^T + bias on the float32 residual stream
// so a transformer layer is five launches: LN1+qkv, attention,
// out-proj+residual, LN2+fc1+activation, fc2+residual.
//
// Up to 16 rows: all of A sits in shared memory next to each block's
// weights. A 50-row batch-1 image stays on the GEMM runner (cuBLASLt, and
// for fc1 a 64-row CUTLASS tile on Hopper): two small_linear versions for it
// were slower (bench/notes/cuda-rounds.md, 'few-row layers in one kernel
// each' and 'one linear-layer dispatch'). One split K
// across blocks (2x slower); one kept all 64 rows of A in every block, with
// 8-32 columns a block (0.53x the pass): every block reading the same A
// from L2 costs more than the weights it saves streaming.
#pragma once
#include <cstddef>
#include <cstdint>

#include "clip/cuda/bias_act.cuh"
#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

constexpr int kSmallMaxRows = 16;

struct SmallLinear {
  int M = 0, N = 0, K = 0;
  DType type = DType::F16;  // F16 or BF16: x, w and the 16-bit output
  // A: x [M, K] in `type`, or (ln_in set) LayerNorm(ln_in) with ln_in
  // float32 [M, K] and float32 gamma/beta [K].
  const void* x = nullptr;
  const float* ln_in = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float eps = 1e-5f;
  const void* w = nullptr;      // [N, K] in `type` (PyTorch's [out, in])
  const float* bias = nullptr;  // [N], or null for none
  // Output: out [M, N] in `type` = act(A w^T + bias) (float32 with
  // out_f32, no activation), or (residual set) residual [M, N] float32 +=
  // A w^T + bias.
  Act act = Act::None;
  void* out = nullptr;
  bool out_f32 = false;
  float* residual = nullptr;
};

// Whether the kernel takes these sizes: M <= kSmallMaxRows, N a multiple of
// 8, K of 128 (and at most 1024 with a LayerNorm), and A (plus the float32
// rows for a LayerNorm) within the current GPU's shared memory per block. (Pointers must be 16-byte aligned; the
// launcher checks.)
bool small_linear_fits(int M, int N, int K, bool layernorm);

void small_linear(const Exec& exec, const SmallLinear& op);

}  // namespace clip::cuda
