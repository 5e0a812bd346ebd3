// libFuzzer target: PNG/JPEG decoding of arbitrary bytes, then the
// preprocessing pipeline on whatever decodes.
//
// Under test: the setjmp/longjmp error paths of libpng and libjpeg (no leak,
// no crash, only clip::Error), the size limits, and resize/crop on the odd
// shapes a fuzzer finds (1-pixel sides, extreme aspect ratios) with each of
// PIL's resampling filters.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "clip/error.h"
#include "clip/image/image.h"
#include "clip/image/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clip::Image img;
  try {
    img = clip::decode_image_bytes(data, size, "fuzz.img");
  } catch (const clip::Error&) {
    return 0;  // rejected input: the expected outcome for nearly everything
  }
  if (img.width <= 0 || img.height <= 0 || img.rgb.size() != static_cast<size_t>(img.width) * img.height * 3) {
    std::abort();  // a decoded image must be consistent
  }
  // Keep each run fast: huge (but valid) images only exercise the decoder.
  if (static_cast<uint64_t>(img.width) * img.height > (1u << 22)) return 0;

  // The input picks PIL's filter ("resample") as well, so each of them
  // meets the odd shapes, in both resize forms: short side + center crop,
  // and an exact W x H resize without a crop (SigLIP).
  const auto filter = static_cast<clip::Resample>(size % 6);
  clip::PreprocessConfig cfg;
  cfg.resample = filter;
  cfg.shortest_edge = 9;
  cfg.crop_width = 8;
  cfg.crop_height = 11;  // taller than the short side: exercises padding
  std::vector<float> out(3 * 8 * 11);
  clip::preprocess_image(img, cfg, out.data());

  clip::PreprocessConfig exact = cfg;
  exact.do_center_crop = false;
  exact.resize_width = exact.crop_width = 1 + img.width % 13;
  exact.resize_height = exact.crop_height = 1 + img.height % 11;
  out.assign(3 * static_cast<size_t>(exact.crop_width) * exact.crop_height, 0.0f);
  clip::preprocess_image(img, exact, out.data());

  const clip::Image up = clip::resize_image(img, 5 + img.width % 7, 3 + img.height % 5, filter);
  if (up.rgb.size() != static_cast<size_t>(up.width) * up.height * 3) std::abort();
  return 0;
}
