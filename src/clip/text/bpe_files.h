// Readers for the files a CLIP BPE vocabulary comes in. Each returns the
// vocabulary, the merges in rank order and the added (special) tokens, or
// throws clip::Error naming the file and what is wrong with it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "clip/text/bpe_model.h"

namespace clip {

struct BpeFiles {
  BpeModel::Vocab vocab;
  BpeModel::Merges merges;
  // Tokens matched verbatim in the raw text before normalisation
  // (<|startoftext|>, <|endoftext|> and any other added token).
  std::vector<std::pair<std::string, int32_t>> added_tokens;
  std::string source;  // the file (or files) named in later errors
};

// transformers' vocab.json (token -> id) + merges.txt ("a b" per line; lines
// starting with "#version" skipped, CRLF accepted, any other line must hold
// exactly two tokens).
BpeFiles read_vocab_and_merges(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);

// A `tokenizers` tokenizer.json with a BPE model ("a b" strings or [a, b]
// pairs as merges) and "</w>" as end-of-word suffix. Its normalizer and
// pre-tokenizer are not read: like transformers 5's CLIPTokenizer, we always
// apply the CLIP pipeline.
BpeFiles read_tokenizer_json(const std::filesystem::path& tokenizer_json);

// openai/CLIP's bpe_simple_vocab_16e6.txt.gz, expanded as openai/CLIP does:
// merges = lines[1 : 49152 - 256 - 2 + 1]; vocabulary = the 256 byte
// characters, the same with "</w>", one token per merge, then the specials.
BpeFiles read_clip_bpe_gz(const std::filesystem::path& gz);

}  // namespace clip
