#include "clip/cuda/device.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <string>

#include "clip/cuda/convert.cuh"
#include "clip/cuda/cuda_backend.h"
#include "clip/cuda/cuda_common.h"
#include "clip/cuda/sm90/sm90_gemm.h"
#include "clip/error.h"

namespace clip {
namespace {

std::string version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

}  // namespace

bool cuda_available(std::string* why) {
  auto fail = [&](const std::string& msg) {
    if (why) *why = msg;
    cudaGetLastError();  // clear the sticky-free error state the query left
    return false;
  };
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaErrorInsufficientDriver) {
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    if (driver == 0) return fail("no NVIDIA driver found (libcuda.so is not installed or not loadable)");
    return fail("the NVIDIA driver is too old: it supports CUDA " + version(driver) + ", this build needs CUDA " +
                version(runtime));
  }
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) return fail("no CUDA GPU found");
  if (err != cudaSuccess)
    return fail(std::string("CUDA is unavailable: ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return fail("cannot query CUDA device 0");
  if (prop.major < 8)
    return fail(std::string("GPU ") + prop.name + " has compute capability " + std::to_string(prop.major) + "." +
                std::to_string(prop.minor) + "; the CUDA backend needs 8.0 (Ampere) or newer");
  std::string k;
  if (!cuda::kernels_runnable(&k)) return fail(k);
  if (why) why->clear();
  return true;
}

std::string cuda_device_description(int device) {
  cuda::require_device(device);
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    throw Error("cannot query CUDA device " + std::to_string(device));
  }
  char mem[32];
  std::snprintf(mem, sizeof mem, "%.1f GiB", prop.totalGlobalMem / 1073741824.0);
  int driver = 0;
  cudaDriverGetVersion(&driver);
  return "cuda:" + std::to_string(device) + " " + prop.name + " (compute capability " + std::to_string(prop.major) +
         "." + std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) + " SMs, " + mem +
         "; driver for CUDA " + version(driver) + ")";
}

std::string cuda_build_description() {
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  const size_t sm90 = cuda::sm90::variants().size();
  return "CUDA runtime " + version(runtime) + "; Hopper sm90 GEMMs " +
         (sm90 ? "built (" + std::to_string(sm90) + " kernels)" : std::string("not built")) + "; experiment switches " +
         (cuda::Tuning::experiments_built() ? "read (CLIPFIND_EXPERIMENTS=ON)" : "not read");
}

namespace cuda {

void require_device(int device) {
  std::string why;
  if (!cuda_available(&why)) throw Error("CUDA backend unavailable: " + why);
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count)
    throw Error("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " found)");
}

int device_count() {
  if (!cuda_available(nullptr)) return 0;
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

}  // namespace cuda
}  // namespace clip
