#include "server/index_snapshot.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "index/ann_catalog.h"
#include "index/query.h"

namespace clipfind::server {

namespace fs = std::filesystem;

namespace {

std::string lower_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e;
}

}  // namespace

bool is_image_file(const fs::path& path) {
  const std::string e = lower_extension(path);
  return e == ".jpg" || e == ".jpeg" || e == ".png";
}

const IndexedVideo* IndexSnapshot::find(int64_t id) const {
  const auto it = videos.find(id);
  return it == videos.end() ? nullptr : &it->second;
}

std::optional<double> IndexSnapshot::frame_time(const IndexedVideo& v, double seconds) const {
  const auto begin = table.time.begin() + long(v.first_row), end = table.time.begin() + long(v.end_row);
  const auto it = std::lower_bound(begin, end, seconds - 0.0005);
  if (it != end && std::abs(*it - seconds) <= 0.0005) return *it;
  return std::nullopt;
}

IndexWatcher::IndexWatcher(fs::path dir, std::string model_fingerprint, std::chrono::milliseconds poll)
    : dir_(std::move(dir)), fingerprint_(std::move(model_fingerprint)), poll_(poll) {
  catalog_ = std::make_unique<index::Catalog>(dir_, false);
  current_ = load(*catalog_, signature(*catalog_));
  thread_ = std::thread([this] { watch(); });
}

IndexWatcher::~IndexWatcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<const IndexSnapshot> IndexWatcher::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::string IndexWatcher::problem() const {
  std::lock_guard lock(mutex_);
  return problem_;
}

std::chrono::system_clock::time_point IndexWatcher::modified() const {
  fs::file_time_type latest = fs::file_time_type::min();
  for (const char* name : {"catalog.sqlite", "catalog.sqlite-wal"}) {
    std::error_code ec;
    const auto t = fs::last_write_time(dir_ / name, ec);
    if (!ec) latest = std::max(latest, t);
  }
  if (latest == fs::file_time_type::min()) return {};
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(fs::file_time_type::clock::to_sys(latest));
}

// Everything a writer changes when it adds, replaces or forgets a video (a
// replaced file has a new size or mtime, a re-index a new model), read from
// the small videos table: a cheap check, unlike reloading every frame.
std::string IndexWatcher::signature(const index::Catalog& cat) const {
  std::string s = cat.meta("model").value_or("");
  s += '|';
  s += cat.meta("interval").value_or("");
  for (const auto& v : cat.videos()) {
    for (const int64_t n : {v.id, v.size, v.mtime_ns, v.frames}) {
      s += '|';
      s += std::to_string(n);
    }
    s += '|';
    s += v.status;
    s += '|';
    s += v.path;
  }
  // vectors.ann is written after the catalog changes: a snapshot taken in
  // between scans exactly until the file's arrival reloads it.
  std::error_code ec;
  const auto ann = index::ann_file(cat);
  if (std::filesystem::exists(ann, ec)) {
    s += "|ann:" + std::to_string(std::filesystem::last_write_time(ann, ec).time_since_epoch().count()) + ":" +
         std::to_string(std::filesystem::file_size(ann, ec));
  }
  return s;
}

std::shared_ptr<const IndexSnapshot> IndexWatcher::load(const index::Catalog& cat, std::string sig) const {
  const auto fp = cat.meta("model");
  if (!fp) throw index::Error(dir_.string() + ": the index is empty (run `clipfind index` first)");
  if (*fp != fingerprint_) {
    throw index::Error(dir_.string() + ": the index was rebuilt with another model (fingerprint " + *fp + ", serving " +
                       fingerprint_ + "); restart `clipfind serve` to use it");
  }
  auto snap = std::make_shared<IndexSnapshot>();
  snap->model = cat.model().value_or(index::ModelRecord{});
  snap->table = cat.load_frames();
  std::string ann_note;
  snap->ann = index::load_ann(cat, snap->table, &ann_note);
  if (!ann_note.empty()) std::fprintf(stderr, "warning: %s: searches scan every frame\n", ann_note.c_str());
  snap->gap = index::default_gap(cat);
  snap->signature = std::move(sig);
  snap->loaded_at = std::chrono::system_clock::now();
  for (auto& rec : cat.videos()) {
    IndexedVideo v;
    v.is_image = is_image_file(rec.path);
    v.record = std::move(rec);
    snap->videos.emplace(v.record.id, std::move(v));
  }
  // The table is ordered by video then time: one pass finds each video's rows.
  // (Rows of a video written between the two reads above have no entry; they
  // are not shown until the next check reloads.)
  const auto& ids = snap->table.video;
  for (size_t r = 0; r < ids.size();) {
    size_t end = r;
    while (end < ids.size() && ids[end] == ids[r]) ++end;
    if (auto it = snap->videos.find(ids[r]); it != snap->videos.end()) {
      it->second.first_row = r;
      it->second.end_row = end;
    }
    r = end;
  }
  return snap;
}

void IndexWatcher::watch() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, poll_, [&] { return stopping_; })) {
    const std::string old_sig = current_->signature;
    lock.unlock();
    std::shared_ptr<const IndexSnapshot> fresh;
    std::string problem;
    try {
      std::string sig = signature(*catalog_);
      if (sig != old_sig) {
        fresh = load(*catalog_, std::move(sig));
        std::fprintf(stderr, "clipfind serve: %s changed: reloaded %zu videos, %zu frames\n", dir_.c_str(),
                     fresh->videos.size(), fresh->table.rows());
      }
    } catch (const std::exception& e) {
      problem = e.what();
    }
    lock.lock();
    if (fresh) current_ = std::move(fresh);
    if (problem != problem_ && !problem.empty()) std::fprintf(stderr, "clipfind serve: %s\n", problem.c_str());
    problem_ = std::move(problem);
  }
}

}  // namespace clipfind::server
