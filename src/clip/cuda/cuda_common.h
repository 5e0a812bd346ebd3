// Host-side basics shared by the CUDA backend's launchers and the engine:
// element types, error checking and the execution context passed to every
// launcher. Safe to include from plain C++ (g++): no device code here.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "clip/error.h"

namespace clip::cuda {

// Element type of a device buffer. Launchers take void* + DType so that the
// orchestration code (and the tests) stay plain C++.
enum class DType { F32, F16, BF16 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
inline const char* dtype_name(DType t) { return t == DType::F32 ? "f32" : (t == DType::F16 ? "f16" : "bf16"); }

// Throw clip::DeviceError "CUDA error at file:line: <call>: <message>" (or
// cuBLASLt's): the device failed, not the input.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(int status, const char* expr, const char* file, int line);

#define CUDA_CHECK(expr)                                                                      \
  do {                                                                                        \
    cudaError_t err_ = (expr);                                                                \
    if (err_ != cudaSuccess) ::clip::cuda::throw_cuda_error(err_, #expr, __FILE__, __LINE__); \
  } while (0)

#define CUBLAS_CHECK(expr)                                                          \
  do {                                                                              \
    int st_ = static_cast<int>(expr);                                               \
    if (st_ != 0) ::clip::cuda::throw_cublas_error(st_, #expr, __FILE__, __LINE__); \
  } while (0)

// What every launcher needs: the stream, and whether to synchronise after
// each launch to pin an asynchronous fault on the kernel that caused it
// (Tuning::sync_check, CLIPFIND_CUDA_SYNC=1; set by the resource object).
struct Exec {
  cudaStream_t stream = nullptr;
  bool sync_check = false;
};

// After a launch: cudaGetLastError, and with exec.sync_check a stream
// synchronise (skipped while the stream is being captured into a graph,
// where synchronising is illegal).
void check_launch(const Exec& exec, const char* what, const char* file, int line);
#define CLIP_CHECK_LAUNCH(exec, what) ::clip::cuda::check_launch((exec), (what), __FILE__, __LINE__)

// Launcher argument checks: throw clip::Error("<op>: <message>").
void require(bool ok, const char* op, const std::string& message);

// Shared memory a block of the current device may opt in to (227 KiB on
// H100, 163 KiB on A100; 48 KiB if the query fails).
int max_smem_optin();

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace clip::cuda
