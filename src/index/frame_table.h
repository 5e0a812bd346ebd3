// The searchable frames of an index: row i is video[i] at time[i] with
// embedding row i (dim half floats). Read-only views over memory that the
// table shares: a mapped vectors.f16 file (the usual case, see vector_file.h)
// or vectors filled by a FrameTableBuilder (the SQLite path, tests, filters).
//
// Copies are cheap and share the rows; the memory lives as long as any copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace clipfind::index {

struct FrameTable {
  int dim = 0;
  std::span<const int64_t> video;        // catalog video id per row
  std::span<const double> time;          // seconds from the video's start
  std::span<const uint16_t> embeddings;  // rows * dim, IEEE binary16 (see half.h for why)
  std::shared_ptr<const void> storage;   // what keeps the three spans valid

  size_t rows() const { return time.size(); }
  const uint16_t* row(size_t r) const { return embeddings.data() + r * size_t(dim); }
  float at(size_t row, int col) const;
};

// Collects rows, then hands them over as a FrameTable.
class FrameTableBuilder {
 public:
  explicit FrameTableBuilder(int dim);
  void reserve(size_t rows);
  // `embedding`: dim floats, rounded to half precision.
  void add(int64_t video, double time, const float* embedding);
  // `embedding`: dim half floats, copied as they are.
  void add_half(int64_t video, double time, const uint16_t* embedding);
  size_t rows() const { return time_.size(); }
  // The table of the rows added so far; the builder is empty afterwards.
  FrameTable build();

 private:
  int dim_;
  std::vector<int64_t> video_;
  std::vector<double> time_;
  std::vector<uint16_t> embeddings_;
};

}  // namespace clipfind::index
