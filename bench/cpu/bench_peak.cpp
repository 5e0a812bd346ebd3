// The CPU's arithmetic ceilings for the three precisions of the CPU backend
// (issue 28): fp32 FMA, bf16 dot products (vdpbf16ps) and int8 dot products
// (vpdpbusd), 512-bit, in registers only (no memory traffic), on 1 and on
// `threads` threads. What a GEMM in each precision can reach at best, against
// which bench_cpu's GFLOP/s and ONNX Runtime's speed are read.
//   bench_peak [threads]
// Prints one line per precision: multiply-adds counted as 2 operations. On a
// shared machine, take the best of a few runs.
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

constexpr long kIters = 20'000'000;
constexpr int kChains = 12;  // independent accumulators: enough to cover the latency of 2 pipes

// The first lane of each accumulator (GCC 12's _mm512_reduce_* warn).
__attribute__((target("avx512f"))) float sum(const __m512 (&acc)[kChains]) {
  float out = 0.0f;
  for (const auto& a : acc) out += _mm512_cvtss_f32(a);
  return out;
}

// Each returns something derived from its accumulators so that the loop is
// not optimised away.
__attribute__((target("avx512f"))) float fp32_loop() {
  __m512 acc[kChains];
  for (auto& a : acc) a = _mm512_set1_ps(0.0f);
  const __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
  for (long i = 0; i < kIters; ++i) {
    for (auto& a : acc) a = _mm512_fmadd_ps(x, y, a);
  }
  return sum(acc);
}

__attribute__((target("avx512f,avx512bf16"))) float bf16_loop() {
  __m512 acc[kChains];
  for (auto& a : acc) a = _mm512_set1_ps(0.0f);
  const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0f), _mm512_set1_ps(0.5f));
  for (long i = 0; i < kIters; ++i) {
    for (auto& a : acc) a = _mm512_dpbf16_ps(a, x, x);
  }
  return sum(acc);
}

__attribute__((target("avx512f,avx512vnni"))) float int8_loop() {
  __m512i acc[kChains];
  for (auto& a : acc) a = _mm512_setzero_si512();
  const __m512i u = _mm512_set1_epi8(1), s8 = _mm512_set1_epi8(-1);
  for (long i = 0; i < kIters; ++i) {
    for (auto& a : acc) a = _mm512_dpbusd_epi32(a, u, s8);
  }
  alignas(64) int lanes[16];
  float out = 0.0f;
  for (const auto& a : acc) {
    _mm512_store_si512(lanes, a);
    out += float(lanes[0]);
  }
  return out;
}

// Operations one loop does: per instruction, 16 fp32 lanes times the
// multiply-adds each lane does (1 fp32, 2 bf16 pairs, 4 int8 quads), x2.
double ops(int macs_per_lane) { return double(kIters) * kChains * 16 * macs_per_lane * 2; }

double run(float (*loop)(), int threads) {
  std::vector<std::thread> ts;
  std::vector<float> sink(static_cast<size_t>(threads), 0.0f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) ts.emplace_back([&, t] { sink[size_t(t)] = loop(); });
  for (auto& t : ts) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile float keep = sink[0];
  (void)keep;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : int(std::thread::hardware_concurrency());
  struct Case {
    const char* name;
    const char* feature;
    bool supported;  // __builtin_cpu_supports takes literals only
    float (*loop)();
    int macs;
  };
  const Case cases[] = {{"fp32 fma", "avx512f", bool(__builtin_cpu_supports("avx512f")), fp32_loop, 1},
                        {"bf16 dpbf16ps", "avx512bf16", bool(__builtin_cpu_supports("avx512bf16")), bf16_loop, 2},
                        {"int8 dpbusd", "avx512vnni", bool(__builtin_cpu_supports("avx512vnni")), int8_loop, 4}};
  std::printf("# peak, 512-bit, registers only; GOP/s (multiply-add = 2)\n");
  std::printf("precision\t1 thread\t%d threads\n", threads);
  for (const Case& c : cases) {
    if (!c.supported) {
      std::printf("%s\t(no %s on this CPU)\n", c.name, c.feature);
      continue;
    }
    run(c.loop, 1);  // warm-up: clocks up
    const double one = ops(c.macs) / run(c.loop, 1) * 1e-9;
    const double all = ops(c.macs) * threads / run(c.loop, threads) * 1e-9;
    std::printf("%s\t%.0f\t%.0f\n", c.name, one, all);
  }
  return 0;
}
