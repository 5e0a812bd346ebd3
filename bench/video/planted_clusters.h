// Planted frames that behave like CLIP image embeddings, for the search
// benchmarks (make_planted_index, bench_ann). A hierarchical mixture of
// Gaussians, each level a random offset added to its parent:
//
//   shared mean (norm 1)  ->  topic (1,000 of them, norm 0.8)  ->  video
//   (norm 0.5)  ->  scene (30 frames, norm 0.4)  ->  frame (norm 0.15)
//
// normalised. Why this and not uniform noise: CLIP's image embeddings lie in
// a narrow cone (unrelated images: cosine ~0.5 here, 0.4-0.6 with ViT-B/32),
// frames of one scene are near-duplicates (~0.99) and of one video close
// (~0.9); uniform noise has none of that structure and makes every
// neighbour equally far, the worst case for an inverted-file index and the
// easiest for nothing. Why not the shapes model's frames: it knows a handful
// of shapes and colours, so its embeddings form a few tight clusters, not
// the variety of real footage. Queries (query()) are frames plus noise, of
// norm 0.5 by default (cosine ~0.9 to their source: an image query, a
// near-duplicate); norm 1 (cosine ~0.7) is closer to a text query, which
// lands near but not on the frames it matches, and is harder for any ANN
// index: its exact top 10 is decided by differences the noise makes.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace planted {

class Clusters {
 public:
  explicit Clusters(int dim, int topics = 1000) : dim_(dim), topics_(topics) {
    std::mt19937_64 rng(12345);
    mean_ = gaussian(rng, 1.0f);
    topic_.reserve(size_t(topics) * dim);
    for (int t = 0; t < topics; ++t) {
      const auto o = gaussian(rng, 0.8f);
      for (int i = 0; i < dim; ++i) topic_.push_back(mean_[i] + o[i]);
    }
  }

  // Video `video`'s `frames` rows (unit floats, row-major): the same every
  // call, so any slice of a catalog can be made again (threads, updates).
  std::vector<float> video(uint64_t video, size_t frames, size_t frames_per_scene = 30) const {
    std::mt19937_64 rng(video * 0x9E3779B97F4A7C15ull + 1);
    const float* topic = &topic_[size_t(rng() % uint64_t(topics_)) * dim_];
    std::vector<float> base = gaussian(rng, 0.5f), scene(dim_), out(frames * size_t(dim_));
    for (int i = 0; i < dim_; ++i) base[i] += topic[i];
    for (size_t r = 0; r < frames; ++r) {
      if (r % frames_per_scene == 0) {
        scene = gaussian(rng, 0.4f);
        for (int i = 0; i < dim_; ++i) scene[i] += base[i];
      }
      const auto noise = gaussian(rng, 0.15f);
      float* row = &out[r * dim_];
      for (int i = 0; i < dim_; ++i) row[i] = scene[i] + noise[i];
      normalise(row);
    }
    return out;
  }

  // A query near `frame` (dim floats): the frame plus noise of norm `noise`.
  std::vector<float> query(const float* frame, uint64_t seed, float noise = 0.5f) const {
    std::mt19937_64 rng(seed);
    auto q = gaussian(rng, noise);
    for (int i = 0; i < dim_; ++i) q[i] += frame[i];
    normalise(q.data());
    return q;
  }

 private:
  // A Gaussian vector whose expected norm is `norm`.
  std::vector<float> gaussian(std::mt19937_64& rng, float norm) const {
    std::normal_distribution<float> g(0.0f, norm / std::sqrt(float(dim_)));
    std::vector<float> v(dim_);
    for (float& x : v) x = g(rng);
    return v;
  }
  void normalise(float* v) const {
    double n = 0;
    for (int i = 0; i < dim_; ++i) n += double(v[i]) * v[i];
    const float s = float(1.0 / std::sqrt(n));
    for (int i = 0; i < dim_; ++i) v[i] *= s;
  }
  int dim_, topics_;
  std::vector<float> mean_, topic_;
};

}  // namespace planted
