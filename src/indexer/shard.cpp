#include "indexer/shard.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <system_error>

namespace clipfind {

namespace fs = std::filesystem;

namespace {

// A whole non-negative decimal number, nothing around it; nullopt otherwise.
std::optional<long> number(const std::string& text) {
  long v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

// Shards are counted in ints; more than this many is surely a typo.
constexpr long kMaxShards = 1000000;

Shard checked(long index, long count, const std::string& what) {
  if (count < 1 || count > kMaxShards) {
    throw std::runtime_error(what + ": shard count " + std::to_string(count) + " is not between 1 and " +
                             std::to_string(kMaxShards));
  }
  if (index >= count) {
    throw std::runtime_error(what + ": shard index " + std::to_string(index) + " is not below the count " +
                             std::to_string(count) + " (shards are numbered 0 to count-1)");
  }
  return {int(index), int(count)};
}

}  // namespace

Shard parse_shard(const std::string& spec) {
  const size_t slash = spec.find('/');
  const auto index = number(spec.substr(0, slash));
  const auto count = slash == std::string::npos ? std::nullopt : number(spec.substr(slash + 1));
  if (!index || !count) {
    throw std::runtime_error("--shard '" + spec + "': expected I/N, this process's share I of N (0 <= I < N), or auto");
  }
  return checked(*index, *count, "--shard " + spec);
}

Shard shard_from_environment(const std::function<const char*(const char*)>& env, std::optional<int> count) {
  auto read = [&](const char* name, std::optional<long> fallback = std::nullopt) -> long {
    const char* text = env(name);
    if (!text) {
      if (fallback) return *fallback;
      throw std::runtime_error(std::string("--shard auto: ") + name + " is not set");
    }
    const auto v = number(text);
    if (!v) throw std::runtime_error(std::string("--shard auto: ") + name + "='" + text + "' is not a number");
    return *v;
  };
  if (env("SLURM_ARRAY_TASK_ID")) {
    // Arrays like --array=1-16 or 0-30:2: task ids need not start at 0 nor be consecutive.
    const long id = read("SLURM_ARRAY_TASK_ID"), min = read("SLURM_ARRAY_TASK_MIN", 0);
    const long step = std::max(1L, read("SLURM_ARRAY_TASK_STEP", 1));
    const long n = read("SLURM_ARRAY_TASK_COUNT");
    if (id < min || (id - min) % step != 0) {
      throw std::runtime_error("--shard auto: SLURM_ARRAY_TASK_ID " + std::to_string(id) +
                               " is not on the array's range (min " + std::to_string(min) + ", step " +
                               std::to_string(step) + "); use --array=START-END[:STEP] or --shard I/N");
    }
    if (count && *count != n) {
      throw std::runtime_error("--shard auto: --shard-count " + std::to_string(*count) +
                               " disagrees with SLURM_ARRAY_TASK_COUNT " + std::to_string(n));
    }
    return checked((id - min) / step, n, "--shard auto (Slurm array task " + std::to_string(id) + ")");
  }
  if (env("JOB_COMPLETION_INDEX")) {
    const long index = read("JOB_COMPLETION_INDEX");
    if (!count) {
      throw std::runtime_error(
          "--shard auto: JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but Kubernetes does not export "
          "the number of completions: pass --shard-count N (the Job's spec.completions)");
    }
    return checked(index, *count, "--shard auto (JOB_COMPLETION_INDEX " + std::to_string(index) + ")");
  }
  throw std::runtime_error(
      "--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes "
      "Indexed Job) is set; pass --shard I/N instead");
}

std::string shard_key(const fs::path& file, const std::vector<fs::path>& inputs) {
  for (const auto& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) continue;
    fs::path root = fs::weakly_canonical(fs::absolute(in), ec);
    if (ec) continue;
    if (root.filename().empty()) root = root.parent_path();  // "archive/"
    const fs::path rel = file.lexically_relative(root);
    if (!rel.empty() && *rel.begin() != "..") return rel.generic_string();
  }
  return file.filename().string();
}

uint64_t shard_hash(const std::string& key) {
  uint64_t h = 0xcbf29ce484222325ull;  // the FNV-1a 64 offset basis
  for (const unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace clipfind
