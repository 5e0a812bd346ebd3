// Opt-in per-op timing of the forward pass: an event after each op, summed
// per op name and per batch shape, printed to stderr when the backend is
// destroyed, leaving out each shape's first pass (GEMM tuning, graph
// capture). Tuning::Profile::Eager (CLIPFIND_CUDA_PROFILE=1) runs the passes
// eagerly (where the time goes at large batches); Graph
// (CLIPFIND_CUDA_PROFILE=graph) captures each pass with its events and
// replays it (small batches, where the gaps between a graph's kernels are
// much of the time).
#pragma once
#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "clip/cuda/tuning.h"

namespace clip::cuda {

class OpProfiler {
 public:
  explicit OpProfiler(Tuning::Profile mode);
  ~OpProfiler();
  bool enabled() const { return enabled_; }
  bool graph_mode() const { return graph_mode_; }
  void begin(cudaStream_t stream, const std::string& shape);  // starts one forward pass
  void mark(const char* op);                                  // after the op's launch
  void end();                                                 // synchronises, accumulates
  std::string report() const;

 private:
  cudaEvent_t event(size_t i);
  void record(cudaEvent_t e);
  bool enabled_ = false;
  bool graph_mode_ = false;
  cudaStream_t stream_ = nullptr;
  std::string shape_;
  std::vector<cudaEvent_t> pool_;
  std::vector<const char*> names_;
  struct Acc {
    std::map<std::string, std::pair<double, int>> ops;
    int seen = 0;    // passes run
    int passes = 0;  // passes timed: all but the first
    std::vector<std::string> order;
  };
  std::map<std::string, Acc> by_shape_;
};

}  // namespace clip::cuda
