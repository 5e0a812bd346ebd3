// Throughput and latency of the CPU backend on ViT-B/32 shapes with random
// weights (speed does not depend on the values):
//   images/s at batch 1, 8, 32; texts/s at batch 1, 8, 32 of 77 tokens;
//   latency of one short query (7 tokens: "a photo of a dog" with start/end)
//   and of one 77-token text.
// Prints one tab-separated line per case, in the format run_ort.py prints too,
// so compare.sh can alternate the two and put the medians side by side:
//   engine  case  batch  seconds_per_call(median)  items_per_s  GFLOP/s
// GFLOP/s counts the full model's FLOPs (4.41 GMAC per image, 2.98 per
// 77-token text) even though the last layer runs only for the pooled token.
//
//   bench_cpu [--threads N] [--min-seconds S] [--cases image,query,text]
//             [--precision fp32|bf16|int8]
// The engine column is "ours" for fp32, else "ours-PRECISION".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "clip/backend.h"

namespace {

using namespace clip;

// ViT-B/32 (openai/clip-vit-base-patch32).
constexpr int kVisionHidden = 768, kVisionLayers = 12, kVisionHeads = 12, kVisionInter = 3072;
constexpr int kPatch = 32, kImage = 224;
constexpr int kTextHidden = 512, kTextLayers = 12, kTextHeads = 8, kTextInter = 2048;
constexpr int kVocab = 49408, kPositions = 77, kProjection = 512;

// Cheap deterministic fill: mt19937 over 150 M parameters would dominate
// the start-up time.
class Filler {
 public:
  Tensor operator()(std::vector<int64_t> shape, float scale, float center = 0.f) {
    Tensor t(std::move(shape));
    for (float& x : t.data) {
      state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
      x = center + scale * (static_cast<float>(state_ >> 40) / 16777216.0f * 2.f - 1.f);
    }
    return t;
  }

