#include "clip/cuda/gemm.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "clip/cuda/bias_act.cuh"
#include "clip/cuda/ln_fold.cuh"
#include "clip/cuda/sm90/sm90_gemm.h"

namespace clip::cuda {
namespace {

// From this many rows the large-tile sm90 kernels race cuBLASLt (plan_for).
constexpr int64_t kSm90MinRows = 1024;
// From this many rows a pass folds its LayerNorms into the sm90 GEMMs
// (ln_fold_available). Below, the large kernels fill the SMs poorly and
// cuBLASLt, which the folded products cannot use, often wins: B/32 at batch
// 64 (3,200 rows) was 7% slower folded, batch 256 (12,800) 4% faster
// (bench/notes/cuda-rounds.md, 'LayerNorms folded into the GEMMs').
constexpr int64_t kLnFoldMinRows = 8192;
// Up to this many rows (two 64-row tiles) the few-row sm90 kernels run
// instead of cuBLASLt for the epilogues in few_rows_ (plan_for).
constexpr int64_t kSm90FewRowsMax = 128;

// The sm90 epilogue that computes this shape's whole linear layer, if any:
// fp16 operands, a float32 bias, and an fp16 output (bias [+ activation])
// or the float32 residual stream updated in place.
std::optional<sm90::Epilogue> sm90_epilogue(const GemmShape& s) {
  if (s.in_type != DType::F16 || s.compute != GemmCompute::Mixed || !s.bias) return std::nullopt;
  if (s.accumulate) {
    if (s.out_type != DType::F32 || s.act != Act::None || s.ln_fold == LnFold::Apply) return std::nullopt;
    return s.ln_fold == LnFold::Stats ? sm90::Epilogue::BiasResidualLnStats : sm90::Epilogue::BiasResidual;
  }
  if (s.out_type != DType::F16 || s.ln_fold == LnFold::Stats) return std::nullopt;
  const bool fold = s.ln_fold == LnFold::Apply;
  switch (s.act) {
    case Act::None: return fold ? sm90::Epilogue::LnFoldBias : sm90::Epilogue::Bias;
    case Act::QuickGelu: return fold ? sm90::Epilogue::LnFoldQuickGelu : sm90::Epilogue::BiasQuickGelu;
    case Act::Gelu: return fold ? sm90::Epilogue::LnFoldGelu : sm90::Epilogue::BiasGelu;
    case Act::GeluTanh: return fold ? sm90::Epilogue::LnFoldGeluTanh : sm90::Epilogue::BiasGeluTanh;
  }
  return std::nullopt;
}

// The sm90 kernels' view of a product.
sm90::Problem sm90_problem(const GemmShape& s, const void* x, const void* w, const float* bias_f32, void* out,
                           int sm_count, const LnFoldIo* fold) {
  sm90::Problem p{s.M, s.N, s.K, x, w, bias_f32, out, sm_count};
  if (fold) {
    p.copy = fold->copy;
    p.row_partials = fold->partials;
    p.row_scale = fold->scale;
  }
  return p;
}

// The epilogues whose products of few rows run the few-row sm90 kernels
// (Tuning::sm90_few_rows): fc1's bias + activation (which then needs no
// second pass), qkv's bias, the out-projection's and fc2's residual.
std::set<sm90::Epilogue> few_rows_epilogues(const Tuning::FewRows& f) {
  std::set<sm90::Epilogue> out;
  if (f.act) out.insert({sm90::Epilogue::BiasQuickGelu, sm90::Epilogue::BiasGelu, sm90::Epilogue::BiasGeluTanh});
  if (f.bias) out.insert(sm90::Epilogue::Bias);
  if (f.residual) out.insert(sm90::Epilogue::BiasResidual);
  return out;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::F16: return CUDA_R_16F;
    case DType::BF16: return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

}  // namespace

struct GemmRunner::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  std::vector<cublasLtMatmulAlgo_t> candidates;  // the heuristic's top picks, best first
  bool bias_fused = false;
  bool tuned = false;
  std::vector<const sm90::Variant*> sm90_candidates;  // kernels for this shape's epilogue
  const sm90::Variant* sm90 = nullptr;                // chosen instead of cuBLASLt
  bool sm90_forced = false;                           // one of them, whatever cuBLASLt's time
  ~Plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

GemmRunner::GemmRunner(void* workspace, size_t workspace_bytes, const Tuning& tuning)
    : workspace_(workspace), workspace_bytes_(workspace_bytes) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  allow_bias_epilogue_ = tuning.bias_epilogue;
  tune_ = tuning.gemm_tune;
  log_ = tuning.gemm_log;
  few_rows_ = few_rows_epilogues(tuning.sm90_few_rows);
  skipped_ = tuning.sm90_skip;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device));
  // Persistent kernels on at most this many SMs (gemm.h).
  if (tuning.sm_limit > 0) sm_count_ = std::min(sm_count_, tuning.sm_limit);
  sm90_ = !sm90::variants().empty() && tuning.cutlass && sm90::device_supported(device);
  ln_fold_ = tuning.ln_fold;
}

