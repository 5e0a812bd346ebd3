// GPU memory for the frames NVDEC decoders convert to RGB, on their way to
// the encoder. Built with the CUDA backend only (CLIPFIND_WITH_CUDA).
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "indexer/stages.h"

namespace clipfind {

// At most `frames` buffers lent at once: a decoder asking for one more waits
// until the encoder drops a frame it has embedded. Buffers are kept and
// reused (cudaMalloc/cudaFree per frame would cost more than the frame's
// conversion, and cudaFree waits for the whole device); a buffer too small
// for the frame asked for is replaced.
class DeviceFramePool {
 public:
  // Thrown by acquire once the pool is closed: the pipeline is stopping.
  struct Closed {};

  DeviceFramePool(int device, size_t frames);
  ~DeviceFramePool();
  DeviceFramePool(const DeviceFramePool&) = delete;
  DeviceFramePool& operator=(const DeviceFramePool&) = delete;

  struct Lease {
    uint8_t* rgb = nullptr;  // width * height * 3 bytes to write (device memory)
    DeviceFrame frame;       // the same, for the encoder; the buffer returns with its last copy
  };
  // A buffer for a width x height RGB frame; waits while all are lent.
  Lease acquire(int width, int height);
  // Wakes and refuses (Closed) every acquire from now on. Frames already
  // lent stay valid and still come back.
  void close();

  // All buffers lent must have come back before the pool goes (the queue
  // and the encoder holding frames are destroyed first).
 private:
  struct Buffer {
    uint8_t* ptr = nullptr;
    size_t bytes = 0;
  };
  void give_back(Buffer b);

  int device_;
  size_t capacity_;
  std::mutex m_;
  std::condition_variable returned_;
  std::vector<Buffer> free_;
  size_t lent_ = 0;
  bool closed_ = false;
};

}  // namespace clipfind
