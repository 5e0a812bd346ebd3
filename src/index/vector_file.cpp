#include "index/vector_file.h"

#include <cstddef>
#include <cstring>
#include <vector>

#include "clip/model/mmap_file.h"
#include "index/catalog.h"  // index::Error
#include "index/file_io.h"

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

}  // namespace

// ---------------------------------------------------------------- writing

struct VectorFileWriter::Impl {
  explicit Impl(const fs::path& file) : out(file) {}
  AtomicFileWriter out;
  uint32_t dim = 0;
  // Embeddings stream to the file through this buffer; ids and times (16
  // bytes a row) are kept until the row count, hence their offsets, is known.
  std::vector<uint16_t> buffer;
  uint64_t written = 0;  // bytes of embeddings already in the file
  std::vector<int64_t> video;
  std::vector<double> time;

  void flush() {
    const size_t n = buffer.size() * sizeof(uint16_t);
    out.write_at(buffer.data(), n, kHeaderBytes + written);
    written += n;
    buffer.clear();
  }
};

namespace {
int checked_dim(const fs::path& file, int dim) {
  if (dim <= 0 || dim > kMaxDim) throw Error(file.string() + ": cannot store embeddings of dim " + std::to_string(dim));
  return dim;
}
}  // namespace

VectorFileWriter::VectorFileWriter(const fs::path& file, int dim) {
  checked_dim(file, dim);
  impl_ = std::make_unique<Impl>(file);
  impl_->dim = uint32_t(dim);
  impl_->buffer.reserve(size_t(1) << 21);  // 4 MB between writes
}

VectorFileWriter::~VectorFileWriter() = default;

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
  w.out.write_at(w.video.data(), w.video.size() * sizeof(int64_t), h.video_offset);
  w.out.write_at(w.time.data(), w.time.size() * sizeof(double), h.time_offset);
  Trailer trailer{};
  std::memcpy(trailer.magic, kTrailerMagic, sizeof kTrailerMagic);
  trailer.header_checksum = h.checksum;
  trailer.catalog_id = h.catalog_id;
  trailer.generation = h.generation;
  w.out.write_at(&trailer, sizeof trailer, h.trailer_offset);
  // The header goes last: only now are the row count and offsets known.
  std::vector<char> page(kHeaderBytes, 0);
  std::memcpy(page.data(), &h, sizeof h);
  w.out.write_at(page.data(), page.size(), 0);
  w.out.commit(h.file_size);
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
  Header h;
  const std::string bad =
      read_checked_header(map->data(), map->size(), kHeaderBytes, kMagic, kVersion, "vector file", &h);
  if (!bad.empty()) return reject(bad);
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
