#include "index/vector_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "clip/model/mmap_file.h"
#include "index/catalog.h"  // index::Error

namespace clipfind::index {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'C', 'L', 'I', 'P', 'F', 'V', 'E', 'C'};
constexpr char kTrailerMagic[8] = {'C', 'L', 'I', 'P', 'F', 'E', 'N', 'D'};
constexpr uint32_t kVersion = 1;
// The header gets a page of its own so the embeddings start page-aligned.
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kAlign = 64;  // a cache line: every section starts on one
constexpr int kMaxDim = 1 << 16;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t dim;
  uint64_t rows;
  uint64_t catalog_id;
  uint64_t generation;
  uint64_t change_id;
  uint64_t embeddings_offset;
  uint64_t video_offset;
  uint64_t time_offset;
  uint64_t trailer_offset;
  uint64_t file_size;
  uint64_t checksum;  // of every byte above
};
static_assert(sizeof(Header) == 96);

struct Trailer {
  char magic[8];
  uint64_t header_checksum;
  uint64_t catalog_id;
  uint64_t generation;
};
static_assert(sizeof(Trailer) == 32);

uint64_t fnv1a(const void* data, size_t n) {
  uint64_t h = 1469598103934665603ull;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
uint64_t header_checksum(const Header& h) { return fnv1a(&h, offsetof(Header, checksum)); }

uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// Where each section of a file of `rows` x `dim` goes: the one layout a
// writer produces and a reader accepts.
Header layout(uint64_t rows, uint32_t dim) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.dim = dim;
  h.rows = rows;
  h.embeddings_offset = kHeaderBytes;
  h.video_offset = align_up(h.embeddings_offset + rows * dim * sizeof(uint16_t));
  h.time_offset = align_up(h.video_offset + rows * sizeof(int64_t));
  h.trailer_offset = align_up(h.time_offset + rows * sizeof(double));
  h.file_size = h.trailer_offset + sizeof(Trailer);
  return h;
}

[[noreturn]] void fail(const fs::path& file, const std::string& what, int err) {
  throw Error(file.string() + ": " + what + ": " + std::strerror(err));
}

// Writes all of [p, p + n) at `offset`, retrying short writes.
void write_at(int fd, const void* p, size_t n, uint64_t offset, const fs::path& file) {
  const auto* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, c, n, off_t(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(file, "cannot write", errno);
    }
    c += w;
    n -= size_t(w);
    offset += uint64_t(w);
  }
}

constexpr const char* kTempInfix = ".tmp.";

}  // namespace

// ---------------------------------------------------------------- writing

struct VectorFileWriter::Impl {
  fs::path file, temp;
  int fd = -1;
  uint32_t dim = 0;
  bool committed = false;
  // Embeddings stream to the file through this buffer; ids and times (16
  // bytes a row) are kept until the row count, hence their offsets, is known.
  std::vector<uint16_t> buffer;
  uint64_t written = 0;  // bytes of embeddings already in the file
  std::vector<int64_t> video;
  std::vector<double> time;

  void flush() {
    const size_t n = buffer.size() * sizeof(uint16_t);
    write_at(fd, buffer.data(), n, kHeaderBytes + written, temp);
    written += n;
    buffer.clear();
  }
};

