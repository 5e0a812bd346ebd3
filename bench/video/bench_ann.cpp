// The ANN index (issue 30) over planted clustered frames (planted_clusters.h):
// build rate, the cost of adding 1% new frames, recall@10 against the exact
// scan, whole search-step latency (ANN candidates, fp16 re-ranking, segment
// merging) for several nprobe / re-rank settings, and memory.
//
//   [QUERY_NOISE=0.5] [TABLE_FILE=PATH] [EXACT_TIMED=20] bench_ann FRAMES [DIM] [QUERIES] [NPROBES] [RERANKS]
//     e.g. bench_ann 1000000 512 200 16,32,64,128 2,4
//
// TABLE_FILE: keep the fp16 rows in that file, mapped shared, so that the
// page cache holds them as it holds a catalog's mapped vectors.f16 (30M
// frames x 512 dims are 31 GB, more than a 23 GB machine's memory); a file
// left by an earlier run with the same frames, dim and generator (its
// PATH.meta says so) is reused rather than planted again. Without it the rows
// are in anonymous memory. The exact answers of every query are found in one
// pass over the table; the exact search latency is timed on the first
// EXACT_TIMED queries of each noise level (0: not timed), each a full scan.
//
// Each setting prints a line and a JSON line ("json: {...}"). Pin it to the
// cores to measure on (taskset -c 0,1): the 2-core targets are for search
// and adding; training may use every core it is given.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
constexpr size_t kExactK = 10;      // recall@10's exact answers

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_ann: %s\n", what.c_str());
  std::exit(1);
}

unsigned cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// Planted rows of videos [0, videos). The embeddings are a mapping: of
// TABLE_FILE (shared) or anonymous memory; video and time stay in vectors
// (16 bytes a frame).
struct Table {
  std::vector<int64_t> video;
  std::vector<double> time;
  uint16_t* emb = nullptr;
  size_t bytes = 0;
  std::string file;  // empty: anonymous memory

  Table() = default;
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;
  ~Table() {
    if (emb) munmap(emb, bytes);
  }
  idx::FrameTable view(int dim, size_t rows) const {
    idx::FrameTable t;
    t.dim = dim;
    t.video = {video.data(), rows};
    t.time = {time.data(), rows};
    t.embeddings = {emb, rows * size_t(dim)};
    return t;
  }
};

// Video `v`'s rows into their place in `emb` (the whole table's rows).
void plant_video(const planted::Clusters& c, size_t n, int dim, size_t v, uint16_t* emb) {
  const size_t first = v * kPerVideo, rows = std::min(kPerVideo, n - first);
  const auto f = c.video(v, rows);
  uint16_t* out = emb + first * size_t(dim);
  for (size_t i = 0; i < rows * size_t(dim); ++i) out[i] = idx::float_to_half(f[i]);
}

// Every video's rows, generated on every core.
void plant(const planted::Clusters& c, size_t n, int dim, uint16_t* emb) {
  const size_t videos = (n + kPerVideo - 1) / kPerVideo;
  const unsigned threads = cores();
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < threads; ++w) {
    pool.emplace_back([&, w] {
      for (size_t v = w; v < videos; v += threads) plant_video(c, n, dim, v, emb);
    });
  }
  for (auto& th : pool) th.join();
}

