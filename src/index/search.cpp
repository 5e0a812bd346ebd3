#include "index/search.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <thread>
#if defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "index/ann.h"
#include "index/half.h"

namespace clipfind::index {

namespace {

// Half-precision row . float query. With F16C + FMA (built with
// -march=native on x86-64) 16 values per step; otherwise scalar.
float dot(const uint16_t* a, const float* b, int n) {
  int i = 0;
  float s = 0.0f;
#if defined(__F16C__) && defined(__FMA__)
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    const __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 8)));
    acc0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(b + i + 8), acc1);
  }
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  s = _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
#endif
  for (; i < n; ++i) s += half_to_float(a[i]) * b[i];
  return s;
}

bool better(const Hit& a, const Hit& b) { return ranks_before(a, b); }

// The best k of rows [begin, end): a min-heap of the best so far, one pass.
std::vector<Hit> top_k_range(const FrameTable& t, const float* query, size_t k, size_t begin, size_t end) {
  auto worse_on_top = [](const Hit& a, const Hit& b) { return better(a, b); };
  std::priority_queue<Hit, std::vector<Hit>, decltype(worse_on_top)> heap(worse_on_top);
  for (size_t r = begin; r < end; ++r) {
    const Hit h{r, dot(t.embeddings.data() + r * size_t(t.dim), query, t.dim)};
    if (heap.size() < k)
      heap.push(h);
    else if (better(h, heap.top())) {
      heap.pop();
      heap.push(h);
    }
  }
  std::vector<Hit> out;
  out.reserve(heap.size());
  while (!heap.empty()) {
    out.push_back(heap.top());
    heap.pop();
  }
  return out;
}

}  // namespace

float row_score(const FrameTable& t, size_t row, const float* query) { return dot(t.row(row), query, t.dim); }
bool ranks_before(const Hit& a, const Hit& b) { return a.score != b.score ? a.score > b.score : a.row < b.row; }

std::vector<Hit> top_k(const FrameTable& t, const float* query, size_t k) {
  const size_t n = t.rows();
  k = std::min(k, n);
  if (k == 0) return {};
  // One slice per core once the table is big enough to pay for a thread
  // (below ~64k rows a scan takes well under a millisecond).
  constexpr size_t kRowsPerThread = 65536;
  const size_t threads = std::clamp<size_t>(n / kRowsPerThread, 1, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::vector<Hit>> parts(threads);
  std::vector<std::thread> pool;
  for (size_t i = 1; i < threads; ++i) {
    pool.emplace_back([&, i] { parts[i] = top_k_range(t, query, k, n * i / threads, n * (i + 1) / threads); });
  }
  parts[0] = top_k_range(t, query, k, 0, n / threads);
  for (auto& th : pool) th.join();
  std::vector<Hit> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  std::sort(out.begin(), out.end(), better);
  out.resize(k);
  return out;
}

std::vector<Segment> merge_segments(const FrameTable& t, const std::vector<Hit>& hits, double gap, size_t k) {
  // Best first: each hit either joins a segment of its video that it is within
  // `gap` of, or starts a new one. Stopping at k segments means a segment holds
  // exactly the neighbouring frames that beat the weakest result shown.
  std::vector<Segment> segs;
  const double limit = gap + 1e-6;  // frames exactly `gap` apart still merge despite rounding
  auto near = [&](const Segment& s, int64_t v, double time) {
    return s.video == v && time >= s.start - limit && time <= s.end + limit;
  };
  for (const Hit& h : hits) {
    if (segs.size() >= k) break;
    const int64_t v = t.video[h.row];
    const double time = t.time[h.row];
    Segment* into = nullptr;
    for (size_t i = 0; i < segs.size(); ++i) {
      if (!near(segs[i], v, time)) continue;
      if (!into) {
        into = &segs[i];
        into->start = std::min(into->start, time);
        into->end = std::max(into->end, time);
      } else {  // the hit bridges two segments: fold the weaker (later) one in
        into->start = std::min(into->start, segs[i].start);
        into->end = std::max(into->end, segs[i].end);
        segs.erase(segs.begin() + long(i));
        --i;
      }
    }
    if (!into) segs.push_back(Segment{v, time, time, time, h.score, std::nullopt});
  }
  return segs;  // already best first: each segment's score is its first (best) hit
}

float match_probability(float cosine, float logit_scale, float logit_bias) {
  // exp(logit_scale) may overflow to inf: inf * 0 would be NaN, and a cosine
  // of exactly 0 contributes nothing whatever the scale.
  const double scaled = cosine == 0.0f ? 0.0 : std::exp(double(logit_scale)) * double(cosine);
  const double z = scaled + double(logit_bias);
  // exp of a non-positive number only: never overflows.
  if (z >= 0) return float(1.0 / (1.0 + std::exp(-z)));
  const double e = std::exp(z);
  return float(e / (1.0 + e));
}

std::vector<Segment> search(const FrameTable& table, const float* query, size_t k, double gap, const AnnIndex* ann) {
  // Usually k * kCandidatesPerResult candidates give k segments; when long
  // matching scenes absorb them, widen until they do or everything was seen.
  for (size_t c = k * kCandidatesPerResult;; c *= 4) {
    const bool approximate = ann && c <= kAnnMaxCandidates;
    auto segs = merge_segments(table, approximate ? ann->top_k(table, query, c) : top_k(table, query, c), gap, k);
    if (segs.size() >= k || c >= table.rows()) return segs;
  }
}

}  // namespace clipfind::index
