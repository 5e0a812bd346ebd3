// The coarse quantiser of an ANN index with many lists (ann.h): which IVF
// lists a frame goes into and which lists a query probes.
//
// FAISS's flat quantiser compares a frame with every list centroid: at 30M
// frames (21,900 lists of 512 dims) that is 11M multiply-adds a frame, most
// of a build (hours on 2 cores) and a millisecond a query; and k-means over
// all lists at once costs as much per training row. Here the centroids come
// from a two-level k-means (sqrt(nlist) groups of the sample, then each group
// split into lists in proportion to its rows) and a frame or query is
// compared with the group centroids first, then only with the lists of its
// nearest groups: about 2 sqrt(nlist) + a few groups' lists instead of nlist.
// (Debian's FAISS 1.7.3 is built without SIMD: its HNSW quantiser, the other
// way to cut this cost, spent longer than the flat scan here.)
//
// It is handed to FAISS as the IVF's quantiser; the file keeps the lists'
// centroids as FAISS's flat index inside the IVF (lists()) and the groups in
// a section of its own (ann.cpp).
#pragma once
#include <faiss/IndexFlat.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace clipfind::index {

// Lists of group g: [first[g], first[g + 1]); centroids: groups x dim.
struct CoarseGroups {
  std::vector<float> centroids;
  std::vector<int64_t> first;
  size_t groups() const { return first.empty() ? 0 : first.size() - 1; }
  // Empty when it describes `nlist` lists of dimension `dim`, else what is wrong.
  std::string check(size_t nlist, size_t dim) const;
};

// Two-level k-means of `n` rows of `dim` floats into `nlist` lists (n >= nlist).
// Returns the lists' centroids, group by group, and the groups in *groups.
std::vector<float> train_grouped_lists(size_t n, size_t dim, const float* x, size_t nlist, int niter,
                                       CoarseGroups* groups);

class GroupedCoarse : public faiss::Index {
 public:
  // Groups a frame being added is compared in, and the groups a query's
  // lists are looked for in. Measured at 1M planted frames (3,987 lists in
  // 63 groups, nprobe 64; recall@10 for image- / text-like queries): the flat
  // quantiser 0.995 / 0.950; add 2, query 8: 0.986 / 0.952; add 4, query 8:
  // 0.991 / 0.961, the same with query 16. A frame near a group border
  // belongs to a list of the next group often enough that 2 lose recall.
  static constexpr int kAddGroups = 4;
  static constexpr int kQueryGroups = 8;

  GroupedCoarse(std::unique_ptr<faiss::IndexFlatL2> lists, CoarseGroups groups);

  // L2 distances (FAISS's convention for this quantiser), nearest first;
  // k = 1 (assigning frames) looks in kAddGroups groups, else kQueryGroups.
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  // Trained once, with its lists: adding or resetting would break the groups.
  void add(idx_t n, const float* x) override;
  void reset() override;

  faiss::IndexFlatL2* lists() const { return lists_.get(); }
  const CoarseGroups& groups() const { return groups_; }

 private:
  std::unique_ptr<faiss::IndexFlatL2> lists_;
  CoarseGroups groups_;
  std::vector<float> list_norms_, group_norms_;  // squared norms of the centroids
};

}  // namespace clipfind::index
