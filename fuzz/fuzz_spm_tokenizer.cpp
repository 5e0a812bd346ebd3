// libFuzzer target: tokenizes arbitrary bytes with the SigLIP (unigram,
// SiglipTokenizer rules) and Gemma (BPE with byte fallback) fixtures in
// tests/data and checks the outputs' invariants.
//
// Invalid UTF-8 is rejected with clip::Error ("text: invalid UTF-8 at byte
// N"), as the CLIP tokenizer does: transformers only ever sees Python
// strings, which cannot hold it, so there is nothing to mirror, and
// replacing it (U+FFFD) would hide bad input. Any other exception, a crash
// or a broken invariant is a finding.
//
// The folders: $CLIPFIND_FUZZ_DATA, else CLIPFIND_TEST_DATA (compile
// definition), else tests/data relative to the repository root.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "clip/error.h"
#include "clip/text/sentencepiece_tokenizer.h"

namespace {

constexpr int kLength = 64;

std::string data_folder() {
  if (const char* env = std::getenv("CLIPFIND_FUZZ_DATA")) return env;
#ifdef CLIPFIND_TEST_DATA
  return CLIPFIND_TEST_DATA;
#else
  return "tests/data";
#endif
}

clip::SentencePieceTokenizer load(const char* name) {
  try {
    return clip::SentencePieceTokenizer::from_folder(data_folder() + "/" + name);
  } catch (const clip::Error& e) {
    std::fprintf(stderr, "fuzz_spm_tokenizer: %s (set CLIPFIND_FUZZ_DATA)\n", e.what());
    std::abort();
  }
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_spm_tokenizer: invariant broken: %s\n", what);
  std::abort();
}

// Returns false for invalid UTF-8 (the documented error), after checking it.
bool check(const clip::SentencePieceTokenizer& tok, std::string_view text) {
  std::vector<int32_t> raw, model, padded;
  try {
    raw = tok.encode(text);
    model = tok.encode_for_model(text, kLength, /*pad=*/false);
    padded = tok.encode_for_model(text, kLength);
  } catch (const clip::Error& e) {
    if (std::string_view(e.what()).find("invalid UTF-8 at byte") == std::string_view::npos) fail(e.what());
    return false;
  }
  for (int32_t id : raw)
    if (id < 0 || id >= tok.vocab_size()) fail("id out of range");
  if (padded.size() != static_cast<size_t>(kLength)) fail("padded length is not the context length");
  if (model.empty() || model.size() > static_cast<size_t>(kLength)) fail("model length not in [1, 64]");
  if (model.back() != tok.eos_id()) fail("the model ids do not end with the end token");
  // The ids kept are a prefix of encode() (truncation from the right), the
  // end token after them unless (SigLIP) they end with it already.
  const size_t keep = std::min(raw.size(), static_cast<size_t>(kLength) - 1);
  std::vector<int32_t> want(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(keep));
  const bool siglip = tok.flavour() == clip::SentencePieceTokenizer::Flavour::Siglip;
  if (!siglip || want.empty() || want.back() != tok.eos_id()) want.push_back(tok.eos_id());
  if (model != want) fail("model ids are not the truncated encode() + end token");
  // Padding: on the right (SigLIP) or the left (Gemma), with the pad id.
  const size_t pad = padded.size() - model.size();
  const auto text_begin = padded.begin() + static_cast<std::ptrdiff_t>(tok.pads_left() ? pad : 0);
  if (!std::equal(model.begin(), model.end(), text_begin)) fail("padding moved the ids");
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const clip::SentencePieceTokenizer siglip = load("siglip-tokenizer");
  static const clip::SentencePieceTokenizer gemma = load("gemma-tokenizer");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (check(siglip, text) != check(gemma, text)) fail("the two tokenizers disagree on whether the text is valid");
  return 0;
}
