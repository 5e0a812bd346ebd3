// Built instead of the sm_90a kernels when CUTLASS or sm_90 is not part of
// the build: no variants, and GemmRunner uses cuBLASLt alone.
#include "clip/cuda/sm90/sm90_gemm.h"

namespace clip::cuda::sm90 {

const std::vector<Variant>& variants() {
  static const std::vector<Variant> none;
  return none;
}

bool device_supported(int) { return false; }

}  // namespace clip::cuda::sm90
