// Reading .safetensors files (single or sharded) through mmap.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {...}}, then the data. Offsets are relative to the end of
// the header. Everything is validated before any byte is read: header length
// within the file, offsets inside the data, no overlap, size == numel * dtype size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "clip/tensor.h"

namespace clip {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType d);
size_t dtype_size(DType d);

// A tensor inside a mapped file. The bytes stay valid while the owning
// SafetensorsFile (or WeightSource) lives.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // for error messages
};

// Parses and validates a whole safetensors image held in memory. `file` is
// used in error messages only. Throws clip::Error. Exposed for the fuzzer.
std::vector<TensorView> parse_safetensors(const uint8_t* bytes, size_t size, const std::string& file);

class MappedFile;  // mmap_file.h

class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  std::unique_ptr<MappedFile> map_;
  std::vector<TensorView> tensors_;
  std::string path_;
};

}  // namespace clip
