#include "clip/cuda/sm90/sm90_gemm_kernel.cuh"

namespace clip::cuda::sm90 {
std::vector<Variant> ln_fold_bias_variants() { return large_variants_for<Epilogue::LnFoldBias>(); }
}  // namespace clip::cuda::sm90
