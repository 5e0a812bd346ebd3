#include "server/thumbnails.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>

#include "clip/image/image.h"
#include "clip/image/preprocess.h"
#include "video/decoder.h"
#include "video/write_jpeg.h"

namespace clipfind::server {

namespace fs = std::filesystem;

namespace {

constexpr int kJpegQuality = 82;  // grid-sized pictures: artefacts do not show, files stay ~15 KB

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The frame scaled to `width` (same aspect), never enlarged.
clip::Image fit_width(clip::Image image, int width) {
  if (image.width <= width) return image;
  const int height = std::max(1, int(std::lround(double(image.height) * width / image.width)));
  return clip::resize_bicubic(image, width, height);
}

}  // namespace

ThumbnailCache::ThumbnailCache(fs::path dir, int width, int concurrent)
    : dir_(std::move(dir)), width_(width), decoders_(std::max(1, concurrent)) {}

std::string ThumbnailCache::get(const index::VideoRecord& v, bool is_image, double seconds, bool keep) {
  // The file's size and mtime are in the name (hashed, to keep it short):
  // a re-encoded video under the same id never shows an old picture.
  const long long ms = std::llround(seconds * 1000.0);
  char version[17];
  std::snprintf(version, sizeof version, "%016zx",
                std::hash<std::string>{}(std::to_string(v.size) + ":" + std::to_string(v.mtime_ns)));
  const std::string key =
      std::to_string(v.id) + "-" + std::to_string(ms) + "ms-w" + std::to_string(width_) + "-" + version;
  const fs::path file = dir_ / (key + ".jpg");
  if (keep) {
    std::string cached = read_file(file);
    if (!cached.empty()) return cached;
  }

  std::promise<std::string> promise;
  std::shared_future<std::string> result;
  bool mine = false;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) {
      result = promise.get_future().share();
      in_flight_.emplace(key, result);
      mine = true;
    } else {
      result = it->second;
    }
  }
  if (mine) {
    try {
      promise.set_value(make(v, is_image, seconds, file, keep));
    } catch (...) {
      promise.set_exception(std::current_exception());
    }
    std::lock_guard lock(mutex_);
    in_flight_.erase(key);
  }
  return result.get();
}

std::string ThumbnailCache::make(const index::VideoRecord& v, bool is_image, double seconds, const fs::path& file,
                                 bool keep) {
  decoders_.acquire();
  struct Release {
    std::counting_semaphore<>& s;
    ~Release() { s.release(); }
  } release{decoders_};

  clip::Image frame = is_image ? clip::decode_image_file(v.path) : video::frame_at(v.path, seconds).image;
  const clip::Image thumb = fit_width(std::move(frame), width_);
  // write_jpeg writes FILE.tmp then renames it: a reader never sees half a picture.
  std::error_code ec;
  if (keep) fs::create_directories(dir_, ec);
  if (keep && !ec) {
    try {
      video::write_jpeg(thumb, file, kJpegQuality);
      std::string bytes = read_file(file);
      if (!bytes.empty()) return bytes;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "clipfind serve: not caching thumbnails: %s\n", e.what());
    }
  }
  // Not kept (or the folder is read-only): encode through a private file.
  const fs::path scratch =
      fs::temp_directory_path() / ("clipfind-thumb-" + std::to_string(::getpid()) + "-" + file.filename().string());
  video::write_jpeg(thumb, scratch, kJpegQuality);
  std::string bytes = read_file(scratch);
  fs::remove(scratch, ec);
  if (bytes.empty()) throw std::runtime_error(scratch.string() + ": cannot read back the thumbnail");
  return bytes;
}

}  // namespace clipfind::server
