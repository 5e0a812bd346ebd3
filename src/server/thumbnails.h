// Thumbnails for the result grid: the frame of a video at a time, scaled to
// a fixed width, as JPEG. Decoding a frame costs tens of milliseconds, so
// they are kept in the index folder (DIR/thumbnails) and made once.
#pragma once
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <semaphore>
#include <string>

#include "index/catalog.h"

namespace clipfind::server {

class ThumbnailCache {
 public:
  // dir: where to keep them (created on first use; when it cannot be
  // written, thumbnails are still made, just not kept). width: pixels,
  // never enlarged. concurrent: frames decoded at once, the rest wait, so a
  // grid of 50 thumbnails cannot take every core from searches.
  ThumbnailCache(std::filesystem::path dir, int width, int concurrent);

  // JPEG bytes of `video` at `seconds`. keep: store it on disk. Callers keep
  // only frame times of the index (what results point at), a bounded set, so
  // requests for arbitrary times cannot fill the disk. Throws naming the file.
  std::string get(const index::VideoRecord& video, bool is_image, double seconds, bool keep);

  int width() const { return width_; }

 private:
  std::string make(const index::VideoRecord& video, bool is_image, double seconds, const std::filesystem::path& file,
                   bool keep);

  std::filesystem::path dir_;
  int width_;
  std::counting_semaphore<> decoders_;
  std::mutex mutex_;
  // Thumbnails being made: a second request for one waits for the first
  // instead of decoding it again (and racing it to the same file).
  std::map<std::string, std::shared_future<std::string>> in_flight_;
};

}  // namespace clipfind::server
