#include "clip/cpu/cpu_precision.h"

#include <dnnl.hpp>
#include <string>

namespace clip {

namespace {

// oneDNN's ISA values are bit sets, each containing the ones it extends.
bool cpu_has(dnnl::cpu_isa isa) {
  const auto have = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto want = static_cast<unsigned>(isa);
  return (have & want) == want;
}

}  // namespace

bool cpu_has_native_bf16() { return cpu_has(dnnl::cpu_isa::avx512_core_bf16); }
bool cpu_has_int8_dot() { return cpu_has(dnnl::cpu_isa::avx512_core_vnni); }

Precision cpu_precision_for(std::optional<Precision> asked, bool device_auto) {
  if (!asked) return Precision::FP32;
  if (*asked == Precision::AUTO) return cpu_has_native_bf16() ? Precision::BF16 : Precision::FP32;
  if (device_auto && (*asked == Precision::TF32 || *asked == Precision::FP16)) return Precision::FP32;
  return *asked;
}

void check_cpu_precision(Precision p) {
  const std::string name = precision_name(p);
  switch (p) {
    case Precision::FP32: return;
    case Precision::BF16:
      if (!cpu_has_native_bf16())
        throw Error(
            "precision 'bf16' needs a CPU with native bf16 dot products (AVX512_BF16); this one has "
            "none, so bf16 would be slower than fp32: use fp32" +
            std::string(cpu_has_int8_dot() ? " or int8" : ""));
      return;
    case Precision::INT8:
      if (!cpu_has_int8_dot())
        throw Error(
            "precision 'int8' needs a CPU with int8 dot products (AVX512_VNNI); this one has none: use "
            "fp32");
      return;
    case Precision::AUTO: throw Error("cpu backend: precision 'auto' must be resolved first (cpu_precision_for)");
    case Precision::TF32:
    case Precision::FP16: break;
  }
  throw Error("precision '" + name + "' is not available on the CPU (fp32, bf16, int8 or auto)");
}

}  // namespace clip
