// Element-type conversion of device buffers: the weights (float32 on the
// host) become the chosen precision once at load; the tests read results
// back as float32.
#pragma once
#include <string>

#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// dst[i] = (dst_type) src[i] for i < n. src and dst must not overlap unless
// they are the same buffer of the same type (then it is a no-op copy).
void convert(const Exec& exec, const void* src, DType src_type, void* dst, DType dst_type, size_t n);

// Whether this binary holds code the current device can run (a GPU older
// than the compiled architectures has none). False with *why otherwise.
bool kernels_runnable(std::string* why);

}  // namespace clip::cuda
