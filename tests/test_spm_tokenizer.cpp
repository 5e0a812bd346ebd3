// SentencePiece tokenizers of the SigLIP family: ids identical to
// transformers on the strings tools/make_spm_tokenizers.py recorded, the
// start/end/pad/truncation rules, the engine's ModelTokenizer choosing by
// family, the Python/Rust text rules, clear errors for missing or bad files
// and bad text, and concurrent use. (tests/spm_tokenizer_diff.py compares
// with transformers itself on 10,000+ random strings per kind.)
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "clip/error.h"
#include "clip/model/config.h"
#include "clip/text/model_tokenizer.h"
#include "clip/text/sentencepiece_tokenizer.h"
#include "clip/text/spm_text.h"
#include "clip/text/tokenizer.h"
#include "support/temp_dir.h"
#include "test_util.h"

namespace fs = std::filesystem;
using clip::SentencePieceTokenizer;
using nlohmann::json;

namespace {

const fs::path kData = fs::path(CLIPFIND_TEST_DATA);
const fs::path kSiglip = kData / "siglip-tokenizer";
const fs::path kGemma = kData / "gemma-tokenizer";
constexpr int kLength = 64;

json read_json(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in) << "cannot open " << p;
  return json::parse(in);
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// A copy of a fixture folder whose files can then be changed.
void copy_folder(const fs::path& from, const fs::path& to) {
  for (const auto& entry : fs::directory_iterator(from)) fs::copy_file(entry.path(), to / entry.path().filename());
}

std::vector<json> corpus(const std::string& kind) {
  std::vector<json> out;
  for (const json& e : read_json(kData / "spm-corpus.json"))
    if (e["kind"] == kind) out.push_back(e);
  EXPECT_GE(out.size(), 10u) << kind;
  return out;
}

void expect_matches_corpus(const SentencePieceTokenizer& tok, const std::string& kind) {
  for (const json& e : corpus(kind)) {
    const std::string text = e["text"];
    EXPECT_EQ(tok.encode_for_model(text, kLength), e["ids"].get<std::vector<int32_t>>())
        << kind << " text " << json(text).dump();
  }
}

// The ids without the padding.
std::vector<int32_t> unpadded(const SentencePieceTokenizer& tok, const std::string& text) {
  return tok.encode_for_model(text, kLength, /*pad=*/false);
}

clip::ClipConfig siglip_config(int positions) {
  clip::ClipConfig cfg;
  cfg.family = clip::ModelFamily::Siglip;
  cfg.text.emplace();
  cfg.text->max_positions = positions;
  return cfg;
}

}  // namespace

// ---------------------------------------------------------- SigLIP

TEST(SpmSiglip, MatchesTransformersOnRecordedStrings) {
  const auto tok = SentencePieceTokenizer::from_folder(kSiglip);
  EXPECT_EQ(tok.flavour(), SentencePieceTokenizer::Flavour::Siglip);
  EXPECT_EQ(tok.model_file(), kSiglip / "spiece.model");
  expect_matches_corpus(tok, "siglip");
}

TEST(SpmSiglip, SpecialIds) {
  const auto tok = SentencePieceTokenizer::from_folder(kSiglip);
  EXPECT_EQ(tok.eos_id(), 1);  // </s>
  EXPECT_EQ(tok.pad_id(), 1);  // pad_token is </s> too
  EXPECT_EQ(tok.bos_id(), -1);
  EXPECT_FALSE(tok.pads_left());
  EXPECT_EQ(tok.vocab_size(), 3000);
}

TEST(SpmSiglip, EosAppendedPaddedRightNoStartToken) {
  const auto tok = SentencePieceTokenizer::from_folder(kSiglip);
  const auto raw = tok.encode("a photo of a dog");
  ASSERT_FALSE(raw.empty());
  auto want = raw;
  want.push_back(1);
  EXPECT_EQ(unpadded(tok, "a photo of a dog"), want);
  want.resize(kLength, 1);
  EXPECT_EQ(tok.encode_for_model("a photo of a dog", kLength), want);
  // Empty text: only the end token, then padding.
  EXPECT_EQ(unpadded(tok, ""), std::vector<int32_t>{1});
}

TEST(SpmSiglip, CanonicalisesCasePunctuationAndSpaces) {
  const auto tok = SentencePieceTokenizer::from_folder(kSiglip);
  EXPECT_EQ(tok.encode("A Photo, of a DOG!!"), tok.encode("a photo of a dog"));
  EXPECT_EQ(tok.encode("  a\t\nphoto\u3000of a dog  "), tok.encode("a photo of a dog"));
}