// The statistics kernels (BiasResidualLnStats) take no part tile column:
// the width must be a multiple of their widest tile (128; CLIP's widths 512,
// 768, 1024 and 1280 are).
bool GemmRunner::ln_fold_available(int64_t M, int64_t hidden) const {
  if (!sm90_ || !ln_fold_ || M < kLnFoldMinRows) return false;
  for (const sm90::Variant& v : sm90::variants())
    if (v.epilogue == sm90::Epilogue::BiasResidualLnStats && hidden % v.tile_n != 0) return false;
  return true;
}

GemmRunner::~GemmRunner() {
  plans_.clear();
  if (handle_) cublasLtDestroy(handle_);
}

GemmRunner::Plan& GemmRunner::plan_for(const GemmShape& s) {
  auto it = plans_.find(s.key());
  if (it != plans_.end()) return *it->second;

  require(s.M > 0 && s.N > 0 && s.K > 0, "gemm", "empty shape");
  if (s.compute == GemmCompute::Mixed)
    require(s.in_type != DType::F32, "gemm", "mixed compute needs fp16/bf16 operands");
  else
    require(s.in_type == DType::F32, "gemm", "fp32/tf32 compute needs float32 operands");

  // Column-major view: out^T [N, M] = w [K, N]^T * x^T [K, M]; w row-major
  // [N, K] is column-major [K, N] with ld K, so op(A) = T and op(B) = N.
  auto build = [&](bool with_bias) -> std::unique_ptr<Plan> {
    auto p = std::make_unique<Plan>();
    const cublasComputeType_t ct = s.compute == GemmCompute::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, ct, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (with_bias) {
      // Where cuBLASLt refuses the bias type, return no plan: the caller
      // then applies the bias with its own kernel.
      const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
      const cudaDataType_t bt = cuda_type(s.bias_type);
      if (cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)) !=
              CUBLAS_STATUS_SUCCESS ||
          cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)) !=
              CUBLAS_STATUS_SUCCESS)
        return nullptr;
    }
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, cuda_type(s.in_type), s.K, s.N, s.K));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, cuda_type(s.in_type), s.K, s.M, s.K));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, cuda_type(s.out_type), s.N, s.M, s.N));

    cublasLtMatmulPreference_t pref = nullptr;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                                      sizeof(workspace_bytes_)));
    cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(handle_, p->desc, p->a, p->b, p->d, p->d, pref, kCandidates, results, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) return nullptr;
    p->algo = results[0].algo;
    for (int i = 0; i < found; ++i)
      if (results[i].state == CUBLAS_STATUS_SUCCESS) p->candidates.push_back(results[i].algo);
    p->bias_fused = with_bias;
    return p;
  };

  // A float32 bias with a 16-bit output is never asked for: where
  // cuBLASLt accepts the attribute it is not a documented combination.
  // With an activation the bias goes with it into bias_act's pass.
  const bool try_bias = s.bias && s.act == Act::None && allow_bias_epilogue_ &&
                        (s.bias_type == s.out_type || (s.bias_type == DType::F32 && s.out_type == DType::F32));
  std::unique_ptr<Plan> plan = try_bias ? build(true) : nullptr;
  if (!plan) plan = build(false);
  require(plan != nullptr, "gemm",
          "cuBLASLt found no algorithm for M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) +
              " K=" + std::to_string(s.K) + " in=" + dtype_name(s.in_type) + " out=" + dtype_name(s.out_type));
  require(s.act == Act::None || !s.accumulate, "gemm", "an activation cannot go with accumulation");
  const std::optional<sm90::Epilogue> epilogue = sm90_epilogue(s);
  // Products of few rows (a batch-1 image, a 77-token text) whose epilogue
  // is in few_rows_ run a few-row sm90 kernel, without cuBLASLt as a
  // contender: timing them in isolation (weights hot in L2) did not predict
  // the forward pass, which decided (bench/notes/cuda-rounds.md, 'fc1 over
  // few rows on a 64-row CUTLASS tile'). Only
  // variants whose tiles fit one wave on the SMs qualify; with none, the
  // product stays on cuBLASLt, like every other product under kSm90MinRows.
  // A folded LayerNorm has no cuBLASLt path: its large sm90 kernels are
  // timed against each other only.
  const bool fold = s.ln_fold != LnFold::None;
  if (sm90_ && epilogue && s.K % 8 == 0 && s.N % 8 == 0) {
    const bool few = !fold && s.M <= kSm90FewRowsMax && few_rows_.count(*epilogue);
    for (const sm90::Variant& v : sm90::variants()) {
      if (v.epilogue != *epilogue) continue;
      const std::string name = v.name;
      if (std::any_of(skipped_.begin(), skipped_.end(),
                      [&](const std::string& k) { return name.find(k) != name.npos; }))
        continue;
      const int64_t tiles = (s.M + v.tile_m - 1) / v.tile_m * ((s.N + v.tile_n - 1) / v.tile_n);
      if (few ? v.few_rows && tiles <= sm_count_ : !v.few_rows && s.M >= kSm90MinRows)
        plan->sm90_candidates.push_back(&v);
    }
    plan->sm90_forced = (few || fold) && !plan->sm90_candidates.empty();
  }
  require(!fold || plan->sm90_forced, "gemm",
          "a folded LayerNorm needs an fp16 sm90 kernel of at least " + std::to_string(kSm90MinRows) + " rows");
  // (ln_fold_available asks for more rows, kLnFoldMinRows; the kernels
  // themselves take any product from kSm90MinRows, as the tests use.)
  Plan& ref = *plan;
  plans_.emplace(s.key(), std::move(plan));
  return ref;
}

