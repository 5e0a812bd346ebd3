// SigLIP's fc1: bias + gelu_pytorch_tanh, plain and with the LayerNorm folded.
#include "clip/cuda/sm90/sm90_gemm_kernel.cuh"

namespace clip::cuda::sm90 {
std::vector<Variant> gelu_tanh_variants() { return variants_for<Epilogue::BiasGeluTanh>(); }
std::vector<Variant> ln_fold_gelu_tanh_variants() { return large_variants_for<Epilogue::LnFoldGeluTanh>(); }
}  // namespace clip::cuda::sm90
