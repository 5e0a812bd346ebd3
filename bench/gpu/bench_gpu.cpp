// GPU benchmark of clipfind's CUDA backend on random weights of real CLIP
// and SigLIP shapes (speed does not depend on the values; the names are
// tests/support/random_model.h's: B/32, B/16, L/14, SO400M/14, B/16-384).
//
//   bench_gpu [--models B/32,B/16,L/14] [--precision fp16] [--json FILE] [--quick] [--split] [--batches 256,1024]
//             [--peak] [--mixed-batches]
//
// Images/s at batch 1, 64, 256, 1024 (L/14: 1, 64, 256), texts/s at 1 and
// 256 (77 tokens) and a short query (7 tokens), latency at batch 1, achieved
// TFLOP/s, peak GPU memory. Timing: inputs already on the GPU (two input
// sets, alternated), warm-up (the first calls also build cuBLASLt plans and
// capture CUDA graphs), then CUDA events around each call, median of many.
// "wall" is host time per call including synchronisation (what a caller
// waiting on one query sees). Batches of one or two are timed from a rested
// GPU (time_calls). Where NVML loads (gpu_clocks.h), each line also
// carries the median SM clock and board power over its timed calls and the
// share of the dense fp16 peak at that clock.
// --split also runs each image batch as two halves on two backends (two
// streams) side by side; with CLIPFIND_CUDA_SM_LIMIT=66 in the environment
// (read by this benchmark in every build: bench_tuning) each half's GEMMs
// stay on half the SMs (bench/notes/cuda-rounds.md, 'two half-batches side by
// side').
// --mixed-batches instead runs each model's vision tower on batches of every
// size from 1 to 32 in turn, with and without the batch rounding of
// batch_bucket.h (run_mixed).
// --peak first times one large fp16 GEMM alone (16384 x 16384 x 16384, the
// GEMM runner's fastest kernel for it) with its clock and power: what a pure
// tensor-core load reaches on this board, the yardstick for the passes.
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "batch_list.h"
#include "check_cuda.h"
#include "clip/cuda/cuda_backend.h"
#include "clip/cuda/resources.h"
#include "gpu_clocks.h"
#include "model_flops.h"
#include "support/random_model.h"