// What TABLE_FILE.meta says of a complete table: the parameters its rows
// depend on. Bump the version when planted_clusters.h's generator changes.
std::string meta_text(size_t n, int dim) {
  std::ostringstream s;
  s << "bench_ann planted table v1: frames " << n << " dim " << dim << " frames_per_video " << kPerVideo
    << " generator planted::Clusters(dim, 1000 topics, seed 12345) fp16\n";
  return s.str();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Whether the first and last videos' rows are what the generator makes now:
// catches a generator changed without bumping meta_text's version.
bool sample_matches(const planted::Clusters& c, size_t n, int dim, const uint16_t* emb) {
  const size_t videos = (n + kPerVideo - 1) / kPerVideo;
  for (const size_t v : {size_t(0), videos - 1}) {
    const size_t first = v * kPerVideo, rows = std::min(kPerVideo, n - first);
    std::vector<uint16_t> fresh(rows * size_t(dim));
    const auto f = c.video(v, rows);
    for (size_t i = 0; i < fresh.size(); ++i) fresh[i] = idx::float_to_half(f[i]);
    if (std::memcmp(fresh.data(), emb + first * size_t(dim), fresh.size() * 2) != 0) return false;
  }
  return true;
}

// The table of `n` planted frames; prints whether it was planted (and where)
// or reused from TABLE_FILE.
std::unique_ptr<Table> make_table(const planted::Clusters& c, size_t n, int dim, const char* path) {
  const auto t0 = Clock::now();
  auto t = std::make_unique<Table>();
  t->video.resize(n);
  t->time.resize(n);
  for (size_t r = 0; r < n; ++r) {
    t->video[r] = int64_t(r / kPerVideo);
    t->time[r] = double(r % kPerVideo);
  }
  t->bytes = n * size_t(dim) * sizeof(uint16_t);
  const double gb = double(t->bytes) / 1e9;
  char size[32];
  std::snprintf(size, sizeof size, "%.2f GB", gb);
  if (!path) {
    // Anonymous pages, zeroed on first touch by the planting threads (a
    // vector would zero all of them first, on one core).
    void* p = mmap(nullptr, t->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail("cannot allocate " + std::string(size) + " for the table: " + std::strerror(errno));
    t->emb = static_cast<uint16_t*>(p);
    plant(c, n, dim, t->emb);
    std::printf("planted %zu frames x %d in %.1f s (in memory, %.2f GB)\n", n, dim, since(t0), gb);
    return t;
  }
  t->file = path;
  const std::string meta = t->file + ".meta", want = meta_text(n, dim);
  const int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create or open TABLE_FILE " + t->file + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) fail("cannot stat TABLE_FILE " + t->file + ": " + std::strerror(errno));
  const bool same = size_t(st.st_size) == t->bytes && read_file(meta) == want;
  if (!same) {
    // The meta goes first and comes back last: an interrupted planting leaves
    // a file that the next run plants again.
    if (unlink(meta.c_str()) != 0 && errno != ENOENT) fail("cannot remove " + meta + ": " + std::strerror(errno));
    // Truncating to 0 frees the old blocks; reserving them all now turns a
    // full disk into this message rather than a SIGBUS mid-planting.
    if (ftruncate(fd, 0) != 0) fail("cannot truncate TABLE_FILE " + t->file + ": " + std::strerror(errno));
    if (const int e = posix_fallocate(fd, 0, off_t(t->bytes)); e != 0) {
      (void)ftruncate(fd, 0);
      fail("cannot reserve " + std::string(size) + " for TABLE_FILE " + t->file + ": " + std::strerror(e));
    }
  }
  void* p = mmap(nullptr, t->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail("cannot map TABLE_FILE " + t->file + ": " + std::strerror(errno));
  close(fd);  // the mapping keeps the file
  t->emb = static_cast<uint16_t*>(p);
  if (same && sample_matches(c, n, dim, t->emb)) {
    std::printf("reused %zu frames x %d from TABLE_FILE %s (%.2f GB, mapped shared; %s matches) in %.1f s\n", n, dim,
                path, gb, meta.c_str(), since(t0));
    return t;
  }
  if (same) {  // the meta matched but the rows did not: plant again
    std::printf("TABLE_FILE %s: its rows are not what the generator makes now; planting again\n", path);
    if (unlink(meta.c_str()) != 0 && errno != ENOENT) fail("cannot remove " + meta + ": " + std::strerror(errno));
  }
  plant(c, n, dim, t->emb);
  // On disk before the meta vouches for it.
  if (msync(t->emb, t->bytes, MS_SYNC) != 0) fail("cannot write TABLE_FILE " + t->file + ": " + std::strerror(errno));
  {
    std::ofstream m(meta, std::ios::binary | std::ios::trunc);
    m << want;
    if (!m.flush()) fail("cannot write " + meta);
  }
  std::printf("planted %zu frames x %d in %.1f s (into TABLE_FILE %s, %.2f GB, mapped shared, synced)\n", n, dim,
              since(t0), path, gb);
  return t;
}

// Exact answers for every query in one pass over the table: each thread takes
// a range of rows, converts a block of them to float once and scores it
// against every query, keeping each query's best k; the threads' bests are
// merged at the end. At 30M frames on disk a scan per query would read the
// table hundreds of times.

#if defined(__F16C__) && defined(__FMA__)
// R converted rows (stride dim) x Q queries (stride dim): the arithmetic of
// index::row_score (search.cpp's dot: two 8-wide FMA accumulators, the same
// final sums; fp16 -> float is exact), so the scores are bit for bit its own,
// while each row load serves Q queries and each query load R rows.
template <int R, int Q>
void score_tile(const float* rows, const float* qs, int dim, float (*out)[Q]) {
  __m256 acc[R][Q][2];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int j = 0; j < Q; ++j) acc[r][j][0] = acc[r][j][1] = _mm256_setzero_ps();
  }
  int i = 0;
  for (; i + 16 <= dim; i += 16) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m256 q[Q];
#pragma GCC unroll 16
      for (int j = 0; j < Q; ++j) q[j] = _mm256_loadu_ps(qs + size_t(j) * dim + i + 8 * h);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m256 x = _mm256_loadu_ps(rows + size_t(r) * dim + i + 8 * h);
#pragma GCC unroll 16
        for (int j = 0; j < Q; ++j) acc[r][j][h] = _mm256_fmadd_ps(x, q[j], acc[r][j][h]);
      }
    }
  }
  // Unrolled too: indexed at run time, acc would live in memory, stored to
  // on every step of the loop above.
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int j = 0; j < Q; ++j) {
      const __m256 a = _mm256_add_ps(acc[r][j][0], acc[r][j][1]);
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
      const __m128 s4 = _mm_add_ps(h, _mm_movehl_ps(h, h));
      float s = _mm_cvtss_f32(_mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1)));
      for (int t = i; t < dim; ++t) s += rows[size_t(r) * dim + t] * qs[size_t(j) * dim + t];
      out[r][j] = s;
    }
  }
}

