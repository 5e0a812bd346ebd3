// Whether several indexes can be combined, by `clipfind merge` into one or by
// `clipfind search --index A --index B` at query time: their embeddings must
// come from one model (so cosines compare), and no video may be in two.
#pragma once
#include <string>
#include <vector>

#include "index/catalog.h"

namespace clipfind::index {

// Throws Error naming the two indexes and what differs when any catalog's
// model disagrees with the first's (fingerprint, embedding width, family),
// or one has no model recorded (nothing was ever indexed into it).
// Precisions may differ: embeddings of one model in fp32, bf16, int8 ...
// agree to cosine >= 0.999, as in an index updated in another precision.
void check_same_model(const std::vector<const Catalog*>& catalogs);

// Throws Error naming the video and both indexes when a path is in two of
// the catalogs (two shards of different splits, or a shard given twice).
void check_disjoint_videos(const std::vector<const Catalog*>& catalogs);

// Throws Error naming both when frames were sampled differently (the
// catalogs' "sampling" key: "every 1.000000", "keyframes" ...): search
// merges hits by the sampling interval, which one merged index has once.
void check_same_sampling(const std::vector<const Catalog*>& catalogs);

}  // namespace clipfind::index
