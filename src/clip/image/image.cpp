// Image decoding entry points: read the file, recognise the format by its
// signature (never by the extension), hand over to the PNG or JPEG decoder.
#include "clip/image/image.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>
#include <vector>

#include "clip/error.h"
#include "clip/image/image_codecs.h"

namespace clip {
namespace detail {

void image_error(const std::string& name, const std::string& what) { throw Error("image '" + name + "': " + what); }

void check_image_size(const std::string& name, const char* format, uint64_t width, uint64_t height) {
  if (width == 0 || height == 0) {
    image_error(name, std::string(format) + " header declares an empty image (" + std::to_string(width) + "x" +
                          std::to_string(height) + ")");
  }
  if (width * height > kMaxImagePixels) {
    image_error(name, std::string(format) + " image is " + std::to_string(width) + "x" + std::to_string(height) +
                          ", more than the " + std::to_string(kMaxImagePixels) +
                          " pixels we (like PIL) accept; refusing a possible decompression bomb");
  }
}

}  // namespace detail

namespace {

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n, size_t offset = 0) {
  return size >= offset + n && std::memcmp(data + offset, magic, n) == 0;
}

// Names formats people commonly feed by mistake, so the message says what the
// file is rather than only what it is not.
const char* other_format_name(const uint8_t* d, size_t n) {
  if (starts_with(d, n, "GIF87a", 6) || starts_with(d, n, "GIF89a", 6)) return "GIF";
  if (starts_with(d, n, "BM", 2)) return "BMP";
  if (starts_with(d, n, "RIFF", 4) && starts_with(d, n, "WEBP", 4, 8)) return "WebP";
  if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) return "TIFF";
  if (starts_with(d, n, "ftyp", 4, 4)) return "HEIF/AVIF/MP4";
  return nullptr;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

Image decode_image_bytes(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0 || data == nullptr) detail::image_error(name, "file is empty (0 bytes)");
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    return detail::decode_jpeg(data, size, name);
  }
  const size_t sig = std::min<size_t>(size, sizeof kPngSignature);
  if (std::memcmp(data, kPngSignature, sig) == 0) {
    if (size < sizeof kPngSignature) {
      detail::image_error(name, "truncated PNG (" + std::to_string(size) + " bytes, shorter than the PNG signature)");
    }
    return detail::decode_png(data, size, name);
  }
  if (const char* other = other_format_name(data, size)) {
    detail::image_error(name, std::string("is a ") + other + " file; only PNG and JPEG images are supported");
  }
  detail::image_error(name, "not a PNG or JPEG image (unrecognised file signature)");
}

Image decode_image_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) detail::image_error(name, "file not found");
  if (std::filesystem::is_directory(status)) {
    detail::image_error(name, "is a directory, not an image file");
  }
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) detail::image_error(name, std::string("cannot open: ") + std::strerror(errno));

  // Read everything: images are small next to the memory we decode them
  // into, and whole-buffer decoding keeps one code path for files and bytes.
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (;;) {
    const size_t n = std::fread(chunk, 1, sizeof chunk, file.get());
    bytes.insert(bytes.end(), chunk, chunk + n);
    if (n < sizeof chunk) break;
  }
  if (std::ferror(file.get())) {
    detail::image_error(name, std::string("read error: ") + std::strerror(errno));
  }
  return decode_image_bytes(bytes.data(), bytes.size(), name);
}

ImageView checked_view(const Image& image, const std::string& what) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    throw Error(what + ": not a valid RGB image (" + std::to_string(image.width) + "x" + std::to_string(image.height) +
                ", " + std::to_string(image.rgb.size()) + " bytes)");
  }
  return image.view();
}

std::vector<ImageView> checked_views(const std::vector<Image>& images, const std::string& what) {
  std::vector<ImageView> views;
  views.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    views.push_back(checked_view(images[i], what + " " + std::to_string(i)));
  }
  return views;
}

}  // namespace clip
