// What the decoder threads of `clipfind index` take: whole files, or, with
// fewer files than threads, parts of long videos split at key frames (issue
// 32), so that one long file still keeps every decoder busy.
#pragma once
#include <cstddef>
#include <filesystem>
#include <vector>

#include "video/decoder.h"
#include "video/sampler.h"

namespace clipfind {

struct DecodeUnit {
  size_t file = 0;
  int part = 0;   // which part of the file (0 for a whole one)
  int parts = 1;  // how many the file was split into
  video::VideoPart range;
};

// Parts shorter than this cost more in seeking and decoder start-up than
// they bring, and keep the sample joins (EverySampler::joins) rare.
constexpr double kMinPartSeconds = 30.0;

// One unit per file, in order, unless decoders > files: then each video of
// at least 2 * kMinPartSeconds is split into up to ceil(decoders / files)
// parts. --scenes is never split: its state (the last kept picture) cannot
// be carried into a part decoded apart. A file that cannot be opened stays
// whole, for its decoding to report why.
std::vector<DecodeUnit> plan_decode_units(const std::vector<std::filesystem::path>& files,
                                          const video::SamplingOptions& sampling, int decoders);

}  // namespace clipfind
