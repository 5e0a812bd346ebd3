#include "indexer/inputs.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <string>
#include <system_error>

#include "indexer/pipeline.h"

namespace clipfind {

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kImageExt = {".jpg", ".jpeg", ".png"};
const std::set<std::string> kVideoExt = {".mp4", ".m4v", ".mov",  ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
                                         ".ts",  ".mts", ".m2ts", ".wmv", ".flv",  ".3gp", ".ogv"};

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e;
}

}  // namespace

bool is_image(const fs::path& p) { return kImageExt.count(lower_ext(p)) > 0; }

FileStat stat_file(const fs::path& p) {
  FileStat s;
  s.size = int64_t(fs::file_size(p));
  s.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(fs::last_write_time(p).time_since_epoch()).count();
  return s;
}

std::vector<fs::path> collect_inputs(const std::vector<fs::path>& inputs) {
  std::set<fs::path> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      for (auto it = fs::recursive_directory_iterator(in, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string e = lower_ext(it->path());
        if (it->is_regular_file(ec) && (kImageExt.count(e) || kVideoExt.count(e))) {
          out.insert(fs::weakly_canonical(fs::absolute(it->path())));
        }
      }
    } else {
      out.insert(fs::weakly_canonical(fs::absolute(in)));  // a missing file is reported later, per file
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace clipfind
