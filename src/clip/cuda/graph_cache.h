// CUDA graphs of whole forward passes, one per batch shape: the first call
// of a shape runs eagerly (creating the cuBLASLt plans and kernel
// attributes outside any capture), the second captures a graph that later
// calls replay (saves ~100 launches a call; matters at small batches).
// With the op profiler on, the passes run with its events instead
// (run_profiled).
#pragma once
#include <cuda_runtime_api.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "clip/cuda/cuda_common.h"
#include "clip/cuda/profiler.h"

namespace clip::cuda {

class GraphCache {
 public:
  using Key = std::tuple<int, int, int>;  // (tower, batch, sequence length)

  // `enabled`: Tuning::graphs. `exec` and `prof` must outlive the cache.
  GraphCache(const Exec& exec, bool enabled, OpProfiler& prof);
  ~GraphCache();
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // Runs `forward`, the launches of one pass of shape `key` on exec's
  // stream: eagerly, captured, or replayed (see above). A build or driver
  // that cannot capture turns graphs off and stays eager.
  void run(const Key& key, const std::function<void()>& forward);
  // The same with an event after each op (OpProfiler), `label` naming the
  // shape: eagerly, or in the profiler's graph mode every call after a
  // shape's first captured with its events and replayed once.
  void run_profiled(const Key& key, const std::string& label, const std::function<void()>& forward);
  // Drops every graph: the buffers they were captured on are moving.
  void clear();

 private:
  // Captures what `body` launches on the stream and instantiates it into
  // *exec; returns the instantiation's status. If `body` throws, the capture
  // is ended and the exception passed on.
  cudaError_t capture(const std::function<void()>& body, cudaGraphExec_t* exec);

  static constexpr size_t kMaxGraphs = 32;
  const Exec& exec_;
  bool enabled_;
  OpProfiler& prof_;
  std::map<Key, cudaGraphExec_t> by_shape_;  // nullptr: seen once, not captured yet
  std::set<Key> profiled_;                   // shapes the profiler has run eagerly once
};

}  // namespace clip::cuda
