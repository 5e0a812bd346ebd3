// The text rules the SigLIP-family tokenizers apply before SentencePiece,
// as transformers runs them: in Python (SiglipTokenizer: str.lower,
// str.isspace, str.strip, re's \s) or in Rust (`tokenizers`' Lowercase
// normalizer and char::is_whitespace, for GemmaTokenizer's added tokens and
// Siglip2Tokenizer).
//
// Character properties come from utf8proc (Unicode 15.0). The few that
// utf8proc lacks are spelled out where they are used, each with its
// Unicode source: Python's final-sigma rule needs Case_Ignorable (Word_Break
// MidLetter/MidNumLet/Single_Quote, 17 characters) and Cased (Other_Lowercase/
// Other_Uppercase letters without a case mapping, 80 characters).
// tests/spm_tokenizer_diff.py checks every code point against Python.
#pragma once
#include <string>
#include <string_view>

namespace clip::text {

// Valid UTF-8 to code points and back. decode_utf8 throws clip::Error naming
// the byte offset of the first invalid sequence (check_utf8).
std::u32string decode_utf8(std::string_view utf8);
std::string encode_utf8(std::u32string_view text);

// Python's str.isspace() (also re's \s and str.strip()'s default): category
// Zs or bidirectional class WS, B or S.
bool is_python_space(char32_t c);
// Rust's char::is_whitespace (the White_Space property): Python's set less
// U+001C..U+001F.
bool is_rust_whitespace(char32_t c);

// Python's str.lower(): full lower-case mapping (U+0130 becomes "i̇") and
// Greek capital sigma as final sigma where Unicode's Final_Sigma condition
// holds, as CPython's handle_capital_sigma decides it.
std::u32string python_lower(std::u32string_view text);

// `tokenizers`' Lowercase normalizer: each character by itself through Rust's
// char::to_lowercase (full mapping, no final sigma).
std::u32string rust_lowercase(std::u32string_view text);

// SiglipTokenizer.canonicalize_text (transformers 5): lower-case when asked,
// drop ASCII punctuation (Python's string.punctuation), runs of whitespace to
// one space, strip. UTF-8 in, UTF-8 out.
std::string siglip_canonicalize(std::string_view utf8, bool lower_case);

}  // namespace clip::text
