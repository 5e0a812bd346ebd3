#include "indexer/gpu_decoders.h"

#ifdef CLIPFIND_WITH_CUDA
#include <cuda_runtime_api.h>

#include "clip/cuda/nv12_to_rgb.cuh"
#include "clip/error.h"
#include "indexer/device_frame_pool.h"
#include "video/gpu_decoder.h"
#endif

namespace clipfind {

#ifdef CLIPFIND_WITH_CUDA

bool gpu_decoding_available(int cuda_device, std::string* why) {
  if (cuda_device < 0) {
    if (why) *why = "the engine runs on the CPU (GPU decoding needs it on CUDA: --device cuda)";
    return false;
  }
  return video::gpu_decoding_available(cuda_device, why);
}

struct GpuDecoders::Impl {
  int device;
  DeviceFramePool pool;
};

GpuDecoders::GpuDecoders(int cuda_device, size_t pool_frames)
    : impl_(new Impl{cuda_device, DeviceFramePool(cuda_device, pool_frames)}) {}

GpuDecoders::~GpuDecoders() = default;

void GpuDecoders::close() { impl_->pool.close(); }

video::VideoInfo GpuDecoders::decode(const std::filesystem::path& path, const video::SamplingOptions& sampling,
                                     const video::VideoPart& part, const std::atomic<bool>* stop,
                                     const std::function<void(double, DeviceFrame&&)>& emit) {
  video::GpuDecodeOptions o;
  o.sampling = sampling;
  o.part = part;
  o.device = impl_->device;
  o.stop = stop;
  try {
    return video::decode_video_gpu(path, o, [&](const video::GpuFrame& f) {
      const int w = clip::cuda::upright_width(f.picture), h = clip::cuda::upright_height(f.picture);
      DeviceFramePool::Lease lease;
      try {
        lease = impl_->pool.acquire(w, h);
      } catch (const DeviceFramePool::Closed&) {
        throw GpuPoolClosed{};
      }
      try {
        clip::cuda::yuv420_to_rgb({f.stream}, f.picture, lease.rgb, size_t(w) * 3);
      } catch (const clip::Error& e) {
        throw video::GpuDecodeError(path.string() + ": " + e.what(), 0);
      }
      // The encoder reads the frame on its own stream: it must be complete
      // before it is queued (the decoder would wait for this stream anyway
      // before its next frame).
      const cudaError_t err = cudaStreamSynchronize(f.stream);
      if (err != cudaSuccess) {
        throw video::GpuDecodeError(path.string() + ": CUDA error converting a frame: " + cudaGetErrorString(err), 0);
      }
      emit(f.time, std::move(lease.frame));
    });
  } catch (const video::GpuDecodeError& e) {
    throw GpuRefused(e.what());
  }
}

#else  // no CUDA backend in this build

bool gpu_decoding_available(int, std::string* why) {
  if (why) *why = "this build of clipfind has no CUDA backend";
  return false;
}

struct GpuDecoders::Impl {};

GpuDecoders::GpuDecoders(int, size_t) {
  throw std::runtime_error("GPU decoding: this build of clipfind has no CUDA backend");
}

GpuDecoders::~GpuDecoders() = default;

void GpuDecoders::close() {}

video::VideoInfo GpuDecoders::decode(const std::filesystem::path&, const video::SamplingOptions&,
                                     const video::VideoPart&, const std::atomic<bool>*,
                                     const std::function<void(double, DeviceFrame&&)>&) {
  throw GpuRefused("this build of clipfind has no CUDA backend");
}

#endif

}  // namespace clipfind
