// Read-only memory map of a whole file, released on destruction.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace clip {

class MappedFile {
 public:
  // Throws clip::Error naming the file if it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace clip
