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
//   - few rows (a text query, one image): tasks are blocks of output columns,
//     so the threads read disjoint parts of the weights instead of all of
//     them once each.
// oneDNN's fast (brgemm) kernels need a dense destination, so a column block
// lands in a per-thread buffer first and is then copied (or, for the residual,
// added) into place; with few rows that pass is small.
//
// Weights are reordered once, at construction, into the blocked layout the
// kernel prefers; bias and activation (or the residual add) are oneDNN
// post-ops, applied while the output tile is still in registers.
#pragma once
#include <cstdint>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "clip/cpu/thread_pool.h"

namespace clip::cpu {

// What happens to y = x W^T + b before it lands in the output.
enum class Epilogue {
  Store,       // out = y
  QuickGelu,   // out = y * sigmoid(1.702 y)
  Gelu,        // out = 0.5 y (1 + erf(y / sqrt 2))
  Accumulate,  // out += y   (the residual connection)
};

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
  // (rows, cols, depth, has_bias, epilogue)
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, int>;
  const Primitive& primitive(int64_t m, int64_t n, int64_t k, bool bias, Epilogue ep,
                             const dnnl::memory::desc& weights);
  struct ThreadState {
    std::vector<uint8_t> scratchpad;  // oneDNN's working memory
    std::vector<float> columns;       // a column block's output before it is put in place
  };

  int threads_;
  dnnl::engine engine_;
  std::vector<dnnl::stream> streams_;  // one per pool thread
  std::vector<ThreadState> thread_state_;
  std::map<Key, Primitive> primitives_;
  std::mutex mutex_;  // guards primitives_
};

// y = x W^T + b with W of shape [out, in] (PyTorch layout), packed once.
class Linear {
 public:
  Linear() = default;
  // weight: [out, in] row-major; bias: [out] or nullptr. Both are copied.
  Linear(GemmContext& ctx, const float* weight, const float* bias, int64_t out, int64_t in);

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
  void run(GemmContext& ctx, int thread, const Columns& c, const float* x, int64_t rows, float* y, Epilogue ep) const;

  int64_t out_ = 0, in_ = 0;
  dnnl::memory weights_;  // [in, out] packed
  dnnl::memory bias_;     // [1, out], or empty
  dnnl::memory::format_tag layout_ = dnnl::memory::format_tag::undef;
  int64_t layout_block_ = 1;     // columns per contiguous block of the layout
  Columns all_;                  // every column: the row-split path
  std::vector<Columns> blocks_;  // column blocks: the column-split path
};

}  // namespace clip::cpu
