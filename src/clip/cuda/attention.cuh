// Multi-head self-attention, optionally causal (CLIP's text tower), softmax
// in float32:
//   out[b, s, h*D:(h+1)*D] = softmax(scale * q k^T [+ causal mask]) v
// with q, k, v read from the fused QKV projection. CLIP's short sequences
// (50, 77, 197, 257 tokens, head_dim 64) take the kernels that hold a
// head's whole K and V in shared memory (TensorCore, Wgmma), and so do
// SigLIP's up to ~880 tokens at head_dim 64 (fewer at 72) on Hopper
// (Wgmma); the rest (1024 tokens) the tiled Flash kernel.
#pragma once
#include "clip/cuda/cuda_common.h"

namespace clip::cuda {

enum class AttnImpl {
  Auto,        // the fastest kernel that supports the shape (attention_choice)
  Simt,        // float32 FMA kernel: any type and head_dim <= 256
  TensorCore,  // mma.sync m16n8k16, fp16/bf16, head_dim 32/64/128; throws if unsupported
  Wgmma,       // Hopper warpgroup MMAs (sm90/sm90_attention.h): an sm_90 GPU and build, fp16/bf16,
               // head_dim 64 or 72, no causal mask; throws if unsupported
  Flash,       // tiled mma.sync with an online softmax over 64-key tiles (flash_attention.cuh): fp16/bf16,
               // head_dim a multiple of 8 up to 128, any sequence length; throws if unsupported
};

// log2(e): the kernels take the softmax as 2^(scale log2(e) (s - max)).
inline constexpr float kLog2e = 1.4426950408889634f;

struct AttnShape {
  int batch = 0, seq = 0, heads = 0, head_dim = 0;
  bool causal = false;
  float scale = 0.f;  // usually head_dim^-0.5
};

// qkv: type [batch*seq, 3*heads*head_dim] laid out [q | k | v], each head's
// head_dim values contiguous; out: type [batch*seq, heads*head_dim].
// num_sms sizes the grid split for small batches. `wgmma` as for
// attention_choice.
void attention(const Exec& exec, const void* qkv, void* out, DType type, const AttnShape& shape, int num_sms,
               AttnImpl impl = AttnImpl::Auto, bool wgmma = true);

// Which kernel Auto picks for this shape and type on the current device
// (for tests and logs). num_sms as for attention(); 0 leaves the grid size
// out of the choice. wgmma = false keeps Auto off the wgmma kernel
// (Tuning::Attention::NoWgmma). Flash where neither whole-K/V kernel takes
// the shape (head_dim not 32/64/128 (72 takes Wgmma alone), or K and V too
// big for shared memory) and the type is fp16/bf16; SIMT for float32.
AttnImpl attention_choice(DType type, const AttnShape& shape, int num_sms = 0, bool wgmma = true);

// Whether the mma.sync kernel can run this shape and type.
bool mma_attention_supported(DType type, const AttnShape& shape);

// Whether the wgmma kernel can run this shape and type on the current device.
bool wgmma_attention_supported(DType type, const AttnShape& shape);

// Whether the tiled (Flash) kernel can run this shape and type: fp16/bf16,
// head_dim a multiple of 8 from 8 to 128, batch and heads up to 65,535, a
// positive scale.
bool flash_attention_supported(DType type, const AttnShape& shape);

}  // namespace clip::cuda
