// Image decoding: every fixture decodes to the bytes of PIL's
// Image.open(f).convert("RGB") (tools/preprocess_reference.py wrote the
// expectations), and every bad input -- missing, empty, not an image,
// truncated, corrupt, absurdly large -- throws clip::Error naming the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "clip/error.h"
#include "clip/image/image.h"
#include "image_fixtures.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

using namespace cliptest;

namespace {

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A scratch directory for the bad files this test makes.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("clipfind_test_image_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    std::ofstream(path / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path / name;
  }
};

bool is_jpeg(const std::string& file) { return file.size() > 4 && file.ends_with(".jpg"); }

}  // namespace

// PNG: exact. JPEG: PIL's bundled libjpeg-turbo 3.x against the system's;
// both run ISLOW + fancy upsampling, so they should agree exactly too.
TEST(Decode, MatchesPilForEveryFixture) {
  const json ref = reference();
  ASSERT_FALSE(ref["cases"].empty());
  int worst_jpeg = 0;
  for (const auto& c : ref["cases"]) {
    const std::string input = c["input"];
    SCOPED_TRACE(input);
    const clip::Image img = clip::decode_image_file(kImages / input);
    ASSERT_EQ(img.width, c["width"].get<int>());
    ASSERT_EQ(img.height, c["height"].get<int>());
    ASSERT_EQ(img.rgb.size(), static_cast<size_t>(img.width) * img.height * 3);
    if (c.contains("decoded_raw")) {
      EXPECT_EQ(img.rgb, read_bytes(kImages / c["decoded_raw"].get<std::string>()));
    }
    if (!is_jpeg(input)) {
      EXPECT_EQ(fnv1a64(img.rgb), c["decode_fnv1a64"].get<std::string>()) << "PIL mode " << c["pil_mode"];
      if (c.contains("decoded")) {
        const clip::Image want = clip::decode_image_file(kImages / c["decoded"].get<std::string>());
        EXPECT_EQ(max_abs_diff(img, want), 0);
      }
    } else {
      const clip::Image want = clip::decode_image_file(kImages / c["decoded"].get<std::string>());
      const int diff = max_abs_diff(img, want);
      worst_jpeg = std::max(worst_jpeg, diff);
      std::printf("  %-22s max |ours - PIL| = %d\n", input.c_str(), diff);
      EXPECT_LE(diff, 1);
    }
  }
  std::printf("JPEG decode: worst max difference from PIL %d/255\n", worst_jpeg);
}

TEST(Decode, BytesAndFileAgree) {
  for (const char* name : {"input/interlaced.png", "input/photo.jpg"}) {
    const auto bytes = read_bytes(kImages / name);
    const clip::Image a = clip::decode_image_bytes(bytes.data(), bytes.size(), name);
    const clip::Image b = clip::decode_image_file(kImages / name);
    EXPECT_EQ(a.width, b.width);
    EXPECT_EQ(a.rgb, b.rgb) << name;
  }
}

// Detection is by content: a PNG named .jpg and a JPEG with no extension decode.
TEST(Decode, IgnoresTheExtension) {
  TempDir tmp;
  const auto png = tmp.write("really_a_png.jpg", read_bytes(kImages / "input/grey.png"));
  const auto jpg = tmp.write("no_extension", read_bytes(kImages / "input/grey.jpg"));
  EXPECT_EQ(clip::decode_image_file(png).rgb, clip::decode_image_file(kImages / "input/grey.png").rgb);
  EXPECT_EQ(clip::decode_image_file(jpg).rgb, clip::decode_image_file(kImages / "input/grey.jpg").rgb);
}

TEST(Decode, SharedClipPng) {
  const fs::path path = fs::path(CLIPFIND_SHARED_DATA) / "CLIP.png";
  if (!fs::exists(path)) GTEST_SKIP() << "shared test image not found: " << path;
  const json ref = reference();
  if (ref["shared"].empty()) GTEST_SKIP() << "reference.json has no CLIP.png entry";
  const auto& s = ref["shared"][0];
  const clip::Image img = clip::decode_image_file(path);
  EXPECT_EQ(img.width, s["width"].get<int>());
  EXPECT_EQ(img.height, s["height"].get<int>());
  EXPECT_EQ(fnv1a64(img.rgb), s["decode_fnv1a64"].get<std::string>());
}

