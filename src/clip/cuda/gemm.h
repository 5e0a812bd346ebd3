// Linear layers through cuBLASLt:  out[M, N] (+)= x[M, K] * w[N, K]^T + bias[N]
// (w in PyTorch's [out, in] layout). The bias add and, with `accumulate`,
// the residual add (beta = 1, C = D = out) happen in cuBLASLt's epilogue, so
// the out-projection and fc2 update the float32 residual stream in place
// with no extra pass over memory. Plans (descriptors + the heuristic's
// algorithm) are cached per shape so a call costs one cublasLtMatmul.
//
// On a Hopper GPU (sm_90, with CUTLASS in the build) a shape may instead run
// one of the sm90/ kernels, which also fuse fc1's activation: a large
// product's first call times cuBLASLt (plus its separate bias/activation
// pass) against them on the real operands and keeps the fastest; fc1 over
// few rows (batch 1) always takes a few-row sm90 kernel that fits one wave.
#pragma once
#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "clip/cuda/bias_act.cuh"
#include "clip/cuda/cuda_common.h"
#include "clip/cuda/sm90/sm90_gemm.h"
#include "clip/cuda/tuning.h"

namespace clip::cuda {

// A LayerNorm folded into the GEMMs around it (ln_fold.cuh), on the sm90
// kernels only (ln_fold_available):
//   Stats  the residual product (accumulate) also writes an fp16 copy of the
//          updated stream and, from each row's statistics, the next norm's
//          per-row scale (LnFoldIo);
//   Apply  the next product reads that copy as x, with gamma/beta already in
//          its weights and bias (fold_norm.h), and scales its rows in the
//          epilogue.
enum class LnFold { None, Stats, Apply };

// The extra buffers of a LnFold product.
struct LnFoldIo {
  // Stats: written.
  void* copy = nullptr;       // fp16 [M, N]
  float* partials = nullptr;  // scratch, sm90::ln_partials_floats(M, N) floats
  float eps = 1e-5f;          // the norm's epsilon
  // Stats: written; Apply: read. [M]: 1/sqrt(var + eps).
  float* scale = nullptr;
};

enum class GemmCompute {
  F32,    // CUBLAS_COMPUTE_32F with float32 operands: no TF32
  TF32,   // CUBLAS_COMPUTE_32F_FAST_TF32 with float32 operands
  Mixed,  // fp16/bf16 operands, float32 accumulation (CUBLAS_COMPUTE_32F)
};

struct GemmShape {
  int64_t M = 0, N = 0, K = 0;
  DType in_type = DType::F32;   // x and w
  DType out_type = DType::F32;  // out (also C when accumulating)
  GemmCompute compute = GemmCompute::F32;
  bool accumulate = false;  // out += ...
  bool bias = false;        // bias[N] added in the epilogue
  // Type of the bias handed to cuBLASLt: float32, or the output type (the
  // combination cuBLASLt documents as its default; with a 16-bit output a
  // float32 bias is not offered on Hopper, see the tests).
  DType bias_type = DType::F32;
  // Activation applied after the bias: out = act(x w^T + bias). Not with
  // `accumulate`. cuBLASLt has no epilogue for CLIP's activations, so its
  // path adds bias + activation in a second pass (bias_act).
  Act act = Act::None;
  LnFold ln_fold = LnFold::None;  // with its buffers passed to linear()
  auto key() const {
    return std::make_tuple(M, N, K, int(in_type), int(out_type), int(compute), accumulate, bias, int(bias_type),
                           int(act), int(ln_fold));
  }
};

class GemmRunner {
 public:
  // Keeps `tuning`'s GEMM switches (tuning.h): bias_epilogue (off: never
  // fuse the bias), gemm_tune (off: cuBLASLt's first heuristic pick instead
  // of timing its top candidates and the sm90 kernels on each shape's first
  // call), cutlass (off: never the sm90 kernels), sm90_few_rows (which
  // products of few rows take them), sm90_skip (parts of sm90 kernel names
  // left out), ln_fold (off: never fold LayerNorms, ln_fold_available),
  // gemm_log (each shape's race on stderr) and sm_limit (the persistent sm90
  // kernels' grids on at most that many SMs).
  GemmRunner(void* workspace, size_t workspace_bytes, const Tuning& tuning);
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  // Runs the product. `bias` has shape.bias_type; when cuBLASLt has no bias
  // epilogue for the combination, the float32 `bias_f32` (or `bias` itself
  // when that is float32) is added by a separate kernel instead.
  // A shape with ln_fold takes its buffers in `fold`.
  void linear(const Exec& exec, const GemmShape& shape, const void* x, const void* w, const void* bias, void* out,
              const float* bias_f32 = nullptr, const LnFoldIo* fold = nullptr);
  // Whether passes of M rows should fold a LayerNorm over `hidden` features
  // (LnFold): fp16 on the sm90 kernels, at least 8,192 rows (gemm.cpp), and
  // whole tile columns of the residual product.
  bool ln_fold_available(int64_t M, int64_t hidden) const;
  // Whether this shape's bias is applied in the epilogue (tests/logs).
  bool bias_fused(const GemmShape& shape);
  // The kernel chosen for the shape so far: "cublasLt" or an sm90 variant.
  std::string kernel_name(const GemmShape& shape);
  // Whether sm90 kernels are compiled in and this GPU runs them.
  bool sm90_enabled() const { return sm90_; }
  size_t plans() const { return plans_.size(); }

 private:
  struct Plan;
  Plan& plan_for(const GemmShape& shape);
  void tune(Plan& p, const GemmShape& s, const Exec& exec, const void* x, const void* w, const void* bias,
            const float* bias_f32, const LnFoldIo* fold);
  void run_cublas(const Plan& p, const GemmShape& s, const Exec& exec, const void* x, const void* w, const void* bias,
                  void* out, const float* bias_f32);
  static constexpr int kCandidates = 8;  // heuristic picks timed on a shape's first call
  bool tune_ = true;
  bool sm90_ = false;  // sm90 kernels compiled in, enabled and runnable here
  bool log_ = false;
  bool ln_fold_ = true;                // Tuning::ln_fold
  std::set<sm90::Epilogue> few_rows_;  // Tuning::sm90_few_rows
  std::vector<std::string> skipped_;   // Tuning::sm90_skip
  int sm_count_ = 0;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_;
  size_t workspace_bytes_;
  bool allow_bias_epilogue_ = true;
  std::map<decltype(GemmShape{}.key()), std::unique_ptr<Plan>> plans_;
};

}  // namespace clip::cuda
