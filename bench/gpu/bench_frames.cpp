// End-to-end frames benchmark of the CUDA backend (issue 3): uint8 RGB
// frames of a real video size in host memory -> upload -> resize/crop/
// normalise on the GPU -> vision tower, against the floor of that path, the
// pinned host-to-device copy bandwidth measured in the same run divided by
// the frame size. Also the same frames from pageable memory, and with the
// CPU preprocessing instead (what the engine does without the GPU path).
//
//   bench_frames [--model B/32] [--frames 256] [--size 1920x1080] [--precision fp16] [--json FILE]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "check_cuda.h"
#include "clip/cuda/cuda_backend.h"
#include "clip/image/preprocess.h"
#include "clip/image/preprocess_plan.h"
#include "support/random_model.h"

namespace {

using namespace clip;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

template <typename F>
double median_seconds(int reps, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Pinned host -> device bandwidth, bytes/s: 1 GiB copies, median of 5.
double pinned_h2d_bandwidth() {
  const size_t bytes = size_t(1) << 30;
  void* host = nullptr;
  void* dev = nullptr;
  CHECK_CUDA(cudaMallocHost(&host, bytes));
  CHECK_CUDA(cudaMalloc(&dev, bytes));
  std::memset(host, 1, bytes);
  CHECK_CUDA(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));  // warm-up
  const double s = median_seconds(5, [&] { CHECK_CUDA(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice)); });
  cudaFree(dev);
  cudaFreeHost(host);
  return bytes / s;
}

// Frames that look like video (gradients, some texture), not constant.
void fill_frames(uint8_t* p, int n, int w, int h) {
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y) {
      uint8_t* row = p + (size_t(i) * h + y) * w * 3;
      for (int x = 0; x < w; ++x) {
        row[3 * x] = uint8_t(x + i * 7);
        row[3 * x + 1] = uint8_t(y + ((x * 13) & 31));
        row[3 * x + 2] = uint8_t((x ^ y) + i);
      }
    }
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "B/32", json, precision = "fp16";
  int n = 256, width = 1920, height = 1080;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--model" && v)
      model = argv[++i];
    else if (a == "--frames" && v)
      n = std::atoi(argv[++i]);
    else if (a == "--precision" && v)
      precision = argv[++i];
    else if (a == "--json" && v)
      json = argv[++i];
    else if (a == "--size" && v && std::sscanf(argv[++i], "%dx%d", &width, &height) == 2) {
    } else {
      std::fprintf(stderr,
                   "usage: bench_frames [--model B/32] [--frames 256] [--size 1920x1080] "
                   "[--precision fp16] [--json FILE]\n");
      return 2;
    }
  }
  std::string why;
  if (!cuda_available(&why)) {
    std::printf("bench_frames: no usable GPU: %s\n", why.c_str());
    return 0;
  }
  try {
    const ClipConfig cfg = testing::make_config(testing::model_shape(model));
    CudaOptions o;
    o.precision = parse_precision(precision);
    std::unique_ptr<Backend> be = make_cuda_backend(cfg, testing::random_weights(cfg, 42), o);
    PreprocessConfig pc;
    pc.shortest_edge = pc.crop_width = pc.crop_height = cfg.vision->image_size;
    const detail::PreprocessPlan plan = detail::plan_preprocess(width, height, pc);
    const std::vector<const detail::PreprocessPlan*> plans(n, &plan);

    const size_t frame = size_t(width) * height * 3;
    uint8_t* pinned = nullptr;
    CHECK_CUDA(cudaMallocHost(reinterpret_cast<void**>(&pinned), frame * n));
    fill_frames(pinned, n, width, height);
    std::vector<uint8_t> pageable(pinned, pinned + frame * n);
    auto views_of = [&](const uint8_t* base) {
      std::vector<ImageView> v;
      for (int i = 0; i < n; ++i) v.push_back({width, height, base + frame * i});
      return v;
    };

    const double bw = pinned_h2d_bandwidth();
    const double floor_fps = bw / frame;
    std::printf("# %s %s, %d frames of %dx%d (%.2f MB each)\n", model.c_str(), precision.c_str(), n, width, height,
                frame / 1e6);
    std::printf("# pinned host->device copy: %.1f GB/s -> floor %.0f frames/s\n", bw / 1e9, floor_fps);

    std::ofstream js;
    if (!json.empty()) js.open(json, std::ios::app);
    Tensor reference;
    auto report = [&](const char* source, double s, const Tensor& out) {
      const double fps = n / s;
      double diff = 0;
      if (!reference.data.empty())
        for (size_t i = 0; i < out.data.size(); ++i)
          diff = std::max(diff, double(std::abs(out.data[i] - reference.data[i])));
      char line[512];
      std::snprintf(
          line, sizeof line,
          "{\"engine\":\"clipfind\",\"bench\":\"frames\",\"model\":\"%s\",\"precision\":\"%s\",\"source\":\"%s\","
          "\"frames\":%d,\"width\":%d,\"height\":%d,\"frames_per_s\":%.1f,\"floor_frames_per_s\":%.1f,"
          "\"of_floor\":%.3f,\"h2d_gb_s\":%.2f,\"max_abs_vs_pinned\":%.2e}",
          model.c_str(), precision.c_str(), source, n, width, height, fps, floor_fps, fps / floor_fps, bw / 1e9, diff);
      std::printf("%s\n", line);
      if (js) js << line << "\n";
    };

    const auto pinned_views = views_of(pinned), pageable_views = views_of(pageable.data());
    be->encode_rgb(pinned_views, plans);  // warm-up: plans, graphs, buffers
    reference = be->encode_rgb(pinned_views, plans);
    Tensor out;
    double s = median_seconds(5, [&] { out = be->encode_rgb(pinned_views, plans); });
    report("pinned", s, out);
    s = median_seconds(3, [&] { out = be->encode_rgb(pageable_views, plans); });
    report("pageable", s, out);
    // The CPU preprocessing path (all host threads), chunks of 64 like the engine.
    s = median_seconds(1, [&] {
      out = Tensor({0, cfg.projection_dim});
      for (int start = 0; start < n; start += 64) {
        std::vector<ImageView> chunk(pageable_views.begin() + start, pageable_views.begin() + std::min(n, start + 64));
        const Tensor part = be->encode_images(preprocess_batch(chunk, pc));
        out.data.insert(out.data.end(), part.data.begin(), part.data.end());
        out.shape[0] += part.shape[0];
      }
    });
    report("cpu-preprocess", s, out);
    cudaFreeHost(pinned);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_frames: %s\n", e.what());
    return 1;
  }
  return 0;
}
