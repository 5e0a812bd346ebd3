#include "index/multi_search.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "index/compat.h"
#include "index/query.h"

namespace clipfind::index {

namespace {

// Index i's video ids move up by i << 40: SQLite row ids of one catalog stay
// far below 2^40, and the order (index, then id) is the merge's.
constexpr int kIndexShift = 40;
int64_t global_id(size_t index, int64_t id) { return (int64_t(index) << kIndexShift) + id; }

}  // namespace

IndexSet::IndexSet(const std::vector<std::string>& dirs) {
  std::set<std::filesystem::path> seen;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!seen.insert(std::filesystem::weakly_canonical(std::filesystem::absolute(d), ec)).second) {
      throw Error(d + ": given twice as --index");
    }
    catalogs_.push_back(std::make_unique<Catalog>(d, false));
  }
  if (catalogs_.size() < 2) return;
  std::vector<const Catalog*> all;
  for (const auto& c : catalogs_) all.push_back(c.get());
  check_same_model(all);
  check_disjoint_videos(all);
}

std::string IndexSet::name() const {
  std::string out;
  for (const auto& c : catalogs_) out += (out.empty() ? "" : " + ") + c->dir().string();
  return out;
}

std::vector<VideoRecord> IndexSet::videos() const {
  std::vector<VideoRecord> out;
  for (size_t i = 0; i < catalogs_.size(); ++i) {
    for (auto v : catalogs_[i]->videos()) {
      v.id = global_id(i, v.id);
      out.push_back(std::move(v));
    }
  }
  return out;
}

FrameTable IndexSet::load_frames(std::string* note) const {
  if (catalogs_.size() == 1) return catalogs_.front()->load_frames(note);
  std::vector<FrameTable> tables;
  std::string notes;
  size_t rows = 0;
  for (const auto& c : catalogs_) {
    std::string why;
    tables.push_back(c->load_frames(&why));
    if (!why.empty()) notes += (notes.empty() ? "" : "; ") + why;
    rows += tables.back().rows();
  }
  if (note) *note = notes;
  FrameTableBuilder b(tables.front().dim);
  b.reserve(rows);
  for (size_t i = 0; i < tables.size(); ++i) {
    const FrameTable& t = tables[i];
    // Another width could only come from an index written meanwhile: search_embedding names it.
    if (t.dim != tables.front().dim) throw Error(catalogs_[i]->dir().string() + ": embeddings of another width");
    for (size_t r = 0; r < t.rows(); ++r) b.add_half(global_id(i, t.video[r]), t.time[r], t.row(r));
  }
  return b.build();
}

double IndexSet::default_gap() const {
  double gap = 0.0;
  for (const auto& c : catalogs_) gap = std::max(gap, index::default_gap(*c));
  return gap;
}

}  // namespace clipfind::index
