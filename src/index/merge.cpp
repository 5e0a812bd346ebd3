#include "index/merge.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <system_error>

#include "index/compat.h"
#include "index/file_io.h"  // fsync_folder

namespace clipfind::index {

namespace fs = std::filesystem;

namespace {

// Comparable, and with a file name ("idx/" gives "/abs/idx").
fs::path canonical_or_absolute(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p), ec);
  if (ec) c = fs::absolute(p).lexically_normal();
  return c.filename().empty() ? c.parent_path() : c;
}

// What is at `out`: nothing usable yet (missing or an empty folder), an
// index to append to, or something that must not be touched.
enum class OutState { fresh, index };
OutState out_state(const fs::path& out) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return OutState::fresh;
  if (!fs::is_directory(out, ec)) throw Error(out.string() + ": exists and is not a folder; not merging into it");
  if (fs::exists(out / "catalog.sqlite", ec)) return OutState::index;
  if (fs::is_empty(out, ec)) return OutState::fresh;
  throw Error(out.string() + ": a folder with files in it and no index; give --index an empty or new folder");
}

// The folder a new `out` is built in, removed again unless renamed into place.
class BuildFolder {
 public:
  explicit BuildFolder(const fs::path& out) {
    const fs::path abs = canonical_or_absolute(out);
    const std::string prefix = "." + abs.filename().string() + ".merging-";
    path_ = abs.parent_path() / (prefix + std::to_string(::getpid()));
    std::error_code ec;
    // What merges killed midway left: their process is gone (or is this one, long ago).
    for (const auto& e : fs::directory_iterator(abs.parent_path(), ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(prefix, 0) != 0) continue;
      const long pid = std::atol(name.c_str() + prefix.size());
      if (pid > 0 && (pid == ::getpid() || (::kill(pid_t(pid), 0) != 0 && errno == ESRCH))) fs::remove_all(e, ec);
    }
    fs::create_directories(path_, ec);
    if (ec) throw Error(path_.string() + ": cannot create the folder to merge into: " + ec.message());
  }
  ~BuildFolder() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  BuildFolder(const BuildFolder&) = delete;
  BuildFolder& operator=(const BuildFolder&) = delete;
  const fs::path& path() const { return path_; }

  // rename(2) replaces `out` when it is an empty folder, atomically.
  void move_to(const fs::path& out) {
    if (::rename(path_.c_str(), out.c_str()) != 0) {
      throw Error(out.string() + ": cannot rename " + path_.string() + " to it: " + std::strerror(errno));
    }
    path_.clear();
    fsync_folder(canonical_or_absolute(out).parent_path());
  }

 private:
  fs::path path_;
};

// "I/N" shards of the split the sources belong to that none of them is.
std::vector<std::string> missing_shards(const std::vector<MergedSource>& sources) {
  std::set<int> seen;
  int count = 0;
  for (const auto& s : sources) {
    int i = 0, n = 0;
    if (std::sscanf(s.shard.c_str(), "%d/%d", &i, &n) != 2) return {};  // not all shards
    if (count != 0 && n != count) return {};                            // shards of different splits
    count = n;
    seen.insert(i);
  }
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    if (!seen.count(i)) out.push_back(std::to_string(i) + "/" + std::to_string(count));
  }
  return out;
}

// Copies the sources into `target` and records what the merged index is.
void copy_into(Catalog& target, const std::vector<const Catalog*>& sources, MergeSummary& sum,
               const std::function<void(const std::string&)>& log) {
  size_t current = 0;
  auto finished = [&](size_t i) {
    const auto& s = sum.sources[i];
    if (log) {
      log(s.index + (s.shard.empty() ? "" : " (shard " + s.shard + ")") + ": " + std::to_string(s.videos) +
          " videos, " + std::to_string(s.frames) + " frames (" + std::to_string(i + 1) + "/" +
          std::to_string(sources.size()) + ")");
    }
  };
  target.append_from(sources, [&](size_t i, const VideoRecord& v) {
    while (current < i) finished(current++);
    ++sum.sources[i].videos;
    if (v.status == "ok") sum.sources[i].frames += v.frames;
  });
  while (current < sources.size()) finished(current++);
  for (const Catalog* c : sources) {
    for (const auto& p : c->precisions()) target.record_precision(p);
  }
  target.set_meta("shard", "");  // whole, or at least no longer one share
}

}  // namespace

MergeSummary merge_indexes(const std::vector<fs::path>& source_dirs, const fs::path& out,
                           const std::function<void(const std::string&)>& log) {
  const auto t0 = std::chrono::steady_clock::now();
  if (source_dirs.empty()) throw Error("nothing to merge: give the index folders to merge");
  MergeSummary sum;
  sum.out = out.string();
  const fs::path out_abs = canonical_or_absolute(out);
  std::vector<std::unique_ptr<Catalog>> opened;
  std::vector<const Catalog*> sources;
  std::set<fs::path> seen;
  for (const auto& dir : source_dirs) {
    const fs::path abs = canonical_or_absolute(dir);
    if (abs == out_abs)
      throw Error(dir.string() + ": is the --index folder merged into; give it only once, as --index");
    if (!seen.insert(abs).second) throw Error(dir.string() + ": given twice");
    opened.push_back(std::make_unique<Catalog>(dir, false));
    sources.push_back(opened.back().get());
    sum.sources.push_back({dir.string(), opened.back()->meta("shard").value_or(""), 0, 0});
  }
  sum.missing_shards = missing_shards(sum.sources);

  const OutState state = out_state(out);
  sum.appended = state == OutState::index;
  std::unique_ptr<BuildFolder> build;
  std::unique_ptr<Catalog> target;
  if (sum.appended) {
    target = std::make_unique<Catalog>(out, false);
    std::vector<const Catalog*> all = {target.get()};
    all.insert(all.end(), sources.begin(), sources.end());
    check_same_model(target->model() ? all : sources);  // an index never filled takes the sources' model
    check_same_sampling(target->model() ? all : sources);
    check_disjoint_videos(all);
  } else {
    check_same_model(sources);
    check_same_sampling(sources);
    check_disjoint_videos(sources);
    build = std::make_unique<BuildFolder>(out);
    target = std::make_unique<Catalog>(build->path(), true);
    target->set_bulk_load(true);
  }
  if (!target->model()) {
    const Catalog& first = *sources.front();
    target->set_model(*first.model());
    for (const char* key : {"sampling", "interval"}) {
      if (const auto v = first.meta(key)) target->set_meta(key, *v);
    }
  }
  copy_into(*target, sources, sum, log);
  if (build) target->set_bulk_load(false);
  target->update_vector_file();
  for (const auto& v : target->videos()) {
    ++sum.videos;
    if (v.status == "ok") sum.frames += v.frames;
  }
  sum.precisions = target->precisions();
  target.reset();  // closed: SQLite folds its write-ahead log into catalog.sqlite
  if (build) build->move_to(out);
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace clipfind::index
