// The image fixtures (tests/data/images) and PIL's answers for them
// (reference.json, written by tools/preprocess_reference.py; resample.json,
// PIL's resize with each filter, by tools/make_resample_fixtures.py), shared
// by the decoder and the preprocessing tests.
#pragma once
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace cliptest {

inline const std::filesystem::path kImages = std::filesystem::path(CLIPFIND_TEST_DATA) / "images";

inline nlohmann::json reference() {
  std::ifstream in(kImages / "reference.json");
  return nlohmann::json::parse(in);
}

inline nlohmann::json resample_reference() {
  std::ifstream in(kImages / "resample.json");
  return nlohmann::json::parse(in);
}

}  // namespace cliptest
