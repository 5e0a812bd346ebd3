// CLIP's byte-level BPE tokenizer, compatible with transformers' CLIPTokenizer.
//
// Pipeline: NFC normalisation, whitespace runs collapsed to one space, strip,
// lower-case; split into special tokens and the CLIP pattern
// ('s|'t|'re|'ve|'m|'ll|'d | \p{L}+ | \p{N} | [^\s\p{L}\p{N}]+); each piece
// mapped to bytes-as-unicode and merged by rank with "</w>" ending a word.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace clip {

class Tokenizer {
 public:
  // tokenizer.json if present, else vocab.json + merges.txt. Throws clip::Error.
  static Tokenizer from_folder(const std::filesystem::path& dir);
  static Tokenizer from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);
  static Tokenizer from_tokenizer_json(const std::filesystem::path& tokenizer_json);
  // openai/CLIP's bpe_simple_vocab_16e6.txt.gz, expanded as CLIP does.
  static Tokenizer from_clip_bpe_gz(const std::filesystem::path& gz);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // BPE ids of the text, without start/end tokens. Throws clip::Error on
  // invalid UTF-8 (naming the byte offset). Thread-safe.
  std::vector<int32_t> encode(std::string_view utf8) const;
  // <|startoftext|> ids <|endoftext|>, truncated to context_length with the
  // end token kept last.
  std::vector<int32_t> encode_for_model(std::string_view utf8, int context_length) const;

  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t vocab_size() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clip
