#include "server/file_response.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "server/http_util.h"

namespace clipfind::server {

namespace {

// More ranges than this in one request is not a player seeking but an
// attempt to make us send the file many times over: answer with all of it.
constexpr size_t kMaxRanges = 8;
constexpr size_t kReadChunk = 64 * 1024;  // on the stack of an HTTP thread

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Resolves suffix and open-ended ranges against `size` and clips them to the
// file, dropping the unsatisfiable ones (RFC 9110 14.1.2). cpp-httplib 0.11
// applies the ranges it parsed without checking them against the length, so
// they must be fixed before it writes the answer. false: none is satisfiable.
bool fit_ranges(httplib::Ranges& ranges, ssize_t size) {
  httplib::Ranges kept;
  for (auto [first, last] : ranges) {
    if (first < 0) {  // "-N": the last N bytes
      if (last <= 0) continue;
      first = std::max<ssize_t>(0, size - last);
      last = size - 1;
    }
    if (first >= size) continue;
    if (last < 0 || last >= size) last = size - 1;
    if (last < first) continue;
    kept.emplace_back(first, last);
  }
  ranges = std::move(kept);
  return !ranges.empty();
}

}  // namespace

std::string content_type_for(const std::filesystem::path& file) {
  static const std::map<std::string, std::string> kTypes = {
      {".mp4", "video/mp4"},        {".m4v", "video/mp4"},       {".mov", "video/quicktime"}, {".webm", "video/webm"},
      {".mkv", "video/x-matroska"}, {".avi", "video/x-msvideo"}, {".ogv", "video/ogg"},       {".mpg", "video/mpeg"},
      {".mpeg", "video/mpeg"},      {".ts", "video/mp2t"},       {".mts", "video/mp2t"},      {".m2ts", "video/mp2t"},
      {".wmv", "video/x-ms-wmv"},   {".flv", "video/x-flv"},     {".3gp", "video/3gpp"},      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},      {".png", "image/png"},
  };
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  const auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

void serve_file(const httplib::Request& req, httplib::Response& res, const std::filesystem::path& file) {
  const int raw = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    const int err = errno;
    reply_error(res, err == ENOENT ? 404 : 500, "cannot read " + file.filename().string() + ": " + std::strerror(err));
    return;
  }
  auto fd = std::make_shared<Fd>(raw);
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    reply_error(res, 404, file.filename().string() + " is not a regular file");
    return;
  }
  const auto size = static_cast<ssize_t>(st.st_size);
  const std::string type = content_type_for(file);
  res.set_header("Accept-Ranges", "bytes");

  // cpp-httplib applies req.ranges to the answer after this handler returns
  // (see fit_ranges); the request object is its own, so editing it is safe.
  auto& ranges = const_cast<httplib::Request&>(req).ranges;
  if (ranges.size() > kMaxRanges) ranges.clear();
  if (!ranges.empty() && !fit_ranges(ranges, size)) {
    res.status = 416;
    res.set_header("Content-Range", "bytes */" + std::to_string(size));
    return;
  }
  res.status = ranges.empty() ? 200 : 206;
  if (size == 0) {
    res.set_content("", type);
    return;
  }
  res.set_content_provider(
      static_cast<size_t>(size), type, [fd](size_t offset, size_t length, httplib::DataSink& sink) {
        std::array<char, kReadChunk> buf;  // NOLINT: filled before use
        const ssize_t n = ::pread(fd->get(), buf.data(), std::min(length, buf.size()), static_cast<off_t>(offset));
        // 0 or less: the file shrank or vanished under us; end the response.
        return n > 0 && sink.write(buf.data(), static_cast<size_t>(n));
      });
}

}  // namespace clipfind::server