VectorFileWriter::VectorFileWriter(const fs::path& file, int dim) : impl_(std::make_unique<Impl>()) {
  if (dim <= 0 || dim > kMaxDim) throw Error(file.string() + ": cannot store embeddings of dim " + std::to_string(dim));
  remove_stale_temporaries(file);
  static std::atomic<unsigned> counter{0};  // two writers of one process get two names
  impl_->file = file;
  impl_->temp = file.string() + kTempInfix + std::to_string(::getpid()) + "." + std::to_string(counter++);
  impl_->dim = uint32_t(dim);
  impl_->fd = ::open(impl_->temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (impl_->fd < 0) fail(impl_->temp, "cannot create", errno);
  impl_->buffer.reserve(size_t(1) << 21);  // 4 MB between writes
}

VectorFileWriter::~VectorFileWriter() {
  if (impl_->fd >= 0) ::close(impl_->fd);
  if (!impl_->committed) ::unlink(impl_->temp.c_str());
}

void fsync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(folder, "cannot open the folder to sync it", errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(folder, "cannot sync the folder", err);
}

void VectorFileWriter::add(int64_t video, double time, const uint16_t* e) {
  Impl& w = *impl_;
  w.buffer.insert(w.buffer.end(), e, e + w.dim);
  if (w.buffer.size() + w.dim > w.buffer.capacity()) w.flush();
  w.video.push_back(video);
  w.time.push_back(time);
}

void VectorFileWriter::commit(const CatalogStamp& stamp) {
  Impl& w = *impl_;
  w.flush();
  Header h = layout(w.video.size(), w.dim);
  h.catalog_id = stamp.catalog_id;
  h.generation = stamp.generation;
  h.change_id = stamp.change_id;
  h.checksum = header_checksum(h);
  write_at(w.fd, w.video.data(), w.video.size() * sizeof(int64_t), h.video_offset, w.temp);
  write_at(w.fd, w.time.data(), w.time.size() * sizeof(double), h.time_offset, w.temp);
  Trailer trailer{};
  std::memcpy(trailer.magic, kTrailerMagic, sizeof kTrailerMagic);
  trailer.header_checksum = h.checksum;
  trailer.catalog_id = h.catalog_id;
  trailer.generation = h.generation;
  write_at(w.fd, &trailer, sizeof trailer, h.trailer_offset, w.temp);
  // The header goes last: only now are the row count and offsets known.
  std::vector<char> page(kHeaderBytes, 0);
  std::memcpy(page.data(), &h, sizeof h);
  write_at(w.fd, page.data(), page.size(), 0, w.temp);
  if (::ftruncate(w.fd, off_t(h.file_size)) != 0) fail(w.temp, "cannot set the size", errno);
  // Data on disk before the rename makes it visible: a crash after the
  // rename must not find a file of the right name with missing contents.
  if (::fsync(w.fd) != 0) fail(w.temp, "cannot sync", errno);
  ::close(w.fd);
  w.fd = -1;
  if (::rename(w.temp.c_str(), w.file.c_str()) != 0) fail(w.file, "cannot rename " + w.temp.string() + " to it", errno);
  w.committed = true;
  fsync_folder(w.file.parent_path().empty() ? fs::path(".") : w.file.parent_path());
}

void remove_stale_temporaries(const fs::path& file) {
  const fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  const std::string prefix = file.filename().string() + kTempInfix;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    // NAME.tmp.PID.N: a file of a process still running is its writer's.
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && (::kill(pid_t(pid), 0) == 0 || errno != ESRCH)) continue;
    fs::remove(entry.path(), ec);
  }
}

// ---------------------------------------------------------------- reading

std::optional<VectorFile> open_vector_file(const fs::path& file, std::string* why) {
  auto reject = [&](const std::string& reason) -> std::optional<VectorFile> {
    if (why) *why = file.string() + ": " + reason;
    return std::nullopt;
  };
  std::error_code ec;
  if (!fs::exists(file, ec)) return reject("missing");
  std::shared_ptr<const clip::MappedFile> map;
  try {
    map = std::make_shared<const clip::MappedFile>(file);
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
  if (map->size() < kHeaderBytes)
    return reject("torn (" + std::to_string(map->size()) + " bytes, shorter than its header)");
  Header h;
  std::memcpy(&h, map->data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return reject("not a clipfind vector file (bad magic)");
  if (h.checksum != header_checksum(h)) return reject("damaged header (checksum mismatch)");
  if (h.version != kVersion) {
    return reject("format version " + std::to_string(h.version) + ", this clipfind reads " + std::to_string(kVersion));
  }
  if (h.dim == 0 || h.dim > uint32_t(kMaxDim) || h.rows > (uint64_t(1) << 40)) {
    return reject("implausible shape (" + std::to_string(h.rows) + " rows of dim " + std::to_string(h.dim) + ")");
  }
  Header expect = layout(h.rows, h.dim);
  expect.catalog_id = h.catalog_id;
  expect.generation = h.generation;
  expect.change_id = h.change_id;
  expect.checksum = header_checksum(expect);
  if (std::memcmp(&expect, &h, sizeof h) != 0) return reject("damaged header (section offsets do not match its shape)");
  if (map->size() != h.file_size) {
    return reject("torn (" + std::to_string(map->size()) + " bytes, its header says " + std::to_string(h.file_size) +
                  ")");
  }
  Trailer t;
  std::memcpy(&t, map->data() + h.trailer_offset, sizeof t);
  if (std::memcmp(t.magic, kTrailerMagic, sizeof kTrailerMagic) != 0 || t.header_checksum != h.checksum ||
      t.catalog_id != h.catalog_id || t.generation != h.generation) {
    return reject("torn (its trailer does not match its header)");
  }
  VectorFile vf;
  vf.stamp = {h.catalog_id, h.generation, h.change_id};
  const uint8_t* base = map->data();
  vf.table.dim = int(h.dim);
  // Sections are 64-byte aligned in a page-aligned mapping: the casts are aligned.
  vf.table.embeddings = {reinterpret_cast<const uint16_t*>(base + h.embeddings_offset), size_t(h.rows * h.dim)};
  vf.table.video = {reinterpret_cast<const int64_t*>(base + h.video_offset), size_t(h.rows)};
  vf.table.time = {reinterpret_cast<const double*>(base + h.time_offset), size_t(h.rows)};
  vf.table.storage = std::move(map);
  return vf;
}

}  // namespace clipfind::index
