// The two towers' forward passes on the GPU: the weights (weight_upload.h),
// the scratch buffers sized for the largest batch seen, and the launches of
// one pass on the backend's stream (plain C++: the kernels live in the .cu
// files, each behind its small .cuh launcher).
//
// Per layer, with h the float32 residual stream [tokens, hidden] and T the
// compute precision (float32 for fp32/tf32, else fp16/bf16):
//   x   = LN1(h)                          layernorm      -> T
//   qkv = x Wqkv^T + bqkv                 cuBLASLt, bias epilogue
//   x   = attention(qkv)                  attention kernel (fp32 softmax)
//   h  += x Wo^T + bo                     cuBLASLt, bias + residual epilogue
//   x   = LN2(h)
//   y   = act(x W1^T + b1)                cuBLASLt + bias_act (exact activations)
//   h  += y W2^T + b2                     cuBLASLt, bias + residual epilogue
// On Hopper in fp16, each GEMM may instead be an sm90/ CUTLASS kernel with
// the same epilogue (and fc1's activation) fused, where it times faster, and
// fc1 over few rows (a batch-1 image) always is (gemm.h). Large passes there
// fold LN1/LN2 into those kernels (gemm.h, LnFold; encoder()). LN1 and LN2's
// gamma/beta live in the qkv and fc1 weights on every path (fold_norm.h).
// Passes of at most 16 rows (text queries, the pooled rows) run each linear
// layer as one small_linear launch with the bias, activation or residual
// fused, and up to 8 rows the LayerNorm before it too (linear_step).
// Only the pooled row of each item (class token, end-of-text token) reaches
// the output, so the last layer gathers those rows after attention and runs
// its out-projection, LN2 and MLP on n rows instead of n*seq.
// Keeping h in float32 is what holds fp16/bf16 close to the fp32 result:
// only the GEMM inputs are rounded, never the running sum.
// SigLIP: the vision tower has no class token (patches + positions, no
// pre-norm) and every row runs every layer, since its attention pooling head
// (pool_head) reads all of them; the text tower has no causal mask and a
// head with a bias as its projection.
#pragma once
#include <cstdint>

#include "clip/backend.h"
#include "clip/cuda/attention.cuh"
#include "clip/cuda/gemm.h"
#include "clip/cuda/graph_cache.h"
#include "clip/cuda/profiler.h"
#include "clip/cuda/resources.h"
#include "clip/cuda/tuning.h"
#include "clip/cuda/weight_upload.h"
#include "clip/precision.h"

namespace clip::cuda {

enum class Tower { Vision, Text };

// Scratch buffers, grown to the largest batch seen. Any growth changes
// addresses, so the captured graphs are dropped with it.
struct Scratch {
  DeviceBuffer h;         // float32 [tokens, hidden]: the residual stream
  DeviceBuffer x;         // T [tokens, hidden]: norm outputs, attention output, patch embeddings
  DeviceBuffer wide;      // T [tokens, max(3*hidden, intermediate)] or the unfolded patches
  DeviceBuffer pixels;    // float32 [n, C, S, S]
  DeviceBuffer ids;       // int32 [n, seq]
  DeviceBuffer rows;      // int32 [n]: rows pooled by the final norm
  DeviceBuffer pooled_h;  // float32 [n, hidden]: the pooled rows of h through the last layer
  DeviceBuffer pooled_x;  // T [n, hidden]: their attention output, then their LN2
  DeviceBuffer out;       // float32 [n, projection_dim]
  // With LayerNorms folded (fold_rows): an fp16 copy of h [tokens, hidden],
  // the residual GEMMs' partial row statistics, and the norm's per-row
  // scale (float32 [tokens]).
  DeviceBuffer xn, ln_partials, ln_scale;
};

class Towers {
 public:
  // Uploads the weights of the towers `config` and `weights` both have.
  // `res`, `prof` and `graphs` (cleared whenever a scratch buffer moves)
  // must outlive the object.
  Towers(const ClipConfig& config, const ModelWeights& weights, Precision precision, const Tuning& tuning,
         CudaResources& res, OpProfiler& prof, GraphCache& graphs);

  DType act() const { return act_; }
  size_t weight_bytes() const { return weight_bytes_; }
  // The tower's config; throws clip::Error when the model has no such tower.
  const VisionConfig& vision_config() const;
  const TextConfig& text_config() const;

  // Grow the scratch buffers for a pass of n images / of `batch` (checked:
  // sequence length, ids, pooling positions).
  void ensure_vision(int n);
  void ensure_text(const TextBatch& batch);
  // Inputs go to scratch().pixels, or ids and rows; the result is scratch().out.
  const Scratch& scratch() const { return s_; }

  // Before a pass, outside any graph capture: the pooled rows of the vision
  // tower are the class tokens (uploaded here once per batch size); the
  // text path's rows come with its ids.
  void prepare(Tower t, int n);
  // The launches of one pass over the inputs in scratch (capturable).
  void forward(Tower t, int n, int seq);

 private:
  struct LinearStep;
  // Reallocates b if smaller than bytes (dropping the graphs); true if it did.
  bool grow(DeviceBuffer& b, size_t bytes);
  void ensure_common(int64_t tokens, const TowerConfig& c, int n, size_t wide_elems);
  bool fold_rows(int64_t rows, int hidden);
  bool use_small(int64_t rows, const DevLinear& l, bool layernorm) const;
  GemmShape shape(int64_t M, const DevLinear& l, DType out_type, bool accumulate, bool bias) const;
  const float* encoder(const DevTower& tw, const TowerConfig& c, int n, int seq, bool causal, bool folded_in,
                       bool all_rows = false);
  void gather_pooled(int n, int H);
  void normed_input(LinearStep& s, bool folded, const char* folded_name, const float* ln_in, const DevNorm& ln,
                    void* ln_out);
  void linear_step(const LinearStep& s, const TowerConfig& c);
  void pool_and_project(const DevTower& tw, const DevNorm& ln, const TowerConfig& c, int n, const float* pooled);
  void pool_head(const DevPoolHead& head, const VisionConfig& c, int n, const float* h);
  void forward_vision(int n);
  void forward_text(int n, int seq);

  // The LayerNorm goes in small_linear's prologue up to this many rows.
  // Every block normalises all rows itself, so each reads the float32 rows
  // from L2: at 16 rows that cost more than a LayerNorm kernel of its own
  // (bench/notes/cuda-rounds.md, 'norms of 9-16 rows apart').
  static constexpr int kSmallLnMaxRows = 8;

  const ClipConfig& config_;
  DType act_ = DType::F16;
  GemmCompute compute_ = GemmCompute::Mixed;
  AttnImpl attn_impl_ = AttnImpl::Auto;  // Tuning::Attention::Simt: AttnImpl::Simt
  bool wgmma_attention_ = true;          // Tuning::Attention::NoWgmma: false
  CudaResources& res_;
  OpProfiler& prof_;
  GraphCache& graphs_;
  DevVision vision_;
  DevText text_;
  size_t weight_bytes_ = 0;
  Scratch s_;
  int vision_rows_n_ = -1;  // the batch size s_.rows holds class-token rows for; -1: none
};

}  // namespace clip::cuda
