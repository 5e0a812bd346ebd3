#include "indexer/decode_units.h"

#include <exception>

#include "indexer/inputs.h"

namespace clipfind {

std::vector<DecodeUnit> plan_decode_units(const std::vector<std::filesystem::path>& files,
                                          const video::SamplingOptions& sampling, int decoders) {
  const bool split = size_t(decoders) > files.size() && sampling.mode != video::Sampling::scenes;
  const int per_file = files.empty() ? 1 : int((size_t(decoders) + files.size() - 1) / files.size());
  std::vector<DecodeUnit> units;
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<video::VideoPart> parts(1);
    if (split && !is_image(files[i])) {
      try {
        parts = video::split_at_keyframes(files[i], per_file, kMinPartSeconds);
      } catch (const std::exception&) {
      }
    }
    for (size_t p = 0; p < parts.size(); ++p) units.push_back({i, int(p), int(parts.size()), parts[p]});
  }
  return units;
}

}  // namespace clipfind
