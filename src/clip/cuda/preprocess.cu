#include <algorithm>

#include "clip/cuda/device_utils.cuh"
#include "clip/cuda/preprocess.cuh"

namespace clip::cuda {
namespace {

constexpr int kBits = 22;  // detail::kResizePrecisionBits
constexpr int32_t kHalf = 1 << (kBits - 1);
constexpr dim3 kBlock(32, 4);

__device__ __forceinline__ int clip8(int32_t acc) { return min(max(acc >> kBits, 0), 255); }

// One thread per output pixel (three channels), the taps in a loop: at most
// a few dozen, read through L1 (neighbouring threads share most of them).
template <bool kHorizontal, bool kNormalise>
__global__ void resample_kernel(ResamplePass pass, const uint8_t* __restrict__ src, size_t src_frame,
                                uint8_t* __restrict__ dst, size_t dst_frame, NormalisedOutput norm) {
  __shared__ float table[kNormalise ? 3 * 256 : 1];
  if (kNormalise) {
    const int tid = threadIdx.y * blockDim.x + threadIdx.x;
    for (int i = tid; i < 3 * 256; i += blockDim.x * blockDim.y) table[i] = norm.table[i];
    __syncthreads();
  }
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= pass.out_cols || y >= pass.out_rows) return;
  const size_t image = blockIdx.z;
  const int o = kHorizontal ? x : y;
  const int first = pass.kernel.first[o] - pass.shift;
  const int taps = pass.kernel.count[o];
  const int32_t* w = pass.kernel.weights + size_t(o) * pass.kernel.ksize;
  const uint8_t* p = src + image * src_frame;
  size_t step;
  if (kHorizontal) {
    p += (size_t(pass.fixed0 + y) * pass.src_w + first) * 3;
    step = 3;
  } else {
    p += (size_t(first) * pass.src_w + pass.fixed0 + x) * 3;
    step = size_t(pass.src_w) * 3;
  }
  int32_t r = kHalf, g = kHalf, b = kHalf;
  for (int i = 0; i < taps; ++i, p += step) {
    const int32_t wi = w[i];
    r += int32_t(p[0]) * wi;
    g += int32_t(p[1]) * wi;
    b += int32_t(p[2]) * wi;
  }
  if (kNormalise) {
    const size_t plane = size_t(norm.crop_w) * norm.crop_h;
    float* out = norm.pixels + image * 3 * plane + size_t(norm.place_y + y) * norm.crop_w + norm.place_x + x;
    out[0] = table[clip8(r)];
    out[plane] = table[256 + clip8(g)];
    out[2 * plane] = table[512 + clip8(b)];
  } else {
    uint8_t* out = dst + image * dst_frame + (size_t(y) * pass.out_cols + x) * 3;
    out[0] = uint8_t(clip8(r));
    out[1] = uint8_t(clip8(g));
    out[2] = uint8_t(clip8(b));
  }
}

__global__ void fill_kernel(NormalisedOutput norm, size_t plane) {
  const size_t image = blockIdx.z;
  const int c = blockIdx.y;
  const float v = norm.table[c * 256];
  float* out = norm.pixels + (image * 3 + c) * plane;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < plane; i += size_t(gridDim.x) * blockDim.x)
    out[i] = v;
}

void check_pass(const ResamplePass& pass, const uint8_t* src, int n, const char* op) {
  require(src != nullptr, op, "null source");
  require(n >= 0 && n <= 65535, op, "image count out of range (0..65535)");
  require(pass.out_rows > 0 && pass.out_cols > 0 && pass.src_w > 0, op, "empty pass");
  require(pass.kernel.first && pass.kernel.count && pass.kernel.weights && pass.kernel.ksize > 0, op, "kernel not set");
}

dim3 grid_of(const ResamplePass& pass, int n) {
  return dim3(unsigned(ceil_div(pass.out_cols, int(kBlock.x))), unsigned(ceil_div(pass.out_rows, int(kBlock.y))),
              unsigned(n));
}

}  // namespace

void resample(const Exec& exec, const ResamplePass& pass, const uint8_t* src, size_t src_frame, int n, uint8_t* dst,
              size_t dst_frame) {
  check_pass(pass, src, n, "resample");
  require(dst != nullptr, "resample", "null destination");
  if (n == 0) return;
  NormalisedOutput none;
  if (pass.horizontal)
    resample_kernel<true, false>
        <<<grid_of(pass, n), kBlock, 0, exec.stream>>>(pass, src, src_frame, dst, dst_frame, none);
  else
    resample_kernel<false, false>
        <<<grid_of(pass, n), kBlock, 0, exec.stream>>>(pass, src, src_frame, dst, dst_frame, none);
  CLIP_CHECK_LAUNCH(exec, "resample_kernel");
}

void resample_normalise(const Exec& exec, const ResamplePass& pass, const uint8_t* src, size_t src_frame, int n,
                        const NormalisedOutput& out) {
  check_pass(pass, src, n, "resample_normalise");
  require(out.pixels != nullptr && out.table != nullptr, "resample_normalise", "null output or table");
  require(out.place_x >= 0 && out.place_y >= 0 && out.place_x + pass.out_cols <= out.crop_w &&
              out.place_y + pass.out_rows <= out.crop_h,
          "resample_normalise", "the pass's output does not fit the crop");
  if (n == 0) return;
  if (pass.horizontal)
    resample_kernel<true, true><<<grid_of(pass, n), kBlock, 0, exec.stream>>>(pass, src, src_frame, nullptr, 0, out);
  else
    resample_kernel<false, true><<<grid_of(pass, n), kBlock, 0, exec.stream>>>(pass, src, src_frame, nullptr, 0, out);
  CLIP_CHECK_LAUNCH(exec, "resample_kernel");
}

void fill_padding(const Exec& exec, const NormalisedOutput& out, int n) {
  require(out.pixels != nullptr && out.table != nullptr, "fill_padding", "null output or table");
  require(n >= 0 && n <= 65535, "fill_padding", "image count out of range (0..65535)");
  if (n == 0) return;
  const size_t plane = size_t(out.crop_w) * out.crop_h;
  fill_kernel<<<dim3(unsigned(std::min<size_t>(ceil_div(plane, size_t(256)), 64)), 3, unsigned(n)), 256, 0,
                exec.stream>>>(out, plane);
  CLIP_CHECK_LAUNCH(exec, "fill_kernel");
}

}  // namespace clip::cuda
