#include "clip/cuda/cuda_common.h"

#include <cublasLt.h>

namespace clip::cuda {

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  throw DeviceError(std::string("CUDA error at ") + file + ":" + std::to_string(line) + ": " + expr + ": " +
                    cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

void throw_cublas_error(int status, const char* expr, const char* file, int line) {
  throw DeviceError(std::string("cuBLASLt error at ") + file + ":" + std::to_string(line) + ": " + expr + ": " +
                    cublasLtGetStatusName(static_cast<cublasStatus_t>(status)) + " (" +
                    cublasLtGetStatusString(static_cast<cublasStatus_t>(status)) + ")");
}

void check_launch(const Exec& exec, const char* what, const char* file, int line) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_cuda_error(err, what, file, line);
  if (!exec.sync_check) return;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(exec.stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return;
  err = cudaStreamSynchronize(exec.stream);
  if (err != cudaSuccess) throw_cuda_error(err, what, file, line);
}

int max_smem_optin() {
  int dev = 0, v = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
    cudaGetLastError();
    return 48 * 1024;
  }
  return v;
}

void require(bool ok, const char* op, const std::string& message) {
  if (!ok) throw Error(std::string("cuda ") + op + ": " + message);
}

}  // namespace clip::cuda