// 2 rows x 4 queries: 16 accumulators, in registers with AVX-512's 32
// (28.5G multiply-adds/s a core here against 19G row by row); 8 without.
#if defined(__AVX512VL__)
constexpr int kTileRows = 2, kTileQueries = 4;
#else
constexpr int kTileRows = 2, kTileQueries = 2;
#endif
#endif

// A query's best k so far: a heap under ranks_before, the worst on top.
struct Best {
  std::vector<idx::Hit> heap;
  void offer(const idx::Hit& h, size_t k) {
    if (heap.size() < k) {
      heap.push_back(h);
      std::push_heap(heap.begin(), heap.end(), idx::ranks_before);
    } else if (idx::ranks_before(h, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), idx::ranks_before);
      heap.back() = h;
      std::push_heap(heap.begin(), heap.end(), idx::ranks_before);
    }
  }
};

// Rows [begin, end) against `nq` queries (`qs`: nq x dim floats, row-major).
void exact_range(const idx::FrameTable& t, const float* qs, size_t nq, size_t k, size_t begin, size_t end, bool advise,
                 std::vector<Best>& best) {
  const int dim = t.dim;
  const size_t row_bytes = size_t(dim) * sizeof(uint16_t);
  // A mapped file's pages come in as the scan faults, a readahead window
  // (128 KB by default) at a time and one read in flight per thread; asking
  // for the next chunks ahead keeps the disk busy while the cores compute.
  constexpr size_t kAhead = size_t(64) << 20;
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const auto base = reinterpret_cast<uintptr_t>(t.embeddings.data());
  size_t advised = begin * row_bytes;  // byte offset in the table up to which WILLNEED was asked
  const size_t stop = end * row_bytes;
  constexpr size_t kBlock = 16;  // rows converted at a time: 32 KB of floats at 512 dims, in L1
  std::vector<float> rows(kBlock * size_t(dim));
  for (size_t b = begin; b < end; b += kBlock) {
    if (advise && advised < stop && advised < b * row_bytes + 2 * kAhead) {
      const size_t from = (base + advised) / page * page, to = base + std::min(stop, advised + kAhead);
      madvise(reinterpret_cast<void*>(from), to - from, MADV_WILLNEED);
      advised = std::min(stop, advised + kAhead);
    }
    const size_t m = std::min(kBlock, end - b);
    const uint16_t* src = t.row(b);
#if defined(__F16C__) && defined(__FMA__)
    size_t i = 0;
    for (; i + 8 <= m * size_t(dim); i += 8) {
      _mm256_storeu_ps(&rows[i], _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    }
    for (; i < m * size_t(dim); ++i) rows[i] = idx::half_to_float(src[i]);
    constexpr int R = kTileRows, Q = kTileQueries;
    size_t j = 0;
    for (; j + Q <= nq; j += Q) {
      size_t r = 0;
      for (; r + R <= m; r += R) {
        float s[R][Q];
        score_tile<R, Q>(&rows[r * dim], qs + j * dim, dim, s);
        for (int a = 0; a < R; ++a) {
          for (int c = 0; c < Q; ++c) best[j + c].offer({b + r + a, s[a][c]}, k);
        }
      }
      for (; r < m; ++r) {
        float s[1][Q];
        score_tile<1, Q>(&rows[r * dim], qs + j * dim, dim, s);
        for (int c = 0; c < Q; ++c) best[j + c].offer({b + r, s[0][c]}, k);
      }
    }
    for (; j < nq; ++j) {
      for (size_t r = 0; r < m; ++r) {
        float s[1][1];
        score_tile<1, 1>(&rows[r * dim], qs + j * dim, dim, s);
        best[j].offer({b + r, s[0][0]}, k);
      }
    }
#else
    // Without F16C and FMA search.cpp scores in scalar code: use it as it is.
    (void)src;
    (void)rows;
    for (size_t j = 0; j < nq; ++j) {
      for (size_t r = b; r < b + m; ++r) best[j].offer({r, idx::row_score(t, r, qs + j * dim)}, k);
    }
#endif
  }
}

// The exact k best rows of `t` for each query, best first, as index::top_k
// gives them (same scores, ties by row).
std::vector<std::vector<idx::Hit>> exact_top_k(const idx::FrameTable& t, const float* qs, size_t nq, size_t k,
                                               bool mapped_file) {
  const size_t n = t.rows();
  k = std::min(k, n);
  const size_t threads = std::clamp<size_t>(n / 65536, 1, cores());
  std::vector<std::vector<Best>> best(threads, std::vector<Best>(nq));
  std::vector<std::thread> pool;
  for (size_t w = 0; w < threads; ++w) {
    pool.emplace_back(
        [&, w] { exact_range(t, qs, nq, k, n * w / threads, n * (w + 1) / threads, mapped_file, best[w]); });
  }
  for (auto& th : pool) th.join();
  std::vector<std::vector<idx::Hit>> out(nq);
  for (size_t j = 0; j < nq; ++j) {
    for (const auto& b : best) out[j].insert(out[j].end(), b[j].heap.begin(), b[j].heap.end());
    std::sort(out[j].begin(), out[j].end(), idx::ranks_before);
    out[j].resize(std::min(out[j].size(), k));
  }
  return out;
}

std::vector<size_t> parse_list(const char* s) {
  std::vector<size_t> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::strtoull(item.c_str(), nullptr, 10));
  return out;
}

