// What the index's derived files (vectors.f16, vectors.ann) share: a
// checksum for their headers, positioned writes, and the atomic replace
// (temporary file beside the target, fsync, rename, fsync of the folder) that
// leaves a reader either the old file or the new one, never a mix.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

namespace clipfind::index {

// FNV-1a, 64 bits: cheap, and enough to tell a damaged header from a good one.
uint64_t fnv1a(const void* data, size_t n);

// Writes all of [p, p + n) at `offset` of `fd`, retrying short writes; throws
// index::Error naming `file`.
void write_at(int fd, const void* p, size_t n, uint64_t offset, const std::filesystem::path& file);

// A temporary file beside `file` (NAME.tmp.PID.N) that commit() renames over
// it. Destroying a writer that was not committed removes the temporary file.
// Errors are index::Error naming the file.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::filesystem::path& file);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  int fd() const { return fd_; }
  const std::filesystem::path& temp() const { return temp_; }
  void write_at(const void* p, size_t n, uint64_t offset) { index::write_at(fd_, p, n, offset, temp_); }
  // Sets the size to `size`, syncs, renames into place, syncs the folder.
  void commit(uint64_t size);

 private:
  std::filesystem::path file_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// The fixed header at the start of a file of ours (vectors.f16, vectors.ann)
// copied into *h and checked: the file holds header_bytes, then the magic, the
// checksum (header_checksum(h), the format's own overload) and the version.
// "" when usable, else why not, in words ("kind" names the format).
template <class Header, size_t N>
std::string read_checked_header(const void* data, size_t size, size_t header_bytes, const char (&magic)[N],
                                uint32_t version, const char* kind, Header* h) {
  static_assert(sizeof(h->magic) == N, "magic size");
  if (size < header_bytes) return "torn (" + std::to_string(size) + " bytes, shorter than its header)";
  std::memcpy(h, data, sizeof *h);
  if (std::memcmp(h->magic, magic, N) != 0) return std::string("not a clipfind ") + kind + " (bad magic)";
  if (h->checksum != header_checksum(*h)) return "damaged header (checksum mismatch)";
  if (h->version != version)
    return "format version " + std::to_string(h->version) + ", this clipfind reads " + std::to_string(version);
  return "";
}

// fsync(2) of a folder, so that a rename in it survives a crash; throws
// index::Error naming it.
void fsync_folder(const std::filesystem::path& folder);

// Temporary files that writers killed mid-way left beside `file`.
void remove_stale_temporaries(const std::filesystem::path& file);

}  // namespace clipfind::index
