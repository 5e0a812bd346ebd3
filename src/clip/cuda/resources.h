// The one object that owns the GPU resources of a backend (faiss
// GpuResources style): the device, the compute and copy streams, the
// cuBLASLt handle and its workspace (in the GEMM runner), and the tally of
// the device memory handed out through alloc(). What is sized by the
// model or the batch is allocated through alloc() by its user: the weights
// (weight_upload.h), the towers' scratch buffers (tower.h, Scratch), the
// preprocessing and frame-upload buffers; pinned host memory (PinnedBuffer)
// is held by its users too. Nothing here is process-wide: two
// backends (say on two devices) never share state.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>

#include "clip/cuda/cuda_common.h"
#include "clip/cuda/gemm.h"
#include "clip/cuda/tuning.h"

namespace clip::cuda {

// cudaMalloc'd memory with its size, counted in the owner's tally.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t bytes, size_t* tally);
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void reset();
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  size_t* tally_ = nullptr;
};

// cudaMallocHost'd memory: host side of asynchronous copies.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { reset(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void reserve(size_t bytes);  // grows (contents lost), never shrinks
  void reset();
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

class CudaResources {
 public:
  // Selects `device` and creates the streams and the GEMM runner, which
  // keeps `tuning`'s GEMM switches; tuning.sync_check goes into exec().
  CudaResources(int device, const Tuning& tuning);
  ~CudaResources();
  CudaResources(const CudaResources&) = delete;
  CudaResources& operator=(const CudaResources&) = delete;

  int device() const { return device_; }
  // Makes this device the calling thread's current one: the backend's entry
  // points call it first, since an indexer with several GPUs has an engine
  // per device and calls each from its own thread (and CUDA's current device
  // is per thread).
  void make_current() const;
  int num_sms() const { return num_sms_; }
  const Exec& exec() const { return exec_; }
  cudaStream_t stream() const { return exec_.stream; }
  // A second stream for host-to-device copies that overlap the compute on
  // stream() (frame uploads); ordered against it with events only.
  cudaStream_t copy_stream() const { return copy_stream_; }
  GemmRunner& gemm() { return *gemm_; }

  DeviceBuffer alloc(size_t bytes) { return DeviceBuffer(bytes, &allocated_); }
  size_t allocated_bytes() const { return allocated_; }  // everything alloc() handed out, live
  void synchronize() const;

 private:
  int device_ = 0;
  int num_sms_ = 0;
  Exec exec_;
  cudaStream_t copy_stream_ = nullptr;
  size_t allocated_ = 0;
  DeviceBuffer workspace_;
  std::unique_ptr<GemmRunner> gemm_;
};

}  // namespace clip::cuda
