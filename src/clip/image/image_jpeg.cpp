// JPEG decoding with libjpeg(-turbo), set up like PIL's JpegDecode.c so the
// pixels agree with Image.open(f).convert("RGB"): the library defaults
// (ISLOW integer IDCT, fancy upsampling), grey and YCbCr/RGB decoded by
// libjpeg straight to RGB, 4-channel CMYK/YCCK converted the way PIL does
// (it assumes Adobe's inverted CMYK, then applies its cmyk2rgb formula).
// EXIF orientation is ignored, as PIL does unless asked.
//
// Like PIL, a file that ends before its EOI marker is an error ("truncated"),
// where libjpeg alone would pad the missing data with grey and only warn.
// Its other warnings ("Corrupt JPEG data: N extraneous bytes") are ignored,
// as PIL ignores them; trailing bytes after EOI are ignored too.
//
// libjpeg reports errors by longjmp; as in image_png.cpp, only trivially
// destructible locals live in the functions that call setjmp.
#include <cstdio>  // jpeglib.h needs FILE and size_t first
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <vector>

#include "clip/image/image_codecs.h"

namespace clip::detail {
namespace {

// Progressive files may hold any number of scans, each a full pass over the
// coefficients: a few KB can cost minutes. libjpeg-turbo's own tools cap
// this for untrusted input; real encoders emit about 10.
constexpr int kMaxScans = 1000;
// The progressive coefficient buffer, for the largest image we accept.
constexpr long kMaxLibjpegMemory = 2000L * 1024 * 1024;

struct JpegSession {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr err{};
  jpeg_progress_mgr progress{};
  std::jmp_buf jump{};
  char message[JMSG_LENGTH_MAX] = {};
  bool created = false;

  ~JpegSession() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

JpegSession* session_of(j_common_ptr cinfo) { return static_cast<JpegSession*>(cinfo->client_data); }

void on_jpeg_error(j_common_ptr cinfo) {
  JpegSession* s = session_of(cinfo);
  cinfo->err->format_message(cinfo, s->message);
  std::longjmp(s->jump, 1);
}

// Warnings (level -1) are ignored like PIL does ("Corrupt JPEG data: N
// extraneous bytes" is common in real files), except running out of data:
// libjpeg would invent the rest of the image, PIL reports truncation.
void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    JpegSession* s = session_of(cinfo);
    std::snprintf(s->message, sizeof s->message, "%s", "premature end of JPEG data");
    std::longjmp(s->jump, 2);
  }
}

void on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (cinfo->is_decompressor && d->input_scan_number > kMaxScans) {
    JpegSession* s = session_of(cinfo);
    std::snprintf(s->message, sizeof s->message, "more than %d progressive scans", kMaxScans);
    std::longjmp(s->jump, 1);
  }
}

struct JpegHeader {
  int width = 0, height = 0, components = 0;
};

// 0 on success, otherwise the longjmp code (2 = truncated).
int read_header(JpegSession& s, const uint8_t* data, size_t size, JpegHeader* h) {
  // setjmp may only appear as a whole controlling expression (C11 7.13.1.1).
  switch (setjmp(s.jump)) {
    case 0: break;
    case 2: return 2;
    default: return 1;
  }
  jpeg_create_decompress(&s.cinfo);
  s.created = true;
  s.cinfo.mem->max_memory_to_use = kMaxLibjpegMemory;
  s.progress.progress_monitor = on_progress;
  s.cinfo.progress = &s.progress;
  jpeg_mem_src(&s.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&s.cinfo, TRUE);
  h->width = static_cast<int>(s.cinfo.image_width);
  h->height = static_cast<int>(s.cinfo.image_height);
  h->components = s.cinfo.num_components;
  return 0;
}

// Sets the output colour space and runs jpeg_start_decompress (which, for
// progressive files, reads every scan).
int start(JpegSession& s, J_COLOR_SPACE out_space) {
  switch (setjmp(s.jump)) {
    case 0: break;
    case 2: return 2;
    default: return 1;
  }
  s.cinfo.out_color_space = out_space;
  s.cinfo.dct_method = JDCT_ISLOW;     // PIL's (and libjpeg's) default
  s.cinfo.do_fancy_upsampling = TRUE;  // idem
  jpeg_start_decompress(&s.cinfo);
  return 0;
}

