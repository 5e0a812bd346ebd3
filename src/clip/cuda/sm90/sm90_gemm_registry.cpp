// The compiled sm_90a variants (built with CUTLASS; see sm90_gemm.h).
#include <cuda_runtime_api.h>

#include "clip/cuda/sm90/sm90_gemm.h"

namespace clip::cuda::sm90 {

// One per sm90_gemm_<epilogue>.cu.
std::vector<Variant> bias_variants();
std::vector<Variant> quick_gelu_variants();
std::vector<Variant> gelu_variants();
std::vector<Variant> residual_variants();
std::vector<Variant> ln_stats_variants();
std::vector<Variant> ln_fold_bias_variants();
std::vector<Variant> ln_fold_quick_gelu_variants();
std::vector<Variant> ln_fold_gelu_variants();
std::vector<Variant> gelu_tanh_variants();
std::vector<Variant> ln_fold_gelu_tanh_variants();

const std::vector<Variant>& variants() {
  static const std::vector<Variant> all = [] {
    std::vector<Variant> v;
    for (auto* make : {&bias_variants, &quick_gelu_variants, &gelu_variants, &residual_variants, &ln_stats_variants,
                       &ln_fold_bias_variants, &ln_fold_quick_gelu_variants, &ln_fold_gelu_variants,
                       &gelu_tanh_variants, &ln_fold_gelu_tanh_variants})
      for (const Variant& x : make()) v.push_back(x);
    return v;
  }();
  return all;
}

bool device_supported(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major == 9 && minor == 0;
}

}  // namespace clip::cuda::sm90
