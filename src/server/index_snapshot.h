// The index as the server searches it: an immutable snapshot (frames,
// videos, merge gap) shared by the requests that use it, and a watcher that
// builds a new one when `clipfind index` changes the catalog meanwhile.
//
// Requests never wait for a reload: they keep the snapshot they took, and the
// next ones get the new one once it is complete.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "index/ann.h"
#include "index/catalog.h"

namespace clipfind::server {

struct IndexedVideo {
  index::VideoRecord record;
  size_t first_row = 0, end_row = 0;  // its frames: rows [first_row, end_row) of the table
  bool is_image = false;              // a still picture (indexed as one frame)
};

struct IndexSnapshot {
  index::ModelRecord model;                    // family and logit parameters: probabilities
  index::FrameTable table;                     // sorted by video, then time
  std::shared_ptr<const index::AnnIndex> ann;  // of `table`, when vectors.ann is current (else exact scan)
  std::map<int64_t, IndexedVideo> videos;      // by catalog id
  double gap = 2.0;                            // seconds within which hits merge
  std::string signature;                       // what the catalog looked like
  std::chrono::system_clock::time_point loaded_at;

  const IndexedVideo* find(int64_t id) const;
  // The indexed frame time of `video` within half a millisecond of `seconds`.
  std::optional<double> frame_time(const IndexedVideo& video, double seconds) const;
};

class IndexWatcher {
 public:
  // Loads the index now (throws index::Error naming it); then checks for
  // changes every `poll` and rebuilds the snapshot when there are some. A
  // catalog rebuilt with another model (fingerprint) is not loaded: the
  // server keeps the last good snapshot and says so in problem().
  IndexWatcher(std::filesystem::path dir, std::string model_fingerprint,
               std::chrono::milliseconds poll = std::chrono::seconds(2));
  ~IndexWatcher();
  IndexWatcher(const IndexWatcher&) = delete;
  IndexWatcher& operator=(const IndexWatcher&) = delete;

  std::shared_ptr<const IndexSnapshot> current() const;
  std::string problem() const;  // empty when the last check went well
  const std::filesystem::path& dir() const { return dir_; }
  // When the catalog file (or its write-ahead log) was last written.
  std::chrono::system_clock::time_point modified() const;

 private:
  std::string signature(const index::Catalog& catalog) const;
  std::shared_ptr<const IndexSnapshot> load(const index::Catalog& catalog, std::string signature) const;
  void watch();

  std::filesystem::path dir_;
  std::string fingerprint_;
  std::chrono::milliseconds poll_;
  std::unique_ptr<index::Catalog> catalog_;  // used by the watcher thread only

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::shared_ptr<const IndexSnapshot> current_;
  std::string problem_;
  std::thread thread_;
};

// Still pictures are indexed like one-frame videos; the page shows them as <img>.
bool is_image_file(const std::filesystem::path& path);

}  // namespace clipfind::server
