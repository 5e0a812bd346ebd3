#include "clip/cuda/profiler.h"

#include <algorithm>
#include <cstdio>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

OpProfiler::OpProfiler(Tuning::Profile mode)
    : enabled_(mode != Tuning::Profile::Off), graph_mode_(mode == Tuning::Profile::Graph) {}

OpProfiler::~OpProfiler() {
  if (enabled_ && !by_shape_.empty()) std::fprintf(stderr, "%s", report().c_str());
  for (cudaEvent_t e : pool_) cudaEventDestroy(e);
}

cudaEvent_t OpProfiler::event(size_t i) {
  while (pool_.size() <= i) {
    cudaEvent_t e;
    CUDA_CHECK(cudaEventCreate(&e));
    pool_.push_back(e);
  }
  return pool_[i];
}

void OpProfiler::begin(cudaStream_t stream, const std::string& shape) {
  stream_ = stream;
  shape_ = shape;
  names_.clear();
  names_.push_back("start");
  record(event(0));
}

// Inside a stream capture a plain record only marks a dependency; the
// External flag makes it a node that records the event at replay.
void OpProfiler::record(cudaEvent_t e) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream_, &capture));
  CUDA_CHECK(cudaEventRecordWithFlags(
      e, stream_, capture == cudaStreamCaptureStatusActive ? cudaEventRecordExternal : cudaEventRecordDefault));
}

void OpProfiler::mark(const char* op) {
  if (!enabled_ || names_.empty()) return;
  record(event(names_.size()));
  names_.push_back(op);
}

void OpProfiler::end() {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  Acc& acc = by_shape_[shape_];
  // A shape's first pass also tunes its GEMMs and captures its graphs: it
  // names the ops in order but is left out of the times.
  const bool first = acc.seen++ == 0;
  if (!first) acc.passes++;
  for (size_t i = 1; i < names_.size(); ++i) {
    if (first) {
      if (std::find(acc.order.begin(), acc.order.end(), names_[i]) == acc.order.end()) acc.order.push_back(names_[i]);
      continue;
    }
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, pool_[i - 1], pool_[i]));
    auto& slot = acc.ops[names_[i]];
    slot.first += ms;
    slot.second++;
  }
  names_.clear();
}

std::string OpProfiler::report() const {
  std::string s;
  char line[256];
  for (const auto& [shape, acc] : by_shape_) {
    if (acc.passes == 0) continue;
    double total = 0;
    for (const auto& [op, v] : acc.ops) total += v.first;
    std::snprintf(line, sizeof line, "# profile %s: %.3f ms per pass (%d passes)\n", shape.c_str(), total / acc.passes,
                  acc.passes);
    s += line;
    for (const std::string& op : acc.order) {
      const auto found = acc.ops.find(op);
      if (found == acc.ops.end()) continue;
      const auto& v = found->second;
      std::snprintf(line, sizeof line, "#   %-14s %9.3f ms/pass %5.1f%%  (%d launches/pass)\n", op.c_str(),
                    v.first / acc.passes, 100.0 * v.first / total, v.second / acc.passes);
      s += line;
    }
  }
  return s;
}

}  // namespace clip::cuda
