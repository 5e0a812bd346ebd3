#include "video/write_jpeg.h"

#include <cstdio>
// clang-format off
#include <jpeglib.h>
// clang-format on
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace clipfind::video {

void write_jpeg(const clip::Image& image, const std::filesystem::path& path, int quality) {
  if (image.width <= 0 || image.height <= 0) throw std::runtime_error(path.string() + ": empty image");
  // Encode in memory first: libjpeg's default error handler exits the process,
  // and memory output cannot fail short of allocation.
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = static_cast<JDIMENSION>(image.width);
  c.image_height = static_cast<JDIMENSION>(image.height);
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(&image.rgb[size_t(c.next_scanline) * image.width * 3]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<unsigned char> bytes(buf, buf + size);
  std::free(buf);

  const std::filesystem::path tmp = path.string() + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error(path.string() + ": cannot write: " + std::generic_category().message(errno));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) {
    std::filesystem::remove(tmp);
    throw std::runtime_error(path.string() + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace clipfind::video
