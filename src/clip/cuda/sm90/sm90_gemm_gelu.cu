#include "clip/cuda/sm90/sm90_gemm_kernel.cuh"

namespace clip::cuda::sm90 {
std::vector<Variant> gelu_variants() { return variants_for<Epilogue::BiasGelu>(); }
}  // namespace clip::cuda::sm90
