// Comma-separated lists on the benchmarks' command lines ("1,8,32"), shared
// by bench_cpu and bench_gpu.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

// "a,b,,c" -> {"a", "b", "c"}.
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

// "1,8,32" -> {1, 8, 32}; a value that is not a positive number is reported
// on stderr under `flag` and gives nullopt.
inline std::optional<std::vector<int>> batch_list(const std::string& s, const char* flag) {
  std::vector<int> out;
  for (const std::string& b : split_list(s)) {
    const int n = std::atoi(b.c_str());
    if (n <= 0) {
      std::fprintf(stderr, "%s: '%s' is not a positive batch size\n", flag, b.c_str());
      return std::nullopt;
    }
    out.push_back(n);
  }
  return out;
}

}  // namespace bench
