// A dense, row-major float32 tensor owned on the host. Small on purpose:
// the engine needs shapes, contiguous storage and nothing more.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace clip {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> s) : shape(std::move(s)), data(numel_of(shape)) {}

  static size_t numel_of(const std::vector<int64_t>& s) {
    size_t n = 1;
    for (int64_t d : s) n *= static_cast<size_t>(d);
    return n;
  }
  size_t numel() const { return data.size(); }
  int64_t dim(size_t i) const { return shape.at(i); }
  float* ptr() { return data.data(); }
  const float* ptr() const { return data.data(); }
  bool empty() const { return data.empty(); }
};

// "[768, 3, 32, 32]" for error messages.
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace clip