TEST(SpmSiglip, EndTokenInTextIsNotRepeated) {
  const auto tok = SentencePieceTokenizer::from_folder(kSiglip);
  const auto ids = unpadded(tok, "a dog</s>");
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids.back(), 1);
  EXPECT_NE(ids[ids.size() - 2], 1);
}

TEST(SpmSiglip, TruncationKeepsEndTokenLast) {
  const auto tok = SentencePieceTokenizer::from_folder(kSiglip);
  std::string text;
  for (int i = 0; i < 100; ++i) text += "dog ";
  const auto raw = tok.encode(text);
  ASSERT_GE(raw.size(), 100u);
  const auto ids = tok.encode_for_model(text, kLength);
  ASSERT_EQ(ids.size(), size_t{kLength});
  EXPECT_EQ(ids.back(), 1);
  EXPECT_TRUE(std::equal(ids.begin(), ids.end() - 1, raw.begin()));
  EXPECT_THROW(tok.encode_for_model(text, 1), clip::Error);
}

// ---------------------------------------------------------- Gemma

TEST(SpmGemma, MatchesTransformersOnRecordedStrings) {
  const auto tok = SentencePieceTokenizer::from_folder(kGemma);
  EXPECT_EQ(tok.flavour(), SentencePieceTokenizer::Flavour::Gemma);
  EXPECT_EQ(tok.model_file(), kGemma / "tokenizer.model");
  expect_matches_corpus(tok, "gemma");
}

TEST(SpmGemma, SpecialIdsAndLeftPadding) {
  const auto tok = SentencePieceTokenizer::from_folder(kGemma);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_TRUE(tok.pads_left());  // GemmaTokenizer's padding_side
  // tokenizer.json's post-processor: "$A <eos>" (SigLIP 2's add_eos_token).
  const auto raw = tok.encode("a photo of a dog");
  auto want = std::vector<int32_t>(kLength - raw.size() - 1, 0);
  want.insert(want.end(), raw.begin(), raw.end());
  want.push_back(1);
  EXPECT_EQ(tok.encode_for_model("a photo of a dog", kLength), want);
}

TEST(SpmGemma, KeepsCaseAndAddedTokensAreMatchedWhole) {
  const auto tok = SentencePieceTokenizer::from_folder(kGemma);
  EXPECT_NE(tok.encode("Dog"), tok.encode("dog"));
  const auto ids = tok.encode("<start_of_turn>dog<end_of_turn>");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 8);
  EXPECT_EQ(ids.back(), 9);
  // Bytes the model lacks fall back to <0xNN> pieces, never <unk> (3).
  for (int32_t id : tok.encode("\U0001F9A9 \u0F00")) EXPECT_NE(id, 3);
}

TEST(SpmGemma, WithoutTokenizerJsonTheConfigFlagsDecide) {
  cliptest::TempDir dir;
  for (const char* f : {"tokenizer.model", "config.json"}) fs::copy_file(kGemma / f, dir.path / f);
  json cfg = read_json(kGemma / "tokenizer_config.json");
  cfg["add_bos_token"] = true;
  cfg["add_eos_token"] = false;
  cfg["padding_side"] = "right";
  write_file(dir.path / "tokenizer_config.json", cfg.dump());
  const auto tok = SentencePieceTokenizer::from_folder(dir.path);
  const auto ids = tok.encode_for_model("dog", kLength);
  EXPECT_EQ(ids.front(), 2);
  EXPECT_EQ(ids.back(), 0);
  EXPECT_EQ(unpadded(tok, "dog").back(), tok.encode("dog").back());
}

TEST(SpmGemma, Siglip2TokenizerLowerCases) {
  cliptest::TempDir dir;
  copy_folder(kGemma, dir.path);
  json cfg = read_json(kGemma / "tokenizer_config.json");
  cfg["tokenizer_class"] = "Siglip2Tokenizer";
  write_file(dir.path / "tokenizer_config.json", cfg.dump());
  const auto tok = SentencePieceTokenizer::from_folder(dir.path);
  const auto gemma = SentencePieceTokenizer::from_folder(kGemma);
  EXPECT_EQ(tok.encode("A DOG"), gemma.encode("a dog"));
}

// ---------------------------------------------------------- shared

