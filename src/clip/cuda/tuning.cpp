// The one place in src/clip that reads CLIPFIND_CUDA_* variables (tuning.h).
// CLIPFIND_EXPERIMENTS is a compile definition of this file alone
// (-DCLIPFIND_EXPERIMENTS=ON in CMake).
#include "clip/cuda/tuning.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "clip/error.h"

namespace clip::cuda {
namespace {

// Whether variable `name` is set to exactly `value`.
bool env_is(const char* name, const char* value) {
  const char* e = std::getenv(name);
  return e && std::strcmp(e, value) == 0;
}

// Whether variable `name` is set to something other than "" and "0".
bool env_on(const char* name) {
  const char* e = std::getenv(name);
  return e && *e && std::strcmp(e, "0") != 0;
}

#ifdef CLIPFIND_EXPERIMENTS
std::vector<std::string> comma_list(const char* text) {
  std::vector<std::string> out;
  std::stringstream in(text ? text : "");
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

// CLIPFIND_CUDA_SM90_SMALL_M: "act", "bias", "residual" (comma-separated),
// "all", or "0" for none; unset or empty: the default.
Tuning::FewRows few_rows(const char* text) {
  if (!text || !*text) return {};
  Tuning::FewRows f{false, false, false};
  for (const std::string& item : comma_list(text)) {
    if (item == "act" || item == "all") f.act = true;
    if (item == "bias" || item == "all") f.bias = true;
    if (item == "residual" || item == "all") f.residual = true;
    if (item != "act" && item != "bias" && item != "residual" && item != "all" && item != "0")
      throw Error("CLIPFIND_CUDA_SM90_SMALL_M: unknown item '" + item + "' (expected act, bias, residual, all or 0)");
  }
  return f;
}
#endif

const char* on_off(bool b) { return b ? "on" : "off"; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

}  // namespace

bool Tuning::experiments_built() {
#ifdef CLIPFIND_EXPERIMENTS
  return true;
#else
  return false;
#endif
}

Tuning Tuning::from_environment() {
  Tuning t;
  t.sync_check = env_on("CLIPFIND_CUDA_SYNC");
  if (env_on("CLIPFIND_CUDA_PROFILE"))
    t.profile = env_is("CLIPFIND_CUDA_PROFILE", "graph") ? Profile::Graph : Profile::Eager;
  t.graphs = !env_is("CLIPFIND_CUDA_GRAPHS", "0");
  t.gpu_preprocess = !env_is("CLIPFIND_CUDA_PREPROCESS", "0");
  t.gemm_log = env_is("CLIPFIND_CUDA_GEMM_LOG", "1");
#ifdef CLIPFIND_EXPERIMENTS
  if (env_is("CLIPFIND_CUDA_ATTN", "simt")) t.attention = Attention::Simt;
  if (env_is("CLIPFIND_CUDA_ATTN", "mma")) t.attention = Attention::NoWgmma;
  t.gemm_tune = !env_is("CLIPFIND_CUDA_GEMM_TUNE", "0");
  t.cutlass = !env_is("CLIPFIND_CUDA_CUTLASS", "0");
  t.sm90_few_rows = few_rows(std::getenv("CLIPFIND_CUDA_SM90_SMALL_M"));
  for (std::string& item : comma_list(std::getenv("CLIPFIND_CUDA_SM90_SKIP")))
    if (!item.empty()) t.sm90_skip.push_back(std::move(item));
  t.ln_fold = !env_is("CLIPFIND_CUDA_LN_FOLD", "0");
#endif
  return t;
}

std::string Tuning::describe() const {
  std::ostringstream s;
  s << "sync=" << on_off(sync_check) << " profile="
    << (profile == Profile::Off     ? "off"
        : profile == Profile::Eager ? "eager"
                                    : "graph")
    << " graphs=" << on_off(graphs) << " preprocess=" << (gpu_preprocess ? "gpu" : "cpu")
    << " gemm_log=" << on_off(gemm_log) << "; attention="
    << (attention == Attention::Auto      ? "auto"
        : attention == Attention::NoWgmma ? "mma"
                                          : "simt")
    << " gemm_tune=" << on_off(gemm_tune) << " cutlass=" << on_off(cutlass) << " sm90_few_rows=";
  std::vector<std::string> rows;
  if (sm90_few_rows.act) rows.push_back("act");
  if (sm90_few_rows.bias) rows.push_back("bias");
  if (sm90_few_rows.residual) rows.push_back("residual");
  s << (rows.empty() ? "0" : join(rows)) << " sm90_skip=";
  const std::string skip = join(sm90_skip);
  s << (skip.empty() ? "-" : skip) << " ln_fold=" << on_off(ln_fold) << " bias_epilogue=" << on_off(bias_epilogue)
    << " sm_limit=" << sm_limit << " batch_buckets=" << on_off(batch_buckets) << " (experiment switches "
    << (experiments_built() ? "read: CLIPFIND_EXPERIMENTS build)" : "not read: default build)");
  return s.str();
}

}  // namespace clip::cuda
