// NVDEC's side of the decoding stage of `clipfind index`: whether it can
// run, and one file decoded on the GPU into RGB frames that stay there. The
// header needs no CUDA; without the CUDA backend (CLIPFIND_WITH_CUDA) GPU
// decoding is never available and GpuDecoders cannot be made.
#pragma once
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "indexer/stages.h"
#include "video/decoder.h"
#include "video/sampler.h"

namespace clipfind {

// NVDEC cannot decode this file (codec, profile, size, no session, an error
// midway): the CPU decoders take it.
class GpuRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The pipeline is stopping: the frame pool no longer lends buffers.
struct GpuPoolClosed {};

// Whether files can be decoded with NVDEC for an engine on CUDA device
// `cuda_device` (-1: not on CUDA); false with the reason in *why otherwise.
bool gpu_decoding_available(int cuda_device, std::string* why);

class GpuDecoders {
 public:
  // NVDEC sessions in flight by default: measured on the H100 (issue 32),
  // 14 parallel decodes reach ~3,700 1080p frames/s, 28 no more.
  static constexpr int kDefaultSessions = 14;
  // Converted frames lent at once by default (1080p RGB: 6 MB each, so
  // ~1.6 GB at most). Never fewer than a batch, or the encoder could hold
  // every buffer while waiting for the frames that would complete its batch.
  static constexpr size_t kDefaultPoolFrames = 256;

  GpuDecoders(int cuda_device, size_t pool_frames);
  ~GpuDecoders();
  GpuDecoders(const GpuDecoders&) = delete;
  GpuDecoders& operator=(const GpuDecoders&) = delete;

  // Decodes `path` with NVDEC, converting each sampled frame to upright RGB
  // in a pool buffer (waiting for one while all are lent) and calling
  // emit(time, frame). Throws GpuRefused for what the CPU decoder should try
  // instead, video::Error for what no decoder could do (no such file, not a
  // video), GpuPoolClosed once close() was called, and what emit throws.
  // With a part, only its frames (video::DecodeOptions::part).
  video::VideoInfo decode(const std::filesystem::path& path, const video::SamplingOptions& sampling,
                          const video::VideoPart& part, const std::atomic<bool>* stop,
                          const std::function<void(double, DeviceFrame&&)>& emit);
  // Wakes decoders waiting for a buffer: the pipeline is stopping.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clipfind
