// SigLIP's attention pooling (SiglipMultiheadAttentionPoolingHead): one
// fixed query, the learned probe already projected, attends over every
// token of each image:
//   out[b, h*D:(h+1)*D] = softmax(scale * q_h k_{b,t,h}^T over t) v_{b,t,h}
// softmax in float32. The work is one query per (image, head), small beside
// the encoder, so the kernel is plain SIMT: one block per (head, image).
#pragma once
#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

// q: float32 [heads*head_dim]; kv: type [n*seq, 2*heads*head_dim] laid out
// [k | v]; out: type [n, heads*head_dim].
void probe_attention(const Exec& exec, const float* q, const void* kv, void* out, DType type, int n, int seq, int heads,
                     int head_dim, float scale);

}  // namespace clip::cuda
