// to_f32: floating tensors of any stored precision into float32.
//
// Tensor data inside a safetensors file is only aligned to its byte offset,
// which need not be a multiple of the element size, so every element is read
// with memcpy (compilers turn it into a plain load).
#include "clip/model/to_f32.h"

#include <cstring>

#include "clip/error.h"

namespace clip {

namespace {

float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// IEEE binary16 -> binary32, exact for every input: normals and subnormals
// are widened, infinities kept, NaN payloads (and so quiet/signalling) kept.
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exactly representable as a float normal.
    const float mag = static_cast<float>(mant) * 5.9604644775390625e-8f;  // 2^-24
    return sign ? -mag : mag;
  }
  if (exp == 31) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  return bits_to_float(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
}

// bfloat16 is the top half of a float32.
float bf16_to_float(uint16_t b) { return bits_to_float(static_cast<uint32_t>(b) << 16); }

template <typename Stored, typename Convert>
void convert(const uint8_t* src, size_t n, float* dst, Convert conv) {
  for (size_t i = 0; i < n; ++i) {
    Stored s;
    std::memcpy(&s, src + i * sizeof(Stored), sizeof(Stored));
    dst[i] = conv(s);
  }
}

}  // namespace

Tensor to_f32(const TensorView& view, const std::vector<int64_t>& expected_shape) {
  const std::string where = view.file + ": tensor '" + view.name + "'";
  if (view.shape != expected_shape)
    throw Error(where + " has shape " + shape_str(view.shape) + ", expected " + shape_str(expected_shape));
  switch (view.dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F64: break;
    default: throw Error(where + " has dtype " + dtype_name(view.dtype) + "; weights must be F32, F16, BF16 or F64");
  }
  Tensor t(expected_shape);
  // Views normally come from parse_safetensors, which guarantees this; a
  // hand-made view must not make us read past its bytes.
  if (t.numel() * dtype_size(view.dtype) != view.nbytes)
    throw Error(where + " holds " + std::to_string(view.nbytes) + " bytes, not " +
                std::to_string(t.numel() * dtype_size(view.dtype)));
  const size_t n = t.numel();
  switch (view.dtype) {
    case DType::F32:
      if (n) std::memcpy(t.ptr(), view.data, n * sizeof(float));
      break;
    case DType::F16: convert<uint16_t>(view.data, n, t.ptr(), half_to_float); break;
    case DType::BF16: convert<uint16_t>(view.data, n, t.ptr(), bf16_to_float); break;
    case DType::F64: convert<double>(view.data, n, t.ptr(), [](double d) { return static_cast<float>(d); }); break;
    default: break;  // rejected above
  }
  return t;
}

}  // namespace clip