TEST(SpmTokenizer, InvalidUtf8IsAnErrorWithItsOffset) {
  for (const fs::path& folder : {kSiglip, kGemma}) {
    const auto tok = SentencePieceTokenizer::from_folder(folder);
    const std::pair<std::string, int> cases[] = {{"ab\xff", 2}, {"a\xc3", 1}, {"xy\xed\xa0\x80", 2}, {"</s>\xfe", 4}};
    for (const auto& [text, offset] : cases) {
      const std::string what = cliptest::error_of([&] { tok.encode_for_model(text, kLength); });
      EXPECT_CONTAINS(what, "invalid UTF-8 at byte " + std::to_string(offset));
    }
  }
}

TEST(SpmTokenizer, ConcurrentEncodesAgree) {
  for (const char* kind : {"siglip", "gemma"}) {
    const auto tok = SentencePieceTokenizer::from_folder(std::string(kind) == "siglip" ? kSiglip : kGemma);
    const auto entries = corpus(kind);
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int round = 0; round < 20; ++round)
          for (const json& e : entries)
            if (tok.encode_for_model(e["text"].get<std::string>(), kLength) != e["ids"].get<std::vector<int32_t>>())
              ++mismatches;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0) << kind;
  }
}

TEST(SpmFiles, MissingModelNamesTheFolder) {
  cliptest::TempDir dir;
  const std::string what = cliptest::error_of([&] { SentencePieceTokenizer::from_folder(dir.path); });
  EXPECT_CONTAINS(what, dir.path.string());
  EXPECT_CONTAINS(what, "tokenizer.model or spiece.model");
}

TEST(SpmFiles, OnlyTokenizerJsonSaysAModelIsNeeded) {
  cliptest::TempDir dir;
  fs::copy_file(kGemma / "tokenizer.json", dir.path / "tokenizer.json");
  fs::copy_file(kGemma / "tokenizer_config.json", dir.path / "tokenizer_config.json");
  const std::string what = cliptest::error_of([&] { SentencePieceTokenizer::from_folder(dir.path); });
  EXPECT_CONTAINS(what, dir.path.string());
  EXPECT_CONTAINS(what, "tokenizer.model");
  EXPECT_CONTAINS(what, "spiece.model");
}

