// Sharded indexing (issue 30): the share function, shard specs and the
// scheduler environments of `clipfind index --shard`.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "indexer/shard.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using clipfind::Shard;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

// A stand-in for getenv over a fixed set of variables.
std::function<const char*(const char*)> env(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    const auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(Shard, ParsesSpecs) {
  EXPECT_EQ(clipfind::parse_shard("0/1"), (Shard{0, 1}));
  EXPECT_EQ(clipfind::parse_shard("3/4"), (Shard{3, 4}));
  EXPECT_EQ(clipfind::parse_shard("3/4").spec(), "3/4");
  EXPECT_TRUE(clipfind::parse_shard("0/1").whole());
}

TEST(Shard, RefusesBadSpecsSayingWhy) {
  EXPECT_NE(error_of([] { clipfind::parse_shard("0/0"); }).find("count 0 is not between 1"), std::string::npos);
  EXPECT_NE(error_of([] { clipfind::parse_shard("3/2"); }).find("index 3 is not below the count 2"), std::string::npos);
  for (const char* junk : {"", "1", "a/2", "1/b", "-1/2", "1/2/3", "1/ 2", "1.0/2", "/2", "1/"}) {
    EXPECT_NE(error_of([&] { clipfind::parse_shard(junk); }).find("expected I/N"), std::string::npos) << junk;
  }
}

// The documented function: FNV-1a 64 of the key's bytes (published test vectors).
TEST(Shard, HashIsFnv1a64) {
  EXPECT_EQ(clipfind::shard_hash(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(clipfind::shard_hash("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(clipfind::shard_hash("foobar"), 0x85944171f73967e8ull);
}

// Every key is in exactly one share, the shares are roughly even, and a key's
// share never depends on which other keys exist.
TEST(Shard, SharesPartitionTheFilesEvenly) {
  const int n = 4, keys = 4000;
  std::map<int, int> per_shard;
  for (int k = 0; k < keys; ++k) {
    const std::string key = "videos/" + std::to_string(k) + ".mp4";
    int owners = 0;
    for (int i = 0; i < n; ++i) {
      if (clipfind::in_shard(key, {i, n})) {
        ++owners;
        ++per_shard[i];
      }
    }
    EXPECT_EQ(owners, 1) << key;
    EXPECT_TRUE(clipfind::in_shard(key, {}));  // unsharded: every file
  }
  for (int i = 0; i < n; ++i) {
    EXPECT_GT(per_shard[i], keys / n * 8 / 10) << i;
    EXPECT_LT(per_shard[i], keys / n * 12 / 10) << i;
  }
}

TEST(Shard, KeyIsThePathBelowTheInputFolder) {
  cliptest::TempDir tmp;
  fs::create_directories(tmp.path / "archive/2024/06");
  const fs::path file = fs::weakly_canonical(tmp.path) / "archive/2024/06/cam1.mp4";
  EXPECT_EQ(clipfind::shard_key(file, {tmp.path / "archive"}), "2024/06/cam1.mp4");
  EXPECT_EQ(clipfind::shard_key(file, {tmp.path / "archive/"}), "2024/06/cam1.mp4");
  EXPECT_EQ(clipfind::shard_key(file, {tmp.path / "archive/2024"}), "06/cam1.mp4");
  // A file given by itself, or outside every folder given: its name.
  EXPECT_EQ(clipfind::shard_key(file, {file}), "cam1.mp4");
  EXPECT_EQ(clipfind::shard_key(file, {tmp.path / "archive/2024/06/../../2023"}), "cam1.mp4");
}

TEST(Shard, SlurmArray) {
  EXPECT_EQ(clipfind::shard_from_environment(env({{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}),
                                             std::nullopt),
            (Shard{2, 4}));
  // --array=1-8: task ids start at SLURM_ARRAY_TASK_MIN.
  EXPECT_EQ(clipfind::shard_from_environment(
                env({{"SLURM_ARRAY_TASK_ID", "8"}, {"SLURM_ARRAY_TASK_COUNT", "8"}, {"SLURM_ARRAY_TASK_MIN", "1"}}),
                std::nullopt),
            (Shard{7, 8}));
  // --array=0-6:2: four tasks 0, 2, 4, 6.
  EXPECT_EQ(clipfind::shard_from_environment(env({{"SLURM_ARRAY_TASK_ID", "4"},
                                                  {"SLURM_ARRAY_TASK_COUNT", "4"},
                                                  {"SLURM_ARRAY_TASK_MIN", "0"},
                                                  {"SLURM_ARRAY_TASK_STEP", "2"}}),
                                             std::nullopt),
            (Shard{2, 4}));
  EXPECT_NE(error_of([] {
              clipfind::shard_from_environment(env({{"SLURM_ARRAY_TASK_ID", "2"}}), std::nullopt);
            }).find("SLURM_ARRAY_TASK_COUNT is not set"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              clipfind::shard_from_environment(env({{"SLURM_ARRAY_TASK_ID", "x"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}),
                                               std::nullopt);
            }).find("SLURM_ARRAY_TASK_ID='x' is not a number"),
            std::string::npos);
  // --array=1,5,9 (a list): ids past the count.
  EXPECT_NE(error_of([] {
              clipfind::shard_from_environment(
                  env({{"SLURM_ARRAY_TASK_ID", "9"}, {"SLURM_ARRAY_TASK_COUNT", "3"}, {"SLURM_ARRAY_TASK_MIN", "1"}}),
                  std::nullopt);
            }).find("is not below the count 3"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              clipfind::shard_from_environment(env({{"SLURM_ARRAY_TASK_ID", "1"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}), 5);
            }).find("disagrees with SLURM_ARRAY_TASK_COUNT 4"),
            std::string::npos);
}

TEST(Shard, KubernetesIndexedJob) {
  EXPECT_EQ(clipfind::shard_from_environment(env({{"JOB_COMPLETION_INDEX", "3"}}), 8), (Shard{3, 8}));
  EXPECT_NE(error_of([] {
              clipfind::shard_from_environment(env({{"JOB_COMPLETION_INDEX", "3"}}), std::nullopt);
            }).find("pass --shard-count N"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              clipfind::shard_from_environment(env({{"JOB_COMPLETION_INDEX", "8"}}), 8);
            }).find("index 8 is not below the count 8"),
            std::string::npos);
}

TEST(Shard, AutoWithoutASchedulerSaysWhatIsMissing) {
  const std::string e = error_of([] { clipfind::shard_from_environment(env({}), 4); });
  EXPECT_NE(e.find("SLURM_ARRAY_TASK_ID"), std::string::npos) << e;
  EXPECT_NE(e.find("JOB_COMPLETION_INDEX"), std::string::npos) << e;
}

}  // namespace
