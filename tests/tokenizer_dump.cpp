// tokenizer_dump: reads a JSON array of strings on stdin and prints a JSON
// array with one array of ids per string, for tests/tokenizer_diff.py and
// tests/spm_tokenizer_diff.py.
//
//   tokenizer_dump (--folder DIR | --bpe-gz FILE) [--raw] [--context N]
//   tokenizer_dump --spm DIR [--raw | --no-pad] [--context N]
//   tokenizer_dump --siglip-model DIR [--context N]
//   tokenizer_dump (--canonicalize | --rust-lower)
//
// --folder/--bpe-gz: the CLIP BPE tokenizer; default output is
// encode_for_model(text, N) (N = 77), --raw gives encode() (no start/end
// tokens, no truncation). --spm: the SentencePiece tokenizer of a SigLIP /
// SigLIP 2 folder; default output is encode_for_model(text, N) padded to N
// (N = 64), --no-pad the same unpadded, --raw encode(). --siglip-model: the
// engine's ModelTokenizer for a config of family siglip whose text tower has
// N positions. --canonicalize prints SiglipTokenizer's canonical text (lower
// case), --rust-lower `tokenizers`' Lowercase of each string. A text the
// tokenizer rejects yields {"error": message} in its place.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "clip/error.h"
#include "clip/model/config.h"
#include "clip/text/model_tokenizer.h"
#include "clip/text/sentencepiece_tokenizer.h"
#include "clip/text/spm_text.h"
#include "clip/text/tokenizer.h"

namespace {

int usage() {
  std::cerr << "usage: tokenizer_dump (--folder DIR | --bpe-gz FILE) [--raw] [--context N] < strings.json\n"
               "       tokenizer_dump --spm DIR [--raw | --no-pad] [--context N] < strings.json\n"
               "       tokenizer_dump --siglip-model DIR [--context N] < strings.json\n"
               "       tokenizer_dump (--canonicalize | --rust-lower) < strings.json\n";
  return 2;
}

// Applies `f` to each string of the JSON array on stdin.
template <class F>
nlohmann::json map_stdin(F f) {
  const nlohmann::json texts = nlohmann::json::parse(std::cin);
  if (!texts.is_array()) throw clip::Error("stdin: expected a JSON array of strings");
  nlohmann::json out = nlohmann::json::array();
  for (const auto& text : texts) {
    if (!text.is_string()) throw clip::Error("stdin: expected a JSON array of strings");
    try {
      out.push_back(f(text.get<std::string>()));
    } catch (const clip::Error& e) {
      out.push_back({{"error", e.what()}});
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string folder, gz, spm, siglip_model;
  bool raw = false, no_pad = false, canonicalize = false, rust_lower = false;
  int context = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--folder" && i + 1 < argc) {
      folder = argv[++i];
    } else if (arg == "--bpe-gz" && i + 1 < argc) {
      gz = argv[++i];
    } else if (arg == "--spm" && i + 1 < argc) {
      spm = argv[++i];
    } else if (arg == "--siglip-model" && i + 1 < argc) {
      siglip_model = argv[++i];
    } else if (arg == "--raw") {
      raw = true;
    } else if (arg == "--no-pad") {
      no_pad = true;
    } else if (arg == "--canonicalize") {
      canonicalize = true;
    } else if (arg == "--rust-lower") {
      rust_lower = true;
    } else if (arg == "--context" && i + 1 < argc) {
      context = std::stoi(argv[++i]);
    } else {
      return usage();
    }
  }
  const int sources = !folder.empty() + !gz.empty() + !spm.empty() + !siglip_model.empty() + canonicalize + rust_lower;
  if (sources != 1) return usage();

  try {
    nlohmann::json out;
    if (canonicalize) {
      out = map_stdin([](const std::string& s) { return clip::text::siglip_canonicalize(s, true); });
    } else if (rust_lower) {
      out = map_stdin([](const std::string& s) {
        return clip::text::encode_utf8(clip::text::rust_lowercase(clip::text::decode_utf8(s)));
      });
    } else if (!spm.empty()) {
      const auto tok = clip::SentencePieceTokenizer::from_folder(spm);
      const int n = context > 0 ? context : 64;
      out = map_stdin([&](const std::string& s) { return raw ? tok.encode(s) : tok.encode_for_model(s, n, !no_pad); });
    } else if (!siglip_model.empty()) {
      clip::ClipConfig cfg;
      cfg.family = clip::ModelFamily::Siglip;
      cfg.text.emplace();
      cfg.text->max_positions = context > 0 ? context : 64;
      const auto tok = clip::ModelTokenizer::load(siglip_model, cfg);
      out = map_stdin([&](const std::string& s) { return tok.encode(s); });
    } else {
      const clip::Tokenizer tok =
          gz.empty() ? clip::Tokenizer::from_folder(folder) : clip::Tokenizer::from_clip_bpe_gz(gz);
      const int n = context > 0 ? context : 77;
      out = map_stdin([&](const std::string& s) { return raw ? tok.encode(s) : tok.encode_for_model(s, n); });
    }
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "tokenizer_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
