// What the decoder threads of `clipfind index` take: whole files, or parts of
// long videos split at key frames (issue 32), so that one long file still
// keeps every decoder busy, and so that the decoders finish together.
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

// Seconds of video per decoder at the end of the work that go in parts of
// kMinPartSeconds. Decoders take units in order, each the next one free:
// with whole files at the end, one decoder may still have most of a long
// file ahead while the others have nothing left (measured on the H100 with
// 48 one-minute files: NVDEC half busy over the run). Small parts there
// leave each decoder at most one short part behind the others.
constexpr double kTailSecondsPerDecoder = 2 * kMinPartSeconds;

// Units in file order, a file's parts in order. Videos of at least
// 2 * kMinPartSeconds are split:
//  - with fewer files than decoders, each into up to ceil(decoders / files)
//    parts, so that every decoder has one;
//  - the last files, up to decoders * kTailSecondsPerDecoder seconds of
//    video, into parts of about kMinPartSeconds.
// Nothing is split with one decoder, nor for --scenes: its state (the last
// kept picture) cannot be carried into a part decoded apart. A file that
// cannot be opened stays whole, for its decoding to report why.
std::vector<DecodeUnit> plan_decode_units(const std::vector<std::filesystem::path>& files,
                                          const video::SamplingOptions& sampling, int decoders);

}  // namespace clipfind
