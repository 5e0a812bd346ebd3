// Test videos made with the `ffmpeg` command (test_video, test_indexer). They
// are kept in the build tree and made once: ctest runs each test in its own
// process, often several at a time, so each file is written under a private
// name and hard-linked into place: link() fails when the name exists, so the
// first writer wins and a racing twin's copy is dropped. (A rename would
// replace a file another test has already indexed, and its new modification
// time would make that test see the file as changed.)
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace cliptest {

inline void ffmpeg(const std::string& args) {
  const std::string cmd = "ffmpeg -nostdin -v error -y " + args;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// Puts tmp at final_path unless a twin got there first (then drops tmp).
inline void publish(const std::filesystem::path& tmp, const std::filesystem::path& final_path) {
  const int rc = ::link(tmp.c_str(), final_path.c_str());
  const int err = errno;
  std::filesystem::remove(tmp);
  ASSERT_TRUE(rc == 0 || err == EEXIST) << "link " << tmp << " -> " << final_path << ": " << std::strerror(err);
}

// dir/name from `ffmpeg ARGS dir/name`, unless it is there already.
inline void make_video_once(const std::filesystem::path& dir, const std::string& name,
                            const std::string& args_before_output) {
  const std::filesystem::path final_path = dir / name;
  if (std::filesystem::exists(final_path)) return;
  const std::filesystem::path tmp = dir / ("tmp-" + std::to_string(::getpid()) + "-" + name);
  ffmpeg(args_before_output + " " + tmp.string());
  publish(tmp, final_path);
}

inline void write_once(const std::filesystem::path& dir, const std::string& name, const std::string& bytes) {
  if (std::filesystem::exists(dir / name)) return;
  const std::filesystem::path tmp = dir / ("tmp-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(tmp, std::ios::binary) << bytes;
  publish(tmp, dir / name);
}

}  // namespace cliptest
