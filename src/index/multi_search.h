// `clipfind search --index A --index B`: several index folders searched as
// if they were one (the shards of a split, without merging them first).
// Results are those of the merged index: the frames are ranked together, and
// rows keep the order a merge gives them (A's videos, then B's), so even
// ties come out alike.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "index/catalog.h"

namespace clipfind::index {

class IndexSet {
 public:
  // Opens each folder (Catalog(dir, false): an error names a missing one);
  // with more than one, checks they combine (compat.h: one model, no video
  // in two), throwing index::Error naming both when not.
  explicit IndexSet(const std::vector<std::string>& dirs);

  // The first index: its model embeds queries (all have the same one).
  const Catalog& first() const { return *catalogs_.front(); }
  const std::vector<std::unique_ptr<Catalog>>& catalogs() const { return catalogs_; }
  std::string name() const;  // "A", or "A + B" for messages

  // Every index's videos, with ids made unique across them (those of the
  // first index unchanged), as the rows of load_frames name them.
  std::vector<VideoRecord> videos() const;
  // All searchable frames, one table. One index: its table as it is (mapped);
  // several: copied into one. *note: why some vectors.f16 was not used ("" if
  // every one was).
  FrameTable load_frames(std::string* note) const;
  // The largest default_gap (query.h) of the indexes.
  double default_gap() const;

 private:
  std::vector<std::unique_ptr<Catalog>> catalogs_;
};

}  // namespace clipfind::index
