// Video decoding on the GPU's own decoders (NVDEC, through FFmpeg's CUDA
// hwaccel): the same sampled frames as decode_video (same sampling code,
// same skipped frames), left in GPU memory as NV12 or P010 with what the
// colour conversion needs (clip::cuda::yuv420_to_rgb).
//
//   GpuDecodeOptions o;  // o.device: the engine's CUDA device
//   try {
//     decode_video_gpu("a.mp4", o, [&](const GpuFrame& f) {
//       clip::cuda::yuv420_to_rgb({f.stream}, f.picture, rgb, pitch);  // on f.stream
//     });
//   } catch (const GpuDecodeError& e) {
//     // NVDEC could not take this file (e.what() says why): decode it with
//     // decode_video instead, dropping the e.delivered() frames already seen.
//   }
//
// The CUDA context is the device's primary context, the one the CUDA runtime
// (and so the engine) uses; its flags are left as they are. Built only with
// the CUDA backend (CLIPFIND_WITH_CUDA); video/gpu_decoder.h's functions exist
// then alone.
#pragma once
#include <cuda_runtime_api.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>

#include "clip/cuda/nv12_to_rgb.cuh"
#include "video/decoder.h"
#include "video/sampler.h"

namespace clipfind::video {

// NVDEC cannot decode this file (codec, profile, bit depth, chroma format or
// size it does not support; no decoder session; an error in the middle of
// the stream). The file itself may be fine: decode it on the CPU.
class GpuDecodeError : public Error {
 public:
  GpuDecodeError(const std::string& what, long delivered) : Error(what), delivered_(delivered) {}
  // Frames already handed to on_frame before the failure.
  long delivered() const { return delivered_; }

 private:
  long delivered_;
};

struct GpuDecodeOptions {
  SamplingOptions sampling;
  int device = 0;                           // CUDA device ordinal (the engine's)
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT) to stop early
  VideoPart part;                           // only this part's frames (DecodeOptions::part)
};

struct GpuFrame {
  double time = 0.0;  // seconds from the stream's start, as decode_video's
  // Planes in device memory, the stream's matrix, range, chroma siting and
  // display rotation; valid until on_frame returns.
  clip::cuda::Yuv420Frame picture;
  // The stream the decoder wrote the planes on. Enqueue the work that reads
  // them here: the decoder synchronises this stream after on_frame returns,
  // before the planes go back to NVDEC. (Work on another stream must wait
  // for this one first and be finished when on_frame returns.)
  cudaStream_t stream = nullptr;
};

// Decodes `path` with NVDEC, calling on_frame for each sampled frame (the
// same times as decode_video with the same sampling). Throws GpuDecodeError
// for what NVDEC cannot do, Error for what no decoder could (no such file,
// no video stream, ...).
VideoInfo decode_video_gpu(const std::filesystem::path& path, const GpuDecodeOptions& options,
                           const std::function<void(const GpuFrame&)>& on_frame);

// Whether this build's FFmpeg has NVDEC and a CUDA device answers (for
// tests and `--decode auto`); false with the reason in *why otherwise.
bool gpu_decoding_available(int device, std::string* why);

}  // namespace clipfind::video