// ------------------------------------------------------------ bad input

TEST(DecodeErrors, MissingFile) {
  const std::string msg = error_of([] { clip::decode_image_file("/nonexistent/dir/cat.png"); });
  EXPECT_CONTAINS(msg, "/nonexistent/dir/cat.png");
  EXPECT_CONTAINS(msg, "not found");
}

TEST(DecodeErrors, Directory) {
  TempDir tmp;
  const std::string msg = error_of([&] { clip::decode_image_file(tmp.path); });
  EXPECT_CONTAINS(msg, tmp.path.string());
  EXPECT_CONTAINS(msg, "directory");
}

TEST(DecodeErrors, EmptyFile) {
  TempDir tmp;
  const auto p = tmp.write("empty.png", {});
  const std::string msg = error_of([&] { clip::decode_image_file(p); });
  EXPECT_CONTAINS(msg, "empty.png");
  EXPECT_CONTAINS(msg, "empty");
  EXPECT_CONTAINS(error_of([] { clip::decode_image_bytes(nullptr, 0, "mem.png"); }), "mem.png");
}

TEST(DecodeErrors, NotAnImage) {
  TempDir tmp;
  const std::string text = "hello, this is a text file pretending to be a picture\n";
  const auto p = tmp.write("notes.png", {text.begin(), text.end()});
  const std::string msg = error_of([&] { clip::decode_image_file(p); });
  EXPECT_CONTAINS(msg, "notes.png");
  EXPECT_CONTAINS(msg, "not a PNG or JPEG");
}

TEST(DecodeErrors, OtherFormatsAreNamed) {
  const std::string gif = "GIF89a\x01\x00\x01\x00";
  const std::string msg =
      error_of([&] { clip::decode_image_bytes(reinterpret_cast<const uint8_t*>(gif.data()), gif.size(), "anim.gif"); });
  EXPECT_CONTAINS(msg, "anim.gif");
  EXPECT_CONTAINS(msg, "GIF");
}

TEST(DecodeErrors, TruncatedFilesNameTheFile) {
  TempDir tmp;
  for (const char* name : {"photo.png", "interlaced.png", "photo.jpg", "progressive.jpg"}) {
    auto bytes = read_bytes(kImages / "input" / name);
    bytes.resize(bytes.size() / 2);
    const auto p = tmp.write(std::string("half_") + name, bytes);
    const std::string msg = error_of([&] { clip::decode_image_file(p); });
    EXPECT_CONTAINS(msg, std::string("half_") + name);
    EXPECT_CONTAINS(msg, "truncated");
  }
  // Shorter than the PNG signature.
  const auto stub = tmp.write("stub.png", {0x89, 'P', 'N'});
  EXPECT_CONTAINS(error_of([&] { clip::decode_image_file(stub); }), "truncated PNG");
}

// Every prefix of a file either throws clip::Error or -- for a PNG missing
// only its IEND chunk, which PIL accepts too -- yields exactly the full image.
// Never a crash, never silently invented pixels.
TEST(DecodeErrors, EveryPrefixFailsCleanly) {
  for (const char* name : {"input/interlaced.png", "input/palette.png", "input/grey16.png", "input/photo.jpg",
                           "input/progressive.jpg", "input/cmyk.jpg"}) {
    SCOPED_TRACE(name);
    const auto bytes = read_bytes(kImages / name);
    const clip::Image full = clip::decode_image_bytes(bytes.data(), bytes.size(), name);
    int accepted = 0;
    for (size_t n = 0; n < bytes.size(); ++n) {
      try {
        const clip::Image img = clip::decode_image_bytes(bytes.data(), n, name);
        ASSERT_EQ(img.rgb, full.rgb) << "prefix of " << n << " bytes decoded to other pixels";
        ++accepted;
      } catch (const clip::Error& e) {
        ASSERT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      }
    }
    EXPECT_LE(accepted, 16) << "too many truncated prefixes accepted";
  }
}

