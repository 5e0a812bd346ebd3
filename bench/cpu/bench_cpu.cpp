// Throughput and latency of the CPU backend on random weights of a real
// model's shapes (speed does not depend on the values; the names are
// tests/support/random_model.h's: B/32, the default, or B/16-SigLIP, ...):
//   images/s at batch 1, 8, 32; texts/s at batch 1, 8, 32 of the full
//   context (CLIP: 77 tokens; SigLIP: 64, as it pads every text to its
//   context); CLIP only: latency of one short query (7 tokens: "a photo of a
//   dog" with start/end), which for SigLIP is the 64-token text at batch 1.
// Prints one tab-separated line per case, in the format run_ort.py prints too,
// so compare.sh can alternate the two and put the medians side by side:
//   engine  case  batch  seconds_per_call(median)  items_per_s  GFLOP/s
// GFLOP/s counts the full model's FLOPs (bench/model_flops.h: B/32 4.41 GMAC
// per image, 2.98 per 77-token text) even though the last layer runs only
// for the pooled token.
//
//   bench_cpu [--model B/32|B/16-SigLIP] [--threads N] [--min-seconds S]
//             [--cases image,query,text] [--precision fp32|bf16|int8]
//             [--image-batches 1,8,32]
// The engine column is "ours" for fp32, else "ours-PRECISION".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "batch_list.h"
#include "clip/backend.h"
#include "model_flops.h"
#include "support/random_model.h"

namespace {

using namespace clip;

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

void report(const std::string& what, int batch, double seconds, double flops_per_item) {
  std::printf("%s\t%s\t%d\t%.6f\t%.2f\t%.1f\n", engine_label.c_str(), what.c_str(), batch, seconds, batch / seconds,
              flops_per_item * batch / seconds / 1e9);
  std::fflush(stdout);
}

// The ids run_ort.py feeds ONNX Runtime for CLIP (below 49000, or the vocabulary).
TextBatch texts(const TextConfig& c, int count, int seq, int variant) {
  const int id_range = std::min(49000, c.vocab_size);
  TextBatch b;
  b.count = count;
  b.seq_len = seq;
  for (int i = 0; i < count; ++i) {
    b.ids.push_back(c.bos_token_id);
    for (int t = 1; t < seq - 1; ++t) b.ids.push_back((variant * 7919 + i * 104729 + t * 31) % id_range);
    b.ids.push_back(c.eos_token_id);
    b.pool_at.push_back(seq - 1);
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "B/32";
  int threads = 2;
  double min_seconds = 2.0;
  std::string cases = "image,query,text";
  std::vector<int> image_batches = {1, 8, 32};
  Precision precision = Precision::FP32;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model"))
      model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--precision"))
      precision = parse_precision(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--min-seconds"))
      min_seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--cases"))
      cases = argv[i + 1];
    else if (!std::strcmp(argv[i], "--image-batches")) {
      const auto batches = bench::batch_list(argv[i + 1], "--image-batches");
      if (!batches) return 2;
      image_batches = *batches;
    } else {
      std::fprintf(stderr,
                   "usage: bench_cpu [--model B/32|B/16-SigLIP] [--threads N] [--min-seconds S] "
                   "[--cases image,query,text] [--precision fp32|bf16|int8] [--image-batches 1,8,32]\n");
      return 2;
    }
  }
  ClipConfig config;
  std::unique_ptr<Backend> backend;
  try {
    config = testing::make_config(testing::model_shape(model));
    backend = make_cpu_backend(config, testing::random_weights(config, 42), threads, precision);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_cpu: %s\n", e.what());
    return 2;
  }
  if (precision != Precision::FP32) engine_label += std::string("-") + precision_name(precision);
  std::fprintf(stderr, "# %s, %s\n", model.c_str(), backend->name().c_str());

  const VisionConfig& vc = *config.vision;
  const TextConfig& tc = *config.text;
  if (cases.find("image") != std::string::npos) {
    const int size = vc.image_size;
    for (int batch : image_batches) {
      Tensor pixels[2] = {Tensor({batch, 3, size, size}), Tensor({batch, 3, size, size})};
      for (int v = 0; v < 2; ++v)
        for (size_t i = 0; i < pixels[v].numel(); ++i) pixels[v].data[i] = float((i * 37 + v * 11) % 255) / 64.f - 2.f;
      const double s = median_seconds([&](int i) { backend->encode_images(pixels[i % 2]); }, min_seconds);
      report("image", batch, s, bench::image_flops(config));
    }
  }
  // SigLIP runs every text padded to its context: a query costs what the
  // full-length text at batch 1 does.
  if (cases.find("query") != std::string::npos && !tc.pool_last) {
    const TextBatch query[2] = {texts(tc, 1, 7, 0), texts(tc, 1, 7, 1)};
    report("text7", 1, median_seconds([&](int i) { backend->encode_texts(query[i % 2]); }, min_seconds / 2),
           bench::text_flops(config, 7));
  }
  if (cases.find("text") != std::string::npos) {
    const int seq = tc.max_positions;
    for (int batch : {1, 8, 32}) {
      const TextBatch b[2] = {texts(tc, batch, seq, 0), texts(tc, batch, seq, 1)};
      report("text" + std::to_string(seq), batch,
             median_seconds([&](int i) { backend->encode_texts(b[i % 2]); }, min_seconds),
             bench::text_flops(config, seq));
    }
  }
  return 0;
}