bool GemmRunner::bias_fused(const GemmShape& shape) {
  const Plan& p = plan_for(shape);
  return p.sm90 != nullptr || p.bias_fused;
}

std::string GemmRunner::kernel_name(const GemmShape& shape) {
  const Plan& p = plan_for(shape);
  return p.sm90 ? p.sm90->name : "cublasLt";
}

// cuBLASLt's heuristic is a model, and at small M (batch 1: 50 tokens) its
// first pick was seen 10x off the best (0.5 ms for a 50x768x3072 product).
// So the first call of each shape times the top candidates on the real
// operands and keeps the fastest; then the whole cuBLASLt path (with its
// bias/activation pass) against each sm90 kernel. An accumulating product
// writes into a scratch copy of its output, so the residual stream is
// untouched.
void GemmRunner::tune(Plan& p, const GemmShape& s, const Exec& exec, const void* x, const void* w, const void* bias,
                      const float* bias_f32, const LnFoldIo* fold) {
  p.tuned = true;
  if (!bias_f32) p.sm90_candidates.clear();  // the sm90 epilogues read a float32 bias
  // A forced few-row kernel is taken even where nothing is timed (tuning
  // off, or a first call inside a graph capture); timing may pick another.
  if (p.sm90_forced && !p.sm90_candidates.empty()) p.sm90 = p.sm90_candidates.front();
  if (!tune_ || (p.candidates.size() < 2 && p.sm90_candidates.empty())) return;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(exec.stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return;  // never time inside a graph capture
  void* d = nullptr;
  const size_t bytes = size_t(s.M) * s.N * dtype_size(s.out_type);
  if (cudaMalloc(&d, bytes) != cudaSuccess) {
    cudaGetLastError();
    return;  // no room to tune: keep the heuristic's pick
  }
  CUDA_CHECK(cudaMemsetAsync(d, 0, bytes, exec.stream));
  cudaEvent_t e0, e1;
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  // GPU time of one call: a warm-up, then 5 calls captured into a CUDA
  // graph, replayed 3 times (median / 5). Timing the graph, not eager
  // launches, leaves out the host's launch cost, which at small M exceeds
  // the kernel's and differs between libraries (the forward pass of small
  // batches is replayed from a graph too). Negative when the call fails.
  auto time_ms = [&](const std::function<bool()>& go) {
    if (!go()) return -1.f;
    constexpr int kCalls = 5;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t instance = nullptr;
    bool ok = cudaStreamBeginCapture(exec.stream, cudaStreamCaptureModeRelaxed) == cudaSuccess;
    if (ok) {
      for (int i = 0; i < kCalls; ++i) ok = go() && ok;
      ok = cudaStreamEndCapture(exec.stream, &graph) == cudaSuccess && ok;
    }
    ok = ok && cudaGraphInstantiate(&instance, graph, 0) == cudaSuccess;
    float times[3] = {-1.f, -1.f, -1.f};
    for (int rep = -1; ok && rep < 3; ++rep) {  // rep -1: warm-up replay
      ok = cudaEventRecord(e0, exec.stream) == cudaSuccess && cudaGraphLaunch(instance, exec.stream) == cudaSuccess &&
           cudaEventRecord(e1, exec.stream) == cudaSuccess && cudaEventSynchronize(e1) == cudaSuccess;
      if (ok && rep >= 0) ok = cudaEventElapsedTime(&times[rep], e0, e1) == cudaSuccess;
    }
    if (instance) cudaGraphExecDestroy(instance);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    std::sort(times, times + 3);
    return ok ? times[1] / kCalls : -1.f;
  };

  const bool cublas = s.ln_fold == LnFold::None;  // a contender at all
  if (cublas && p.candidates.size() >= 2) {
    if (p.bias_fused)
      CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    const float alpha = 1.f, beta = s.accumulate ? 1.f : 0.f;
    float best = 1e30f, first = -1.f;
    for (const cublasLtMatmulAlgo_t& algo : p.candidates) {
      const float ms = time_ms([&] {
        return cublasLtMatmul(handle_, p.desc, &alpha, w, p.a, x, p.b, &beta, d, p.d, d, p.d, &algo, workspace_,
                              workspace_bytes_, exec.stream) == CUBLAS_STATUS_SUCCESS;
      });
      if (ms < 0.f) continue;  // skips algorithms that refuse
      if (first < 0.f) {       // the heuristic's own pick (or the first that runs)
        first = best = ms;
        p.algo = algo;
        continue;
      }
      // Leave the heuristic's pick only for a clear (>10%) win: timing noise
      // on microsecond products must not swap in a worse algorithm.
      if (ms < best && ms < 0.9f * first) {
        best = ms;
        p.algo = algo;
      }
    }
    cudaGetLastError();
  }

  if (!p.sm90_candidates.empty()) {
    const float base = !cublas ? -1.f : time_ms([&] {
      run_cublas(p, s, exec, x, w, bias, d, bias_f32);
      return true;
    });
    float best = p.sm90_forced ? 1e30f : base;
    const sm90::Problem problem = sm90_problem(s, x, w, bias_f32, d, sm_count_, fold);
    for (const sm90::Variant* v : p.sm90_candidates) {
      const float ms =
          time_ms([&] { return v->run(problem, workspace_, workspace_bytes_, exec.stream) == sm90::Status::Ok; });
      cudaGetLastError();
      if (log_) {
        char against[48] = "not a contender";  // a folded LayerNorm's product
        if (cublas) std::snprintf(against, sizeof against, "%.1f us", base * 1e3f);
        std::fprintf(stderr, "gemm M=%lld N=%lld K=%lld %s: %s %.1f us (cublasLt %s)\n", (long long)s.M, (long long)s.N,
                     (long long)s.K, sm90::epilogue_name(v->epilogue), v->name, ms * 1e3f, against);
      }
      // A 3% margin keeps timing noise from swapping kernels back and forth.
      if (ms > 0.f && ms < 0.97f * best) {
        best = ms;
        p.sm90 = v;
      }
    }
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  CUDA_CHECK(cudaStreamSynchronize(exec.stream));
  cudaFree(d);
}

void GemmRunner::run_cublas(const Plan& p, const GemmShape& s, const Exec& exec, const void* x, const void* w,
                            const void* bias, void* out, const float* bias_f32) {
  if (p.bias_fused)
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  const float alpha = 1.f, beta = s.accumulate ? 1.f : 0.f;
  // In place when accumulating: C and D are the same buffer and layout.
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, w, p.a, x, p.b, &beta, out, p.d, out, p.d, &p.algo, workspace_,
                              workspace_bytes_, exec.stream));
  CLIP_CHECK_LAUNCH(exec, "cublasLtMatmul");
  if ((s.bias && !p.bias_fused) || s.act != Act::None)
    bias_act(exec, out, s.out_type, s.M, static_cast<int>(s.N), s.bias ? bias_f32 : nullptr, s.act);
}

