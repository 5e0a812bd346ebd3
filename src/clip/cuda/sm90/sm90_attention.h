// Hopper (sm_90a) attention on wgmma for CLIP's and SigLIP's vision towers
// (and SigLIP's text, which has no causal mask): one block per (image, head)
// computes softmax(scale q k^T) v for all of its queries with warpgroup
// MMAs, the softmax in float32 registers. Head_dim 64 or 72.
//
// The sm_80 kernel (attention.cu) runs the same algorithm on mma.sync,
// 16 queries per warp, and reads each K and V fragment out of shared memory
// once per 16 queries; a warpgroup MMA reads it once per 64, and issues
// asynchronously, so one warpgroup's softmax overlaps another's products.
//
// Plain C++ interface: the kernel is compiled for sm_90a alone, in the
// library of the sm90 GEMMs (without it, attention_supported() is false).
#pragma once
#include <cuda_runtime_api.h>

namespace clip::cuda::sm90 {

struct AttnProblem {
  const void* qkv = nullptr;  // [batch*seq, 3*heads*D]: q | k | v, each head's D values contiguous
  void* out = nullptr;        // [batch*seq, heads*D]
  int batch = 0, seq = 0, heads = 0;
  int head_dim = 64;  // D: 64 or 72
  // Warpgroups a block (1-3; 0: the launcher's choice, more than one only
  // for sequences too long for three blocks an SM). Tests and timings set
  // it; a shape that needs the one-warpgroup path keeps one.
  int warpgroups = 0;
  float scale_log2 = 0.f;  // the softmax scale times log2(e)
  bool bf16 = false;       // else fp16
};

// Whether this build has the kernel and it takes the shape: head_dim 64 or
// 72, no causal mask, and a sequence whose K and V fit in shared memory (up
// to about 880 tokens at 64, 780 at 72). The device must also pass
// device_supported().
bool attention_supported(int seq, int head_dim, bool causal);

// Launches the kernel on `stream`; returns the launch's error
// (cudaErrorInvalidValue for a shape attention_supported refuses). Buffers
// 16-byte aligned (the caller checks the device first).
cudaError_t attention(const AttnProblem& p, cudaStream_t stream);

}  // namespace clip::cuda::sm90
