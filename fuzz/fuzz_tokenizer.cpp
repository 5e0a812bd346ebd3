// libFuzzer target: tokenizes arbitrary bytes with the project's small
// vocabulary (tests/data/tokenizer/small) and checks the output's invariants.
//
// Invalid UTF-8 is rejected with clip::Error ("text: invalid UTF-8 at byte
// N"): transformers only ever sees Python strings, which cannot hold it, so
// there is nothing to mirror, and guessing (U+FFFD) would hide bad input.
// Any other exception, a crash or a broken invariant is a finding.
//
// The vocabulary folder: $CLIPFIND_FUZZ_TOKENIZER, else CLIPFIND_TEST_DATA
// (compile definition) + "/tokenizer/small", else the path relative to the
// repository root.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "clip/error.h"
#include "clip/text/tokenizer.h"

namespace {

std::string vocabulary_folder() {
  if (const char* env = std::getenv("CLIPFIND_FUZZ_TOKENIZER")) return env;
#ifdef CLIPFIND_TEST_DATA
  return std::string(CLIPFIND_TEST_DATA) + "/tokenizer/small";
#else
  return "tests/data/tokenizer/small";
#endif
}

const clip::Tokenizer& tokenizer() {
  static const clip::Tokenizer tok = [] {
    try {
      return clip::Tokenizer::from_folder(vocabulary_folder());
    } catch (const clip::Error& e) {
      std::fprintf(stderr, "fuzz_tokenizer: %s (set CLIPFIND_FUZZ_TOKENIZER)\n", e.what());
      std::abort();
    }
  }();
  return tok;
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_tokenizer: invariant broken: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const clip::Tokenizer& tok = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<int32_t> ids, model;
  try {
    ids = tok.encode(text);
    model = tok.encode_for_model(text, 77);
  } catch (const clip::Error& e) {
    if (std::string_view(e.what()).find("invalid UTF-8") == std::string_view::npos) fail(e.what());
    return 0;
  }
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) fail("id out of range");
  if (model.size() < 2 || model.size() > 77) fail("model length not in [2, 77]");
  if (model.front() != tok.bos_id() || model.back() != tok.eos_id()) fail("start/end tokens");
  if (model.size() != std::min<size_t>(ids.size(), 75) + 2) fail("truncation length");
  for (size_t i = 1; i + 1 < model.size(); ++i)
    if (model[i] != ids[i - 1]) fail("model ids are not a prefix of encode()");
  return 0;
}
