#include "index/ann_catalog.h"

#include <chrono>
#include <cstdio>

namespace clipfind::index {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Queries measure_recall runs on a new build: each costs an exact scan.
constexpr int kRecallQueries = 20;

}  // namespace

AnnFileUpdate update_ann_file(const Catalog& cat, AnnMode mode) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::filesystem::path file = ann_file(cat);
  AnnFileUpdate out;
  std::error_code ec;
  if (mode == AnnMode::off) {
    if (std::filesystem::remove(file, ec)) out.action = "removed";
    return out;
  }
  if (!ann_available()) {
    if (mode == AnnMode::on) throw Error(file.string() + ": " + kAnnNotBuilt);
    return out;
  }
  std::string note;
  const FrameTable table = cat.load_frames(&note);
  if (!note.empty()) throw Error(file.string() + ": not updated: " + note);
  CatalogStamp at;
  std::unique_ptr<AnnIndex> ann = AnnIndex::open(file, &at, nullptr);
  const CatalogStamp now = cat.stamp();
  if (ann && at == now) return out;
  // A file that is there but unusable (torn, of an older format) was asked
  // for once: it is built again at any size.
  if (!ann && mode == AnnMode::automatic && table.rows() < kAnnAutoFrames && !std::filesystem::exists(file, ec)) {
    return out;
  }
  if (table.rows() == 0) {
    if (std::filesystem::remove(file, ec)) out.action = "removed";
    return out;
  }
  if (ann && at.catalog_id == now.catalog_id) {
    const auto r = ann->update(table);
    out.action = r == AnnIndex::Update::needs_retraining ? "retrained" : "extended";
    if (r == AnnIndex::Update::needs_retraining) ann.reset();
  } else {
    out.action = "built";
  }
  if (!ann) {
    ann = AnnIndex::build(table);
    ann->measure_recall(table, kRecallQueries);
  }
  ann->write(file, now);
  out.info = ann->info();
  out.seconds = seconds_since(t0);
  return out;
}

std::shared_ptr<const AnnIndex> load_ann(const Catalog& cat, const FrameTable& table, std::string* note) {
  const std::filesystem::path file = ann_file(cat);
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return nullptr;
  std::string why;
  CatalogStamp at;
  std::shared_ptr<const AnnIndex> ann = AnnIndex::open(file, &at, &why);
  if (!ann) {
    if (note) *note = why;
    return nullptr;
  }
  if (!(at == cat.stamp())) {
    if (note) *note = file.string() + ": stale (the catalog changed since it was written)";
    return nullptr;
  }
  if (ann->info().vectors != table.rows()) {
    if (note)
      *note = file.string() + ": holds " + std::to_string(ann->info().vectors) + " frames, the catalog " +
              std::to_string(table.rows());
    return nullptr;
  }
  return ann;
}

std::string ann_status(const Catalog& cat) {
  const std::filesystem::path file = ann_file(cat);
  std::error_code ec;
  if (!ann_available()) return kAnnNotBuilt;
  if (!std::filesystem::exists(file, ec)) {
    return "none (exact scan; `clipfind index --ann on` builds one, automatic from " + std::to_string(kAnnAutoFrames) +
           " frames)";
  }
  std::string why;
  CatalogStamp at;
  const auto ann = AnnIndex::open(file, &at, &why);
  if (!ann) return "unusable, search scans exactly: " + why;
  const AnnInfo i = ann->info();
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "%zu frames (%zu removed still listed), %zu lists%s, %d-byte codes, nprobe %d, %.1f MB in memory, "
                "recall@10 %s at build",
                i.vectors, i.tombstones, i.lists,
                i.coarse_groups ? (" in " + std::to_string(i.coarse_groups) + " groups").c_str() : "", i.code_bytes,
                i.nprobe, double(i.memory_bytes) / 1e6,
                i.recall_at_10 < 0 ? "not measured" : std::to_string(i.recall_at_10).substr(0, 5).c_str());
  std::string s = buf;
  if (!(at == cat.stamp())) s += "; stale (the catalog changed since; `clipfind index` updates it)";
  return s;
}

}  // namespace clipfind::index
