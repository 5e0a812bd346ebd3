// Tokenizer tests: ids identical to transformers' CLIPTokenizer on the corpora
// written by tools/tokenizer_reference.py, both file forms agreeing,
// truncation, special tokens, and clear errors for bad files and bad text.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "clip/error.h"
#include "clip/text/bpe_files.h"
#include "clip/text/tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kData = fs::path(CLIPFIND_TEST_DATA) / "tokenizer";
const fs::path kSmall = kData / "small";
const fs::path kClipGz = fs::path(CLIPFIND_SHARED_DATA) / "bpe_simple_vocab_16e6.txt.gz";
constexpr int kContext = 77;

json read_json(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in) << "cannot open " << p;
  return json::parse(in);
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// A fresh directory under the build tree, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::path(CLIPFIND_BINARY_DIR) / "test_tokenizer_tmp" / name;
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Compares a tokenizer with a corpus of {"text", "ids", "raw"}; reports the
// first differences with their texts and counts the rest.
void expect_matches_corpus(const clip::Tokenizer& tok, const fs::path& corpus_file) {
  const json corpus = read_json(corpus_file);
  ASSERT_GE(corpus.size(), 300u) << corpus_file;
  int failures = 0;
  for (const json& entry : corpus) {
    const std::string text = entry["text"];
    const auto want = entry["ids"].get<std::vector<int32_t>>();
    const auto want_raw = entry["raw"].get<std::vector<int32_t>>();
    const auto got = tok.encode_for_model(text, kContext);
    const auto got_raw = tok.encode(text);
    if (got != want || got_raw != want_raw) {
      if (++failures <= 10)
        ADD_FAILURE() << "text " << json(text).dump() << "\n  want " << json(want).dump() << "\n  got  "
                      << json(got).dump() << "\n  want raw " << json(want_raw).dump() << "\n  got raw  "
                      << json(got_raw).dump();
    }
  }
  EXPECT_EQ(failures, 0) << "of " << corpus.size() << " strings in " << corpus_file;
}

// Writes vocab.json, merges.txt and tokenizer.json (string merges when
// `string_merges`) for a vocabulary, as transformers / tokenizers lay them out.
void write_folder(const clip::BpeFiles& files, const fs::path& dir, bool string_merges) {
  json vocab = json::object();
  for (const auto& [token, id] : files.vocab) vocab[token] = id;
  write_file(dir / "vocab.json", vocab.dump());
  std::string merges = "#version: 0.2\n";
  json merges_json = json::array();
  for (const auto& [a, b] : files.merges) {
    merges += a + " " + b + "\n";
    if (string_merges)
      merges_json.push_back(a + " " + b);
    else
      merges_json.push_back({a, b});
  }
  write_file(dir / "merges.txt", merges);
  json tj = {{"version", "1.0"},
             {"added_tokens", json::array()},
             {"model",
              {{"type", "BPE"},
               {"end_of_word_suffix", "</w>"},
               {"continuing_subword_prefix", ""},
               {"unk_token", "<|endoftext|>"},
               {"vocab", vocab},
               {"merges", merges_json}}}};
  for (const auto& [content, id] : files.added_tokens)
    tj["added_tokens"].push_back({{"id", id}, {"content", content}, {"special", true}});
  write_file(dir / "tokenizer.json", tj.dump());
}

// Expects `fn` to throw clip::Error whose message names `file`.
template <typename Fn>
void expect_error_naming(Fn fn, const fs::path& file, const std::string& also = "") {
  try {
    fn();
    ADD_FAILURE() << "no clip::Error for " << file;
  } catch (const clip::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file.string()), std::string::npos) << what;
    if (!also.empty()) {
      EXPECT_NE(what.find(also), std::string::npos) << what;
    }
  }
}

}  // namespace

// ---------------------------------------------------------- small vocabulary

TEST(TokenizerSmall, VocabAndMergesMatchTransformers) {
  expect_matches_corpus(clip::Tokenizer::from_files(kSmall / "vocab.json", kSmall / "merges.txt"),
                        kData / "corpus_small.json");
}

