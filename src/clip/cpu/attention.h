// Multi-head scaled dot-product attention over a fused q|k|v buffer, as
// transformers' CLIPAttention: softmax(q k^T * head_dim^-0.5 [+ causal mask]) v,
// softmax in fp32 with the row maximum subtracted.
#pragma once
#include <cstdint>
#include <vector>

#include "clip/cpu/thread_pool.h"

namespace clip::cpu {

struct AttentionShape {
  int batch = 0;
  int seq = 0;  // tokens per item
  int heads = 0;
  int head_dim = 0;
  bool causal = false;  // query i sees keys 0..i only (the text tower)
  int hidden() const { return heads * head_dim; }
};

// The arithmetic of q k^T and p v: float32 FMAs, or bf16 dot products with
// float32 sums (attention_bf16.h; needs AVX512_BF16, which the caller checks).
// The softmax is float32 either way.
enum class AttentionProducts { Fp32, Bf16 };

// Per-thread working memory, kept by the backend between calls.
class AttentionScratch {
 public:
  float* get(int thread, size_t floats);
  uint32_t* words(int thread, size_t words);  // for bf16 tiles

 private:
  std::vector<std::vector<float>> buffers_;
  std::vector<std::vector<uint32_t>> words_;
};

// qkv: [batch * seq, 3 * hidden] rows laid out q | k | v, heads side by side
// in each. out: [batch * seq, hidden] with the heads side by side again.
//
// query_pos != nullptr asks for one query per item, at position
// query_pos[b] (keys and values still cover the whole sequence); out then has
// `batch` rows. The backend uses this in the last layer, where only the
// pooled token's output matters.
void attention(const float* qkv, const AttentionShape& shape, const int32_t* query_pos, float* out, ThreadPool& pool,
               AttentionScratch& scratch, AttentionProducts products = AttentionProducts::Fp32);

// One fixed query for every item (SigLIP's pooling probe, already
// projected): q [hidden]; kv [batch * seq, 2 * hidden] rows laid out k | v;
// out [batch, hidden]. shape.causal must be false.
void probe_attention(const float* q, const float* kv, const AttentionShape& shape, float* out, ThreadPool& pool,
                     AttentionScratch& scratch, AttentionProducts products = AttentionProducts::Fp32);

}  // namespace clip::cpu
