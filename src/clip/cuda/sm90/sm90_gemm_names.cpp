#include "clip/cuda/sm90/sm90_gemm.h"

namespace clip::cuda::sm90 {

const char* epilogue_name(Epilogue e) {
  switch (e) {
    case Epilogue::Bias: return "bias";
    case Epilogue::BiasQuickGelu: return "bias+quick_gelu";
    case Epilogue::BiasGelu: return "bias+gelu";
    case Epilogue::BiasResidual: return "bias+residual";
  }
  return "?";
}

}  // namespace clip::cuda::sm90
