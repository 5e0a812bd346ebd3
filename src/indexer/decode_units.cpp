#include "indexer/decode_units.h"

#include <algorithm>
#include <exception>

#include "indexer/inputs.h"

namespace clipfind {

std::vector<DecodeUnit> plan_decode_units(const std::vector<std::filesystem::path>& files,
                                          const video::SamplingOptions& sampling, int decoders) {
  std::vector<std::vector<video::VideoPart>> parts(files.size(), std::vector<video::VideoPart>(1));
  if (decoders > 1 && sampling.mode != video::Sampling::scenes) {
    const bool few_files = size_t(decoders) > files.size();
    const int per_file = few_files ? int((size_t(decoders) + files.size() - 1) / files.size()) : 1;
    // From the last file back: the tail first, then (few files) the rest.
    double tail_left = decoders * kTailSecondsPerDecoder;
    for (size_t i = files.size(); i-- > 0;) {
      if (tail_left <= 0.0 && !few_files) break;  // the files before the tail stay whole
      if (is_image(files[i])) continue;
      try {
        // The file's duration, read as it is opened, sets its parts: the
        // tail's share of it in parts of kMinPartSeconds.
        parts[i] = video::split_at_keyframes(
            files[i],
            [&](double duration) {
              const double in_tail = std::min(duration, std::max(tail_left, 0.0));
              // Each file opened uses some of the tail, so that no more than
              // about 2 * decoders files are opened here.
              tail_left -= std::max(duration, kMinPartSeconds);
              return std::max(per_file, int(in_tail / kMinPartSeconds));
            },
            kMinPartSeconds);
      } catch (const std::exception&) {
        tail_left -= kMinPartSeconds;
      }
    }
  }
  std::vector<DecodeUnit> units;
  for (size_t i = 0; i < files.size(); ++i) {
    for (size_t p = 0; p < parts[i].size(); ++p) units.push_back({i, int(p), int(parts[i].size()), parts[i][p]});
  }
  return units;
}

}  // namespace clipfind
