#include "index/fingerprint.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "clip/model/config.h"

namespace clipfind::index {

namespace {

struct Fnv1a {
  uint64_t h = 1469598103934665603ull;
  void add(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
  void add(const std::string& s) { add(s.data(), s.size() + 1); }  // + NUL: "ab","c" != "a","bc"
};

void add_range(Fnv1a& f, std::ifstream& in, uint64_t offset, uint64_t n) {
  std::vector<char> buf(n);
  in.clear();
  in.seekg(std::streamoff(offset));
  in.read(buf.data(), std::streamsize(n));
  f.add(buf.data(), size_t(in.gcount()));
}

}  // namespace

std::string model_fingerprint(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  const fs::path config = dir / "config.json";
  std::ifstream cfg(config, std::ios::binary);
  if (!cfg) throw std::runtime_error(config.string() + ": cannot read (is " + dir.string() + " a CLIP model folder?)");
  Fnv1a f;
  add_range(f, cfg, 0, fs::file_size(config));
  std::vector<fs::path> weights;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".safetensors") weights.push_back(e.path());
  }
  std::sort(weights.begin(), weights.end());
  constexpr uint64_t kSample = 64 * 1024;
  for (const auto& w : weights) {
    const uint64_t size = fs::file_size(w);
    f.add(w.filename().string());
    f.add(&size, sizeof size);
    std::ifstream in(w, std::ios::binary);
    uint64_t header = 0;  // safetensors: u64 little-endian header length, then JSON
    in.read(reinterpret_cast<char*>(&header), 8);
    add_range(f, in, 0, std::min<uint64_t>(size, 8 + std::min<uint64_t>(header, 16 << 20)));
    for (int q = 1; q <= 4; ++q) {
      const uint64_t at = size > kSample ? (size - kSample) * q / 4 : 0;
      add_range(f, in, at, std::min(kSample, size));
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(f.h));
  return hex;
}

std::string model_family(const std::filesystem::path& dir) {
  try {
    return clip::family_name(clip::load_clip_config(dir / "config.json").family);
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace clipfind::index
