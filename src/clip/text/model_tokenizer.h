// The tokenizer a model's text tower takes its ids from, chosen by the
// model's family (from config.json, never from the folder name):
//
//   CLIP     the byte-level BPE (clip::Tokenizer; tokenizer.json, or
//            vocab.json + merges.txt): <|startoftext|> ids <|endoftext|>,
//            truncated to the context length with the end token kept last,
//            not padded (the engine runs each batch only as far as its
//            longest text needs).
//   SigLIP   SentencePiece (clip::SentencePieceTokenizer): spiece.model gives
//            SiglipTokenizer's ids, tokenizer.model GemmaTokenizer's (SigLIP
//            2); truncated and padded to the context length, as the
//            processor does with padding="max_length".
//
// The context length is the text config's max_positions (which load_model
// corrects from the position embedding's shape).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clip/model/config.h"

namespace clip {

class Tokenizer;
class SentencePieceTokenizer;

class ModelTokenizer {
 public:
  // Throws clip::Error naming the folder or file when the family's tokenizer
  // files are missing or bad, or when the config has no text tower.
  static ModelTokenizer load(const std::filesystem::path& dir, const ClipConfig& config);

  ModelTokenizer(ModelTokenizer&&) noexcept;
  ModelTokenizer& operator=(ModelTokenizer&&) noexcept;
  ~ModelTokenizer();

  // The ids the text tower takes for the text. Thread-safe; throws
  // clip::Error on invalid UTF-8 (naming the byte offset).
  std::vector<int32_t> encode(std::string_view utf8) const;

  int context_length() const;
  // True when encode() always gives context_length() ids (SigLIP).
  bool pads_to_context() const;
  // The id that fills a batch's rows past a text's end (CLIP: the end token,
  // as transformers' CLIPTokenizer pads; SigLIP: the tokenizer's pad token).
  int32_t pad_id() const;
  // One past the largest id encode() can return.
  int32_t vocab_size() const;
  // "clip-bpe", "siglip-sentencepiece" or "gemma-sentencepiece" (messages).
  std::string kind() const;

 private:
  ModelTokenizer();
  std::unique_ptr<Tokenizer> bpe_;
  std::unique_ptr<SentencePieceTokenizer> spm_;
  int context_length_ = 0;
};

}  // namespace clip
