// Uploads batches of 8-bit RGB images to the GPU on the copy stream, so that
// the next batch travels over PCIe while the current one is preprocessed
// and encoded on the compute stream. Two slots, each a device buffer (and a
// pinned staging buffer for images in pageable memory), ordered with events:
//   copy stream:    wait slot.consumed -> H2D -> record slot.copied
//   compute stream: wait slot.copied -> preprocess -> record slot.consumed
// Images already in pinned memory (cudaMallocHost / cudaHostRegister) are
// copied straight from where they are; others go through the staging
// buffer, filled by the host while the GPU works on the other slot.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "clip/cuda/resources.h"
#include "clip/image/image.h"

namespace clip::cuda {

class FrameUploader {
 public:
  explicit FrameUploader(CudaResources& res);
  ~FrameUploader();
  FrameUploader(const FrameUploader&) = delete;
  FrameUploader& operator=(const FrameUploader&) = delete;

  // Byte distance between consecutive images of one upload (each image
  // starts 16-byte aligned).
  static size_t slot_bytes(const ImageView& image) {
    return (size_t(image.width) * image.height * 3 + 15) & ~size_t(15);
  }

  // Starts copying images[0, n) into the next slot and makes the compute
  // stream wait for it; returns each image's device address. The images'
  // memory must stay valid until the compute stream passes that point.
  std::vector<const uint8_t*> upload(const ImageView* images, int n);
  // Called once the compute stream's reads of the last upload are enqueued:
  // its slot may be overwritten after they run.
  void release();

 private:
  // Copies images[which[k]] to to[k] (pinned staging memory).
  void stage(const ImageView* images, const std::vector<size_t>& which, const std::vector<uint8_t*>& to);

  static constexpr size_t kMaxStagingThreads = 8;
  static constexpr size_t kBytesPerStagingThread = size_t(8) << 20;  // below that, threads cost more than they save
  struct Slot {
    DeviceBuffer frames;
    PinnedBuffer staging;
    size_t staging_bytes = 0;
    cudaEvent_t copied = nullptr, consumed = nullptr;
    bool used = false;
  };
  CudaResources& res_;
  Slot slots_[2];
  int next_ = 0, current_ = -1;
};

}  // namespace clip::cuda
