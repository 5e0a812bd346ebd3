// What `clipfind search` and `clipfind serve` share between an index on disk
// and a query embedding: which model embeds queries, how close hits merge,
// narrowing to some videos, and the search itself.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/catalog.h"
#include "index/search.h"

namespace clipfind::index {

// The model folder to embed queries with: `model_dir` when given, else the one
// the index was built with. Throws when the index is empty, when the folder's
// model family differs from the index's (family_mismatch), or when its
// fingerprint does (embeddings of two models cannot be compared).
std::string query_model(const Catalog& catalog, const std::string& model_dir);

// "" unless the index records a model and the model in `model_dir` is of
// another family (config.json's, model_family()); then what is wrong, naming
// the index, its model and both families: "IDX: built with a siglip model
// (PATH) but DIR is a clip model" (or "... from DIR, which now holds a clip
// model" when it is the same folder). Search (query_model) and `clipfind index`
// (unless --reindex) refuse with it and their advice, before any change.
std::string family_mismatch(const Catalog& catalog, const std::string& model_dir);

// Sets each segment's probability (match_probability of its score: the best
// frame's) when the index's model is SigLIP with a logit_scale and
// logit_bias; leaves them empty otherwise (CLIP's softmax over a batch has no
// per-pair probability).
void add_probabilities(std::vector<Segment>& segments, const ModelRecord& model);
// Whether add_probabilities gives this model's segments a probability.
bool has_probabilities(const ModelRecord& model);

// What to tell a user whose query runs in `query_precision` (e.g. "fp32")
// when the index's embeddings came from another precision (or several), or
// "" when they agree or the index did not record it. Embeddings of one model
// still compare across precisions (cosine >= 0.999 between them), but scores
// shift slightly, so say so rather than stay silent.
std::string precision_note(const Catalog& catalog, const std::string& query_precision);

// Hits of one video this many seconds apart merge into one segment: twice the
// sampling interval the index was built with.
double default_gap(const Catalog& catalog);

// Whether the fnmatch(3) pattern `glob` names the video at absolute `path` the
// way a user sees it: its file name ("a.mp4"), any trailing part of its path
// (the path relative to the folder given to `clipfind index`: "trips/a.mp4"),
// or the whole absolute path. `*` also crosses '/'.
bool video_matches(const std::string& glob, const std::string& path);

// Why a search can find nothing, or "" when some chosen video has frames to
// rank: the index is empty, `filter` (how the user narrowed the search, e.g.
// "--video 'x*'"; empty: no filter) chose none of the videos (naming those
// there are), or every chosen video failed to index or has no frames (naming
// them and why). `chosen` says which videos the filter keeps.
std::string why_nothing_found(const std::vector<VideoRecord>& videos,
                              const std::function<bool(const VideoRecord&)>& chosen, const std::string& filter);
// The reason to give when that found frames to rank but the search still
// returned none (frames written between reading the list and the rows).
inline constexpr const char* kNoRowsToRank = "no frames of the chosen videos to search";

// The rows of videos that `keep` accepts, so top-k ranks only those.
FrameTable select_videos(const FrameTable& table, const std::function<bool(int64_t video)>& keep);

// Segments for an L2-normalised query of `dim` floats, best first. Throws,
// naming `index_name`, when the table holds embeddings of another size.
// `ann`: the table's ANN index (load_ann), for candidates; none: exact scan.
std::vector<Segment> search_embedding(const FrameTable& table, const float* query, int dim, size_t k, double gap,
                                      const std::string& index_name, const AnnIndex* ann = nullptr);

}  // namespace clipfind::index