TEST(TokenizerSmall, TokenizerJsonMatchesTransformers) {
  expect_matches_corpus(clip::Tokenizer::from_tokenizer_json(kSmall / "tokenizer.json"), kData / "corpus_small.json");
}

TEST(TokenizerSmall, FolderPrefersTokenizerJsonAndMatches) {
  expect_matches_corpus(clip::Tokenizer::from_folder(kSmall), kData / "corpus_small.json");
}

TEST(TokenizerSmall, FolderWithoutTokenizerJsonUsesVocabAndMerges) {
  TempDir dir("vocab_merges_only");
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer_config.json"})
    fs::copy_file(kSmall / name, dir.path / name);
  expect_matches_corpus(clip::Tokenizer::from_folder(dir.path), kData / "corpus_small.json");
}

// Older tokenizer.json files write merges as "a b" strings, newer as [a, b].
TEST(TokenizerSmall, StringMergesInTokenizerJsonAgree) {
  json tj = read_json(kSmall / "tokenizer.json");
  ASSERT_TRUE(tj["model"]["merges"][0].is_array()) << "fixture expected with [a, b] merges";
  for (json& m : tj["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  TempDir dir("string_merges");
  write_file(dir.path / "tokenizer.json", tj.dump());
  expect_matches_corpus(clip::Tokenizer::from_tokenizer_json(dir.path / "tokenizer.json"), kData / "corpus_small.json");
}

TEST(TokenizerSmall, SpecialIdsAndVocabSize) {
  const auto tok = clip::Tokenizer::from_folder(kSmall);
  const auto vocab = read_json(kSmall / "vocab.json");
  EXPECT_EQ(tok.vocab_size(), static_cast<int32_t>(vocab.size()));
  EXPECT_EQ(tok.bos_id(), vocab["<|startoftext|>"].get<int32_t>());
  EXPECT_EQ(tok.eos_id(), vocab["<|endoftext|>"].get<int32_t>());
}

TEST(TokenizerSmall, SpecialTokensInTextAreMatchedRaw) {
  const auto tok = clip::Tokenizer::from_folder(kSmall);
  const auto a = tok.encode("a");
  const auto b = tok.encode("b");
  std::vector<int32_t> want = a;
  want.push_back(tok.eos_id());
  want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(tok.encode("a<|endoftext|>b"), want);
  EXPECT_EQ(tok.encode("<|startoftext|>"), std::vector<int32_t>{tok.bos_id()});
  // Upper case is not the special token: it is text (lower-cased, cut up).
  const auto upper = tok.encode("<|ENDOFTEXT|>");
  EXPECT_GT(upper.size(), 1u);
  EXPECT_EQ(std::count(upper.begin(), upper.end(), tok.eos_id()), 0);
}

TEST(TokenizerSmall, TruncationKeepsEndTokenLast) {
  const auto tok = clip::Tokenizer::from_folder(kSmall);
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "the dog runs ";
  const auto raw = tok.encode(long_text);
  ASSERT_GT(raw.size(), 75u);
  const auto ids = tok.encode_for_model(long_text, kContext);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids.front(), tok.bos_id());
  EXPECT_EQ(ids.back(), tok.eos_id());
  EXPECT_TRUE(std::equal(raw.begin(), raw.begin() + 75, ids.begin() + 1));

  // Exactly 75 text tokens fit; 76 lose the last one.
  std::string fit;
  for (int i = 0; i < 75; ++i) fit += "a ";
  ASSERT_EQ(tok.encode(fit).size(), 75u);
  EXPECT_EQ(tok.encode_for_model(fit, kContext).size(), 77u);
  EXPECT_EQ(tok.encode_for_model(fit + "b", kContext).back(), tok.eos_id());
  EXPECT_EQ(tok.encode_for_model(fit + "b", kContext).size(), 77u);

  EXPECT_EQ(tok.encode_for_model("", kContext), (std::vector<int32_t>{tok.bos_id(), tok.eos_id()}));
  EXPECT_EQ(tok.encode_for_model("a dog", 2), (std::vector<int32_t>{tok.bos_id(), tok.eos_id()}));
  EXPECT_THROW(tok.encode_for_model("a dog", 1), clip::Error);
}

TEST(TokenizerSmall, InvalidUtf8IsAnErrorWithItsOffset) {
  const auto tok = clip::Tokenizer::from_folder(kSmall);
  const std::pair<std::string, int> cases[] = {
      {"ab\xff", 2},           {"a\xc3", 1}, {"\xc0\x80", 0},    {"xy\xed\xa0\x80", 2},
      {"\xf4\x90\x80\x80", 0}, {"\x80", 0},  {"ok \xe2\x82", 3}, {"<|endoftext|>\xfe", 13},
  };
  for (const auto& [text, offset] : cases) {
    try {
      tok.encode(text);
      ADD_FAILURE() << "no error for " << json::binary({text.begin(), text.end()}).dump();
    } catch (const clip::Error& e) {
      EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte " + std::to_string(offset)), std::string::npos)
          << e.what();
    }
  }
}

// The two documented exceptions to "identical to transformers", found by the
// code point sweep of tests/tokenizer_diff.py (see its docstring).
std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// E1: characters assigned after Unicode 15.0 (utf8proc 2.8's tables) are
// unassigned here: "other" class, case kept. transformers lower-cases U+A7CB
// (Unicode 16) to U+0264 and joins it and U+105C0 to the letters around them.
TEST(TokenizerSmall, ExceptionCharactersNewerThanUtf8procAreOther) {
  const auto tok = clip::Tokenizer::from_folder(kSmall);
  for (const std::string c : {"\uA7CB", "\U000105C0"})
    EXPECT_EQ(tok.encode("a" + c + "b"), concat({tok.encode("a"), tok.encode(c), tok.encode("b")}));
  EXPECT_NE(tok.encode("\uA7CB"), tok.encode("\u0264"));
}

// E2: NFC uses utf8proc's Unicode 15.0 combining classes; `tokenizers`' NFC
// has Unicode 9.0 data and leaves marks added since then (class 0 there) alone.
TEST(TokenizerSmall, ExceptionNfcUsesUnicode15CombiningClasses) {
  const auto tok = clip::Tokenizer::from_folder(kSmall);
  // U+07FD (class 220, Unicode 11) no longer blocks e + U+0301 -> U+00E9.
  EXPECT_EQ(tok.encode("e\u07FD\u0301"), tok.encode("\u00E9\u07FD"));
  // U+09FE (class 230, Unicode 10) is reordered after U+0E49 (class 107).
  EXPECT_EQ(tok.encode("a\u09FE\u0E49"), tok.encode("a\u0E49\u09FE"));
}

TEST(TokenizerSmall, ConcurrentEncodesAgree) {
  const auto tok = clip::Tokenizer::from_folder(kSmall);
  const json corpus = read_json(kData / "corpus_small.json");
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (const json& e : corpus)
        if (tok.encode_for_model(e["text"].get<std::string>(), kContext) != e["ids"].get<std::vector<int32_t>>())
          ++mismatches;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ---------------------------------------------------------- bad files

TEST(TokenizerFiles, MissingFilesNameThePath) {
  TempDir dir("missing");
  expect_error_naming([&] { clip::Tokenizer::from_folder(dir.path); }, dir.path);
  expect_error_naming([&] { clip::Tokenizer::from_files(dir.path / "vocab.json", kSmall / "merges.txt"); },
                      dir.path / "vocab.json");
  expect_error_naming([&] { clip::Tokenizer::from_files(kSmall / "vocab.json", dir.path / "merges.txt"); },
                      dir.path / "merges.txt");
  expect_error_naming([&] { clip::Tokenizer::from_tokenizer_json(dir.path / "tokenizer.json"); },
                      dir.path / "tokenizer.json");
  expect_error_naming([&] { clip::Tokenizer::from_clip_bpe_gz(dir.path / "bpe.txt.gz"); }, dir.path / "bpe.txt.gz");
}

TEST(TokenizerFiles, MalformedJsonNamesTheFile) {
  TempDir dir("malformed");
  write_file(dir.path / "vocab.json", "{\"a\": 1,");
  expect_error_naming([&] { clip::Tokenizer::from_files(dir.path / "vocab.json", kSmall / "merges.txt"); },
                      dir.path / "vocab.json", "invalid JSON");
  write_file(dir.path / "vocab.json", "[1, 2]");
  expect_error_naming([&] { clip::Tokenizer::from_files(dir.path / "vocab.json", kSmall / "merges.txt"); },
                      dir.path / "vocab.json", "not a JSON object");
  write_file(dir.path / "vocab.json", "{\"a\": \"x\"}");
  expect_error_naming([&] { clip::Tokenizer::from_files(dir.path / "vocab.json", kSmall / "merges.txt"); },
                      dir.path / "vocab.json", "'a'");
  write_file(dir.path / "tokenizer.json", "not json");
  expect_error_naming([&] { clip::Tokenizer::from_tokenizer_json(dir.path / "tokenizer.json"); },
                      dir.path / "tokenizer.json", "invalid JSON");
  write_file(dir.path / "tokenizer.json", "{\"model\": {\"type\": \"WordPiece\"}}");
  expect_error_naming([&] { clip::Tokenizer::from_tokenizer_json(dir.path / "tokenizer.json"); },
                      dir.path / "tokenizer.json", "WordPiece");
  write_file(dir.path / "tokenizer.json", "{\"version\": \"1.0\"}");
  expect_error_naming([&] { clip::Tokenizer::from_tokenizer_json(dir.path / "tokenizer.json"); },
                      dir.path / "tokenizer.json", "model");
  json tj = read_json(kSmall / "tokenizer.json");
  tj["model"]["merges"][3] = json::array({"a"});
  write_file(dir.path / "tokenizer.json", tj.dump());
  expect_error_naming([&] { clip::Tokenizer::from_tokenizer_json(dir.path / "tokenizer.json"); },
                      dir.path / "tokenizer.json", "merge 4");
}

TEST(TokenizerFiles, MergesWithUnknownTokensNameTheFile) {
  TempDir dir("unknown");
  std::ifstream in(kSmall / "merges.txt");
  const std::string merges((std::istreambuf_iterator<char>(in)), {});
  const fs::path bad = dir.path / "merges.txt";

  write_file(bad, merges + "qqqzz t\n");
  expect_error_naming([&] { clip::Tokenizer::from_files(kSmall / "vocab.json", bad); }, bad, "'qqqzz'");
  // Both halves known, but their concatenation is not a token.
  write_file(bad, merges + "q z</w>\n");
  expect_error_naming([&] { clip::Tokenizer::from_files(kSmall / "vocab.json", bad); }, bad, "merged token 'qz</w>'");
  write_file(bad, merges + "a b c\n");
  expect_error_naming([&] { clip::Tokenizer::from_files(kSmall / "vocab.json", bad); }, bad, "two tokens");
  write_file(bad, "#version: 0.2\nt h\n\nth e</w>\n");
  expect_error_naming([&] { clip::Tokenizer::from_files(kSmall / "vocab.json", bad); }, bad, "line 3");

  json tj = read_json(kSmall / "tokenizer.json");
  tj["model"]["merges"].push_back({"qqqzz", "t"});
  write_file(dir.path / "tokenizer.json", tj.dump());
  expect_error_naming([&] { clip::Tokenizer::from_tokenizer_json(dir.path / "tokenizer.json"); },
                      dir.path / "tokenizer.json", "'qqqzz'");
}

TEST(TokenizerFiles, VocabularyWithoutSpecialTokens) {
  TempDir dir("nospecial");
  json vocab = read_json(kSmall / "vocab.json");
  vocab.erase("<|startoftext|>");
  write_file(dir.path / "vocab.json", vocab.dump());
  expect_error_naming([&] { clip::Tokenizer::from_files(dir.path / "vocab.json", kSmall / "merges.txt"); },
                      kSmall / "merges.txt", "<|startoftext|>");
}

TEST(TokenizerFiles, CrlfMergesAndMissingHeaderAreAccepted) {
  TempDir dir("crlf");
  std::ifstream in(kSmall / "merges.txt");
  std::string line, crlf, no_header;
  for (int n = 0; std::getline(in, line); ++n) {
    crlf += line + "\r\n";
    if (n > 0) no_header += line + "\n";
  }
  write_file(dir.path / "crlf.txt", crlf);
  write_file(dir.path / "noheader.txt", no_header);
  const auto ref = clip::Tokenizer::from_folder(kSmall);
  for (const char* name : {"crlf.txt", "noheader.txt"}) {
    const auto tok = clip::Tokenizer::from_files(kSmall / "vocab.json", dir.path / name);
    EXPECT_EQ(tok.encode("the thing's ringing!"), ref.encode("the thing's ringing!")) << name;
  }
}

// ---------------------------------------------------------- real vocabulary

class TokenizerClip : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kClipGz)) GTEST_SKIP() << kClipGz << " not found: real-vocabulary tests skipped";
  }
};

