#include "index/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "index/catalog.h"  // index::Error

namespace clipfind::index {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTempInfix = ".tmp.";

[[noreturn]] void fail(const fs::path& file, const std::string& what, int err) {
  throw Error(file.string() + ": " + what + ": " + std::strerror(err));
}

}  // namespace

void fsync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(folder, "cannot open the folder to sync it", errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(folder, "cannot sync the folder", err);
}

uint64_t fnv1a(const void* data, size_t n) {
  uint64_t h = 1469598103934665603ull;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

void write_at(int fd, const void* p, size_t n, uint64_t offset, const fs::path& file) {
  const auto* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, c, n, off_t(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(file, "cannot write", errno);
    }
    c += w;
    n -= size_t(w);
    offset += uint64_t(w);
  }
}

AtomicFileWriter::AtomicFileWriter(const fs::path& file) : file_(file) {
  remove_stale_temporaries(file);
  static std::atomic<unsigned> counter{0};  // two writers of one process get two names
  temp_ = file.string() + kTempInfix + std::to_string(::getpid()) + "." + std::to_string(counter++);
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(temp_, "cannot create", errno);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFileWriter::commit(uint64_t size) {
  if (::ftruncate(fd_, off_t(size)) != 0) fail(temp_, "cannot set the size", errno);
  // Data on disk before the rename makes it visible: a crash after the
  // rename must not find a file of the right name with missing contents.
  if (::fsync(fd_) != 0) fail(temp_, "cannot sync", errno);
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_.c_str(), file_.c_str()) != 0) fail(file_, "cannot rename " + temp_.string() + " to it", errno);
  committed_ = true;
  fsync_folder(file_.parent_path().empty() ? fs::path(".") : file_.parent_path());
}

void remove_stale_temporaries(const fs::path& file) {
  const fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  const std::string prefix = file.filename().string() + kTempInfix;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    // NAME.tmp.PID.N: a file of a process still running is its writer's.
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && (::kill(pid_t(pid), 0) == 0 || errno != ESRCH)) continue;
    fs::remove(entry.path(), ec);
  }
}

}  // namespace clipfind::index
