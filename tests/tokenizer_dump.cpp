// tokenizer_dump: reads a JSON array of strings on stdin and prints a JSON
// array with one array of ids per string, for tests/tokenizer_diff.py.
//
//   tokenizer_dump (--folder DIR | --bpe-gz FILE) [--raw] [--context N]
//
// Default output is encode_for_model(text, N) (N = 77); --raw gives encode()
// (no start/end tokens, no truncation). A text the tokenizer rejects yields
// {"error": message} in its place.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "clip/error.h"
#include "clip/text/tokenizer.h"

namespace {

int usage() {
  std::cerr << "usage: tokenizer_dump (--folder DIR | --bpe-gz FILE) [--raw] [--context N]"
               " < strings.json\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string folder, gz;
  bool raw = false;
  int context = 77;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--folder" && i + 1 < argc) {
      folder = argv[++i];
    } else if (arg == "--bpe-gz" && i + 1 < argc) {
      gz = argv[++i];
    } else if (arg == "--raw") {
      raw = true;
    } else if (arg == "--context" && i + 1 < argc) {
      context = std::stoi(argv[++i]);
    } else {
      return usage();
    }
  }
  if (folder.empty() == gz.empty()) return usage();

  try {
    const clip::Tokenizer tok =
        gz.empty() ? clip::Tokenizer::from_folder(folder) : clip::Tokenizer::from_clip_bpe_gz(gz);
    const nlohmann::json texts = nlohmann::json::parse(std::cin);
    if (!texts.is_array()) throw clip::Error("stdin: expected a JSON array of strings");
    nlohmann::json out = nlohmann::json::array();
    for (const auto& text : texts) {
      if (!text.is_string()) throw clip::Error("stdin: expected a JSON array of strings");
      const std::string s = text.get<std::string>();
      try {
        out.push_back(raw ? tok.encode(s) : tok.encode_for_model(s, context));
      } catch (const clip::Error& e) {
        out.push_back({{"error", e.what()}});
      }
    }
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "tokenizer_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
