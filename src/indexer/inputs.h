// The files `clipfind index` looks at: which extensions it takes (the
// folder walk is collect_inputs in pipeline.h), and the size and
// modification time that tell an unchanged file.
#pragma once
#include <cstdint>
#include <filesystem>

namespace clipfind {

bool is_image(const std::filesystem::path& p);

struct FileStat {
  int64_t size = 0, mtime_ns = 0;
};
FileStat stat_file(const std::filesystem::path& p);

}  // namespace clipfind
