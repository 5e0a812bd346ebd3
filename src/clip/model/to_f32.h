// to_f32: floating tensors of any stored precision into float32.
#pragma once
#include <cstdint>
#include <vector>

#include "clip/model/safetensors.h"
#include "clip/tensor.h"

namespace clip {

// Copies a floating tensor (F32, F16, BF16, F64) into float32, checking the
// shape. Throws clip::Error naming the tensor and file on dtype/shape mismatch.
Tensor to_f32(const TensorView& view, const std::vector<int64_t>& expected_shape);

}  // namespace clip
