// Tiled multi-head attention for long sequences and any head_dim that is a
// multiple of 8 up to 128 (SigLIP: 196..1024 tokens, head_dim 72), fp16 or
// bf16, on mma.sync tensor cores; see flash_attention.cu for the tiling.
// attention() (attention.cuh) dispatches to it as AttnImpl::Flash.
#pragma once
#include "clip/cuda/attention.cuh"

namespace clip::cuda {

// Whether the kernel takes the shape, whatever the type: head_dim a multiple
// of 8 from 8 to 128, batch and heads within the grid's limits, and a
// positive scale.
bool flash_shape_supported(const AttnShape& shape);

// Launches on exec.stream. The caller checks the type (fp16/bf16), the shape
// (flash_shape_supported) and that both buffers are 16-byte aligned.
void launch_flash_attention(const Exec& exec, const void* qkv, void* out, DType type, const AttnShape& shape);

}  // namespace clip::cuda
