// The ANN index (issue 30) over planted clustered frames (planted_clusters.h):
// build rate, the cost of adding 1% new frames, recall@10 against the exact
// scan, whole search-step latency (ANN candidates, fp16 re-ranking, segment
// merging) for several nprobe / re-rank settings, and memory.
//
//   [QUERY_NOISE=0.5] bench_ann FRAMES [DIM] [QUERIES] [NPROBES] [RERANKS]
//     e.g. bench_ann 1000000 512 200 16,32,64,128 2,4
//
// Each setting prints a line and a JSON line ("json: {...}"). Pin it to the
// cores to measure on (taskset -c 0,1): the 2-core targets are for search
// and adding; training may use every core it is given.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "index/ann.h"
#include "index/half.h"
#include "index/search.h"
#include "planted_clusters.h"

namespace idx = clipfind::index;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kPerVideo = 3600;  // hour-long videos sampled every second

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Planted rows of videos [0, videos), generated on every core into one table.
struct Table {
  std::vector<int64_t> video;
  std::vector<double> time;
  std::vector<uint16_t> emb;
  idx::FrameTable view(int dim, size_t rows) const {
    idx::FrameTable t;
    t.dim = dim;
    t.video = {video.data(), rows};
    t.time = {time.data(), rows};
    t.embeddings = {emb.data(), rows * size_t(dim)};
    return t;
  }
};