// Resident, peak resident and anonymous resident memory, MB
// (/proc/self/status). With TABLE_FILE the resident figure counts the mapped
// table pages that the page cache holds; the anonymous one is the process's.
struct Rss {
  double rss = 0, hwm = 0, anon = 0;
};
Rss rss_mb() {
  std::ifstream f("/proc/self/status");
  Rss r;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) r.rss = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) r.hwm = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("RssAnon:", 0) == 0) r.anon = std::atof(line.c_str() + 8) / 1024;
  }
  return r;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc < 2 ? 0 : std::strtoull(argv[1], nullptr, 10);
  if (n == 0) {
    std::fprintf(stderr, "usage: %s FRAMES [DIM] [QUERIES] [NPROBES] [RERANKS]\n", argv[0]);
    return 2;
  }
  const int dim = argc > 2 ? std::atoi(argv[2]) : 512;
  const size_t queries = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 200;
  const auto nprobes = parse_list(argc > 4 ? argv[4] : "8,16,32,64");
  const auto reranks = parse_list(argc > 5 ? argv[5] : "2");
  const planted::Clusters clusters(dim);
  // Query noise norms (planted_clusters.h): 0.5 image-like, 1.0 text-like.
  std::vector<float> noises;
  std::stringstream noise_list(std::getenv("QUERY_NOISE") ? std::getenv("QUERY_NOISE") : "0.5");
  for (std::string item; std::getline(noise_list, item, ',');) noises.push_back(float(std::atof(item.c_str())));

  const char* table_file =
      std::getenv("TABLE_FILE") && *std::getenv("TABLE_FILE") ? std::getenv("TABLE_FILE") : nullptr;
  const size_t exact_timed = std::min<size_t>(
      queries, std::getenv("EXACT_TIMED") ? std::strtoull(std::getenv("EXACT_TIMED"), nullptr, 10) : 20);

  const auto table = make_table(clusters, n, dim, table_file);
  const idx::FrameTable all = table->view(dim, n);

  // Build on all but the last 1% (whole videos), then add that 1%.
  const size_t videos = (n + kPerVideo - 1) / kPerVideo;
  const size_t kept_videos = videos - std::max<size_t>(1, videos / 100);
  const size_t kept = std::min(n, kept_videos * kPerVideo);
  auto t0 = Clock::now();
  auto ann = idx::AnnIndex::build(table->view(dim, kept));
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

  // Queries near random frames, every noise level's; their exact answers in
  // one pass over the table.
  std::vector<float> qs;
  qs.reserve(noises.size() * queries * size_t(dim));
  for (const float query_noise : noises) {
    std::mt19937_64 rng(99);
    std::vector<float> frame(dim);
    for (size_t i = 0; i < queries; ++i) {
      const size_t row = rng() % n;
      for (int c = 0; c < dim; ++c) frame[c] = all.at(row, c);
      const auto q = clusters.query(frame.data(), i, query_noise);
      qs.insert(qs.end(), q.begin(), q.end());
    }
  }
  const size_t nq = noises.size() * queries;
  t0 = Clock::now();
  // Bigger than memory at 30M: let the kernel read ahead and drop what the
  // pass has gone by first.
  if (table_file) madvise(table->emb, table->bytes, MADV_SEQUENTIAL);
  const auto exact_all = exact_top_k(all, qs.data(), nq, kExactK, table_file != nullptr);
  if (table_file) madvise(table->emb, table->bytes, MADV_NORMAL);  // search reads rows at random
  std::printf("exact top %zu of %zu queries (%zu per noise level) in one pass over the table: %.1f s\n", kExactK, nq,
              queries, since(t0));
  // The one-pass answers are index::top_k's (same scores and order): checked
  // where a scan per query is affordable.
  if (n <= 2000000) {
    size_t checked = 0;
    for (size_t l = 0; l < noises.size(); ++l) {
      for (size_t i = 0; i < std::min<size_t>(3, queries); ++i, ++checked) {
        const size_t qi = l * queries + i;
        const auto want = idx::top_k(all, &qs[qi * dim], kExactK);
        const auto& got = exact_all[qi];
        bool same = want.size() == got.size();
        for (size_t h = 0; same && h < want.size(); ++h)
          same = want[h].row == got[h].row && want[h].score == got[h].score;
        if (!same) {
          std::printf("MISMATCH: query %zu (noise %.2f): index::top_k vs the one pass:\n", i, double(noises[l]));
          for (size_t h = 0; h < std::max(want.size(), got.size()); ++h) {
            std::printf("  %zu: ", h);
            if (h < want.size()) std::printf("row %zu %.9g", want[h].row, double(want[h].score));
            std::printf("  |  ");
            if (h < got.size()) std::printf("row %zu %.9g", got[h].row, double(got[h].score));
            std::printf("\n");
          }
          return 1;
        }
      }
    }
    std::printf(
        "exact check: the one pass gives index::top_k's rows and scores for the first %zu queries of each "
        "noise level (%zu queries)\n",
        std::min<size_t>(3, queries), checked);
  } else {
    std::printf("exact check: skipped above 2,000,000 frames (it costs a scan per query)\n");
  }

  for (size_t level = 0; level < noises.size(); ++level) {
    const float query_noise = noises[level];
    const float* level_qs = &qs[level * queries * dim];
    const auto exact = [&](size_t i) -> const std::vector<idx::Hit>& { return exact_all[level * queries + i]; };
    // Each exact search is a full scan (at 30M frames on disk, a read of the
    // whole table): timed on the first exact_timed queries only.
    std::vector<double> exact_ms;
    for (size_t i = 0; i < exact_timed; ++i) {
      t0 = Clock::now();
      const auto segs = idx::search(all, level_qs + i * dim, 10, 2.0);
      exact_ms.push_back(since(t0) * 1e3);
    }
    const double exact_p50 = exact_ms.empty() ? -1 : percentile(exact_ms, 0.5);
    if (exact_ms.empty()) {
      std::printf("query noise %.2f: exact search not timed (EXACT_TIMED=0)\n", double(query_noise));
    } else {
      std::printf("query noise %.2f: exact search p50 %.1f ms, p99 %.1f ms (%zu queries)\n", double(query_noise),
                  exact_p50, percentile(exact_ms, 0.99), exact_ms.size());
    }

    for (size_t rerank : reranks) {
      for (size_t nprobe : nprobes) {
        ann->set_params({int(nprobe), rerank});
        std::vector<double> ms;
        size_t found = 0;
        for (size_t i = 0; i < queries; ++i) {
          const float* q = level_qs + i * dim;
          t0 = Clock::now();
          const auto segs = idx::search(all, q, 10, 2.0, ann.get());
          ms.push_back(since(t0) * 1e3);
          auto approx = ann->top_k(all, q, 10 * idx::kCandidatesPerResult);
          approx.resize(std::min<size_t>(approx.size(), 10));
          for (const auto& e : exact(i)) {
            found += std::any_of(approx.begin(), approx.end(), [&](const idx::Hit& a) { return a.row == e.row; });
          }
        }
        const double recall = double(found) / double(10 * queries);
        const Rss mem = rss_mb();
        std::printf(
            "nprobe %zu rerank %zux: recall@10 %.3f, search p50 %.2f ms p99 %.2f ms (RSS %.0f MB, %.0f MB anonymous)\n",
            nprobe, rerank, recall, percentile(ms, 0.5), percentile(ms, 0.99), mem.rss, mem.anon);
        char exact_json[32] = "null";  // not timed
        if (!exact_ms.empty()) std::snprintf(exact_json, sizeof exact_json, "%.2f", exact_p50);
        std::printf(
            "json: {\"frames\": %zu, \"dim\": %d, \"query_noise\": %.2f, \"nprobe\": %zu, \"rerank\": %zu, "
            "\"recall_at_10\": %.4f, "
            "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"exact_p50_ms\": %s, \"exact_timed\": %zu, \"build_s\": %.2f, "
            "\"build_frames\": %zu, \"add_s\": %.3f, \"add_frames\": %zu, \"lists\": %zu, \"ann_mb\": %.1f, "
            "\"rss_mb\": %.0f, \"rss_anon_mb\": %.0f, \"table_mb\": %.0f, \"table_file\": %s}\n",
            n, dim, double(query_noise), nprobe, rerank, recall, percentile(ms, 0.5), percentile(ms, 0.99), exact_json,
            exact_ms.size(), build_s, kept, add_s, n - kept, info.lists, double(info.memory_bytes) / 1e6, mem.rss,
            mem.anon, double(n) * (dim * 2 + 16) / 1e6, table_file ? "true" : "false");
      }
    }
  }
  return 0;
}
