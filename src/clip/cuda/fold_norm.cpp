#include "clip/cuda/fold_norm.h"

#include <string>

#include "clip/error.h"

namespace clip::cuda {

LinearWeights fold_norm(const LinearWeights& l, const NormWeights& norm, const std::string& what) {
  const Tensor& w = l.weight;
  if (w.shape.size() != 2 || norm.weight.shape.size() != 1 || norm.bias.shape != norm.weight.shape ||
      w.shape[1] != norm.weight.shape[0] || w.numel() != Tensor::numel_of(w.shape) ||
      norm.weight.numel() != static_cast<size_t>(norm.weight.shape[0]) || norm.bias.numel() != norm.weight.numel() ||
      l.bias.shape != std::vector<int64_t>{w.shape[0]} || l.bias.numel() != static_cast<size_t>(w.shape[0]))
    throw Error("CUDA backend: cannot fold the LayerNorm before " + what + ": shapes do not match");
  const int64_t out = w.shape[0], in = w.shape[1];
  LinearWeights f;
  f.weight = Tensor(w.shape);
  f.bias = Tensor(l.bias.shape);
  const float* gamma = norm.weight.data.data();
  const float* beta = norm.bias.data.data();
  for (int64_t o = 0; o < out; ++o) {
    const float* row = w.data.data() + o * in;
    float* dst = f.weight.data.data() + o * in;
    double b = l.bias.data[o], sum = 0;
    for (int64_t i = 0; i < in; ++i) {
      sum += double(row[i]) * gamma[i];
      b += double(row[i]) * beta[i];
    }
    const double mean = sum / double(in);
    for (int64_t i = 0; i < in; ++i) dst[i] = static_cast<float>(double(row[i]) * gamma[i] - mean);
    f.bias.data[o] = static_cast<float>(b);
  }
  return f;
}

}  // namespace clip::cuda
