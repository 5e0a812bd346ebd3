// Text normalisation and pre-tokenisation of CLIP's tokenizer, mirroring the
// pipeline transformers' CLIPTokenizer builds in the `tokenizers` library:
//   normalizer:    NFC, Replace(\s+ -> " "), Lowercase
//   pre-tokenizer: Split(<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d
//                        |[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+, removed, invert),
//                  ByteLevel(use_regex = true)
// Character classes come from utf8proc, never from hand-written tables.
// Known, tested differences from `tokenizers` (tests/tokenizer_diff.py):
// characters newer than utf8proc's Unicode 15.0 are unassigned here (E1), and
// NFC uses Unicode 15.0 combining classes where `tokenizers` has 9.0 (E2).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace clip::text {

// The classes the CLIP pattern distinguishes (Oniguruma's \s, \p{L}, \p{N}).
enum class CharClass : unsigned char { kSpace, kLetter, kNumber, kOther };
CharClass classify(char32_t c);

// Throws clip::Error naming the byte offset of the first invalid UTF-8
// sequence (truncated, overlong, surrogate, above U+10FFFF). Such text is
// rejected rather than repaired: Python's str, which transformers receives,
// cannot hold it either, so there is no reference behaviour to follow.
void check_utf8(std::string_view utf8);

// NFC then lower-case (per character, like Rust's char::to_lowercase, which is
// what the `tokenizers` Lowercase normalizer applies). Whitespace is kept as
// is: split_words treats any run of it as one separator, which is all that
// Replace(\s+ -> " ") and the strip amount to.
// Throws clip::Error on invalid UTF-8, naming the byte offset.
std::u32string normalize(std::string_view utf8);

// Appends the words (UTF-8) of normalised text to `words`, in order. Each
// word is what the BPE model then sees as one unit (the "</w>" goes after it).
void split_words(std::u32string_view text, std::vector<std::string>& words);

// normalize + split_words, with an ASCII fast path (the common query).
void pretokenize(std::string_view utf8, std::vector<std::string>& words);

}  // namespace clip::text
