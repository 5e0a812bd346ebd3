#include <cuda_runtime_api.h>

#include "clip/cuda/cuda_common.h"
#include "clip/cuda/test_support/dirty_shared_memory.h"

namespace clip::cuda::test {
namespace {

__global__ void fill_nan(int halves) {
  extern __shared__ unsigned short smem[];
  for (int i = threadIdx.x; i < halves; i += blockDim.x) smem[i] = 0x7e00;  // an fp16 (and bf16-pair) NaN
}

}  // namespace

void dirty_shared_memory() {
  int dev = 0, sms = 0, bytes = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  CUDA_CHECK(cudaFuncSetAttribute(fill_nan, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  // One block fills an SM's shared memory; four waves reach every SM.
  fill_nan<<<4 * sms, 256, bytes>>>(bytes / 2);
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace clip::cuda::test