void GemmRunner::linear(const Exec& exec, const GemmShape& s, const void* x, const void* w, const void* bias, void* out,
                        const float* bias_f32, const LnFoldIo* fold) {
  require(x && w && out, "gemm", "null buffer");
  require(!s.bias || bias, "gemm", "bias requested but null");
  const bool folded = s.ln_fold != LnFold::None;
  require(!folded || fold, "gemm", "a folded LayerNorm without its buffers");
  if (s.bias_type == DType::F32 && !bias_f32) bias_f32 = static_cast<const float*>(bias);
  Plan& p = plan_for(s);
  require(!s.bias || p.bias_fused || bias_f32, "gemm", "no epilogue for this bias type and no float32 bias given");
  if (!p.tuned) tune(p, s, exec, x, w, bias, bias_f32, fold);
  if (p.sm90 && bias_f32) {
    const sm90::Problem problem = sm90_problem(s, x, w, bias_f32, out, sm_count_, fold);
    const sm90::Status st = p.sm90->run(problem, workspace_, workspace_bytes_, exec.stream);
    if (st == sm90::Status::Ok) {
      CLIP_CHECK_LAUNCH(exec, p.sm90->name);
      if (s.ln_fold == LnFold::Stats) {
        const sm90::Variant& v = *p.sm90;
        ln_fold_stats(exec, fold->partials, s.M, (s.M + v.tile_m - 1) / v.tile_m * v.tile_m,
                      static_cast<int>((s.N + v.tile_n - 1) / v.tile_n), static_cast<int>(s.N), fold->eps, fold->scale);
      }
      return;
    }
    require(st == sm90::Status::Unsupported, "gemm", std::string("sm90 kernel failed to launch: ") + p.sm90->name);
    // Unsupported for these pointers (alignment): cuBLASLt below.
  }
  require(!folded, "gemm", "no sm90 kernel took this folded-LayerNorm product (unaligned buffers?)");
  run_cublas(p, s, exec, x, w, bias, out, bias_f32);
}

}  // namespace clip::cuda
