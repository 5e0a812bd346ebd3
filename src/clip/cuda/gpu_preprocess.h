// Runs a detail::PreprocessPlan (the CPU's resize/crop/normalise recipe for
// one source size) on frames in GPU memory: always two resampling passes
// (an axis the resize leaves alone gets an exact identity pass), the second
// writing normalised floats. The device copy of each plan is kept per
// source size, since a video's frames all share one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>

#include "clip/cuda/preprocess.cuh"
#include "clip/cuda/resources.h"
#include "clip/image/preprocess_plan.h"

namespace clip::cuda {

class GpuPreprocessor {
 public:
  explicit GpuPreprocessor(CudaResources& res) : res_(res) {}

  // frames: n images of src_w x src_h RGB bytes, frame_bytes apart, in
  // device memory; out: float32 [n, 3, crop_h, crop_w]. On exec's stream.
  // `plan` must be plan_preprocess(src_w, src_h, cfg) for this backend's
  // one preprocessing config (the cache is keyed by source size).
  void run(const Exec& exec, const detail::PreprocessPlan& plan, int src_w, int src_h, const uint8_t* frames,
           size_t frame_bytes, int n, float* out);

 private:
  struct Passes {
    DeviceBuffer arrays;  // both kernels and the normalisation table
    ResamplePass first, second;
    const float* table = nullptr;
    bool padded = false;  // the resized image does not cover the crop
  };
  const Passes& passes_for(const Exec& exec, const detail::PreprocessPlan& plan, int src_w, int src_h);

  static constexpr size_t kMaxCachedSizes = 16;
  CudaResources& res_;
  std::map<std::pair<int, int>, Passes> cache_;
  DeviceBuffer tmp_;  // the first pass's output
};

}  // namespace clip::cuda
