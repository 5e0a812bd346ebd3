#include "index/catalog.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>

#include "index/half.h"

namespace clipfind::index {

namespace {

// A prepared statement that finalises itself; errors name the catalog file.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql, const std::filesystem::path& file) : db_(db), file_(file) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) fail();
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
  Stmt& bind(int i, double v) { return check(sqlite3_bind_double(s_, i, v)); }
  Stmt& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(s_, i, v.c_str(), int(v.size()), SQLITE_TRANSIENT));
  }
  Stmt& bind_blob(int i, const void* p, size_t n) { return check(sqlite3_bind_blob64(s_, i, p, n, SQLITE_STATIC)); }
  // true: a row is ready; false: done.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail();
    return false;
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double f64(int c) const { return sqlite3_column_double(s_, c); }
  std::string text(int c) const {
    const auto* t = sqlite3_column_text(s_, c);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  const void* blob(int c, size_t& n) const {
    const void* p = sqlite3_column_blob(s_, c);
    n = size_t(sqlite3_column_bytes(s_, c));
    return p;
  }

 private:
  Stmt& check(int rc) {
    if (rc != SQLITE_OK) fail();
    return *this;
  }
  [[noreturn]] void fail() const { throw Error(file_.string() + ": " + sqlite3_errmsg(db_)); }
  sqlite3* db_;
  const std::filesystem::path& file_;
  sqlite3_stmt* s_ = nullptr;
};

// Rolls back unless committed: an exception halfway through a video leaves
// the catalog as it was before that video. A read transaction (BEGIN without
// IMMEDIATE) sees one state of the catalog from its first read to its end.
class Transaction {
 public:
  explicit Transaction(const std::function<void(const char*)>& exec, bool write = true) : exec_(exec) {
    exec_(write ? "BEGIN IMMEDIATE" : "BEGIN");
  }
  ~Transaction() {
    if (!done_) {
      try {
        exec_("ROLLBACK");
      } catch (...) {
      }
    }
  }
  void commit() {
    exec_("COMMIT");
    done_ = true;
  }

 private:
  std::function<void(const char*)> exec_;
  bool done_ = false;
};

constexpr const char* kVideoColumns =
    "id, path, size, mtime_ns, duration, fps, width, height, model, status, error, frames";

// Each change of the videos table, in the same transaction (frames only ever
// change together with their video's row), counts up the generation and
// draws a new random change id. The counter makes messages readable; the
// random id makes the stamp unique even if a power failure loses the last
// commits (synchronous=NORMAL) and later ones reuse their generation numbers.
constexpr const char* kBumpGeneration =
    " BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';"
    " UPDATE meta SET value = lower(hex(randomblob(8))) WHERE key = 'change_id'; END";

// 16 random hex digits. A new catalog's id is one, so a deleted and
// re-created index never matches a vector file left from the old one.
std::string random_id() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

VideoRecord read_video(const Stmt& s) {
  VideoRecord r;
  r.id = s.i64(0);
  r.path = s.text(1);
  r.size = s.i64(2);
  r.mtime_ns = s.i64(3);
  r.duration = s.f64(4);
  r.fps = s.f64(5);
  r.width = int(s.i64(6));
  r.height = int(s.i64(7));
  r.model = s.text(8);
  r.status = s.text(9);
  r.error = s.text(10);
  r.frames = s.i64(11);
  return r;
}

}  // namespace

