// Dense layers on the CPU through oneDNN's matmul primitive.
//
// Chosen by measurement (bench/cpu/compare_gemm.sh, numbers in
// bench/RESULTS.md): on the 2-core Zen 5 box oneDNN 2.6 reaches 460-490
// GFLOP/s on the ViT-B/32 shapes (the FMA peak is ~500) against ~240 for
// Debian's OpenBLAS 0.3.21, which does not know the CPU and picks AVX2
// kernels (~450 when forced to its Skylake-X ones), and it is 5-8x faster on
// the few-row GEMMs of a text query.
//
// Threading: oneDNN never starts threads of its own (its OpenMP runtime is
// held at one thread on the threads we run it on). Each Linear cuts the work
// into pool tasks itself, so the backend uses exactly `threads` cores and no
// second, spinning thread team competes with the pool:
//   - many rows: tasks are blocks of 64-128 rows, all columns;
//   - few rows (under 300 a thread: a text query, an image or two, 8
//     SigLIP texts): tasks are blocks of output columns, so the threads read
//     disjoint parts of the weights instead of all of them once each.
// oneDNN's fast (brgemm) kernels need a dense destination, so a column block
// lands in a per-thread buffer first and is then copied (or, for the residual,
// added) into place; with few rows that pass is small.
//
// Weights are reordered once, at construction, into the blocked layout the
// kernel prefers; bias and activation (or the residual add) are oneDNN
// post-ops, applied while the output tile is still in registers.
//
// Precisions (issue 28; clip::Precision):
//   fp32: as above;
//   bf16: bf16 weights, activations rounded to bf16 in one pass before the
//         GEMM, float32 accumulation, output and post-ops (AVX512-BF16);
//   int8: s8 weights per output channel, u8 activations per token, int32
//         results, then our own epilogue (quantize.h says why and how).
#pragma once
#include <cstdint>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "clip/cpu/epilogue.h"
#include "clip/cpu/quantize.h"
#include "clip/cpu/thread_pool.h"
#include "clip/precision.h"

namespace clip::cpu {

// Call once on every pool worker before its first GEMM: makes oneDNN run
// single-threaded there (see above). ThreadPool's on_worker_start.
void gemm_thread_init();

// oneDNN state for one backend: the engine, a stream and buffers per pool
// thread, and the primitives made so far (one per distinct shape and
// epilogue; the layers of a tower share them).
class GemmContext {
 public:
  explicit GemmContext(int threads);
  int threads() const { return threads_; }
  const dnnl::engine& engine() const { return engine_; }

 private:
  friend class Linear;
  struct Primitive {
    dnnl::matmul matmul;
    dnnl::memory::desc scratchpad;
  };
  // (rows, cols, depth, has_bias, epilogue, weight data type)
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, int, int>;
  const Primitive& primitive(int64_t m, int64_t n, int64_t k, bool bias, Epilogue ep,
                             const dnnl::memory::desc& weights);
  struct ThreadState {
    std::vector<uint8_t> scratchpad;  // oneDNN's working memory
    std::vector<float> columns;       // a column block's output before it is put in place
    std::vector<int32_t> acc;         // an int8 block's results before the epilogue
  };

  int threads_;
  dnnl::engine engine_;
  std::vector<dnnl::stream> streams_;  // one per pool thread
  std::vector<ThreadState> thread_state_;
  std::map<Key, Primitive> primitives_;
  std::mutex mutex_;  // guards primitives_
  // A layer's input in the GEMM's type, made once per call before its tasks.
  std::vector<uint16_t> bf16_input_;
  QuantizedRows int8_input_;
};

// y = x W^T + b with W of shape [out, in] (PyTorch layout), packed once.
class Linear {
 public:
  Linear() = default;
  // weight: [out, in] row-major; bias: [out] or nullptr. Both are copied.
  // precision: FP32, BF16 or INT8 (the caller checks the CPU has it).
  Linear(GemmContext& ctx, const float* weight, const float* bias, int64_t out, int64_t in,
         Precision precision = Precision::FP32);

  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }

  // x: [rows, in], y: [rows, out], both dense. Runs on all pool threads.
  void forward(GemmContext& ctx, ThreadPool& pool, const float* x, int64_t rows, float* y, Epilogue ep) const;

 private:
  // Columns [begin, end) of the packed weights as a matrix of their own.
  struct Columns {
    int64_t begin = 0, end = 0;
    dnnl::memory weights, bias;  // views into weights_ / bias_
  };
  Columns columns(GemmContext& ctx, int64_t begin, int64_t end);
  // x: `rows` dense rows of the GEMM's input type; y: dense [rows, c's width].
  void run(GemmContext& ctx, int thread, const Columns& c, const void* x, int64_t rows, void* y, Epilogue ep) const;
  // The whole task for rows [r0, r1) and columns c of y (row stride out_):
  // the GEMM, then the int8 epilogue or the copy of a column block.
  void task(GemmContext& ctx, int thread, const Columns& c, const void* x, int64_t r0, int64_t r1, float* y,
            Epilogue ep) const;

  int64_t out_ = 0, in_ = 0;
  Precision precision_ = Precision::FP32;
  dnnl::memory weights_;  // [in, out] packed
  dnnl::memory bias_;     // [1, out], or empty
  dnnl::memory::format_tag layout_ = dnnl::memory::format_tag::undef;
  int64_t layout_block_ = 1;  // columns per contiguous block of the layout
  Columns all_;               // every column: the row-split path
  // int8: per output column, the weight scale and row sum of the quantised
  // weights, and the bias (applied by our epilogue, not oneDNN).
  std::vector<float> int8_scale_, int8_bias_;
  std::vector<int32_t> int8_sum_;
  std::vector<Columns> blocks_;  // column blocks: the column-split path
};

}  // namespace clip::cpu
