// Search latency over planted vectors (issue 4 target: 1,000,000 frames of
// dim 512 in under 50 ms on the 2-core CI machine). Times the in-memory exact
// search (top-k + segment merge) that `clipfind search` runs after loading;
// run_search_bench.sh then times whole `clipfind search` calls.
//
//   bench/video/run_search_bench.sh [FRAMES] [DIM]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "index/search.h"

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const int dim = argc > 2 ? std::atoi(argv[2]) : 512;
  clipfind::index::FrameTableBuilder b(dim);
  b.reserve(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  std::vector<float> row(dim);
  for (size_t r = 0; r < n; ++r) {
    float norm = 0;
    for (float& x : row) {
      x = g(rng);
      norm += x * x;
    }
    for (float& x : row) x /= std::sqrt(norm);
    b.add(int64_t(r / 3600), double(r % 3600), row.data());  // hour-long videos sampled every second
  }
  const clipfind::index::FrameTable t = b.build();
  std::vector<std::vector<float>> queries(8, std::vector<float>(dim));
  for (auto& q : queries) {
    float norm = 0;
    for (float& x : q) {
      x = g(rng);
      norm += x * x;
    }
    for (float& x : q) x /= std::sqrt(norm);
  }
  std::vector<double> ms;
  for (int run = 0; run < 21; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    auto segs = clipfind::index::search(t, queries[run % queries.size()].data(), 10, 2.0);
    const auto t1 = std::chrono::steady_clock::now();
    if (segs.empty()) return 1;
    if (run > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());  // run 0: warm-up
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  std::printf("search over %zu frames x %d dims, k=10: median %.1f ms, min %.1f ms (%.1f GB/s of fp16 embeddings)\n", n,
              dim, med, ms.front(), double(n) * dim * 2 / (med * 1e-3) / 1e9);
  return 0;
}
