#include "clip/cuda/graph_cache.h"

namespace clip::cuda {

GraphCache::GraphCache(const Exec& exec, bool enabled, OpProfiler& prof)
    : exec_(exec), enabled_(enabled), prof_(prof) {}

GraphCache::~GraphCache() { clear(); }

void GraphCache::clear() {
  for (auto& [k, g] : by_shape_)
    if (g) cudaGraphExecDestroy(g);
  by_shape_.clear();
}

void GraphCache::run(const Key& key, const std::function<void()>& forward) {
  if (!enabled_) return forward();
  auto it = by_shape_.find(key);
  if (it == by_shape_.end()) {
    forward();
    by_shape_[key] = nullptr;  // seen once
    return;
  }
  if (!it->second) {  // seen once: capture now
    cudaGraphExec_t exec = nullptr;
    cudaError_t err = cudaSuccess;
    try {
      err = capture(forward, &exec);
    } catch (...) {
      err = cudaErrorStreamCaptureUnsupported;
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      enabled_ = false;  // this build/driver cannot capture: stay eager
      return forward();
    }
    if (by_shape_.size() >= kMaxGraphs) clear();
    it = by_shape_.insert_or_assign(key, exec).first;
  }
  CUDA_CHECK(cudaGraphLaunch(it->second, exec_.stream));
  CLIP_CHECK_LAUNCH(exec_, "cudaGraphLaunch");
}

void GraphCache::run_profiled(const Key& key, const std::string& label, const std::function<void()>& forward) {
  // In graph mode every call after a shape's first (eager: it creates the
  // plans) is captured with its events and replayed once, so the per-op
  // times include the gaps of a graph replay, not eager launches.
  const bool in_graph = prof_.graph_mode() && enabled_ && profiled_.count(key);
  profiled_.insert(key);
  if (!in_graph) {
    prof_.begin(exec_.stream, label);
    forward();
    prof_.end();
    return;
  }
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(capture(
      [&] {
        prof_.begin(exec_.stream, label + " (graph)");
        forward();
      },
      &exec));
  CUDA_CHECK(cudaGraphLaunch(exec, exec_.stream));
  prof_.end();
  cudaGraphExecDestroy(exec);
}

cudaError_t GraphCache::capture(const std::function<void()>& body, cudaGraphExec_t* exec) {
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(exec_.stream, cudaStreamCaptureModeRelaxed));
  try {
    body();
  } catch (...) {
    cudaStreamEndCapture(exec_.stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  CUDA_CHECK(cudaStreamEndCapture(exec_.stream, &graph));
  const cudaError_t err = cudaGraphInstantiate(exec, graph, 0);
  cudaGraphDestroy(graph);
  return err;
}

}  // namespace clip::cuda
