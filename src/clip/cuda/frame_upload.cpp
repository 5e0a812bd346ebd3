#include "clip/cuda/frame_upload.h"

#include <algorithm>
#include <cstring>
#include <thread>

namespace clip::cuda {
namespace {

bool is_pinned(const void* p) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();  // pageable memory on old drivers reports an error
    return false;
  }
  return attr.type == cudaMemoryTypeHost;
}

}  // namespace

FrameUploader::FrameUploader(CudaResources& res) : res_(res) {
  for (Slot& s : slots_) {
    CUDA_CHECK(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&s.consumed, cudaEventDisableTiming));
  }
}

FrameUploader::~FrameUploader() {
  cudaStreamSynchronize(res_.copy_stream());
  cudaStreamSynchronize(res_.stream());
  for (Slot& s : slots_) {
    if (s.copied) cudaEventDestroy(s.copied);
    if (s.consumed) cudaEventDestroy(s.consumed);
  }
}

std::vector<const uint8_t*> FrameUploader::upload(const ImageView* images, int n) {
  Slot& s = slots_[next_];
  current_ = next_;
  next_ ^= 1;

  std::vector<size_t> offset(n);
  std::vector<bool> pinned(n);
  size_t total = 0, staged = 0;
  for (int i = 0; i < n; ++i) {
    offset[i] = total;
    total += slot_bytes(images[i]);
    pinned[i] = is_pinned(images[i].rgb);
    if (!pinned[i]) staged += slot_bytes(images[i]);
  }
  if (s.used) {
    // The device buffer is free once the compute stream has read it; the
    // staging buffer once the copy out of it has finished.
    CUDA_CHECK(cudaStreamWaitEvent(res_.copy_stream(), s.consumed, 0));
    if (staged > 0 || s.frames.bytes() < total) CUDA_CHECK(cudaEventSynchronize(s.copied));
  }
  if (s.frames.bytes() < total) {
    if (s.used) CUDA_CHECK(cudaEventSynchronize(s.consumed));
    s.frames.reset();
    s.frames = res_.alloc(total);
  }
  if (staged > s.staging_bytes) {
    s.staging.reserve(staged);
    s.staging_bytes = staged;
  }

  uint8_t* dev = s.frames.as<uint8_t>();
  uint8_t* host = s.staging.as<uint8_t>();
  std::vector<const uint8_t*> where(n);
  std::vector<const void*> from(n);
  std::vector<size_t> staged_images;  // those going through the staging buffer
  std::vector<uint8_t*> staged_to;
  size_t host_at = 0;
  for (int i = 0; i < n; ++i) {
    where[i] = dev + offset[i];
    from[i] = images[i].rgb;
    if (!pinned[i]) {
      staged_images.push_back(size_t(i));
      staged_to.push_back(host + host_at);
      from[i] = host + host_at;
      host_at += slot_bytes(images[i]);
    }
  }
  stage(images, staged_images, staged_to);
  for (int i = 0; i < n; ++i) {
    const size_t bytes = size_t(images[i].width) * images[i].height * 3;
    CUDA_CHECK(cudaMemcpyAsync(dev + offset[i], from[i], bytes, cudaMemcpyHostToDevice, res_.copy_stream()));
  }
  CUDA_CHECK(cudaEventRecord(s.copied, res_.copy_stream()));
  CUDA_CHECK(cudaStreamWaitEvent(res_.stream(), s.copied, 0));
  s.used = true;
  return where;
}

// One memcpy thread moves ~6 GB/s, a tenth of what PCIe takes: large
// batches are copied by several threads (each a share of the images).
void FrameUploader::stage(const ImageView* images, const std::vector<size_t>& which, const std::vector<uint8_t*>& to) {
  size_t total = 0;
  for (size_t i : which) total += size_t(images[i].width) * images[i].height * 3;
  const size_t threads =
      std::min<size_t>({which.size(), kMaxStagingThreads, std::max(1u, std::thread::hardware_concurrency()),
                        total / kBytesPerStagingThread + 1});
  auto copy_share = [&](size_t t) {
    for (size_t k = t; k < which.size(); k += threads) {
      const ImageView& im = images[which[k]];
      std::memcpy(to[k], im.rgb, size_t(im.width) * im.height * 3);
    }
  };
  if (threads <= 1) {
    if (!which.empty()) copy_share(0);
    return;
  }
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(copy_share, t);
  copy_share(0);
  for (auto& th : pool) th.join();
}

void FrameUploader::release() {
  if (current_ < 0) return;
  CUDA_CHECK(cudaEventRecord(slots_[current_].consumed, res_.stream()));
}

}  // namespace clip::cuda