Catalog::Catalog(const std::filesystem::path& dir, bool create) : dir_(dir), file_(dir / "catalog.sqlite") {
  namespace fs = std::filesystem;
  if (!fs::exists(file_)) {
    if (!create) throw Error(dir.string() + ": no index here (run `clipfind index` first, or pass --index DIR)");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error(dir.string() + ": cannot create the index folder: " + ec.message());
  }
  const int flags = create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READWRITE;
  if (sqlite3_open_v2(file_.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw Error(file_.string() + ": cannot open: " + msg);
  }
  try {
    sqlite3_busy_timeout(db_, 10000);  // a second clipfind (search during index) waits, not fails
    exec("PRAGMA journal_mode=WAL");
    // NORMAL in WAL mode is still consistent after a crash; only the last
    // commits may be lost on power failure, and they are re-done by resuming.
    exec("PRAGMA synchronous=NORMAL");
    Stmt probe(db_, "SELECT count(*) FROM sqlite_master WHERE name='meta'", file_);
    probe.step();
    if (probe.i64(0) == 0) {
      if (!create) throw Error(file_.string() + ": not a clipfind index");
      exec("BEGIN IMMEDIATE");
      exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
      exec(
          "CREATE TABLE IF NOT EXISTS videos(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL,"
          " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, duration REAL, fps REAL, width INTEGER,"
          " height INTEGER, model TEXT NOT NULL, status TEXT NOT NULL, error TEXT, frames INTEGER NOT NULL)");
      exec("CREATE TABLE IF NOT EXISTS frames(video INTEGER NOT NULL, time REAL NOT NULL, embedding BLOB NOT NULL)");
      exec("CREATE INDEX IF NOT EXISTS frames_by_video ON frames(video)");
      exec("INSERT OR IGNORE INTO meta VALUES('schema_version','1')");
      exec("COMMIT");
    }
    if (meta("schema_version") == "1") upgrade_from_v1();
    const auto version = meta("schema_version");
    if (!version || *version != std::to_string(kSchemaVersion)) {
      throw Error(file_.string() + ": index schema version " + version.value_or("?") + ", this clipfind reads " +
                  std::to_string(kSchemaVersion) + " (rebuild it with `clipfind index --reindex`)");
    }
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

Catalog::~Catalog() { sqlite3_close(db_); }

// Version 1 had no generation: add it, its triggers and a catalog id. The
// frames stay as they are (float32), so this is instant at any size.
void Catalog::upgrade_from_v1() {
  Transaction tx([this](const char* sql) { exec(sql); });
  if (meta("schema_version") != "1") return;  // another process upgraded it meanwhile
  exec(("INSERT OR IGNORE INTO meta VALUES('catalog_id','" + random_id() + "')").c_str());
  exec("INSERT OR IGNORE INTO meta VALUES('generation','1')");
  exec(("INSERT OR IGNORE INTO meta VALUES('change_id','" + random_id() + "')").c_str());
  for (const std::string change : {"insert", "update", "delete"}) {
    exec(("CREATE TRIGGER IF NOT EXISTS videos_" + change + "_bumps AFTER " + change + " ON videos" + kBumpGeneration)
             .c_str());
  }
  exec(("UPDATE meta SET value='" + std::to_string(kSchemaVersion) + "' WHERE key='schema_version'").c_str());
  tx.commit();
}

void Catalog::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw Error(file_.string() + ": " + msg);
  }
}

std::optional<std::string> Catalog::meta(const std::string& key) const {
  Stmt s(db_, "SELECT value FROM meta WHERE key=?", file_);
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void Catalog::set_meta(const std::string& key, const std::string& value) {
  Stmt s(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", file_);
  s.bind(1, key).bind(2, value);
  s.step();
}

void Catalog::record_precision(const std::string& precision) {
  const std::vector<std::string> known = precisions();
  if (std::find(known.begin(), known.end(), precision) != known.end()) return;
  const auto stored = meta("precision");
  set_meta("precision", stored && !stored->empty() ? *stored + "," + precision : precision);
}

std::vector<std::string> Catalog::precisions() const {
  std::vector<std::string> out;
  const std::string stored = meta("precision").value_or("");
  for (size_t begin = 0; begin < stored.size();) {
    const size_t comma = std::min(stored.find(',', begin), stored.size());
    out.push_back(stored.substr(begin, comma - begin));
    begin = comma + 1;
  }
  return out;
}

namespace {

// 9 significant digits: every float reads back as the same float.
std::string float_text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", double(v));
  return buf;
}

}  // namespace

void Catalog::set_model(const ModelRecord& m) {
  Transaction tx([this](const char* sql) { exec(sql); });
  set_meta("model", m.fingerprint);
  set_meta("model_path", m.path);
  set_meta("dim", std::to_string(m.dim));
  set_meta("family", m.family);
  for (const auto& [key, value] : {std::pair{"logit_scale", m.logit_scale}, std::pair{"logit_bias", m.logit_bias}}) {
    if (value) {
      set_meta(key, float_text(*value));
    } else {
      Stmt del(db_, "DELETE FROM meta WHERE key=?", file_);
      del.bind(1, std::string(key)).step();
    }
  }
  tx.commit();
}

std::optional<ModelRecord> Catalog::model() const {
  // One read transaction: the keys of one record, not of two writers' halves.
  Transaction tx([this](const char* sql) { exec(sql); }, false);
  const auto fingerprint = meta("model");
  if (!fingerprint) return std::nullopt;
  auto number = [&](const char* key) -> std::optional<float> {
    const auto text = meta(key);
    if (!text) return std::nullopt;
    char* end = nullptr;
    const float v = std::strtof(text->c_str(), &end);
    if (text->empty() || *end != '\0' || !std::isfinite(v)) {
      throw Error(file_.string() + ": index metadata " + key + " is '" + *text +
                  "', not a number (rebuild with `clipfind index --reindex`)");
    }
    return v;
  };
  ModelRecord m;
  m.fingerprint = *fingerprint;
  m.path = meta("model_path").value_or("");
  m.dim = int(number("dim").value_or(0.0f));
  m.family = meta("family").value_or("clip");
  m.logit_scale = number("logit_scale");
  m.logit_bias = number("logit_bias");
  tx.commit();
  return m;
}

std::vector<VideoRecord> Catalog::videos() const {
  Stmt s(db_, (std::string("SELECT ") + kVideoColumns + " FROM videos ORDER BY path").c_str(), file_);
  std::vector<VideoRecord> out;
  while (s.step()) out.push_back(read_video(s));
  return out;
}

std::optional<VideoRecord> Catalog::find(const std::string& path) const {
  Stmt s(db_, (std::string("SELECT ") + kVideoColumns + " FROM videos WHERE path=?").c_str(), file_);
  s.bind(1, path);
  if (!s.step()) return std::nullopt;
  return read_video(s);
}

void Catalog::put_video(const VideoRecord& r, const std::vector<double>& times, const std::vector<float>& emb,
                        int dim) {
  if (emb.size() != times.size() * size_t(dim)) throw Error(r.path + ": embeddings do not match frame count");
  Transaction tx([this](const char* sql) { exec(sql); });
  {
    Stmt del_frames(db_, "DELETE FROM frames WHERE video IN (SELECT id FROM videos WHERE path=?)", file_);
    del_frames.bind(1, r.path).step();
    Stmt del(db_, "DELETE FROM videos WHERE path=?", file_);
    del.bind(1, r.path).step();
    Stmt ins(db_,
             "INSERT INTO videos(path, size, mtime_ns, duration, fps, width, height, model, status, error, frames)"
             " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
             file_);
    ins.bind(1, r.path).bind(2, r.size).bind(3, r.mtime_ns).bind(4, r.duration).bind(5, r.fps);
    ins.bind(6, int64_t(r.width)).bind(7, int64_t(r.height)).bind(8, r.model).bind(9, r.status);
    ins.bind(10, r.error).bind(11, int64_t(times.size()));
    ins.step();
    const int64_t id = sqlite3_last_insert_rowid(db_);
    Stmt fr(db_, "INSERT INTO frames(video, time, embedding) VALUES(?,?,?)", file_);
    std::vector<uint16_t> row(static_cast<size_t>(dim));
    for (size_t i = 0; i < times.size(); ++i) {
      for (int c = 0; c < dim; ++c) row[size_t(c)] = float_to_half(emb[i * size_t(dim) + size_t(c)]);
      fr.reset();
      fr.bind(1, id).bind(2, times[i]).bind_blob(3, row.data(), row.size() * sizeof(uint16_t));
      fr.step();
    }
  }
  tx.commit();
}

void Catalog::forget(const std::string& path) {
  Transaction tx([this](const char* sql) { exec(sql); });
  {
    Stmt del_frames(db_, "DELETE FROM frames WHERE video IN (SELECT id FROM videos WHERE path=?)", file_);
    del_frames.bind(1, path).step();
    Stmt del(db_, "DELETE FROM videos WHERE path=?", file_);
    del.bind(1, path).step();
  }
  tx.commit();
}

void Catalog::append_from(const std::vector<const Catalog*>& sources,
                          const std::function<void(size_t, const VideoRecord&)>& on_video) {
  // Embeddings are copied as they are, so check their size here: a torn
  // source must not leave rows that every later search trips over.
  const auto m = model();
  const size_t dim = m ? size_t(std::max(m->dim, 0)) : 0;
  Transaction tx([this](const char* sql) { exec(sql); });
  {
    Stmt ins(db_,
             "INSERT INTO videos(path, size, mtime_ns, duration, fps, width, height, model, status, error, frames)"
             " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
             file_);
    Stmt ins_frame(db_, "INSERT INTO frames(video, time, embedding) VALUES(?,?,?)", file_);
    for (size_t i = 0; i < sources.size(); ++i) {
      const Catalog& src = *sources[i];
      // One state of each source, whatever its writers do meanwhile.
      Transaction read([&src](const char* sql) { src.exec(sql); }, false);
      Stmt videos(src.db_, (std::string("SELECT ") + kVideoColumns + " FROM videos ORDER BY id").c_str(), src.file_);
      Stmt frames(src.db_, "SELECT time, embedding FROM frames WHERE video=? ORDER BY time, rowid", src.file_);
      while (videos.step()) {
        const VideoRecord r = read_video(videos);
        ins.reset();
        ins.bind(1, r.path).bind(2, r.size).bind(3, r.mtime_ns).bind(4, r.duration).bind(5, r.fps);
        ins.bind(6, int64_t(r.width)).bind(7, int64_t(r.height)).bind(8, r.model).bind(9, r.status);
        ins.bind(10, r.error).bind(11, r.frames);
        try {
          ins.step();
        } catch (const Error& e) {
          throw Error(src.file_.string() + ": cannot copy " + r.path + " into " + file_.string() + ": " + e.what());
        }
        const int64_t id = sqlite3_last_insert_rowid(db_);
        frames.reset();
        frames.bind(1, r.id);
        while (frames.step()) {
          size_t n = 0;
          const void* blob = frames.blob(1, n);
          if (n != dim * sizeof(uint16_t) && n != dim * sizeof(float)) {  // half floats, or version 1's floats
            throw Error(src.file_.string() + ": " + r.path + ": frame embedding of " + std::to_string(n) +
                        " bytes, expected " + std::to_string(dim) + " half floats; nothing merged");
          }
          ins_frame.reset();
          ins_frame.bind(1, id).bind(2, frames.f64(0)).bind_blob(3, blob, n);
          ins_frame.step();
        }
        if (on_video) on_video(i, r);
      }
      read.commit();
    }
  }
  tx.commit();
}

void Catalog::clear() {
  Transaction tx([this](const char* sql) { exec(sql); });
  exec("DELETE FROM frames");
  exec("DELETE FROM videos");
  exec("DELETE FROM meta WHERE key = 'precision'");  // the embeddings it described are gone
  tx.commit();
}

void Catalog::set_bulk_load(bool on) {
  if (on) {
    exec("PRAGMA journal_mode=OFF");
    exec("PRAGMA synchronous=OFF");
    return;
  }
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  const int fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!synced) throw Error(file_.string() + ": cannot sync: " + std::strerror(err));
}

CatalogStamp Catalog::stamp() const {
  CatalogStamp st;
  Stmt s(db_, "SELECT key, value FROM meta WHERE key IN ('catalog_id', 'generation', 'change_id')", file_);
  while (s.step()) {
    const std::string key = s.text(0), value = s.text(1);
    if (key == "catalog_id")
      st.catalog_id = std::strtoull(value.c_str(), nullptr, 16);
    else if (key == "change_id")
      st.change_id = std::strtoull(value.c_str(), nullptr, 16);
    else
      st.generation = std::strtoull(value.c_str(), nullptr, 10);
  }
  return st;
}

void Catalog::scan_frames(int dim, const std::function<void(int64_t, double, const uint16_t*)>& row) const {
  Stmt s(db_,
         "SELECT f.video, f.time, f.embedding FROM frames f JOIN videos v ON v.id = f.video"
         " WHERE v.status = 'ok' ORDER BY f.video, f.time",
         file_);
  const size_t d = size_t(std::max(dim, 0));
  std::vector<uint16_t> half_row(d);
  std::vector<float> single(d);
  while (s.step()) {
    size_t n = 0;
    const void* p = s.blob(2, n);
    // memcpy: a BLOB may be unaligned.
    if (dim > 0 && n == d * sizeof(uint16_t)) {
      std::memcpy(half_row.data(), p, n);
    } else if (dim > 0 && n == d * sizeof(float)) {  // written by schema version 1
      std::memcpy(single.data(), p, n);
      for (size_t c = 0; c < d; ++c) half_row[c] = float_to_half(single[c]);
    } else {
      throw Error(file_.string() + ": frame embedding of " + std::to_string(n) + " bytes, expected dim " +
                  std::to_string(dim) + " half floats (rebuild with --reindex)");
    }
    row(s.i64(0), s.f64(1), half_row.data());
  }
}

FrameTable Catalog::read_frames(CatalogStamp* stamp_out) const {
  Transaction tx([this](const char* sql) { exec(sql); }, false);
  const auto dim = meta("dim");
  FrameTableBuilder b(dim ? std::stoi(*dim) : 0);
  {
    // Room for every row up front: growing 1M rows by doubling copies gigabytes.
    Stmt count(db_, "SELECT coalesce(sum(frames), 0) FROM videos WHERE status = 'ok'", file_);
    count.step();
    b.reserve(size_t(std::max<int64_t>(count.i64(0), 0)));
  }
  if (stamp_out) *stamp_out = stamp();
  scan_frames(dim ? std::stoi(*dim) : 0, [&](int64_t v, double t, const uint16_t* e) { b.add_half(v, t, e); });
  tx.commit();
  return b.build();
}

FrameTable Catalog::load_frames(std::string* note) const {
  // The file first, then the catalog's stamp: generations only grow, so a
  // file whose stamp equals the one read after it holds that very state.
  std::string why;
  auto vf = open_vector_file(vector_file(), &why);
  if (vf) {
    const CatalogStamp now = stamp();
    if (vf->stamp == now) return std::move(vf->table);
    why = vector_file().string() + ": stale (";
    if (vf->stamp.catalog_id != now.catalog_id)
      why += "written for another catalog)";
    else if (vf->stamp.generation != now.generation) {
      why += "catalog generation " + std::to_string(vf->stamp.generation) + ", now " + std::to_string(now.generation) +
             ")";
    } else {
      why += "catalog generation " + std::to_string(now.generation) + " was lost and written again since)";
    }
  }
  if (note) *note = why;
  return read_frames();
}

bool Catalog::update_vector_file() const {
  if (auto vf = open_vector_file(vector_file(), nullptr); vf && vf->stamp == stamp()) return false;
  Transaction tx([this](const char* sql) { exec(sql); }, false);
  const auto dim = meta("dim");
  if (!dim) return false;
  const CatalogStamp at = stamp();
  VectorFileWriter w(vector_file(), std::stoi(*dim));
  scan_frames(std::stoi(*dim), [&](int64_t v, double t, const uint16_t* e) { w.add(v, t, e); });
  tx.commit();  // the rows are read: writers need not wait for the file
  w.commit(at);
  return true;
}

}  // namespace clipfind::index
