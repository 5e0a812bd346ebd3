#include "clip/cuda/sm90/sm90_gemm_kernel.cuh"

namespace clip::cuda::sm90 {
std::vector<Variant> ln_stats_variants() { return large_variants_for<Epilogue::BiasResidualLnStats>(); }
}  // namespace clip::cuda::sm90