Table make_table(const planted::Clusters& c, size_t n, int dim) {
  Table t;
  t.video.resize(n);
  t.time.resize(n);
  t.emb.resize(n * size_t(dim));
  const size_t videos = (n + kPerVideo - 1) / kPerVideo;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < threads; ++w) {
    pool.emplace_back([&, w] {
      for (size_t v = w; v < videos; v += threads) {
        const size_t first = v * kPerVideo, rows = std::min(kPerVideo, n - first);
        const auto f = c.video(v, rows);
        for (size_t r = 0; r < rows; ++r) {
          t.video[first + r] = int64_t(v);
          t.time[first + r] = double(r);
          for (int i = 0; i < dim; ++i) t.emb[(first + r) * dim + i] = idx::float_to_half(f[r * dim + i]);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  return t;
}

std::vector<size_t> parse_list(const char* s) {
  std::vector<size_t> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::strtoull(item.c_str(), nullptr, 10));
  return out;
}

// Resident and peak resident memory, MB (/proc/self/status).
std::pair<double, double> rss_mb() {
  std::ifstream f("/proc/self/status");
  double rss = 0, hwm = 0;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atof(line.c_str() + 6) / 1024;
  }
  return {rss, hwm};
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FRAMES [DIM] [QUERIES] [NPROBES] [RERANKS]\n", argv[0]);
    return 2;
  }
  const size_t n = std::strtoull(argv[1], nullptr, 10);
  const int dim = argc > 2 ? std::atoi(argv[2]) : 512;
  const size_t queries = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 200;
  const auto nprobes = parse_list(argc > 4 ? argv[4] : "8,16,32,64");
  const auto reranks = parse_list(argc > 5 ? argv[5] : "2");
  const planted::Clusters clusters(dim);
  // Query noise norms (planted_clusters.h): 0.5 image-like, 1.0 text-like.
  std::vector<float> noises;
  std::stringstream noise_list(std::getenv("QUERY_NOISE") ? std::getenv("QUERY_NOISE") : "0.5");
  for (std::string item; std::getline(noise_list, item, ',');) noises.push_back(float(std::atof(item.c_str())));

  auto t0 = Clock::now();
  const Table table = make_table(clusters, n, dim);
  const idx::FrameTable all = table.view(dim, n);
  std::printf("planted %zu frames x %d in %.1f s\n", n, dim, since(t0));

  // Build on all but the last 1% (whole videos), then add that 1%.
  const size_t videos = (n + kPerVideo - 1) / kPerVideo;
  const size_t kept_videos = videos - std::max<size_t>(1, videos / 100);
  const size_t kept = std::min(n, kept_videos * kPerVideo);
  t0 = Clock::now();
  auto ann = idx::AnnIndex::build(table.view(dim, kept));
  const double build_s = since(t0);
  t0 = Clock::now();
  const auto update = ann->update(all);
  double add_s = since(t0);
  if (update == idx::AnnIndex::Update::needs_retraining) {
    // Report it, then time the add itself (what an update of the same size costs).
    std::printf("1%% add: the drift check asked for retraining after %.2f s; adding anyway\n", add_s);
    t0 = Clock::now();
    ann->update(all, true);
    add_s = since(t0);
  }
  const idx::AnnInfo info = ann->info();
  std::printf(
      "build %zu frames: %.1f s (%.2fM frames/min, training included); add %zu frames (%.1f%%): %.2f s = "
      "%.2f%% of the build; %zu lists, %d-byte codes, ANN %.1f MB; new frames' coarse fit %.2fx held-out rows'\n",
      kept, build_s, double(kept) / build_s * 60 / 1e6, n - kept, 100.0 * double(n - kept) / double(n), add_s,
      100 * add_s / build_s, info.lists, info.code_bytes, double(info.memory_bytes) / 1e6, double(info.drift));

  for (const float query_noise : noises) {
    // Queries near random frames; the exact answers once.
    std::vector<std::vector<float>> qs;
    std::mt19937_64 rng(99);
    std::vector<float> frame(dim);
    for (size_t i = 0; i < queries; ++i) {
      const size_t row = rng() % n;
      for (int c = 0; c < dim; ++c) frame[c] = all.at(row, c);
      qs.push_back(clusters.query(frame.data(), i, query_noise));
    }
    std::vector<std::vector<idx::Hit>> exact;
    std::vector<double> exact_ms;
    for (const auto& q : qs) {
      t0 = Clock::now();
      const auto segs = idx::search(all, q.data(), 10, 2.0);
      exact_ms.push_back(since(t0) * 1e3);
      exact.push_back(idx::top_k(all, q.data(), 10));
    }
    std::printf("query noise %.2f: exact search p50 %.1f ms, p99 %.1f ms\n", double(query_noise),
                percentile(exact_ms, 0.5), percentile(exact_ms, 0.99));

    for (size_t rerank : reranks) {
      for (size_t nprobe : nprobes) {
        ann->set_params({int(nprobe), rerank});
        std::vector<double> ms;
        size_t found = 0;
        for (size_t i = 0; i < qs.size(); ++i) {
          t0 = Clock::now();
          const auto segs = idx::search(all, qs[i].data(), 10, 2.0, ann.get());
          ms.push_back(since(t0) * 1e3);
          auto approx = ann->top_k(all, qs[i].data(), 10 * idx::kCandidatesPerResult);
          approx.resize(std::min<size_t>(approx.size(), 10));
          for (const auto& e : exact[i]) {
            found += std::any_of(approx.begin(), approx.end(), [&](const idx::Hit& a) { return a.row == e.row; });
          }
        }
        const double recall = double(found) / double(10 * qs.size());
        const auto [rss, hwm] = rss_mb();
        std::printf("nprobe %zu rerank %zux: recall@10 %.3f, search p50 %.2f ms p99 %.2f ms (RSS %.0f MB)\n", nprobe,
                    rerank, recall, percentile(ms, 0.5), percentile(ms, 0.99), rss);
        std::printf(
            "json: {\"frames\": %zu, \"dim\": %d, \"query_noise\": %.2f, \"nprobe\": %zu, \"rerank\": %zu, "
            "\"recall_at_10\": %.4f, "
            "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"exact_p50_ms\": %.2f, \"build_s\": %.2f, \"build_frames\": %zu, "
            "\"add_s\": %.3f, \"add_frames\": %zu, \"lists\": %zu, \"ann_mb\": %.1f, \"rss_mb\": %.0f, "
            "\"table_mb\": %.0f}\n",
            n, dim, double(query_noise), nprobe, rerank, recall, percentile(ms, 0.5), percentile(ms, 0.99),
            percentile(exact_ms, 0.5), build_s, kept, add_s, n - kept, info.lists, double(info.memory_bytes) / 1e6, rss,
            double(n) * (dim * 2 + 16) / 1e6);
      }
    }
  }
  return 0;
}
