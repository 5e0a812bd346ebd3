#include "app/ann_option.h"

#include <cstdio>

#include "index/ann_catalog.h"

namespace clipfind {

void add_ann_option(CLI::App& app, std::string* mode) {
  app.add_option("--ann", *mode,
                 "approximate index for fast search (vectors.ann): auto (from " +
                     std::to_string(index::kAnnAutoFrames) +
                     " frames, and kept up to date once there), on, off "
                     "(removes it)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "on", "off"}));
}

void update_ann(const std::string& index_dir, const std::string& mode) {
  try {
    const index::Catalog cat(index_dir, false);
    const auto m = mode == "on" ? index::AnnMode::on : mode == "off" ? index::AnnMode::off : index::AnnMode::automatic;
    const index::AnnFileUpdate u = index::update_ann_file(cat, m);
    if (u.action.empty() || u.action == "removed") {
      if (!u.action.empty()) std::fprintf(stderr, "  vectors.ann removed\n");
      return;
    }
    const std::string recall =
        u.info.recall_at_10 < 0 ? "" : ", recall@10 " + std::to_string(u.info.recall_at_10).substr(0, 5);
    std::fprintf(stderr, "  vectors.ann %s (%.1f s): %zu frames, %zu lists, %.1f MB%s\n", u.action.c_str(), u.seconds,
                 u.info.vectors, u.info.lists, double(u.info.memory_bytes) / 1e6, recall.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: %s (search scans every frame; the next `clipfind index` retries)\n", e.what());
  }
}

}  // namespace clipfind