namespace {

using namespace clip;

// The backend's switches: the environment's (cuda/tuning.h), plus this
// benchmark's own CLIPFIND_CUDA_SM_LIMIT=N: the persistent GEMMs of every
// runner here on at most N SMs (--split).
cuda::Tuning bench_tuning() {
  cuda::Tuning t = cuda::Tuning::from_environment();
  if (const char* e = std::getenv("CLIPFIND_CUDA_SM_LIMIT"); e && *e) t.sm_limit = std::atoi(e);
  return t;
}

struct Timing {
  double gpu_ms = 0;                 // median of CUDA-event times
  double wall_ms = 0;                // median host time per synchronised call
  bench::GpuClocks::Reading clocks;  // SM clock and power over the timed calls
};

// Dense fp16/bf16 tensor-core FLOPs per SM per clock: 4096 on sm_90 (the
// H100 SXM's 989 TFLOP/s at 1,830 MHz over 132 SMs), 2048 on sm_80 (the
// A100's 312 at 1,410 over 108); 0 where not known here.
double dense_fp16_flops_per_sm_clock(const cudaDeviceProp& p) {
  if (p.major == 9 && p.minor == 0) return 4096;
  if (p.major == 8 && p.minor == 0) return 2048;
  return 0;
}

// The JSON fields of a measurement's clock: the median SM clock while it
// ran and, from half a second (50 samples) on, the board power and (where
// the peak rate per clock is known) the share of the dense fp16 peak at that
// clock that `tflops` reached. NVML's clock is read instantly, but its power
// reading averages over longer than a short measurement, so it would show
// the run before.
std::string clock_fields(const Timing& t, double tflops, const cudaDeviceProp& prop) {
  if (!t.clocks.valid) return "";
  char buf[160];
  std::snprintf(buf, sizeof buf, ",\"sm_mhz\":%.0f", t.clocks.sm_mhz);
  std::string s = buf;
  if (t.clocks.samples < 50) return s;
  const double peak = dense_fp16_flops_per_sm_clock(prop) * prop.multiProcessorCount * t.clocks.sm_mhz * 1e-6;
  std::snprintf(buf, sizeof buf, ",\"watts\":%.0f", t.clocks.watts);
  s += buf;
  if (peak > 0) {
    std::snprintf(buf, sizeof buf, ",\"of_clock_peak\":%.3f", tflops / peak);
    s += buf;
  }
  return s;
}

// One sampler for the whole run (NVML is loaded once).
bench::GpuClocks& gpu_clocks() {
  static bench::GpuClocks clocks;
  return clocks;
}

// latency: a batch of one or two, timed from a rested GPU (below).
// Runner: a CudaBackend or CudaResources (a stream and synchronize()).
template <typename Runner, typename F>
Timing time_calls(Runner& be, F&& call, double est_ms, bool latency = false) {
  bench::GpuClocks& clocks = gpu_clocks();
  auto stream = static_cast<cudaStream_t>(be.stream());
  // A latency measurement starts from a rested GPU, as a query to an idle
  // search server does: after a large batch the board stays at its power
  // cap for a while, with the SM clock down to about 1,400 MHz, and a single
  // query timed then shows that clock rather than its own (1,980 MHz once
  // idle; bench/RESULTS.md, seventeenth round: B/32's 7-token query 0.316 ms
  // right after the batch of 1,024, 0.267 ms rested). Throughput batches are
  // timed as they come: they reach the cap within their warm-up calls.
  if (latency) std::this_thread::sleep_for(std::chrono::seconds(1));
  for (int i = 0; i < 4; ++i) call(i);  // eager, capture, replays
  be.synchronize();
  // About 1.5 s of GPU time per measurement, 7..200 calls.
  const int reps = std::clamp(static_cast<int>(1500.0 / std::max(est_ms, 0.01)), 7, 200);
  std::vector<cudaEvent_t> ev(reps + 1);
  for (auto& e : ev) CHECK_CUDA(cudaEventCreate(&e));
  clocks.start();
  CHECK_CUDA(cudaEventRecord(ev[0], stream));
  for (int i = 0; i < reps; ++i) {
    call(i);
    CHECK_CUDA(cudaEventRecord(ev[i + 1], stream));
  }
  be.synchronize();
  const bench::GpuClocks::Reading reading = clocks.stop();
  std::vector<double> gpu(reps);
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, ev[i], ev[i + 1]));
    gpu[i] = ms;
  }
  for (auto& e : ev) cudaEventDestroy(e);
  // Wall time of synchronised calls (fewer: it is the latency view).
  const int wreps = std::min(reps, 30);
  std::vector<double> wall(wreps);
  for (int i = 0; i < wreps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    call(i);
    be.synchronize();
    wall[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::nth_element(gpu.begin(), gpu.begin() + reps / 2, gpu.end());
  std::nth_element(wall.begin(), wall.begin() + wreps / 2, wall.end());
  return {gpu[reps / 2], wall[wreps / 2], reading};
}

// Two backends (each its own stream and scratch) running halves of a batch
// side by side: a's stream starts b's through an event each call and waits
// for it at the end, so the events on a's stream time both halves.
template <typename F, typename G>
Timing time_split(CudaBackend& a, CudaBackend& b, F&& call_a, G&& call_b) {
  auto sa = static_cast<cudaStream_t>(a.stream()), sb = static_cast<cudaStream_t>(b.stream());
  cudaEvent_t fork, join;
  CHECK_CUDA(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
  CHECK_CUDA(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
  auto both = [&](int i) {
    CHECK_CUDA(cudaEventRecord(fork, sa));
    CHECK_CUDA(cudaStreamWaitEvent(sb, fork));
    call_a(i);
    call_b(i);
    CHECK_CUDA(cudaEventRecord(join, sb));
    CHECK_CUDA(cudaStreamWaitEvent(sa, join));
  };
  const Timing t = time_calls(a, both, 50.0);
  b.synchronize();
  cudaEventDestroy(fork);
  cudaEventDestroy(join);
  return t;
}

struct Args {
  std::vector<std::string> models = {"B/32", "B/16", "L/14"};
  std::vector<Precision> precisions = {Precision::FP16};
  std::string json;
  bool quick = false;
  std::vector<int> batches;  // image batches (--batches); empty: the defaults
  bool split = false;        // --split: also each image batch as two halves side by side
  bool peak = false;         // --peak: one large GEMM alone first
  bool mixed = false;        // --mixed-batches: only the varying-batch case (run_mixed)
};

size_t gpu_used_bytes() {
  size_t free_b = 0, total_b = 0;
  CHECK_CUDA(cudaMemGetInfo(&free_b, &total_b));
  return total_b - free_b;
}

void emit(std::ofstream& js, const std::string& line) {
  std::printf("%s\n", line.c_str());
  if (js) js << line << "\n" << std::flush;
}

// A device buffer of n fp16 values, uniform with standard deviation `std`.
cuda::DeviceBuffer random_half(cuda::CudaResources& res, size_t n, float std, uint64_t seed) {
  testing::Rng r(seed);
  std::vector<__half> h(n);
  for (auto& v : h) v = __float2half(r.sym(std));
  cuda::DeviceBuffer d = res.alloc(n * sizeof(__half));
  CHECK_CUDA(cudaMemcpy(d.get(), h.data(), n * sizeof(__half), cudaMemcpyHostToDevice));
  return d;
}

// One fp16 GEMM of 16384^3 with float32 accumulation and no epilogue, on
// random operands (the tensor cores' power depends on the values, so not
// zeros), timed like the passes.
void run_peak(std::ofstream& js, const cudaDeviceProp& prop) {
  cuda::CudaResources res(0, bench_tuning());
  constexpr int64_t n = 16384;
  cuda::DeviceBuffer x = random_half(res, n * n, 1.f, 1), w = random_half(res, n * n, 1.f / 128.f, 2);  // w: 1/sqrt(K)
  cuda::DeviceBuffer out = res.alloc(n * n * sizeof(__half));
  cuda::GemmShape s;
  s.M = s.N = s.K = n;
  s.in_type = s.out_type = cuda::DType::F16;
  s.compute = cuda::GemmCompute::Mixed;
  auto call = [&](int) { res.gemm().linear(res.exec(), s, x.get(), w.get(), nullptr, out.get()); };
  const Timing t = time_calls(res, call, 14.0);  // about 14 ms a call on an H100
  const double tflops = 2.0 * n * n * n / t.gpu_ms * 1e-9;
  // A line of its own kind, like bench_frames' ("bench", no "tower"): the
  // scripts that read pass measurements take only lines with a tower.
  char line[320];
  std::snprintf(line, sizeof line,
                "{\"engine\":\"clipfind\",\"bench\":\"peak_gemm\",\"M\":%lld,\"N\":%lld,\"K\":%lld,"
                "\"precision\":\"fp16\",\"kernel\":\"%s\",\"ms\":%.4f,\"tflops\":%.1f",
                (long long)n, (long long)n, (long long)n, res.gemm().kernel_name(s).c_str(), t.gpu_ms, tflops);
  emit(js, line + clock_fields(t, tflops, prop) + "}");
}

// --mixed-batches: images in batches of every size from 1 to 32 in a fixed
// shuffled order (400 calls), as `clipfind index` hands them to the engine,
// on a fresh backend with the vision batch rounded up (Tuning::batch_buckets,
// batch_bucket.h) and one without, twice each, alternating. The first pass
// over the sizes pays each new size's GEMM races and graph capture; the
// second shows the steady state. Host wall time, synchronised at the end.
void run_mixed(const std::string& name, const ClipConfig& cfg, const ModelWeights& w, std::ofstream& js) {
  constexpr int kCalls = 400, kMax = 32;
  std::vector<int> sizes(kCalls);
  uint32_t x = 12345;
  int images = 0;
  for (int& n : sizes) {
    x = x * 1664525u + 1013904223u;
    n = 1 + int((x >> 8) % kMax);
    images += n;
  }
  const Tensor pool = testing::random_pixels(*cfg.vision, kMax, 9);
  float* d_pool = nullptr;
  float* d_out = nullptr;
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&d_pool), pool.numel() * 4));
  CHECK_CUDA(cudaMemcpy(d_pool, pool.ptr(), pool.numel() * 4, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&d_out), size_t(kMax) * cfg.projection_dim * 4));
  double best[2][2] = {{1e30, 1e30}, {1e30, 1e30}};  // [buckets][pass]
  for (int rep = 0; rep < 2; ++rep) {
    for (int buckets = 0; buckets < 2; ++buckets) {
      CudaOptions o;
      o.precision = Precision::FP16;
      o.tuning = bench_tuning();
      o.tuning->batch_buckets = buckets == 1;
      std::unique_ptr<Backend> base = make_cuda_backend(cfg, w, o);
      auto* be = dynamic_cast<CudaBackend*>(base.get());
      double pass_s[2];
      for (int pass = 0; pass < 2; ++pass) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int n : sizes) be->encode_images_device(d_pool, n, d_out);
        be->synchronize();
        pass_s[pass] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best[buckets][pass] = std::min(best[buckets][pass], pass_s[pass]);
      }
      char line[512];
      std::snprintf(line, sizeof line,
                    "{\"engine\":\"clipfind\",\"bench\":\"mixed_batches\",\"model\":\"%s\",\"precision\":\"fp16\","
                    "\"buckets\":%s,\"rep\":%d,\"calls\":%d,\"images\":%d,\"first_pass_s\":%.3f,"
                    "\"second_pass_s\":%.3f,\"first_images_per_s\":%.0f,\"second_images_per_s\":%.0f}",
                    name.c_str(), buckets ? "true" : "false", rep, kCalls, images, pass_s[0], pass_s[1],
                    images / pass_s[0], images / pass_s[1]);
      emit(js, line);
    }
  }
  std::printf(
      "# %s mixed batches 1-%d, best of 2: first pass %.3f s unrounded / %.3f s rounded (%.2fx), "
      "second pass %.3f / %.3f s (%.2fx)\n",
      name.c_str(), kMax, best[0][0], best[1][0], best[0][0] / best[1][0], best[0][1], best[1][1],
      best[0][1] / best[1][1]);
  cudaFree(d_pool);
  cudaFree(d_out);
}

