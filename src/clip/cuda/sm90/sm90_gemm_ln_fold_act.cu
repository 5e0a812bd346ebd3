#include "clip/cuda/sm90/sm90_gemm_kernel.cuh"

namespace clip::cuda::sm90 {
std::vector<Variant> ln_fold_quick_gelu_variants() { return large_variants_for<Epilogue::LnFoldQuickGelu>(); }
std::vector<Variant> ln_fold_gelu_variants() { return large_variants_for<Epilogue::LnFoldGelu>(); }
}  // namespace clip::cuda::sm90
