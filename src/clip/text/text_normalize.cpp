#include "clip/text/text_normalize.h"

#include <utf8proc.h>

#include <array>
#include <string>

#include "clip/error.h"

namespace clip::text {
namespace {

// The text forms of the special tokens that the transformers 5 pattern lists
// first: after lower-casing, "<|EndOfText|>" matches them as one piece (the
// ByteLevel step then cuts it into "<|", the name, "|>"). This only differs
// from the plain pattern when the piece starts exactly at '<'.
constexpr std::array<std::u32string_view, 2> kSpecialPieces = {U"<|startoftext|>", U"<|endoftext|>"};

void append_utf8(char32_t c, std::string& out) {
  utf8proc_uint8_t buf[4];
  out.append(reinterpret_cast<const char*>(buf), utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf));
}

template <typename CharT>
std::string to_utf8(std::basic_string_view<CharT> s) {
  if constexpr (sizeof(CharT) == 1) {
    return std::string(s);  // already UTF-8 (the ASCII path)
  } else {
    std::string out;
    out.reserve(s.size());
    for (CharT c : s) append_utf8(static_cast<char32_t>(c), out);
    return out;
  }
}

template <typename CharT>
bool starts_with_special_piece(std::basic_string_view<CharT> s, size_t i, size_t& len) {
  for (std::u32string_view special : kSpecialPieces) {
    if (s.size() - i < special.size()) continue;
    bool same = true;
    for (size_t k = 0; k < special.size() && same; ++k) same = static_cast<char32_t>(s[i + k]) == special[k];
    if (same) {
      len = special.size();
      return true;
    }
  }
  return false;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) at s[i], or 0. Text is
// lower-cased already, so this is the case-insensitive match of openai/CLIP.
template <typename CharT>
size_t contraction_length(std::basic_string_view<CharT> s, size_t i) {
  if (s[i] != CharT('\'') || i + 1 >= s.size()) return 0;
  const char32_t a = s[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= s.size()) return 0;
  const char32_t b = s[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Leftmost-first alternation of the CLIP pattern; whitespace between pieces is
// dropped ("removed, invert"), which also covers whitespace collapse + strip.
template <typename CharT>
void split_impl(std::basic_string_view<CharT> s, std::vector<std::string>& words) {
  size_t i = 0;
  while (i < s.size()) {
    const CharClass cls = classify(static_cast<char32_t>(s[i]));
    if (cls == CharClass::kSpace) {
      ++i;
      continue;
    }
    size_t len = 0;
    if (s[i] == CharT('<') && starts_with_special_piece(s, i, len)) {
      // ByteLevel's GPT-2 regex splits the piece into "<|", name, "|>".
      words.push_back(to_utf8(s.substr(i, 2)));
      words.push_back(to_utf8(s.substr(i + 2, len - 4)));
      words.push_back(to_utf8(s.substr(i + len - 2, 2)));
      i += len;
      continue;
    }
    if ((len = contraction_length(s, i)) == 0) {
      len = 1;
      if (cls == CharClass::kLetter) {
        while (i + len < s.size() && classify(static_cast<char32_t>(s[i + len])) == CharClass::kLetter) ++len;
      } else if (cls == CharClass::kOther) {
        while (i + len < s.size() && classify(static_cast<char32_t>(s[i + len])) == CharClass::kOther) ++len;
      }  // a number is one character
    }
    words.push_back(to_utf8(s.substr(i, len)));
    i += len;
  }
}

[[noreturn]] void throw_invalid_utf8(size_t offset) {
  throw Error("text: invalid UTF-8 at byte " + std::to_string(offset));
}

}  // namespace

// utf8proc_iterate rejects truncated sequences, overlong forms, surrogates and
// code points above U+10FFFF.
void check_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    utf8proc_int32_t c;
    const utf8proc_ssize_t n = utf8proc_iterate(p + pos, static_cast<utf8proc_ssize_t>(s.size() - pos), &c);
    if (n <= 0 || c < 0) throw_invalid_utf8(pos);
    pos += static_cast<size_t>(n);
  }
}

namespace {

bool is_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

}  // namespace

CharClass classify(char32_t c) {
  // Oniguruma's Unicode \s: U+0009..U+000D, U+0085 and the Z categories.
  if ((c >= 0x09 && c <= 0x0D) || c == 0x85) return CharClass::kSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: return CharClass::kSpace;
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return CharClass::kLetter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return CharClass::kNumber;
    default:  // marks (\p{M}), punctuation, symbols, controls, unassigned
      return CharClass::kOther;
  }
}

std::u32string normalize(std::string_view utf8) {
  check_utf8(utf8);
  const auto* src = reinterpret_cast<const utf8proc_uint8_t*>(utf8.data());
  const auto src_len = static_cast<utf8proc_ssize_t>(utf8.size());
  // Canonical decomposition + reordering, then canonical composition = NFC.
  const auto options = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  std::u32string buf;
  utf8proc_ssize_t n = utf8proc_decompose(src, src_len, nullptr, 0, options);
  if (n >= 0) {
    buf.resize(static_cast<size_t>(n));
    n = utf8proc_decompose(src, src_len, reinterpret_cast<utf8proc_int32_t*>(buf.data()), n, options);
  }
  if (n >= 0) n = utf8proc_normalize_utf32(reinterpret_cast<utf8proc_int32_t*>(buf.data()), n, options);
  if (n < 0) throw Error(std::string("text: cannot normalise: ") + utf8proc_errmsg(n));
  buf.resize(static_cast<size_t>(n));

  std::u32string out;
  out.reserve(buf.size() + 4);
  for (char32_t c : buf) {
    if (c == 0x130) {
      // U+0130 (I with dot above) is the one character whose full lower-case
      // mapping (SpecialCasing.txt, unconditional) is two characters; Rust's
      // char::to_lowercase gives "i\u0307", utf8proc's simple mapping only "i".
      out += U'i';
      out += char32_t{0x307};
    } else {
      out += static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
    }
  }
  return out;
}

void split_words(std::u32string_view text, std::vector<std::string>& words) { split_impl(text, words); }

void pretokenize(std::string_view utf8, std::vector<std::string>& words) {
  if (is_ascii(utf8)) {
    // ASCII is already NFC; lower-casing is A-Z only.
    std::string lower(utf8);
    for (char& c : lower)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    split_impl(std::string_view(lower), words);
    return;
  }
  split_words(normalize(utf8), words);
}

}  // namespace clip::text
