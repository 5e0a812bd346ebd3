#include "index/query.h"

#include <stdexcept>

#include "index/fingerprint.h"

namespace clipfind::index {

std::string query_model(const Catalog& cat, const std::string& model_dir) {
  const std::string name = cat.dir().string();
  const auto stored_fp = cat.meta("model");
  if (!stored_fp) throw std::runtime_error(name + ": the index is empty (run `clipfind index` first)");
  const std::string dir = model_dir.empty() ? cat.meta("model_path").value_or("") : model_dir;
  const std::string fp = model_fingerprint(dir);
  if (fp != *stored_fp) {
    throw std::runtime_error(name + ": built with model fingerprint " + *stored_fp + " but " + dir + " has " + fp +
                             " (rebuild with `clipfind index --reindex --model " + dir + "`)");
  }
  return dir;
}

double default_gap(const Catalog& cat) { return 2.0 * std::stod(cat.meta("interval").value_or("1")); }

FrameTable select_videos(const FrameTable& table, const std::function<bool(int64_t)>& keep) {
  FrameTableBuilder kept(table.dim);
  // Rows of one video are contiguous: ask `keep` once per run of rows.
  for (size_t r = 0; r < table.rows();) {
    size_t end = r;
    while (end < table.rows() && table.video[end] == table.video[r]) ++end;
    if (keep(table.video[r])) {
      for (; r < end; ++r) kept.add_half(table.video[r], table.time[r], table.row(r));  // half floats, as they are
    }
    r = end;
  }
  return kept.build();
}

std::vector<Segment> search_embedding(const FrameTable& table, const float* query, int dim, size_t k, double gap,
                                      const std::string& index_name) {
  if (dim != table.dim && table.rows() > 0) {
    throw std::runtime_error(index_name + ": stored embeddings have dim " + std::to_string(table.dim) +
                             ", the model gives " + std::to_string(dim));
  }
  return search(table, query, k, gap);
}

}  // namespace clipfind::index
