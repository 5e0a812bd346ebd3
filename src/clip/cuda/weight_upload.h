// The model's weights on the GPU: the Dev* structs the towers read, and the
// upload that checks each tensor's shape, converts it once into the compute
// type T (float32 for fp32/tf32, else fp16/bf16) and folds LN1/LN2's
// gamma/beta into the qkv and fc1 weights (fold_norm.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clip/cuda/resources.h"
#include "clip/model/config.h"
#include "clip/model/weights.h"

namespace clip::cuda {

struct DevNorm {
  DeviceBuffer gamma, beta;  // float32 [hidden]
};

struct DevLinear {
  DeviceBuffer w;       // T [out, in]
  DeviceBuffer bias;    // float32 [out], or empty
  DeviceBuffer bias_t;  // T [out] for a 16-bit GEMM output's epilogue (QKV), or empty
  int out = 0, in = 0;
};

// ln1 and ln2 hold ones and zeros: their gamma and beta are in qkv and fc1
// (fold_norm.h).
struct DevLayer {
  DevNorm ln1, ln2;
  DevLinear qkv;  // q, k, v stacked: [3*hidden, hidden]
  DevLinear out, fc1, fc2;
};

struct DevTower {
  std::vector<DevLayer> layers;
  DevLinear projection;  // [projection_dim, hidden]; CLIP: no bias; SigLIP's text head: a bias; empty: none
};

// SigLIP's attention pooling head. The probe is a constant, so its query
// projection is too (float32 [hidden]). post_layernorm's gamma/beta are
// folded into kv and the head's LayerNorm's into fc1 (fold_norm.h): both
// norms run as ones and zeros (DevVision::post_ln, ln).
struct DevPoolHead {
  DeviceBuffer query;  // float32 [hidden]: probe W_q^T + b_q
  DevLinear kv;        // k and v stacked: [2*hidden, hidden]
  DevLinear out, fc1, fc2;
  DevNorm ln;
};

struct DevVision : DevTower {
  DeviceBuffer patch_w;             // T [hidden, channels*patch*patch]
  DeviceBuffer cls;                 // float32 [hidden]; empty for SigLIP
  DeviceBuffer pos;                 // float32 [num_positions, hidden]; SigLIP: plus the patch conv's bias
  DevNorm pre_ln, post_ln;          // SigLIP: no pre_ln
  std::optional<DevPoolHead> head;  // SigLIP, in place of the projection
};

struct DevText : DevTower {
  DeviceBuffer tok;  // T [vocab, hidden]
  DeviceBuffer pos;  // float32 [max_positions, hidden]
  DevNorm final_ln;
};

// "[2, 3]". clip_cuda stands alone (clip_engine links it, not the reverse),
// so it formats shapes itself rather than calling clip::shape_str.
std::string dims(const std::vector<int64_t>& shape);

// Each tower's weights on `res`'s device in type `act`; throws clip::Error
// naming the tensor that is missing or mis-shaped. Returns once the copies
// have landed (the host weights may go).
DevVision upload_vision(CudaResources& res, DType act, const VisionConfig& c, const VisionWeights& w,
                        int projection_dim);
DevText upload_text(CudaResources& res, DType act, const TextConfig& c, const TextWeights& w, int projection_dim);

}  // namespace clip::cuda
