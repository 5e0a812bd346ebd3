#include "indexer/device_frame_pool.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <new>
#include <string>

#include "video/gpu_decoder.h"

namespace clipfind {

DeviceFramePool::DeviceFramePool(int device, size_t frames) : device_(device), capacity_(std::max<size_t>(frames, 1)) {}

DeviceFramePool::~DeviceFramePool() {
  cudaSetDevice(device_);
  for (const Buffer& b : free_) cudaFree(b.ptr);
}

DeviceFramePool::Lease DeviceFramePool::acquire(int width, int height) {
  const size_t need = size_t(width) * size_t(height) * 3;
  Buffer b;
  {
    std::unique_lock lock(m_);
    returned_.wait(lock, [&] { return closed_ || lent_ < capacity_; });
    if (closed_) throw Closed{};
    ++lent_;
    // The smallest free buffer that fits; else a too-small one is replaced.
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->bytes >= need && (best == free_.end() || it->bytes < best->bytes)) best = it;
    }
    if (best == free_.end() && !free_.empty()) best = free_.begin();
    if (best != free_.end()) {
      b = *best;
      free_.erase(best);
    }
  }
  if (b.bytes < need) {
    cudaSetDevice(device_);  // this decoder thread may not have used the device yet
    if (b.ptr) cudaFree(b.ptr);
    b = {};
    if (cudaMalloc(reinterpret_cast<void**>(&b.ptr), need) != cudaSuccess) {
      cudaGetLastError();  // clear it, or the next CUDA call would report it
      give_back({});
      // NVDEC's frames cannot be kept: the CPU decoder takes the file.
      throw video::GpuDecodeError(
          "no GPU memory for a " + std::to_string(width) + "x" + std::to_string(height) + " RGB frame", 0);
    }
    b.bytes = need;
  }
  Lease l;
  l.rgb = b.ptr;
  l.frame = DeviceFrame(new clip::DeviceImageView{width, height, b.ptr}, [this, b](const clip::DeviceImageView* v) {
    delete v;
    give_back(b);
  });
  return l;
}

void DeviceFramePool::give_back(Buffer b) {
  std::lock_guard lock(m_);
  if (b.ptr) free_.push_back(b);
  --lent_;
  returned_.notify_one();
}

void DeviceFramePool::close() {
  std::lock_guard lock(m_);
  closed_ = true;
  returned_.notify_all();
}

}  // namespace clipfind
