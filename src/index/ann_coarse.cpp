#include "index/ann_coarse.h"

#include <faiss/Clustering.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "index/catalog.h"  // index::Error

namespace clipfind::index {

namespace {

using idx_t = faiss::Index::idx_t;

float dot(const float* a, const float* b, size_t d) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (size_t i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

std::vector<float> squared_norms(const float* x, size_t n, size_t d) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = dot(x + i * d, x + i * d, d);
  return out;
}

// k-means of `n` rows into `k` centroids with FAISS (BLAS assignment).
std::vector<float> kmeans(size_t n, size_t d, const float* x, size_t k, int niter, int seed) {
  faiss::ClusteringParameters cp;
  cp.niter = niter;
  cp.seed = seed;
  cp.min_points_per_centroid = 1;        // FAISS warns on stderr below 39; the caller keeps ~40
  cp.max_points_per_centroid = 1 << 30;  // the caller's sample is what is to be clustered
  faiss::Clustering c(int(d), int(k), cp);
  faiss::IndexFlatL2 assigner{idx_t(d)};
  c.train(idx_t(n), x, assigner);
  return c.centroids;
}

}  // namespace

std::string CoarseGroups::check(size_t nlist, size_t dim) const {
  const size_t g = groups();
  if (g == 0) return "no groups";
  if (centroids.size() != g * dim) return "group centroids of the wrong size";
  if (first.front() != 0 || first.back() != int64_t(nlist)) return "groups do not cover the lists";
  for (size_t i = 0; i < g; ++i) {
    if (first[i] > first[i + 1]) return "group bounds out of order";
  }
  return "";
}

std::vector<float> train_grouped_lists(size_t n, size_t d, const float* x, size_t nlist, int niter,
                                       CoarseGroups* groups) {
  if (n < nlist || nlist == 0) throw Error("ANN training: fewer sample rows than lists");
  const size_t k1 = std::clamp<size_t>(size_t(std::sqrt(double(nlist))), 1, nlist);
  std::vector<float> top = kmeans(n, d, x, k1, niter, 1234);
  // Each row's group.
  std::vector<idx_t> label(n);
  {
    faiss::IndexFlatL2 coarse{idx_t(d)};
    coarse.add(idx_t(k1), top.data());
    std::vector<float> dist(n);
    coarse.search(idx_t(n), x, 1, dist.data(), label.data());
  }
  std::vector<std::vector<size_t>> members(k1);
  for (size_t i = 0; i < n; ++i) members[size_t(label[i])].push_back(i);
  // Lists per group: in proportion to its rows, at least one for a group
  // with rows and at most one a row; then the total made nlist by adding to
  // the group with the most rows a list (or taking from the one with the
  // fewest), so that lists stay about equally full.
  std::vector<size_t> lists(k1, 0);
  size_t total = 0;
  for (size_t g = 0; g < k1; ++g) {
    if (members[g].empty()) continue;
    const size_t share = size_t(std::llround(double(nlist) * double(members[g].size()) / double(n)));
    lists[g] = std::clamp<size_t>(share, 1, members[g].size());
    total += lists[g];
  }
  auto per_list = [&](size_t g) { return double(members[g].size()) / double(lists[g]); };
  while (total != nlist) {
    const bool grow = total < nlist;
    size_t pick = k1;
    for (size_t g = 0; g < k1; ++g) {
      if (members[g].empty() || (grow ? lists[g] >= members[g].size() : lists[g] <= 1)) continue;
      if (pick == k1 || (grow ? per_list(g) > per_list(pick) : per_list(g) < per_list(pick))) pick = g;
    }
    if (pick == k1) throw Error("ANN training: cannot split the sample into the lists asked for");
    grow ? (++lists[pick], ++total) : (--lists[pick], --total);
  }
  // Split each group; empty groups are dropped (no list would be near them).
  std::vector<float> centroids;
  centroids.reserve(nlist * d);
  groups->centroids.clear();
  groups->first = {0};
  std::vector<float> rows;
  for (size_t g = 0; g < k1; ++g) {
    if (lists[g] == 0) continue;
    rows.resize(members[g].size() * d);
    for (size_t i = 0; i < members[g].size(); ++i) {
      std::memcpy(&rows[i * d], x + members[g][i] * d, d * sizeof(float));
    }
    if (lists[g] == members[g].size()) {
      centroids.insert(centroids.end(), rows.begin(), rows.end());  // a list per row: the rows themselves
    } else {
      const std::vector<float> split = kmeans(members[g].size(), d, rows.data(), lists[g], niter, int(1235 + g));
      centroids.insert(centroids.end(), split.begin(), split.end());
    }
    groups->centroids.insert(groups->centroids.end(), top.begin() + g * d, top.begin() + (g + 1) * d);
    groups->first.push_back(groups->first.back() + int64_t(lists[g]));
  }
  return centroids;
}

GroupedCoarse::GroupedCoarse(std::unique_ptr<faiss::IndexFlatL2> lists, CoarseGroups groups)
    : faiss::Index(lists->d, faiss::METRIC_L2), lists_(std::move(lists)), groups_(std::move(groups)) {
  const std::string bad = groups_.check(size_t(lists_->ntotal), size_t(d));
  if (!bad.empty()) throw Error("ANN coarse quantiser: " + bad);
  ntotal = lists_->ntotal;
  is_trained = true;
  list_norms_ = squared_norms(lists_->get_xb(), size_t(ntotal), size_t(d));
  group_norms_ = squared_norms(groups_.centroids.data(), groups_.groups(), size_t(d));
}

void GroupedCoarse::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                           const faiss::SearchParameters*) const {
  const size_t dim = size_t(d), ng = groups_.groups();
  const size_t probe = std::min<size_t>(ng, k == 1 ? kAddGroups : kQueryGroups);
  const float* lists = lists_->get_xb();
#pragma omp parallel for schedule(dynamic, 64) if (n > 64)
  for (idx_t q = 0; q < n; ++q) {
    const float* xq = x + size_t(q) * dim;
    // The nearest groups: ||c||^2 - 2 x.c ranks as ||x - c||^2 does.
    std::vector<std::pair<float, size_t>> near(ng);
    for (size_t g = 0; g < ng; ++g) {
      near[g] = {group_norms_[g] - 2.0f * dot(xq, groups_.centroids.data() + g * dim, dim), g};
    }
    std::partial_sort(near.begin(), near.begin() + probe, near.end());
    // The k nearest lists among theirs: a max-heap of the best so far.
    std::vector<std::pair<float, idx_t>> best;
    best.reserve(size_t(k) + 1);
    for (size_t p = 0; p < probe; ++p) {
      const size_t g = near[p].second;
      for (int64_t l = groups_.first[g]; l < groups_.first[g + 1]; ++l) {
        const float s = list_norms_[l] - 2.0f * dot(xq, lists + size_t(l) * dim, dim);
        if (best.size() < size_t(k)) {
          best.emplace_back(s, l);
          std::push_heap(best.begin(), best.end());
        } else if (s < best.front().first) {
          std::pop_heap(best.begin(), best.end());
          best.back() = {s, l};
          std::push_heap(best.begin(), best.end());
        }
      }
    }
    std::sort_heap(best.begin(), best.end());
    const float xx = dot(xq, xq, dim);
    for (idx_t i = 0; i < k; ++i) {
      const bool found = size_t(i) < best.size();
      distances[q * k + i] = found ? std::max(0.0f, xx + best[i].first) : std::numeric_limits<float>::infinity();
      labels[q * k + i] = found ? best[i].second : -1;
    }
  }
}

void GroupedCoarse::reconstruct(idx_t key, float* out) const { lists_->reconstruct(key, out); }
void GroupedCoarse::add(idx_t, const float*) { throw Error("ANN coarse quantiser: lists cannot be added"); }
void GroupedCoarse::reset() { throw Error("ANN coarse quantiser: lists cannot be removed"); }

}  // namespace clipfind::index