int run(const Args& a) {
  std::string why;
  if (!cuda_available(&why)) {
    std::printf("bench_gpu: no usable GPU: %s\n", why.c_str());
    return 0;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("# device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  std::ofstream js;
  if (!a.json.empty()) js.open(a.json, std::ios::app);
  if (a.peak) run_peak(js, prop);

  for (const std::string& name : a.models) {
    const testing::ModelShape shape = testing::model_shape(name);
    const ClipConfig cfg = testing::make_config(shape);
    const auto tg = std::chrono::steady_clock::now();
    const ModelWeights w = testing::random_weights(cfg, 42);
    std::printf("# %s: random weights in %.1f s\n", name.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - tg).count());
    if (a.mixed) {
      run_mixed(name, cfg, w, js);
      continue;
    }
    std::vector<int> batches = {1, 64, 256, 1024};
    if (name == "L/14" || name == "SO400M/14" || name == "B/16-384") batches = {1, 64, 256};
    if (a.quick) batches = {1, 256};
    if (!a.batches.empty()) batches = a.batches;
    const int max_batch = *std::max_element(batches.begin(), batches.end());
    const VisionConfig& v = *cfg.vision;
    const size_t img_floats = size_t(v.num_channels) * v.image_size * v.image_size;

    // Two input sets: images [0, n) and [1, n+1) of one random pool.
    const Tensor pool = testing::random_pixels(v, max_batch + 1, 7);
    float* d_pool = nullptr;
    float* d_out = nullptr;
    CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&d_pool), pool.numel() * 4));
    CHECK_CUDA(cudaMemcpy(d_pool, pool.ptr(), pool.numel() * 4, cudaMemcpyHostToDevice));
    // Room for the largest image batch and for the text cases' 256 texts.
    const int max_out = std::max(max_batch, 256);
    CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&d_out), size_t(max_out) * cfg.projection_dim * 4));
    CHECK_CUDA(cudaDeviceSynchronize());  // the pageable upload may still be in flight

    for (Precision p : a.precisions) {
      const size_t used0 = gpu_used_bytes();
      CudaOptions o;
      o.precision = p;
      o.tuning = bench_tuning();
      std::unique_ptr<Backend> base = make_cuda_backend(cfg, w, o);
      auto* be = dynamic_cast<CudaBackend*>(base.get());
      const double weights_mb = be->weight_bytes() / 1048576.0;
      std::printf("# %s %s: weights on GPU %.1f MiB\n", name.c_str(), precision_name(p), weights_mb);
      const double fl_img = bench::image_flops(cfg);
      double est = 0.05;
      for (int n : batches) {
        const Timing t = time_calls(
            *be, [&](int i) { be->encode_images_device(d_pool + (i & 1) * img_floats, n, d_out); }, est, n <= 2);
        est = t.gpu_ms * 4;
        const double tflops = fl_img * n / t.gpu_ms * 1e-9;
        char line[512];
        std::snprintf(
            line, sizeof line,
            "{\"engine\":\"clipfind\",\"model\":\"%s\",\"tower\":\"vision\",\"precision\":\"%s\",\"batch\":%d,"
            "\"seq\":%d,\"ms\":%.4f,\"wall_ms\":%.4f,\"items_per_s\":%.1f,\"tflops\":%.1f,"
            "\"gpu_mem_mb\":%.0f,\"backend_mb\":%.0f,\"weights_mb\":%.1f",
            name.c_str(), precision_name(p), n, v.num_positions(), t.gpu_ms, t.wall_ms, n / t.gpu_ms * 1e3, tflops,
            (gpu_used_bytes() - used0) / 1048576.0, be->allocated_bytes() / 1048576.0, weights_mb);
        emit(js, line + clock_fields(t, tflops, prop) + "}");
      }
      if (a.split) {
        std::unique_ptr<Backend> base2 = make_cuda_backend(cfg, w, o);
        auto* be2 = dynamic_cast<CudaBackend*>(base2.get());
        for (int n : batches) {
          if (n < 2) continue;
          const int h = n / 2;
          const size_t off = size_t(h) * img_floats;
          // First calls alone (each backend races its GEMM kernels on them).
          for (int i = 0; i < 2; ++i) {
            be->encode_images_device(d_pool, h, d_out);
            be->synchronize();
            be2->encode_images_device(d_pool + off, n - h, d_out + size_t(h) * cfg.projection_dim);
            be2->synchronize();
          }
          const Timing t = time_split(
              *be, *be2, [&](int i) { be->encode_images_device(d_pool + (i & 1) * img_floats, h, d_out); },
              [&](int i) {
                be2->encode_images_device(d_pool + (i & 1) * img_floats + off, n - h,
                                          d_out + size_t(h) * cfg.projection_dim);
              });
          const double tflops = fl_img * n / t.gpu_ms * 1e-9;
          char line[512];
          std::snprintf(line, sizeof line,
                        "{\"engine\":\"clipfind-split2\",\"model\":\"%s\",\"tower\":\"vision\",\"precision\":\"%s\","
                        "\"batch\":%d,\"seq\":%d,\"ms\":%.4f,\"items_per_s\":%.1f,\"tflops\":%.1f",
                        name.c_str(), precision_name(p), n, v.num_positions(), t.gpu_ms, n / t.gpu_ms * 1e3, tflops);
          emit(js, line + clock_fields(t, tflops, prop) + "}");
        }
      }
      // Text: 77 tokens (the full context) at 1 and 256, a 7-token query and
      // two 8-token queries (16 rows: the most small_linear takes). SigLIP
      // pads every text to its context (64): one query and 256.
      struct T {
        int n, seq;
      };
      const int ctx = cfg.text->max_positions;
      const std::vector<T> text_cases = cfg.text->pool_last ? std::vector<T>{{1, ctx}, {256, ctx}}
                                                            : std::vector<T>{{1, 7}, {2, 8}, {1, 77}, {256, 77}};
      for (T tc : text_cases) {
        const TextBatch b0 = testing::random_texts(*cfg.text, tc.n, tc.seq, 1);
        const TextBatch b1 = testing::random_texts(*cfg.text, tc.n, tc.seq, 2);
        const Timing t = time_calls(
            *be, [&](int i) { be->encode_texts_device((i & 1) ? b1 : b0, d_out); }, 1.0, tc.n <= 2);
        const double tflops = bench::text_flops(cfg, tc.seq) * tc.n / t.gpu_ms * 1e-9;
        char line[512];
        std::snprintf(line, sizeof line,
                      "{\"engine\":\"clipfind\",\"model\":\"%s\",\"tower\":\"text\",\"precision\":\"%s\",\"batch\":%d,"
                      "\"seq\":%d,\"ms\":%.4f,\"wall_ms\":%.4f,\"items_per_s\":%.1f,\"tflops\":%.1f,"
                      "\"gpu_mem_mb\":%.0f,\"backend_mb\":%.0f,\"weights_mb\":%.1f",
                      name.c_str(), precision_name(p), tc.n, tc.seq, t.gpu_ms, t.wall_ms, tc.n / t.gpu_ms * 1e3, tflops,
                      (gpu_used_bytes() - used0) / 1048576.0, be->allocated_bytes() / 1048576.0, weights_mb);
        emit(js, line + clock_fields(t, tflops, prop) + "}");
      }
    }
    cudaFree(d_pool);
    cudaFree(d_out);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", s.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (s == "--models")
      a.models = bench::split_list(next());
    else if (s == "--precision") {
      a.precisions.clear();
      for (const auto& p : bench::split_list(next())) a.precisions.push_back(parse_precision(p));
    } else if (s == "--json")
      a.json = next();
    else if (s == "--quick")
      a.quick = true;
    else if (s == "--split")
      a.split = true;
    else if (s == "--peak")
      a.peak = true;
    else if (s == "--mixed-batches")
      a.mixed = true;
    else if (s == "--batches") {
      const auto batches = bench::batch_list(next(), "--batches");
      if (!batches) return 2;
      a.batches.insert(a.batches.end(), batches->begin(), batches->end());
    } else {
      std::fprintf(stderr,
                   "usage: bench_gpu [--models B/32,B/16,L/14] [--precision fp16,bf16] [--json FILE] [--quick] "
                   "[--split] [--batches 256,1024] [--peak] [--mixed-batches]\n");
      return 2;
    }
  }
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu: %s\n", e.what());
    return 1;
  }
}
