// The index's catalog: one SQLite file (DIR/catalog.sqlite, WAL mode) holding
// videos and their frame embeddings (L2-normalised, IEEE binary16 BLOBs: what
// search uses, at a quarter of float32's size: at 2 KB a row SQLite fitted
// one row per 4 KB page), the source of truth; beside it DIR/vectors.f16, the
// same frames in a file search maps (vector_file.h), rebuilt by `index`.
//
// Each video is written in one transaction, so a process killed at any moment
// leaves an index that opens, searches, and resumes where it stopped. Every
// change of the videos table increments the catalog's generation (SQLite
// triggers, so no write path can forget it); the vector file records the
// generation it was built from and is used only while the two agree.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "index/frame_table.h"
#include "index/vector_file.h"

struct sqlite3;

namespace clipfind::index {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct VideoRecord {
  int64_t id = 0;
  std::string path;  // absolute
  int64_t size = 0;  // bytes, for the "unchanged?" check
  int64_t mtime_ns = 0;
  double duration = 0.0;
  double fps = 0.0;
  int width = 0;
  int height = 0;
  std::string model;   // model fingerprint the embeddings came from
  std::string status;  // "ok" or "error"
  std::string error;   // why, when status == "error"
  int64_t frames = 0;
};

// The model the index's embeddings came from, as the catalog's meta table
// records it (keys "model", "model_path", "dim", "family", "logit_scale",
// "logit_bias"; numbers as text, floats with 9 significant digits so they
// read back exactly).
struct ModelRecord {
  std::string fingerprint;  // model_fingerprint(): search refuses another model
  std::string path;         // absolute; search loads it unless told otherwise
  int dim = 0;              // embedding width
  // "clip" or "siglip" (clip::family_name). Indexes from before issue 26
  // have no "family" key: they were all CLIP, and read as "clip".
  std::string family = "clip";
  // The model's logit_scale (log of the temperature, as stored) and, for
  // SigLIP, logit_bias, when its weights have them: search turns a SigLIP
  // cosine into a probability with them (match_probability in search.h).
  std::optional<float> logit_scale;
  std::optional<float> logit_bias;
  bool operator==(const ModelRecord&) const = default;
};

class Catalog {
 public:
  // 2: the generation counter and its triggers, the catalog id, half-float
  // embeddings. Version 1 catalogs are upgraded in place when opened; their
  // float32 rows stay and are read as such.
  static constexpr int kSchemaVersion = 2;

  // Opens DIR/catalog.sqlite; create: make the folder and schema if missing.
  Catalog(const std::filesystem::path& dir, bool create);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::optional<std::string> meta(const std::string& key) const;
  void set_meta(const std::string& key, const std::string& value);

  // The precisions the embeddings were computed in ("fp32", "bf16", "int8",
  // "fp16", ...), comma-separated in the order they were first used: an
  // index updated in another precision than it was built in lists both.
  // record_precision adds one; clear() forgets them. Empty: not recorded
  // (an index from before issue 28).
  void record_precision(const std::string& precision);
  std::vector<std::string> precisions() const;

  // The model record, written in one transaction (a missing logit_scale or
  // logit_bias removes an older value), so a crash leaves the old record or
  // the new one, never half of each. model(): nullopt before the first
  // record (a new index); throws naming the catalog on an unreadable number.
  void set_model(const ModelRecord& model);
  std::optional<ModelRecord> model() const;

  std::vector<VideoRecord> videos() const;
  std::optional<VideoRecord> find(const std::string& path) const;

  // Replaces any earlier record of rec.path and its frames, in one transaction.
  // embeddings: times.size() rows of `dim` floats (stored as half floats).
  void put_video(const VideoRecord& rec, const std::vector<double>& times, const std::vector<float>& embeddings,
                 int dim);
  void forget(const std::string& path);
  // Copies every video of each source (its record, and its frames with their
  // embeddings byte for byte) into this catalog, in one transaction: a crash
  // or an error (a path already here) leaves this catalog as it was. Videos
  // get new ids, in the sources' order, then each source's id order. An
  // embedding of another size than this catalog's dim is refused (Error).
  // on_video: after each video is copied (progress), with the source's index.
  void append_from(const std::vector<const Catalog*>& sources,
                   const std::function<void(size_t source, const VideoRecord&)>& on_video);
  void clear();  // every video and frame (for --reindex)

  // For a catalog no other process sees yet (merge builds one in a temporary
  // folder that a crash discards): on, no journal and no syncs while it is
  // filled, writing each row once instead of twice (log, then checkpoint);
  // off, back to WAL mode and the file synced to disk.
  void set_bulk_load(bool on);

  // Which state the catalog is in (see vector_file.h).
  CatalogStamp stamp() const;
  std::filesystem::path vector_file() const { return dir_ / "vectors.f16"; }

  // The searchable frames (videos with status "ok"), ordered by video then
  // time: mapped from vectors.f16 when it holds the current state, else read
  // from SQLite. In that case *note (when given) says why the file was not
  // used (missing, stale, torn ...), for the caller to pass on.
  FrameTable load_frames(std::string* note = nullptr) const;
  // The same, always read from SQLite, in one read transaction; *stamp: the
  // state they were read at.
  FrameTable read_frames(CatalogStamp* stamp = nullptr) const;
  // Rewrites vectors.f16 from SQLite unless it already holds the current
  // state (a read transaction, then an atomic replace). Returns whether it
  // wrote. Does nothing, returning false, before the first video gave a dim.
  bool update_vector_file() const;

 private:
  void exec(const char* sql) const;
  void upgrade_from_v1();
  // Rows of searchable frames in (video, time) order, inside the caller's transaction.
  void scan_frames(int dim,
                   const std::function<void(int64_t video, double time, const uint16_t* embedding)>& row) const;
  std::filesystem::path dir_;
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
};

}  // namespace clipfind::index
