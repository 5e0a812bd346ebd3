// Picks the CPU GEMM library by measurement: times the GEMM shapes of the
// CLIP ViT-B/32 towers, C[M,N] = A[M,K] * W[N,K]^T with W in PyTorch layout.
//
// Each process runs one variant: the libraries' worker threads spin after a
// call and would steal the cores from the next variant in the same process.
// compare_gemm.sh alternates processes and takes the median over rounds.
//
//   bench_gemm VARIANT [threads=2] [reps=5]
//   VARIANT:
//     oblas       OpenBLAS cblas_sgemm, its own threads, W as stored (transposed)
//     oblas-T     the same with W transposed once to [K, N]
//     dnnl_sgemm  oneDNN's BLAS-like sgemm, OpenMP threads
//     dnnl-mm     oneDNN matmul primitive, weights packed once, OpenMP threads
//     engine      the backend's Linear (src/clip/cpu/gemm.h): the same matmul
//                 single-threaded in tasks on the backend's own thread pool
// Prints "variant<TAB>shape<TAB>GFLOP/s" per shape.
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dnnl.hpp>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "clip/cpu/gemm.h"
#include "clip/cpu/thread_pool.h"

extern "C" void openblas_set_num_threads(int);

namespace {

struct Shape {
  const char* what;
  int m, n, k;
};

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> names = {"oblas", "oblas-T", "dnnl_sgemm", "dnnl-mm", "engine"};
  if (argc < 2 || std::find(names.begin(), names.end(), argv[1]) == names.end()) {
    std::fprintf(stderr, "usage: bench_gemm oblas|oblas-T|dnnl_sgemm|dnnl-mm|engine [threads] [reps]\n");
    return 2;
  }
  const std::string variant = argv[1];
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  const std::vector<Shape> shapes = {
      {"warm-up", 400, 3072, 768},  // lets clocks and worker threads settle; not reported
      {"vit b1 qkv", 50, 2304, 768},    {"vit b1 fc1", 50, 3072, 768},    {"vit b1 fc2", 50, 768, 3072},
      {"vit b1 out", 50, 768, 768},     {"vit b8 qkv", 400, 2304, 768},   {"vit b8 fc1", 400, 3072, 768},
      {"vit b8 fc2", 400, 768, 3072},   {"vit b32 qkv", 1600, 2304, 768}, {"vit b32 fc1", 1600, 3072, 768},
      {"vit b32 fc2", 1600, 768, 3072}, {"vit b32 out", 1600, 768, 768},  {"txt t7 qkv", 7, 1536, 512},
      {"txt t7 fc1", 7, 2048, 512},     {"txt t7 fc2", 7, 512, 2048},     {"txt t77 qkv", 77, 1536, 512},
      {"txt t77 fc1", 77, 2048, 512},   {"txt t77 fc2", 77, 512, 2048},   {"txt b32x77 fc1", 2464, 2048, 512},
  };
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);
  clip::cpu::ThreadPool pool(threads, clip::cpu::gemm_thread_init);
  clip::cpu::GemmContext ctx(pool.size());
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);

  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.m) * s.k), w(size_t(s.n) * s.k), wt(w.size()), c(size_t(s.m) * s.n);
    for (auto& x : a) x = u(rng);
    for (auto& x : w) x = u(rng);
    for (int n = 0; n < s.n; ++n)
      for (int k = 0; k < s.k; ++k) wt[size_t(k) * s.n + n] = w[size_t(n) * s.k + k];

    std::function<void()> run;
    // Kept alive for the variant's lifetime.
    dnnl::matmul mm;
    dnnl::memory am, wm, cm;
    clip::cpu::Linear linear;
    if (variant == "oblas") {
      run = [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.m, s.n, s.k, 1.f, a.data(), s.k, w.data(), s.k, 0.f,
                    c.data(), s.n);
      };
    } else if (variant == "oblas-T") {
      run = [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.m, s.n, s.k, 1.f, a.data(), s.k, wt.data(), s.n, 0.f,
                    c.data(), s.n);
      };
    } else if (variant == "dnnl_sgemm") {
      run = [&] { dnnl_sgemm('N', 'T', s.m, s.n, s.k, 1.f, a.data(), s.k, w.data(), s.k, 0.f, c.data(), s.n); };
    } else if (variant == "dnnl-mm") {
      using tag = dnnl::memory::format_tag;
      using dt = dnnl::memory::data_type;
      dnnl::memory::desc ad({s.m, s.k}, dt::f32, tag::ab), cd({s.m, s.n}, dt::f32, tag::ab);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, dnnl::memory::desc({s.k, s.n}, dt::f32, tag::any), cd),
                                      eng);
      dnnl::memory plain(dnnl::memory::desc({s.k, s.n}, dt::f32, tag::ba), eng, w.data());
      am = dnnl::memory(ad, eng, a.data());
      cm = dnnl::memory(cd, eng, c.data());
      wm = dnnl::memory(pd.weights_desc(), eng);
      dnnl::reorder(plain, wm).execute(strm, plain, wm);
      mm = dnnl::matmul(pd);
      run = [&] { mm.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, cm}}); };
    } else {
      linear = clip::cpu::Linear(ctx, w.data(), nullptr, s.n, s.k);
      run = [&] { linear.forward(ctx, pool, a.data(), s.m, c.data(), clip::cpu::Epilogue::Store); };
    }

    run();  // warm-up (JIT, packing buffers)
    std::vector<double> t;
    const int inner = std::max(1, int(2e8 / (2.0 * s.m * s.n * s.k)));
    for (int r = 0; r < reps; ++r) {
      const double t0 = now_s();
      for (int j = 0; j < inner; ++j) run();
      t.push_back((now_s() - t0) / inner);
    }
    std::sort(t.begin(), t.end());
    if (std::string(s.what) != "warm-up")
      std::printf("%s\t%s\t%.1f\n", variant.c_str(), s.what, 2.0 * s.m * s.n * s.k / t[t.size() / 2] / 1e9);
  }
  return 0;
}