// What PIL tolerates we tolerate, with the same pixels: a PNG without IEND,
// bytes after the end of the image. A JPEG without EOI is "truncated" in
// both.
TEST(DecodeErrors, ToleratesWhatPilTolerates) {
  for (const char* name : {"input/photo.png", "input/photo.jpg"}) {
    const auto clean = read_bytes(kImages / name);
    const auto want = clip::decode_image_bytes(clean.data(), clean.size(), name).rgb;
    auto trailing = clean;
    for (char c : std::string("trailing garbage")) trailing.push_back(static_cast<uint8_t>(c));
    EXPECT_EQ(clip::decode_image_bytes(trailing.data(), trailing.size(), name).rgb, want) << name;
  }
  const auto png = read_bytes(kImages / "input/photo.png");
  const auto want = clip::decode_image_bytes(png.data(), png.size(), "photo.png").rgb;
  EXPECT_EQ(clip::decode_image_bytes(png.data(), png.size() - 12, "no_iend.png").rgb, want);
  const auto jpg = read_bytes(kImages / "input/photo.jpg");
  EXPECT_CONTAINS(error_of([&] { clip::decode_image_bytes(jpg.data(), jpg.size() - 2, "no_eoi.jpg"); }),
                  "truncated JPEG");
}

// Flipped bytes anywhere: clip::Error or an image of the declared size.
TEST(DecodeErrors, CorruptBytesNeverCrash) {
  for (const char* name : {"input/interlaced.png", "input/photo.jpg", "input/progressive.jpg"}) {
    const auto clean = read_bytes(kImages / name);
    uint32_t rng = 12345;
    for (int trial = 0; trial < 300; ++trial) {
      auto bytes = clean;
      for (int k = 0; k < 1 + trial % 4; ++k) {
        rng = rng * 1664525u + 1013904223u;
        bytes[(rng >> 8) % bytes.size()] ^= static_cast<uint8_t>(1u << (rng % 8));
      }
      try {
        const clip::Image img = clip::decode_image_bytes(bytes.data(), bytes.size(), name);
        ASSERT_EQ(img.rgb.size(), static_cast<size_t>(img.width) * img.height * 3);
      } catch (const clip::Error& e) {
        ASSERT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      }
    }
  }
}

// A 100000 x 100000 header must be refused before anything is allocated.
TEST(DecodeErrors, AbsurdDimensions) {
  auto png = read_bytes(kImages / "input/rgb8_small.png");
  // IHDR data starts at byte 16: width, height (big-endian); fix up the CRC.
  const uint8_t dims[8] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0};
  std::copy(dims, dims + 8, png.begin() + 16);
  uint32_t crc = 0xffffffffu;
  for (size_t i = 12; i < 29; ++i) {
    crc ^= png[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xffffffffu;
  for (int k = 0; k < 4; ++k) png[29 + k] = static_cast<uint8_t>(crc >> (24 - 8 * k));
  std::string msg = error_of([&] { clip::decode_image_bytes(png.data(), png.size(), "bomb.png"); });
  EXPECT_CONTAINS(msg, "bomb.png");
  EXPECT_CONTAINS(msg, "100000x100000");

  // Same for JPEG: patch the SOF0 frame header's height and width.
  auto jpg = read_bytes(kImages / "input/photo.jpg");
  for (size_t i = 2; i + 9 < jpg.size(); ++i) {
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      jpg[i + 5] = jpg[i + 7] = 0xEA;  // 60000 x 60000 (libjpeg's own cap is 65500)
      jpg[i + 6] = jpg[i + 8] = 0x60;
      break;
    }
  }
  msg = error_of([&] { clip::decode_image_bytes(jpg.data(), jpg.size(), "bomb.jpg"); });
  EXPECT_CONTAINS(msg, "bomb.jpg");
  EXPECT_CONTAINS(msg, "60000x60000");
}
