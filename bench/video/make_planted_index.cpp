// Writes an index of planted frames for the end-to-end search benchmark:
// FRAMES unit vectors of DIM floats in hour-long "videos" sampled every
// second, catalogued as if MODEL_DIR had embedded them (so `clipfind search`
// accepts the index and embeds its queries with that model). KIND: random
// (uniform on the sphere, the old benchmark's) or clustered (CLIP-like,
// planted_clusters.h, the default).
//
//   make_planted_index INDEX_DIR MODEL_DIR [FRAMES] [DIM] [KIND] [ann]
//
// Writes DIR/vectors.f16 too, as `clipfind index` does at the end of a run,
// and with `ann` DIR/vectors.ann (`clipfind index --ann on`).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include "index/ann_catalog.h"
#include "index/catalog.h"
#include "index/fingerprint.h"
#include "planted_clusters.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s INDEX_DIR MODEL_DIR [FRAMES] [DIM] [random|clustered] [ann]\n", argv[0]);
    return 2;
  }
  namespace idx = clipfind::index;
  const std::filesystem::path dir = argv[1], model = std::filesystem::absolute(argv[2]);
  const size_t frames = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1000000;
  const int dim = argc > 4 ? std::atoi(argv[4]) : 512;
  const bool clustered = argc <= 5 || std::string(argv[5]) != "random";
  const bool ann = argc > 6 && std::string(argv[6]) == "ann";
  const planted::Clusters clusters(dim);
  constexpr size_t kPerVideo = 3600;
  const auto t0 = std::chrono::steady_clock::now();
  idx::Catalog cat(dir, true);
  const std::string fp = idx::model_fingerprint(model);
  cat.set_meta("model", fp);
  cat.set_meta("model_path", model.string());
  cat.set_meta("dim", std::to_string(dim));
  cat.set_meta("interval", "1.000000");
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  for (size_t first = 0, v = 0; first < frames; first += kPerVideo, ++v) {
    const size_t n = std::min(kPerVideo, frames - first);
    std::vector<double> times(n);
    std::vector<float> emb = clustered ? clusters.video(v, n) : std::vector<float>(n * size_t(dim));
    for (size_t r = 0; r < n; ++r) {
      times[r] = double(r);
      if (clustered) continue;
      float* row = emb.data() + r * size_t(dim);
      float norm = 0;
      for (int c = 0; c < dim; ++c) {
        row[c] = g(rng);
        norm += row[c] * row[c];
      }
      for (int c = 0; c < dim; ++c) row[c] /= std::sqrt(norm);
    }
    idx::VideoRecord rec;
    char name[64];
    std::snprintf(name, sizeof name, "/planted/video_%05zu.mp4", v);
    rec.path = name;
    rec.size = 1;
    rec.duration = double(n);
    rec.fps = 1;
    rec.model = fp;
    rec.status = "ok";
    cat.put_video(rec, times, emb, dim);
  }
  const auto t1 = std::chrono::steady_clock::now();
  cat.update_vector_file();
  const auto t2 = std::chrono::steady_clock::now();
  if (ann) idx::update_ann_file(cat, idx::AnnMode::on);
  const auto t3 = std::chrono::steady_clock::now();
  std::printf("%s: %zu %s frames x %d dims: catalog %.1f s, vectors.f16 %.1f s, vectors.ann %.1f s\n", dir.c_str(),
              frames, clustered ? "clustered" : "random", dim, std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count(), std::chrono::duration<double>(t3 - t2).count());
  return 0;
}