 private:
  uint64_t state_ = 42;
};

std::vector<LayerWeights> random_layers(Filler& f, int n, int64_t h, int64_t inter) {
  std::vector<LayerWeights> layers(n);
  const float s = 1.0f / std::sqrt(float(h)), s2 = 1.0f / std::sqrt(float(inter));
  for (LayerWeights& l : layers) {
    l.ln1 = {f({h}, 0.1f, 1.f), f({h}, 0.1f)};
    l.ln2 = {f({h}, 0.1f, 1.f), f({h}, 0.1f)};
    for (LinearWeights* p : {&l.q, &l.k, &l.v, &l.out}) *p = {f({h, h}, s), f({h}, 0.1f)};
    l.fc1 = {f({inter, h}, s), f({inter}, 0.1f)};
    l.fc2 = {f({h, inter}, s2), f({h}, 0.1f)};
  }
  return layers;
}

void vit_b32(ClipConfig& config, ModelWeights& weights) {
  Filler f;
  VisionConfig vc;
  vc.hidden_size = kVisionHidden;
  vc.intermediate_size = kVisionInter;
  vc.num_layers = kVisionLayers;
  vc.num_heads = kVisionHeads;
  vc.image_size = kImage;
  vc.patch_size = kPatch;
  TextConfig tc;
  tc.hidden_size = kTextHidden;
  tc.intermediate_size = kTextInter;
  tc.num_layers = kTextLayers;
  tc.num_heads = kTextHeads;
  tc.vocab_size = kVocab;
  tc.max_positions = kPositions;
  config.vision = vc;
  config.text = tc;
  config.projection_dim = kProjection;

  VisionWeights v;
  v.class_embedding = f({kVisionHidden}, 1.f);
  v.patch_embedding = f({kVisionHidden, 3, kPatch, kPatch}, 0.02f);
  v.position_embedding = f({vc.num_positions(), kVisionHidden}, 0.1f);
  v.pre_ln = {f({kVisionHidden}, 0.1f, 1.f), f({kVisionHidden}, 0.1f)};
  v.layers = random_layers(f, kVisionLayers, kVisionHidden, kVisionInter);
  v.post_ln = {f({kVisionHidden}, 0.1f, 1.f), f({kVisionHidden}, 0.1f)};
  v.projection = {f({kProjection, kVisionHidden}, 0.03f), {}};
  weights.vision = std::move(v);

  TextWeights t;
  t.token_embedding = f({kVocab, kTextHidden}, 0.1f);
  t.position_embedding = f({kPositions, kTextHidden}, 0.1f);
  t.layers = random_layers(f, kTextLayers, kTextHidden, kTextInter);
  t.final_ln = {f({kTextHidden}, 0.1f, 1.f), f({kTextHidden}, 0.1f)};
  t.projection = {f({kProjection, kTextHidden}, 0.04f), {}};
  weights.text = std::move(t);
}

// Multiply-accumulates of one full forward pass (every layer on every token).
double tower_macs(int64_t tokens, int64_t h, int64_t inter, int layers) {
  return layers * (tokens * (4.0 * h * h + 2.0 * h * inter) + 2.0 * tokens * tokens * h) + double(h) * kProjection;
}
double image_macs() {
  const int64_t patches = (kImage / kPatch) * (kImage / kPatch);
  return tower_macs(patches + 1, kVisionHidden, kVisionInter, kVisionLayers) +
         double(patches) * kVisionHidden * 3 * kPatch * kPatch;
}
double text_macs(int64_t tokens) { return tower_macs(tokens, kTextHidden, kTextInter, kTextLayers); }

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Median seconds per call of fn(i) (i rotates the inputs) after two warm-up
// calls, over at least 5 calls and min_seconds.
template <class F>
double median_seconds(F&& fn, double min_seconds) {
  fn(0);
  fn(1);
  std::vector<double> t;
  const double start = now_s();
  for (int i = 0; t.size() < 5 || now_s() - start < min_seconds; ++i) {
    const double t0 = now_s();
    fn(i);
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string engine_label = "ours";

void report(const char* what, int batch, double seconds, double macs_per_item) {
  std::printf("%s\t%s\t%d\t%.6f\t%.2f\t%.1f\n", engine_label.c_str(), what, batch, seconds, batch / seconds,
              2.0 * macs_per_item * batch / seconds / 1e9);
  std::fflush(stdout);
}

TextBatch texts(int count, int seq, int variant) {
  TextBatch b;
  b.count = count;
  b.seq_len = seq;
  for (int i = 0; i < count; ++i) {
    b.ids.push_back(49406);
    for (int t = 1; t < seq - 1; ++t) b.ids.push_back((variant * 7919 + i * 104729 + t * 31) % 49000);
    b.ids.push_back(49407);
    b.pool_at.push_back(seq - 1);
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  double min_seconds = 2.0;
  std::string cases = "image,query,text";
  Precision precision = Precision::FP32;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--precision"))
      precision = parse_precision(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--min-seconds"))
      min_seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--cases"))
      cases = argv[i + 1];
    else {
      std::fprintf(stderr,
                   "usage: bench_cpu [--threads N] [--min-seconds S] [--cases image,query,text] "
                   "[--precision fp32|bf16|int8]\n");
      return 2;
    }
  }
  ClipConfig config;
  ModelWeights weights;
  vit_b32(config, weights);
  const auto backend = make_cpu_backend(config, weights, threads, precision);
  if (precision != Precision::FP32) engine_label += std::string("-") + precision_name(precision);
  weights = {};  // the backend keeps its own packed copy
  std::fprintf(stderr, "# %s\n", backend->name().c_str());

  if (cases.find("image") != std::string::npos) {
    for (int batch : {1, 8, 32}) {
      Tensor pixels[2] = {Tensor({batch, 3, kImage, kImage}), Tensor({batch, 3, kImage, kImage})};
      for (int v = 0; v < 2; ++v)
        for (size_t i = 0; i < pixels[v].numel(); ++i) pixels[v].data[i] = float((i * 37 + v * 11) % 255) / 64.f - 2.f;
      const double s = median_seconds([&](int i) { backend->encode_images(pixels[i % 2]); }, min_seconds);
      report("image", batch, s, image_macs());
    }
  }
  if (cases.find("query") != std::string::npos) {
    const TextBatch query[2] = {texts(1, 7, 0), texts(1, 7, 1)};
    report("text7", 1, median_seconds([&](int i) { backend->encode_texts(query[i % 2]); }, min_seconds / 2),
           text_macs(7));
  }
  if (cases.find("text") != std::string::npos) {
    for (int batch : {1, 8, 32}) {
      const TextBatch b[2] = {texts(batch, kPositions, 0), texts(batch, kPositions, 1)};
      report("text77", batch, median_seconds([&](int i) { backend->encode_texts(b[i % 2]); }, min_seconds),
             text_macs(kPositions));
    }
  }
  return 0;
}
