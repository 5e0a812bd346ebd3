// PNG decoding with libpng, producing exactly the bytes of PIL's
// Image.open(f).convert("RGB"):
//   - palette -> its RGB entries (tRNS ignored), out-of-range indices black;
//   - 1/2/4-bit grey scaled to 8 bits by bit replication (0..3 -> 0,85,170,255);
//   - 16-bit RGB(A) and grey+alpha -> the high byte of each sample;
//   - 16-bit grey -> min(value, 255): PIL opens it as mode "I;16" and its
//     I;16 -> RGB conversion clamps instead of scaling (a PIL quirk we copy);
//   - alpha dropped, never blended; gamma/ICC/background chunks ignored.
// Like PIL we tolerate bad CRCs and a missing IEND, but not missing pixels.
//
// libpng reports errors by longjmp. Everything that runs under setjmp lives
// in small functions with trivially destructible locals only; the C++ objects
// (buffers, the RAII owner of libpng's structs) live in the caller, so a
// longjmp never skips a destructor and nothing leaks.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "clip/image/image_codecs.h"

namespace clip::detail {
namespace {

struct PngSession {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;  // the whole file
  size_t size = 0;
  size_t pos = 0;
  char message[256] = {};

  ~PngSession() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void on_png_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngSession*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof s->message, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // PIL is silent too

void read_from_memory(png_structp png, png_bytep out, size_t n) {
  auto* s = static_cast<PngSession*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) {
    // Distinct text so the caller can call it truncation.
    png_error(png, "unexpected end of file");
  }
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

// What the header says, and the row layout after our transforms.
struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  bool grey16 = false;               // 16-bit grey without alpha: read raw, clamp ourselves
  size_t rowbytes = 0;               // bytes per decoded row
  uint64_t min_compressed_size = 0;  // see plausibility check in decode_png
};

// Reads the chunks up to the first IDAT.
bool read_header(PngSession& s, PngHeader* h) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_set_read_fn(s.png, &s, read_from_memory);
  // Critical chunks with bad CRCs: use the data anyway, as PIL does for IDAT.
  png_set_crc_action(s.png, PNG_CRC_WARN_USE, PNG_CRC_WARN_DISCARD);
  // Our own pixel limit applies below; libpng's 1e6-per-side default would
  // reject legal images PIL opens (e.g. 2,000,000 x 1).
  png_set_user_limits(s.png, 0x7fffffff, 0x7fffffff);
  png_read_info(s.png, s.info);

  png_get_IHDR(s.png, s.info, &h->width, &h->height, &h->bit_depth, &h->color_type, nullptr, nullptr, nullptr);
  // Deflate cannot expand more than 1032:1, so a file smaller than the raw
  // filtered rows / 1032 cannot hold the image: it is truncated or lying.
  const uint64_t raw_row =
      (static_cast<uint64_t>(h->width) * png_get_channels(s.png, s.info) * static_cast<uint64_t>(h->bit_depth) + 7) /
          8 +
      1;
  h->min_compressed_size = raw_row * h->height / 1032;
  return true;
}

// Sets the transforms; only after the caller has vetted the size, because
// png_read_update_info allocates row buffers of the declared width.
bool set_transforms(PngSession& s, PngHeader* h) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  const int color_type = h->color_type, bit_depth = h->bit_depth;
  h->grey16 = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s.png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(s.png);
  }
  if (bit_depth == 16 && !h->grey16) png_set_strip_16(s.png);  // keeps the high byte
  // palette_to_rgb also turns tRNS into alpha; drop it with the real alpha.
  png_set_strip_alpha(s.png);
  if (!h->grey16 && (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA)) {
    png_set_gray_to_rgb(s.png);
  }
  png_set_interlace_handling(s.png);
  png_read_update_info(s.png, s.info);
  h->rowbytes = png_get_rowbytes(s.png, s.info);
  return true;
}

bool read_rows(PngSession& s, png_bytepp rows) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  // Not png_read_end(): like PIL, a file missing only IEND still decodes.
  png_read_image(s.png, rows);
  return true;
}

[[noreturn]] void fail(const PngSession& s, const std::string& name) {
  if (std::strcmp(s.message, "unexpected end of file") == 0) {
    image_error(name, "truncated PNG: the file ends before the image data is complete");
  }
  image_error(name, std::string("corrupt PNG: ") + s.message);
}

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const std::string& name) {
  PngSession s;
  s.data = data;
  s.size = size;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, on_png_error, on_png_warning);
  if (s.png) s.info = png_create_info_struct(s.png);
  if (!s.png || !s.info) image_error(name, "out of memory creating the PNG decoder");

  PngHeader h;
  if (!read_header(s, &h)) fail(s, name);
  check_image_size(name, "PNG", h.width, h.height);
  if (h.min_compressed_size > size) {
    image_error(name, "truncated PNG: a " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                          " image cannot fit in " + std::to_string(size) + " bytes");
  }
  if (!set_transforms(s, &h)) fail(s, name);
  const size_t bytes_per_pixel = h.grey16 ? 2 : 3;
  if (h.rowbytes != static_cast<size_t>(h.width) * bytes_per_pixel) {
    image_error(name, "unsupported PNG layout (bit depth " + std::to_string(h.bit_depth) + ", colour type " +
                          std::to_string(h.color_type) + ")");
  }

  Image img;
  img.width = static_cast<int>(h.width);
  img.height = static_cast<int>(h.height);
  // Decode 16-bit grey into a scratch buffer of big-endian samples first.
  std::vector<uint8_t> grey16;
  std::vector<uint8_t>& target = h.grey16 ? grey16 : img.rgb;
  target.resize(h.rowbytes * h.height);
  std::vector<png_bytep> rows(h.height);
  for (png_uint_32 y = 0; y < h.height; ++y) rows[y] = target.data() + y * h.rowbytes;
  if (!read_rows(s, rows.data())) fail(s, name);

  if (h.grey16) {
    img.rgb.resize(static_cast<size_t>(h.width) * h.height * 3);
    const size_t n = static_cast<size_t>(h.width) * h.height;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t hi = grey16[2 * i], lo = grey16[2 * i + 1];
      const uint8_t v = hi ? 255 : lo;  // PIL: I;16 -> RGB clamps to 255
      img.rgb[3 * i] = img.rgb[3 * i + 1] = img.rgb[3 * i + 2] = v;
    }
  }
  return img;
}

}  // namespace clip::detail
