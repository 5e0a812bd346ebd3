#include "clip/cuda/sm90/sm90_gemm_kernel.cuh"

namespace clip::cuda::sm90 {
std::vector<Variant> bias_variants() { return variants_for<Epilogue::Bias>(); }
}  // namespace clip::cuda::sm90
