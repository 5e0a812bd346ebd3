#include "index/frame_table.h"

#include "index/half.h"

namespace clipfind::index {

float FrameTable::at(size_t r, int col) const { return half_to_float(row(r)[col]); }

FrameTableBuilder::FrameTableBuilder(int dim) : dim_(dim < 0 ? 0 : dim) {}

void FrameTableBuilder::reserve(size_t rows) {
  video_.reserve(rows);
  time_.reserve(rows);
  embeddings_.reserve(rows * size_t(dim_));
}

void FrameTableBuilder::add(int64_t video, double time, const float* e) {
  video_.push_back(video);
  time_.push_back(time);
  for (int c = 0; c < dim_; ++c) embeddings_.push_back(float_to_half(e[c]));
}

void FrameTableBuilder::add_half(int64_t video, double time, const uint16_t* e) {
  video_.push_back(video);
  time_.push_back(time);
  embeddings_.insert(embeddings_.end(), e, e + dim_);
}

FrameTable FrameTableBuilder::build() {
  // The vectors move into shared storage; moving keeps their buffers, so the
  // spans taken below stay valid for as long as the storage lives.
  struct Owned {
    std::vector<int64_t> video;
    std::vector<double> time;
    std::vector<uint16_t> embeddings;
  };
  auto owned = std::make_shared<Owned>(Owned{std::move(video_), std::move(time_), std::move(embeddings_)});
  video_.clear();
  time_.clear();
  embeddings_.clear();
  FrameTable t;
  t.dim = dim_;
  t.video = owned->video;
  t.time = owned->time;
  t.embeddings = owned->embeddings;
  t.storage = std::move(owned);
  return t;
}

}  // namespace clipfind::index
