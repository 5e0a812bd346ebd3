// Exact cosine search over frame embeddings, and merging neighbouring hits of
// one video into segments (a scene that matches yields one result, not ten).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "index/catalog.h"

namespace clipfind::index {

struct Hit {
  size_t row = 0;
  float score = 0.0f;
};

// Row `row` of `table` . `query` (dim floats): the exact score.
float row_score(const FrameTable& table, size_t row, const float* query);
// Best first: higher score, then lower row.
bool ranks_before(const Hit& a, const Hit& b);

// The k rows of `table` with the largest dot product with `query` (both
// L2-normalised, so this is cosine similarity), best first; ties by row.
std::vector<Hit> top_k(const FrameTable& table, const float* query, size_t k);

struct Segment {
  int64_t video = 0;
  double start = 0.0;  // first matching frame
  double end = 0.0;    // last matching frame
  double time = 0.0;   // best frame
  float score = 0.0f;  // best frame's score
  // SigLIP indexes: the best frame's match_probability (the frame `score`
  // and `time` are of), set by add_probabilities (query.h); else empty.
  std::optional<float> probability;
};

// SigLIP's probability that a frame and the query match, from their cosine
// and the model's logit_scale (log-temperature, as stored) and logit_bias:
// sigmoid(exp(logit_scale) * cosine + logit_bias), the sigmoid that SigLIP's
// pairwise loss trains. Computed in double without overflow for any finite
// inputs (a logit of +-1e30 gives 1 or 0, never NaN). Ranking stays by
// cosine: this is monotonic in it.
float match_probability(float cosine, float logit_scale, float logit_bias);

// Groups hits (best first) of one video whose times are at most `gap` seconds
// apart into segments; returns at most k, best score first.
std::vector<Segment> merge_segments(const FrameTable& table, const std::vector<Hit>& hits, double gap, size_t k);

// Both steps: enough candidates that merging still leaves k segments in the
// usual case (kCandidatesPerResult per result). With `ann` (built from this
// table's catalog state, ann.h) the candidates are its re-ranked ones while
// they number at most kAnnMaxCandidates; past that it scans.
class AnnIndex;
std::vector<Segment> search(const FrameTable& table, const float* query, size_t k, double gap,
                            const AnnIndex* ann = nullptr);
constexpr size_t kAnnMaxCandidates = 20000;
constexpr size_t kCandidatesPerResult = 20;

}  // namespace clipfind::index
