#include "clip/cuda/gpu_preprocess.h"

#include <cstring>
#include <vector>

namespace clip::cuda {
namespace {

// A kernel on the host, before upload.
struct HostAxis {
  int ksize = 1;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

HostAxis from_plan(const detail::AxisKernel& k) { return {k.ksize, k.first, k.count, k.weights}; }

// Output o = input offset + o, exactly: one tap of weight 1.0 in fixed point
// ((v << 22) + half) >> 22 == v.
HostAxis identity(int outputs, int offset) {
  HostAxis a;
  for (int o = 0; o < outputs; ++o) {
    a.first.push_back(offset + o);
    a.count.push_back(1);
    a.weights.push_back(int32_t(1) << detail::kResizePrecisionBits);
  }
  return a;
}

// Appends an axis to the int32 image of the device buffer; returns offsets.
struct Offsets {
  size_t first, count, weights;
};
Offsets append(std::vector<int32_t>& blob, const HostAxis& a) {
  Offsets o{blob.size(), 0, 0};
  blob.insert(blob.end(), a.first.begin(), a.first.end());
  o.count = blob.size();
  blob.insert(blob.end(), a.count.begin(), a.count.end());
  o.weights = blob.size();
  blob.insert(blob.end(), a.weights.begin(), a.weights.end());
  return o;
}

DevAxis on_device(const int32_t* base, const Offsets& o, int ksize) {
  return {reinterpret_cast<const int*>(base + o.first), reinterpret_cast<const int*>(base + o.count), base + o.weights,
          ksize};
}

}  // namespace

const GpuPreprocessor::Passes& GpuPreprocessor::passes_for(const Exec& exec, const detail::PreprocessPlan& plan,
                                                           int src_w, int src_h) {
  const auto key = std::make_pair(src_w, src_h);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  if (cache_.size() >= kMaxCachedSizes) {
    res_.synchronize();  // in-flight passes may still read the old plans
    cache_.clear();
  }

  // The two passes in Pillow's order (see detail::ResizePlan), as
  // (horizontal?, kernel, shift, fixed0, source width, rows, cols).
  const detail::ResizePlan& r = plan.resize;
  const int W = r.width, H = r.height;
  ResamplePass a, b;
  HostAxis ka, kb;
  if (r.horizontal && r.vertical && !r.vertical_first) {
    a = {true, {}, 0, r.span0, src_w, r.span, W};
    ka = from_plan(r.kh);
    b = {false, {}, r.span0, 0, W, H, W};
    kb = from_plan(r.kv);
  } else if (r.horizontal && r.vertical) {
    a = {false, {}, 0, r.span0, src_w, H, r.span};
    ka = from_plan(r.kv);
    b = {true, {}, r.span0, 0, r.span, H, W};
    kb = from_plan(r.kh);
  } else if (r.horizontal) {
    a = {true, {}, 0, r.y0, src_w, H, W};
    ka = from_plan(r.kh);
    b = {false, {}, 0, 0, W, H, W};
    kb = identity(H, 0);
  } else if (r.vertical) {
    a = {false, {}, 0, r.x0, src_w, H, W};
    ka = from_plan(r.kv);
    b = {true, {}, 0, 0, W, H, W};
    kb = identity(W, 0);
  } else {
    a = {true, {}, 0, r.y0, src_w, H, W};
    ka = identity(W, r.x0);
    b = {false, {}, 0, 0, W, H, W};
    kb = identity(H, 0);
  }

  std::vector<int32_t> blob;
  const Offsets oa = append(blob, ka), ob = append(blob, kb);
  const size_t table_at = blob.size();
  blob.resize(blob.size() + 3 * 256);
  std::memcpy(blob.data() + table_at, plan.table, sizeof(plan.table));

  Passes p;
  p.arrays = res_.alloc(blob.size() * sizeof(int32_t));
  // On the stream the passes run on, then waited for (once per source size;
  // the host vector dies here). Not a plain cudaMemcpy: from pageable memory
  // it may return before the DMA lands, and the kernels on a non-blocking
  // stream would not wait for it (seen: a plan half old, every value off).
  CUDA_CHECK(
      cudaMemcpyAsync(p.arrays.get(), blob.data(), blob.size() * sizeof(int32_t), cudaMemcpyHostToDevice, exec.stream));
  CUDA_CHECK(cudaStreamSynchronize(exec.stream));
  const int32_t* base = p.arrays.as<int32_t>();
  a.kernel = on_device(base, oa, ka.ksize);
  b.kernel = on_device(base, ob, kb.ksize);
  p.first = a;
  p.second = b;
  p.table = reinterpret_cast<const float*>(base + table_at);
  p.padded = plan.place_x != 0 || plan.place_y != 0 || W != plan.crop_w || H != plan.crop_h;
  return cache_.emplace(key, std::move(p)).first->second;
}

void GpuPreprocessor::run(const Exec& exec, const detail::PreprocessPlan& plan, int src_w, int src_h,
                          const uint8_t* frames, size_t frame_bytes, int n, float* out) {
  if (n <= 0) return;
  const Passes& p = passes_for(exec, plan, src_w, src_h);
  const size_t tmp_frame = size_t(p.first.out_rows) * p.first.out_cols * 3;
  if (tmp_.bytes() < tmp_frame * n) {
    res_.synchronize();
    tmp_.reset();
    tmp_ = res_.alloc(tmp_frame * n);
  }
  const NormalisedOutput norm{out, plan.crop_w, plan.crop_h, plan.place_x, plan.place_y, p.table};
  if (p.padded) fill_padding(exec, norm, n);
  resample(exec, p.first, frames, frame_bytes, n, tmp_.as<uint8_t>(), tmp_frame);
  resample_normalise(exec, p.second, tmp_.as<uint8_t>(), tmp_frame, n, norm);
}

}  // namespace clip::cuda
