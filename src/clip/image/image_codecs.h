// Internal to the image decoder: the PNG and JPEG back ends behind
// decode_image_bytes(), and what they share. Not part of the public API.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "clip/image/image.h"

namespace clip::detail {

// PIL refuses images above 2 * Image.MAX_IMAGE_PIXELS (89478485) as
// decompression bombs; we refuse the same, so a tiny file cannot make us
// allocate gigabytes.
inline constexpr uint64_t kMaxImagePixels = 2ull * 89478485ull;

// Throws clip::Error("image '<name>': <what>").
[[noreturn]] void image_error(const std::string& name, const std::string& what);

// Checks width/height against kMaxImagePixels (and for being non-zero).
void check_image_size(const std::string& name, const char* format, uint64_t width, uint64_t height);

// Both take the whole file in memory (the caller has checked the signature)
// and return 8-bit RGB like PIL's Image.open(...).convert("RGB").
Image decode_png(const uint8_t* data, size_t size, const std::string& name);
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name);

}  // namespace clip::detail
