#include "video/time_format.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace clipfind {

std::string format_hms(double seconds) {
  const long long ms = std::llround(std::max(seconds, 0.0) * 1000.0);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld.%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
                ms % 1000);
  return buf;
}

std::optional<double> parse_time(const std::string& text) {
  double total = 0.0;
  size_t begin = 0;
  int fields = 0;
  for (;;) {
    const size_t colon = text.find(':', begin);
    const std::string part = text.substr(begin, colon == std::string::npos ? std::string::npos : colon - begin);
    double v = 0.0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v, std::chars_format::fixed);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || v < 0) return std::nullopt;
    // Only the last field may have a fraction; minutes and seconds before it stay below 60.
    if (colon != std::string::npos && v != std::floor(v)) return std::nullopt;
    if (fields > 0 && v >= 60.0) return std::nullopt;
    total = total * 60.0 + v;
    if (++fields > 3) return std::nullopt;
    if (colon == std::string::npos) break;
    begin = colon + 1;
  }
  return total;
}

}  // namespace clipfind