TEST_F(TokenizerClip, GzMatchesTransformers) {
  const auto tok = clip::Tokenizer::from_clip_bpe_gz(kClipGz);
  EXPECT_EQ(tok.vocab_size(), 49408);
  EXPECT_EQ(tok.bos_id(), 49406);
  EXPECT_EQ(tok.eos_id(), 49407);
  EXPECT_EQ(tok.encode_for_model("a photo of a dog", kContext),
            (std::vector<int32_t>{49406, 320, 1125, 539, 320, 1929, 49407}));
  expect_matches_corpus(tok, kData / "corpus_clip.json");
}

// The same vocabulary written as vocab.json + merges.txt and as tokenizer.json
// (both merge notations) gives the same ids.
TEST_F(TokenizerClip, FileFormsMatchTransformers) {
  const clip::BpeFiles files = clip::read_clip_bpe_gz(kClipGz);
  TempDir pairs("clip_pairs"), strings("clip_strings");
  write_folder(files, pairs.path, false);
  write_folder(files, strings.path, true);
  expect_matches_corpus(clip::Tokenizer::from_files(pairs.path / "vocab.json", pairs.path / "merges.txt"),
                        kData / "corpus_clip.json");
  expect_matches_corpus(clip::Tokenizer::from_tokenizer_json(pairs.path / "tokenizer.json"),
                        kData / "corpus_clip.json");
  expect_matches_corpus(clip::Tokenizer::from_tokenizer_json(strings.path / "tokenizer.json"),
                        kData / "corpus_clip.json");
}

// Not a strict benchmark: guards against a slow path sneaking into the
// common case (a short ASCII query), with a bound far above the expected µs.
TEST_F(TokenizerClip, ShortQueryTakesMicroseconds) {
  const auto tok = clip::Tokenizer::from_clip_bpe_gz(kClipGz);
  const char* queries[] = {"a photo of a dog", "a yellow ambulance at night",
                           "Two children playing football in the park"};
  for (const char* q : queries) tok.encode_for_model(q, kContext);  // warm the cache
  constexpr int kRuns = 2000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) tok.encode_for_model(queries[i % 3], kContext);
  const double warm_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kRuns;
  // Cold: distinct words each time, so every word goes through BPE.
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) {
    std::string word = "zeb";  // a letter word never seen before
    for (int k = i + 1; k > 0; k /= 26) word += static_cast<char>('a' + k % 26);
    tok.encode_for_model("a photograph of " + word + " quickly", kContext);
  }
  const double cold_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kRuns;
  std::printf("short query: %.2f us (cached words), %.2f us (new words)\n", warm_us, cold_us);
  EXPECT_LT(warm_us, 1000.0);
  EXPECT_LT(cold_us, 1000.0);
}
