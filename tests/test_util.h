// Small helpers shared by the unit tests.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "clip/error.h"
#include "clip/image/image.h"

namespace cliptest {

// Runs f, which must throw clip::Error; returns the message.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const clip::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-clip exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text)

// FNV-1a of a byte buffer, as 16 hex digits: fixtures store hashes of PIL's
// output so large expected images need not be committed.
inline std::string fnv1a64(const std::vector<uint8_t>& data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : data) h = (h ^ b) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

inline int max_abs_diff(const clip::Image& a, const clip::Image& b) {
  int m = 0;
  for (size_t i = 0; i < a.rgb.size() && i < b.rgb.size(); ++i) m = std::max(m, std::abs(a.rgb[i] - b.rgb[i]));
  return m;
}

}  // namespace cliptest
