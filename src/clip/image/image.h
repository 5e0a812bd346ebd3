// Decoded 8-bit RGB images (PNG and JPEG).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace clip {

// Borrowed 8-bit RGB pixels (rows of width * 3 bytes, no padding): what the
// preprocessing reads, so a caller's own buffers (decoded video frames,
// pinned host memory) need no copy into an Image.
struct ImageView {
  int width = 0;
  int height = 0;
  const uint8_t* rgb = nullptr;  // height * width * 3 bytes
};

// 8-bit interleaved RGB in the GPU memory of the engine's CUDA device
// (e.g. a video frame decoded and converted there), rows packed: the same
// layout as ImageView, but the pointer is a device address.
struct DeviceImageView {
  int width = 0;
  int height = 0;
  const uint8_t* rgb = nullptr;  // height * width * 3 bytes of device memory
};

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3, row-major, interleaved RGB

  ImageView view() const { return {width, height, rgb.data()}; }
};

// The view of `image` once it is checked to be well formed (positive size,
// width * height * 3 bytes); otherwise clip::Error "<what>: not a valid RGB
// image (WxH, N bytes)". checked_views names the failing one "<what> i".
ImageView checked_view(const Image& image, const std::string& what);
std::vector<ImageView> checked_views(const std::vector<Image>& images, const std::string& what);

// Decodes PNG or JPEG (by content, not by extension). Grey, grey+alpha,
// palette, RGBA and 16-bit inputs become 8-bit RGB like PIL's convert("RGB")
// (alpha dropped, not blended). Throws clip::Error naming the file.
Image decode_image_file(const std::filesystem::path& path);
Image decode_image_bytes(const uint8_t* data, size_t size, const std::string& name);

}  // namespace clip
