// Every switch of the CUDA backend in one value. Tuning::from_environment()
// reads it once when a backend is made (make_cuda_backend); from there it is
// passed down explicitly (CudaResources, GemmRunner, OpProfiler, the towers,
// attention): nothing else in src/clip reads the environment, and nothing
// here is process-wide. Tests and benchmarks build the value they want.
// Plain C++ (no CUDA header): cuda_backend.h, which the engine includes,
// carries it in CudaOptions.
//
// Two kinds of switches:
//  - kept for users and bug reports, read in every build (README.md table):
//      CLIPFIND_CUDA_SYNC=1          synchronise and check after each launch
//      CLIPFIND_CUDA_PROFILE=1|graph per-op times on stderr (eager | replayed graph)
//      CLIPFIND_CUDA_GRAPHS=0        no CUDA graphs (every pass launched eagerly)
//      CLIPFIND_CUDA_PREPROCESS=0    images preprocessed on the CPU
//      CLIPFIND_CUDA_GEMM_LOG=1      each GEMM shape's race of kernels on stderr
//  - A/B experiments, read from the environment only in builds configured
//    with -DCLIPFIND_EXPERIMENTS=ON (the benchmarks' builds), so shipped
//    behaviour never depends on them:
//      CLIPFIND_CUDA_ATTN=simt|mma           attention kernels
//      CLIPFIND_CUDA_GEMM_TUNE=0             no first-call timing of GEMM kernels
//      CLIPFIND_CUDA_CUTLASS=0               no sm90 (CUTLASS) GEMMs
//      CLIPFIND_CUDA_SM90_SMALL_M=act,bias,residual|all|0  few-row sm90 GEMMs
//      CLIPFIND_CUDA_SM90_SKIP=2x1,...       sm90 kernels left out of the race
//      CLIPFIND_CUDA_LN_FOLD=0               no LayerNorms folded into GEMMs
// Fields without a variable (bias_epilogue, sm_limit, batch_buckets) are set
// by tests and benchmarks only.
#pragma once
#include <string>
#include <vector>

namespace clip::cuda {

struct Tuning {
  // ---- kept switches --------------------------------------------------------
  enum class Profile { Off, Eager, Graph };
  bool sync_check = false;         // CLIPFIND_CUDA_SYNC (cuda_common.h, Exec)
  Profile profile = Profile::Off;  // CLIPFIND_CUDA_PROFILE (profiler.h)
  bool graphs = true;              // CLIPFIND_CUDA_GRAPHS (graph_cache.h)
  bool gpu_preprocess = true;      // CLIPFIND_CUDA_PREPROCESS (gpu_preprocess.h)
  bool gemm_log = false;           // CLIPFIND_CUDA_GEMM_LOG (gemm.h)

  // ---- experiments ----------------------------------------------------------
  // Simt: the float32 SIMT kernel everywhere (rules the tensor-core kernels
  // in or out); NoWgmma: the mma.sync kernel where the Hopper wgmma one
  // would run (attention_choice).
  enum class Attention { Auto, NoWgmma, Simt };
  Attention attention = Attention::Auto;
  // Time cuBLASLt's top candidates (and the sm90 kernels) on each GEMM
  // shape's first call; off: cuBLASLt's first heuristic pick.
  bool gemm_tune = true;
  bool cutlass = true;  // the sm90 kernels where they are built and the GPU runs them
  // Which products of few rows take the few-row sm90 kernels, by epilogue:
  // fc1 (bias + activation), qkv (bias), out-projection and fc2 (residual).
  // Default fc1 only: the one that made whole passes faster
  // (bench/notes/cuda-rounds.md, 'fc1 over few rows on a 64-row CUTLASS tile').
  struct FewRows {
    bool act = true, bias = false, residual = false;
  } sm90_few_rows;
  // sm90 variants whose names contain one of these are left out of the race
  // (bench/gpu/gemm_race.sh measures whole passes without them).
  std::vector<std::string> sm90_skip;
  bool ln_fold = true;  // fold LayerNorms into the GEMMs of large passes (gemm.h, LnFold)
  // cuBLASLt's bias epilogue; off: the bias in a pass of its own (a test
  // bisects with it).
  bool bias_epilogue = true;
  // The persistent sm90 kernels' grids on at most this many SMs; 0: all
  // (bench_gpu --split: two half batches side by side).
  int sm_limit = 0;
  // Vision passes of up to 64 images run at batch_bucket(n) rows
  // (batch_bucket.h); off: at n (bench_gpu --mixed-batches compares the two).
  bool batch_buckets = true;

  // The kept switches from the environment, and with -DCLIPFIND_EXPERIMENTS=ON
  // the experiments too. Throws clip::Error naming a variable whose value is
  // not understood.
  static Tuning from_environment();
  // Whether this build reads the experiment switches.
  static bool experiments_built();
  // One line: every field's value, and whether experiments are read here.
  std::string describe() const;
};

}  // namespace clip::cuda
