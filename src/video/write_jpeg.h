// Writes thumbnails: JPEG through libjpeg, atomically (temp file + rename) so
// a failure never leaves a half-written image behind.
#pragma once
#include <filesystem>

#include "clip/image/image.h"

namespace clipfind::video {

// Throws std::runtime_error naming the file.
void write_jpeg(const clip::Image& image, const std::filesystem::path& path, int quality = 90);

}  // namespace clipfind::video
