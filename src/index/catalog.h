// The index's catalog: one SQLite file (DIR/catalog.sqlite, WAL mode) holding
// videos and their frame embeddings (L2-normalised float32 BLOBs).
//
// Each video is written in one transaction, so a process killed at any moment
// leaves an index that opens, searches, and resumes where it stopped.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;

namespace clipfind::index {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct VideoRecord {
  int64_t id = 0;
  std::string path;      // absolute
  int64_t size = 0;      // bytes, for the "unchanged?" check
  int64_t mtime_ns = 0;
  double duration = 0.0;
  double fps = 0.0;
  int width = 0;
  int height = 0;
  std::string model;     // model fingerprint the embeddings came from
  std::string status;    // "ok" or "error"
  std::string error;     // why, when status == "error"
  int64_t frames = 0;
};

// All searchable frames, loaded once per search: row i is video[i] at time[i].
// Embeddings are kept in half precision (see half.h for why).
struct FrameTable {
  int dim = 0;
  std::vector<int64_t> video;
  std::vector<double> time;
  std::vector<uint16_t> embeddings;  // rows * dim, IEEE binary16
  size_t rows() const { return time.size(); }
  void add(int64_t v, double t, const float* embedding);
  float at(size_t row, int col) const;
};

class Catalog {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens DIR/catalog.sqlite; create: make the folder and schema if missing.
  Catalog(const std::filesystem::path& dir, bool create);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::optional<std::string> meta(const std::string& key) const;
  void set_meta(const std::string& key, const std::string& value);

  std::vector<VideoRecord> videos() const;
  std::optional<VideoRecord> find(const std::string& path) const;

  // Replaces any earlier record of rec.path and its frames, in one transaction.
  // embeddings: times.size() rows of `dim` floats.
  void put_video(const VideoRecord& rec, const std::vector<double>& times, const std::vector<float>& embeddings,
                 int dim);
  void forget(const std::string& path);
  void clear();  // every video and frame (for --reindex)

  FrameTable load_frames() const;

 private:
  void exec(const char* sql) const;
  std::filesystem::path dir_;
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
};

}  // namespace clipfind::index
