// A fresh folder under the system's temporary directory for one test, removed
// with everything in it when the test ends. Unique across processes (ctest
// runs tests in parallel) through mkdtemp.
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace cliptest {

struct TempDir {
  std::filesystem::path path;
  // created = false: the name is reserved but the folder is not there, for
  // tests of code that must create it.
  explicit TempDir(bool created = true) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "clipfind-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed in " + tmpl);
    path = tmpl;
    if (!created) std::filesystem::remove(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace cliptest
