#include "clip/cuda/resources.h"

namespace clip::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes, size_t* tally) : bytes_(bytes), tally_(tally) {
  if (bytes == 0) return;
  const cudaError_t err = cudaMalloc(&ptr_, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    ptr_ = nullptr;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw Error("CUDA out of memory: could not allocate " + std::to_string(bytes >> 20) + " MiB (" +
                std::to_string(free_b >> 20) + " MiB free of " + std::to_string(total_b >> 20) +
                " MiB); try a smaller batch");
  }
  if (tally_) *tally_ += bytes;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    tally_ = o.tally_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
    o.tally_ = nullptr;
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (ptr_) {
    cudaFree(ptr_);
    if (tally_) *tally_ -= bytes_;
  }
  ptr_ = nullptr;
  bytes_ = 0;
}

void PinnedBuffer::reserve(size_t bytes) {
  if (bytes <= bytes_) return;
  reset();
  CUDA_CHECK(cudaMallocHost(&ptr_, bytes));
  bytes_ = bytes;
}

void PinnedBuffer::reset() {
  if (ptr_) cudaFreeHost(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

CudaResources::CudaResources(int device, const Tuning& tuning) : device_(device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, device));
  CUDA_CHECK(cudaStreamCreateWithFlags(&exec_.stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
  exec_.sync_check = tuning.sync_check;
  // 32 MiB: what cuBLASLt's Hopper kernels ask for at most.
  constexpr size_t kWorkspace = size_t(32) << 20;
  workspace_ = alloc(kWorkspace);
  gemm_ = std::make_unique<GemmRunner>(workspace_.get(), kWorkspace, tuning);
}

CudaResources::~CudaResources() {
  if (exec_.stream) cudaStreamSynchronize(exec_.stream);
  gemm_.reset();
  workspace_.reset();
  if (copy_stream_) cudaStreamSynchronize(copy_stream_);
  if (exec_.stream) cudaStreamDestroy(exec_.stream);
  if (copy_stream_) cudaStreamDestroy(copy_stream_);
}

void CudaResources::make_current() const { CUDA_CHECK(cudaSetDevice(device_)); }

void CudaResources::synchronize() const { CUDA_CHECK(cudaStreamSynchronize(exec_.stream)); }

}  // namespace clip::cuda
