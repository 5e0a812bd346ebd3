#include <algorithm>

#include "clip/cuda/sm90/sm90_gemm.h"

namespace clip::cuda::sm90 {

const char* epilogue_name(Epilogue e) {
  switch (e) {
    case Epilogue::Bias: return "bias";
    case Epilogue::BiasQuickGelu: return "bias+quick_gelu";
    case Epilogue::BiasGelu: return "bias+gelu";
    case Epilogue::BiasGeluTanh: return "bias+gelu_tanh";
    case Epilogue::BiasResidual: return "bias+residual";
    case Epilogue::BiasResidualLnStats: return "bias+residual+ln_stats";
    case Epilogue::LnFoldBias: return "ln_fold+bias";
    case Epilogue::LnFoldQuickGelu: return "ln_fold+bias+quick_gelu";
    case Epilogue::LnFoldGelu: return "ln_fold+bias+gelu";
    case Epilogue::LnFoldGeluTanh: return "ln_fold+bias+gelu_tanh";
  }
  return "?";
}

int64_t ln_partials_floats(int64_t M, int64_t N) {
  int64_t most = 0;
  for (const Variant& v : variants())
    if (v.epilogue == Epilogue::BiasResidualLnStats)
      most = std::max(most, 2 * ((N + v.tile_n - 1) / v.tile_n) * ((M + v.tile_m - 1) / v.tile_m * v.tile_m));
  return most;
}

}  // namespace clip::cuda::sm90
