// libFuzzer target: the safetensors header parser on arbitrary bytes.
//
// Beyond "no crash", every view it accepts is read end to end (to_f32 for
// float dtypes, a byte sum otherwise), so ASan reports any accepted offset
// that points outside the input: the parser's bounds checks are what is
// under test.
#include <cstddef>
#include <cstdint>

#include "clip/error.h"
#include "clip/model/safetensors.h"
#include "clip/model/to_f32.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto views = clip::parse_safetensors(data, size, "fuzz.safetensors");
    volatile uint32_t sink = 0;
    for (const auto& v : views) {
      switch (v.dtype) {
        case clip::DType::F32:
        case clip::DType::F16:
        case clip::DType::BF16:
        case clip::DType::F64: sink = sink + static_cast<uint32_t>(clip::to_f32(v, v.shape).numel()); break;
        default:
          for (size_t i = 0; i < v.nbytes; ++i) sink = sink + v.data[i];
      }
    }
  } catch (const clip::Error&) {
    // Rejected input: the expected outcome for nearly everything.
  }
  return 0;
}
