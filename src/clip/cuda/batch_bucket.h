// The batch size a vision pass actually runs at: the caller's n rounded up
// to one of a few sizes.
//
// Why: every new batch size costs the CUDA backend two slow calls, one that
// races GEMM kernels for each product's new row count (GemmRunner::tune) and
// one that captures a CUDA graph (graph_cache.h); the graph cache holds 32
// shapes. `clipfind index` on a GPU hands the engine batches of every size
// from 1 to its batch (NVDEC's frames and the CPU decoders' frames of a batch
// go in two calls that split it differently each time), so it kept paying
// them. Rounded up, a run sees at most a dozen sizes up to 64. The extra rows
// are images of their own (stale inputs or zeros; no image's result depends
// on another's) whose embeddings are not copied out.
//
// Sizes: 1, 2, 4, 8, then multiples of 8 up to 64: padding adds at most 7
// rows to a pass that small, which costs about nothing (such passes are
// bound by launches and weight reads, not rows). Above 64 a batch runs as
// it is: there padding would cost real work, and callers of large batches
// (a user's embed call, bench_gpu) tend to keep one size.
#pragma once

namespace clip::cuda {

constexpr int kBatchBucketMax = 64;

constexpr int batch_bucket(int n) {
  if (n <= 1 || n > kBatchBucketMax) return n;
  if (n <= 8) {
    int b = 1;
    while (b < n) b *= 2;
    return b;
  }
  return (n + 7) / 8 * 8;
}

static_assert(batch_bucket(0) == 0 && batch_bucket(1) == 1 && batch_bucket(3) == 4 && batch_bucket(8) == 8);
static_assert(batch_bucket(9) == 16 && batch_bucket(57) == 64 && batch_bucket(64) == 64 && batch_bucket(65) == 65);

}  // namespace clip::cuda
