// SentencePiece tokenizers of the SigLIP family, giving the ids that
// transformers' AutoTokenizer.from_pretrained(folder) gives (transformers 5,
// checked by tests/spm_tokenizer_diff.py):
//
//   SigLIP    spiece.model (unigram), SiglipTokenizer: the text is split at
//             added tokens; each other part canonicalised (lower-cased when
//             do_lower_case, ASCII punctuation dropped, whitespace collapsed,
//             stripped), "▁" put in front of the whole text, encoded as
//             SentencePiece encodes "<unk>" + part with the pieces of "<unk>"
//             dropped; </s> appended unless the ids end with it already. No
//             start token. Pads with pad_token (</s>) on the right.
//   Gemma     tokenizer.model (BPE with byte fallback), GemmaTokenizer (or
//             Siglip2Tokenizer, which lower-cases first): the text is split
//             at added tokens, the rest encoded by SentencePiece as it is.
//             Start/end tokens as tokenizer.json's post-processor says (else
//             tokenizer_config.json's add_bos_token/add_eos_token). Pads with
//             <pad> on the left unless padding_side says otherwise.
//
// Truncation (to max_length, counting the start/end tokens) keeps those
// tokens and drops ids from the end (truncation_side "left": the start).
//
// Invalid UTF-8 is rejected with clip::Error naming the byte offset:
// transformers only ever sees Python strings, which cannot hold it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace clip {

class SentencePieceTokenizer {
 public:
  enum class Flavour { Siglip, Gemma };

  // spiece.model (SigLIP) or else tokenizer.model (Gemma), with
  // tokenizer_config.json and, for Gemma, tokenizer.json when present.
  // Throws clip::Error naming the folder or file and what is wrong (no
  // SentencePiece model, only a tokenizer.json, a corrupt model, a bad JSON).
  static SentencePieceTokenizer from_folder(const std::filesystem::path& dir);

  SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept;
  SentencePieceTokenizer& operator=(SentencePieceTokenizer&&) noexcept;
  ~SentencePieceTokenizer();

  Flavour flavour() const;
  // The model file read (for messages).
  const std::filesystem::path& model_file() const;

  // tokenizer(text, add_special_tokens=False)["input_ids"]: no start/end
  // tokens, no truncation. Thread-safe.
  std::vector<int32_t> encode(std::string_view utf8) const;
  // tokenizer(text, truncation=True, max_length=max_length) and, when `pad`,
  // padding="max_length" too: the processor's ids for the text tower.
  // Thread-safe.
  std::vector<int32_t> encode_for_model(std::string_view utf8, int max_length, bool pad = true) const;

  int32_t pad_id() const;
  int32_t eos_id() const;  // -1: none
  int32_t bos_id() const;  // -1: none
  bool pads_left() const;
  // One past the largest id encode() can return.
  int32_t vocab_size() const;

 private:
  struct Impl;
  explicit SentencePieceTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clip