// Reads up to `count` scanlines into consecutive rows of `dst`.
int read_rows(JpegSession& s, uint8_t* dst, size_t stride, int count, int* got) {
  switch (setjmp(s.jump)) {
    case 0: break;
    case 2: return 2;
    default: return 1;
  }
  *got = 0;
  while (*got < count) {
    JSAMPROW row = dst + static_cast<size_t>(*got) * stride;
    const JDIMENSION n = jpeg_read_scanlines(&s.cinfo, &row, 1);
    if (n != 1) break;  // cannot happen with an in-memory source; be safe
    ++*got;
  }
  return 0;
}

// PIL: raw CMYK is taken as Adobe-inverted ("CMYK;I"), then
// R = 255-K' - round(C' * (255-K') / 255) with C' = 255-C etc., where
// MULDIV255 rounds as ((t >> 8) + t) >> 8 with t = a*b + 128.
inline uint8_t muldiv255(int a, int b) {
  const int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

void cmyk_to_rgb(const uint8_t* cmyk, uint8_t* rgb, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const int nk = cmyk[4 * i + 3];  // 255 - (255 - K)
    for (int c = 0; c < 3; ++c) {
      const int v = nk - muldiv255(255 - cmyk[4 * i + c], nk);
      rgb[3 * i + c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
}

[[noreturn]] void fail(const JpegSession& s, int code, const std::string& name) {
  if (code == 2) {
    image_error(name, "truncated JPEG: the file ends before the image data is complete");
  }
  image_error(name, std::string("corrupt JPEG: ") + s.message);
}

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  JpegSession s;
  s.cinfo.err = jpeg_std_error(&s.err);
  s.err.error_exit = on_jpeg_error;
  s.err.emit_message = on_jpeg_message;
  s.cinfo.client_data = &s;

  JpegHeader h;
  if (int code = read_header(s, data, size, &h)) fail(s, code, name);
  check_image_size(name, "JPEG", static_cast<uint64_t>(h.width), static_cast<uint64_t>(h.height));
  const bool cmyk = h.components == 4;
  if (h.components != 1 && h.components != 3 && !cmyk) {
    image_error(name, "unsupported JPEG with " + std::to_string(h.components) + " components");
  }
  // libjpeg-turbo converts grey to RGB by replication, as PIL's L -> RGB does.
  if (int code = start(s, cmyk ? JCS_CMYK : JCS_RGB)) fail(s, code, name);

  Image img;
  img.width = h.width;
  img.height = h.height;
  const size_t in_stride = static_cast<size_t>(h.width) * (cmyk ? 4 : 3);
  const size_t out_stride = static_cast<size_t>(h.width) * 3;
  // Grow the output as rows arrive rather than trusting the header up front:
  // a truncated file then fails before we touch much memory.
  constexpr int kBatch = 16;
  std::vector<uint8_t> scratch(cmyk ? in_stride * kBatch : 0);
  int y = 0;
  while (y < h.height) {
    const int want = std::min(kBatch, h.height - y);
    img.rgb.resize(static_cast<size_t>(y + want) * out_stride);
    uint8_t* dst = cmyk ? scratch.data() : img.rgb.data() + static_cast<size_t>(y) * out_stride;
    int got = 0;
    if (int code = read_rows(s, dst, in_stride, want, &got)) fail(s, code, name);
    if (got == 0) image_error(name, "corrupt JPEG: the decoder stopped early");
    if (cmyk) {
      cmyk_to_rgb(scratch.data(), img.rgb.data() + static_cast<size_t>(y) * out_stride,
                  static_cast<size_t>(got) * h.width);
    }
    y += got;
  }
  img.rgb.resize(static_cast<size_t>(h.height) * out_stride);
  // No jpeg_finish_decompress(): every pixel is in; it would only read on to EOI.
  return img;
}

}  // namespace clip::detail