TEST(SpmFiles, CorruptModelNamesTheFile) {
  cliptest::TempDir dir;
  write_file(dir.path / "spiece.model", "this is not a protobuf \xff\xff\xff\xff");
  std::string what = cliptest::error_of([&] { SentencePieceTokenizer::from_folder(dir.path); });
  EXPECT_CONTAINS(what, (dir.path / "spiece.model").string());
  // A truncated model.
  std::ifstream in(kGemma / "tokenizer.model", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::remove(dir.path / "spiece.model");
  write_file(dir.path / "tokenizer.model", bytes.substr(0, bytes.size() / 2));
  what = cliptest::error_of([&] { SentencePieceTokenizer::from_folder(dir.path); });
  EXPECT_CONTAINS(what, (dir.path / "tokenizer.model").string());
  // An empty one.
  write_file(dir.path / "tokenizer.model", "");
  what = cliptest::error_of([&] { SentencePieceTokenizer::from_folder(dir.path); });
  EXPECT_CONTAINS(what, (dir.path / "tokenizer.model").string());
}

TEST(SpmFiles, BadConfigFilesNameTheFile) {
  cliptest::TempDir dir;
  copy_folder(kGemma, dir.path);
  write_file(dir.path / "tokenizer_config.json", "{\"eos_token\": ");
  std::string what = cliptest::error_of([&] { SentencePieceTokenizer::from_folder(dir.path); });
  EXPECT_CONTAINS(what, (dir.path / "tokenizer_config.json").string());

  fs::copy_file(kGemma / "tokenizer_config.json", dir.path / "tokenizer_config.json",
                fs::copy_options::overwrite_existing);
  write_file(dir.path / "tokenizer.json", "[");
  what = cliptest::error_of([&] { SentencePieceTokenizer::from_folder(dir.path); });
  EXPECT_CONTAINS(what, (dir.path / "tokenizer.json").string());

  json tj = read_json(kGemma / "tokenizer.json");
  tj["post_processor"] = {{"type", "BertProcessing"}};
  write_file(dir.path / "tokenizer.json", tj.dump());
  what = cliptest::error_of([&] { SentencePieceTokenizer::from_folder(dir.path); });
  EXPECT_CONTAINS(what, (dir.path / "tokenizer.json").string());
  EXPECT_CONTAINS(what, "BertProcessing");

  json cfg = read_json(kGemma / "tokenizer_config.json");
  cfg["padding_side"] = "middle";
  write_file(dir.path / "tokenizer_config.json", cfg.dump());
  fs::copy_file(kGemma / "tokenizer.json", dir.path / "tokenizer.json", fs::copy_options::overwrite_existing);
  what = cliptest::error_of([&] { SentencePieceTokenizer::from_folder(dir.path); });
  EXPECT_CONTAINS(what, "padding_side");
}

// ---------------------------------------------------------- ModelTokenizer

TEST(ModelTokenizer, SiglipFamilyPadsToTheContext) {
  for (const fs::path& folder : {kSiglip, kGemma}) {
    const auto tok = clip::ModelTokenizer::load(folder, siglip_config(kLength));
    EXPECT_TRUE(tok.pads_to_context());
    EXPECT_EQ(tok.context_length(), kLength);
    EXPECT_EQ(tok.encode("a dog").size(), size_t{kLength});
    EXPECT_EQ(tok.encode("a dog"), SentencePieceTokenizer::from_folder(folder).encode_for_model("a dog", kLength));
  }
  EXPECT_EQ(clip::ModelTokenizer::load(kSiglip, siglip_config(16)).encode("a dog").size(), 16u);
  EXPECT_EQ(clip::ModelTokenizer::load(kSiglip, siglip_config(kLength)).kind(), "siglip-sentencepiece");
  EXPECT_EQ(clip::ModelTokenizer::load(kGemma, siglip_config(kLength)).kind(), "gemma-sentencepiece");
  EXPECT_EQ(clip::ModelTokenizer::load(kGemma, siglip_config(kLength)).pad_id(), 0);
}

TEST(ModelTokenizer, ClipFamilyUsesTheBpe) {
  clip::ClipConfig cfg;  // family Clip
  cfg.text.emplace();
  const fs::path small = kData / "tokenizer" / "small";
  const auto tok = clip::ModelTokenizer::load(small, cfg);
  const auto bpe = clip::Tokenizer::from_folder(small);
  EXPECT_FALSE(tok.pads_to_context());
  EXPECT_EQ(tok.kind(), "clip-bpe");
  EXPECT_EQ(tok.encode("a red circle"), bpe.encode_for_model("a red circle", 77));
  EXPECT_EQ(tok.pad_id(), bpe.eos_id());
  // The family decides, not the files: a CLIP config on a SigLIP folder
  // looks for CLIP's files.
  const std::string what = cliptest::error_of([&] { clip::ModelTokenizer::load(kSiglip, cfg); });
  EXPECT_CONTAINS(what, kSiglip.string());
  EXPECT_CONTAINS(cliptest::error_of([&] { clip::ModelTokenizer::load(small, siglip_config(kLength)); }),
                  small.string());
  clip::ClipConfig vision_only;
  EXPECT_CONTAINS(cliptest::error_of([&] { clip::ModelTokenizer::load(small, vision_only); }), "no text tower");
}

// ---------------------------------------------------------- text rules

TEST(SpmText, PythonLowerFinalSigma) {
  using clip::text::decode_utf8;
  using clip::text::encode_utf8;
  auto lower = [](const std::string& s) { return encode_utf8(clip::text::python_lower(decode_utf8(s))); };
  EXPECT_EQ(lower("ΟΔΟΣ"), "οδος");
  EXPECT_EQ(lower("ΟΔΟΣ ΣΑ"), "οδος σα");
  EXPECT_EQ(lower("Σ"), "σ");        // nothing cased before it
  EXPECT_EQ(lower("ΑΣ.Β"), "ασ.β");  // '.' is case-ignorable (MidNumLet)
  EXPECT_EQ(lower("ΑΣ-Β"), "ας-β");  // '-' is not
  EXPECT_EQ(lower("ªΣ"), "ªς");      // ª is cased (Other_Lowercase)
  EXPECT_EQ(lower("İ"), "i\u0307");  // full mapping
  auto rust = [](const std::string& s) { return encode_utf8(clip::text::rust_lowercase(decode_utf8(s))); };
  EXPECT_EQ(rust("ΟΔΟΣ"), "οδοσ");  // per character: no final sigma
}

TEST(SpmText, WhitespaceAndCanonicalText) {
  EXPECT_TRUE(clip::text::is_python_space(0x1C));
  EXPECT_FALSE(clip::text::is_rust_whitespace(0x1C));
  EXPECT_TRUE(clip::text::is_rust_whitespace(0x3000));
  EXPECT_FALSE(clip::text::is_python_space(0x200B));
  EXPECT_EQ(clip::text::siglip_canonicalize("  Hello,   World! \u00a0", true), "hello world");
  EXPECT_EQ(clip::text::siglip_canonicalize("a . b", true), "a b");
  EXPECT_EQ(clip::text::siglip_canonicalize("Don't", false), "Dont");
}
