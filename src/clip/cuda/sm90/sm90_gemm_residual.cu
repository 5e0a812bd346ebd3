#include "clip/cuda/sm90/sm90_gemm_kernel.cuh"

namespace clip::cuda::sm90 {
std::vector<Variant> residual_variants() { return variants_for<Epilogue::BiasResidual>(); }
}  // namespace clip::cuda::sm90
