// The small clips the NVDEC tests (test_gpu_decode, test_gpu_index) decode:
// $CLIPFIND_GPU_TEST_VIDEOS (made by scripts/gpu/make-test-videos.sh, which
// the GPU machine cannot run: carry the folder), else made here once per
// process with that script (needs CLIPFIND_SOURCE_DIR).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace cliptest {

inline std::filesystem::path gpu_test_videos() {
  if (const char* d = std::getenv("CLIPFIND_GPU_TEST_VIDEOS")) return d;
  static const std::filesystem::path dir = [] {
    const std::filesystem::path d =
        std::filesystem::temp_directory_path() / ("clipfind_gpu_videos_" + std::to_string(getpid()));
    const std::string cmd =
        std::string(CLIPFIND_SOURCE_DIR) + "/scripts/gpu/make-test-videos.sh " + d.string() + " >/dev/null";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << cmd;
    return d;
  }();
  return dir;
}

}  // namespace cliptest
