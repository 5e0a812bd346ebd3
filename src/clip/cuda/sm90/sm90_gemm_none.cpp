// Built instead of the sm_90a kernels when CUTLASS or sm_90 is not part of
// the build: no variants, and GemmRunner uses cuBLASLt alone; no wgmma
// attention, and attention() uses its mma.sync kernel.
#include "clip/cuda/sm90/sm90_attention.h"
#include "clip/cuda/sm90/sm90_gemm.h"

namespace clip::cuda::sm90 {

const std::vector<Variant>& variants() {
  static const std::vector<Variant> none;
  return none;
}

bool device_supported(int) { return false; }

bool attention_supported(int, int, bool) { return false; }

cudaError_t attention(const AttnProblem&, cudaStream_t) { return cudaErrorNotSupported; }

}  // namespace clip::cuda::sm90
