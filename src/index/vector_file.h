// DIR/vectors.f16: the catalog's searchable frames in one file that search
// maps instead of reading every embedding back from SQLite (1M frames: a few
// seconds from SQLite, milliseconds mapped). SQLite stays the source of
// truth; this file is a cache of one catalog state, named by its stamp.
//
// Layout (little-endian, every section 64-byte aligned, offsets from the start):
//
//   header      VectorFileHeader, zero-padded to kHeaderBytes
//   embeddings  rows * dim uint16 (IEEE binary16), row-major
//   video       rows int64: catalog video ids
//   time        rows float64: seconds
//   trailer     VectorFileTrailer: the header's checksum and stamp again
//
// Rows are ordered by video id, then time (as the SQLite path orders them).
//
// Trust rules (open_vector_file, then Catalog::load_frames): the file is used
// only when the header's checksum, version and layout and the file's size
// agree, the trailer repeats the header, and the stamp equals the catalog's
// current one. Anything else (a missing, torn, foreign-version or stale file)
// is reported and bypassed, never used.
//
// Writing is atomic: a temporary file beside it, fsync, rename over the old
// one, fsync of the folder. A process killed at any moment leaves either the
// old file or the new one (and perhaps a temporary file, removed by the next
// writer), never a mix.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "index/file_io.h"  // remove_stale_temporaries
#include "index/frame_table.h"

namespace clipfind::index {

// Which catalog state a vector file holds: a random id given to the catalog
// when it was created (a deleted and re-created index starts over with a new
// one), a counter that every change of its videos or frames increments, and
// a random id drawn at each change (see catalog.cpp for why both).
struct CatalogStamp {
  uint64_t catalog_id = 0;
  uint64_t generation = 0;
  uint64_t change_id = 0;
  bool operator==(const CatalogStamp&) const = default;
};

// Writes rows one by one into a temporary file; commit() renames it into
// place. Destroying a writer that was not committed removes the temporary
// file. Errors are index::Error naming the file.
class VectorFileWriter {
 public:
  VectorFileWriter(const std::filesystem::path& file, int dim);
  ~VectorFileWriter();
  VectorFileWriter(const VectorFileWriter&) = delete;
  VectorFileWriter& operator=(const VectorFileWriter&) = delete;

  // Rows in (video, time) order; embedding: dim half floats.
  void add(int64_t video, double time, const uint16_t* embedding);
  void commit(const CatalogStamp& stamp);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A vector file that passed every structural check: its table and the
// catalog state it was written from.
struct VectorFile {
  FrameTable table;
  CatalogStamp stamp;
};

// Maps `file` and checks its header, layout, size and trailer. nullopt, with
// *why saying what is wrong (missing, torn, another format version ...), when
// it cannot be used. The caller still compares the stamp with the catalog's.
std::optional<VectorFile> open_vector_file(const std::filesystem::path& file, std::string* why);

}  // namespace clipfind::index
