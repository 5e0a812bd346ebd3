// Sharded indexing (issue 30): which share of the input files one of N
// `clipfind index --shard I/N` processes takes, so that N machines (a Slurm
// job array, a Kubernetes Indexed Job) index an archive side by side into N
// index folders that `clipfind merge` combines.
//
// A file's share is FNV-1a 64 of its key (below) modulo N. It depends on the
// file alone, never on which other files exist: adding files to the archive
// never moves one already indexed to another shard.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace clipfind {

struct Shard {
  int index = 0;  // 0 .. count-1
  int count = 1;  // 1: the whole input (no sharding)
  bool whole() const { return count == 1; }
  std::string spec() const { return std::to_string(index) + "/" + std::to_string(count); }  // "I/N"
  bool operator==(const Shard&) const = default;
};

// "I/N" with 0 <= I < N; throws std::runtime_error saying what is wrong
// ("3/2: shard index 3 is not below the count 2", "x/4: ...").
Shard parse_shard(const std::string& spec);

// --shard auto: the shard a scheduler's environment names. A Slurm job array
// (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, and SLURM_ARRAY_TASK_MIN and
// SLURM_ARRAY_TASK_STEP for arrays like 1-16 or 0-30:2) gives both numbers;
// a Kubernetes Indexed Job gives JOB_COMPLETION_INDEX only, so the count
// comes from --shard-count (`count`; with Slurm it must agree). Throws
// std::runtime_error naming the variables when they are missing or wrong.
// `env`: getenv, or a stand-in for tests.
Shard shard_from_environment(const std::function<const char*(const char*)>& env, std::optional<int> count);

// What a file's share is computed from: its path relative to the input
// folder it was found under (the first of `inputs` holding it), with '/'
// separators, e.g. "2024/06/cam1.mp4"; a file given by itself: its name.
// So shards agree wherever the archive is mounted. `file`: absolute, as
// collect_inputs gives it.
std::string shard_key(const std::filesystem::path& file, const std::vector<std::filesystem::path>& inputs);

uint64_t shard_hash(const std::string& key);  // FNV-1a 64 of the key's bytes
inline bool in_shard(const std::string& key, const Shard& s) {
  return s.whole() || shard_hash(key) % uint64_t(s.count) == uint64_t(s.index);
}

}  // namespace clipfind
