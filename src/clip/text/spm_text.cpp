#include "clip/text/spm_text.h"

#include <utf8proc.h>

#include <algorithm>
#include <iterator>

#include "clip/text/text_normalize.h"

namespace clip::text {
namespace {

utf8proc_category_t category(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)); }

char32_t simple_lower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }

// Appends the full lower-case mapping of c. U+0130 (I with dot above) is the
// one character whose unconditional full mapping (SpecialCasing.txt) is two
// characters; utf8proc has only the simple one-character mappings.
void append_lower(char32_t c, std::u32string& out) {
  if (c == 0x130) {
    out += U'i';
    out += char32_t{0x307};
  } else {
    out += simple_lower(c);
  }
}

// The characters of Word_Break Single_Quote, MidNumLet and MidLetter
// (WordBreakProperty.txt), which utf8proc does not carry.
constexpr char32_t kWordBreakIgnorable[] = {
    0x0027,                                                                  // Single_Quote
    0x002E, 0x2018, 0x2019, 0x2024, 0xFE52, 0xFF07, 0xFF0E,                  // MidNumLet
    0x003A, 0x00B7, 0x0387, 0x055F, 0x05F4, 0x2027, 0xFE13, 0xFE55, 0xFF1A,  // MidLetter
};

// Unicode's Case_Ignorable: categories Mn, Me, Cf, Lm, Sk, plus Word_Break
// MidLetter, MidNumLet and Single_Quote (WordBreakProperty.txt), which
// utf8proc does not carry.
bool is_case_ignorable(char32_t c) {
  switch (category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK: return true;
    default: break;
  }
  return std::find(std::begin(kWordBreakIgnorable), std::end(kWordBreakIgnorable), c) != std::end(kWordBreakIgnorable);
}

// Unicode's Cased: Lu, Ll, Lt, Other_Lowercase, Other_Uppercase. A character
// with a case mapping is cased; of the Other_* characters without one, those
// that are not Case_Ignorable (the only ones the final-sigma rule asks about)
// are the ordinal indicators and the squared/circled/negative Latin capitals.
bool is_cased(char32_t c) {
  switch (category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT: return true;
    default: break;
  }
  const auto i = static_cast<utf8proc_int32_t>(c);
  if (utf8proc_tolower(i) != i || utf8proc_toupper(i) != i || utf8proc_totitle(i) != i) return true;
  return c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
         (c >= 0x1F170 && c <= 0x1F189);
}

// CPython's handle_capital_sigma: U+03A3 at i is final when a cased
// character precedes it and none follows it, case-ignorable ones skipped.
bool is_final_sigma(std::u32string_view s, size_t i) {
  size_t j = i;
  while (j > 0 && is_case_ignorable(s[j - 1])) --j;
  if (j == 0 || !is_cased(s[j - 1])) return false;
  j = i + 1;
  while (j < s.size() && is_case_ignorable(s[j])) ++j;
  return j == s.size() || !is_cased(s[j]);
}

// Python's string.punctuation.
bool is_ascii_punctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

}  // namespace

std::u32string decode_utf8(std::string_view utf8) {
  check_utf8(utf8);
  std::u32string out;
  out.reserve(utf8.size());
  for (size_t i = 0; i < utf8.size();) {
    const auto b = static_cast<unsigned char>(utf8[i]);
    const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    char32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < len; ++k) c = (c << 6) | (static_cast<unsigned char>(utf8[i + k]) & 0x3F);
    out += c;
    i += len;
  }
  return out;
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  utf8proc_uint8_t buf[4];
  for (char32_t c : text)
    out.append(reinterpret_cast<const char*>(buf), utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf));
  return out;
}

bool is_python_space(char32_t c) {
  if (c > 0x10FFFF) return false;
  if (category(c) == UTF8PROC_CATEGORY_ZS) return true;
  switch (utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->bidi_class) {
    case UTF8PROC_BIDI_CLASS_WS:
    case UTF8PROC_BIDI_CLASS_B:
    case UTF8PROC_BIDI_CLASS_S: return true;
    default: return false;
  }
}

bool is_rust_whitespace(char32_t c) { return is_python_space(c) && !(c >= 0x1C && c <= 0x1F); }

std::u32string python_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size() + 4);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == 0x3A3) {
      out += is_final_sigma(text, i) ? char32_t{0x3C2} : char32_t{0x3C3};
    } else {
      append_lower(text[i], out);
    }
  }
  return out;
}

std::u32string rust_lowercase(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size() + 4);
  for (char32_t c : text) append_lower(c, out);
  return out;
}

std::string siglip_canonicalize(std::string_view utf8, bool lower_case) {
  std::u32string text = decode_utf8(utf8);
  if (lower_case) text = python_lower(text);
  // Punctuation removed, then re.sub(r"\s+", " ") and strip(): whitespace
  // runs become one space, none at either end.
  std::u32string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char32_t c : text) {
    if (is_ascii_punctuation(c)) continue;
    if (is_python_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += U' ';
    pending_space = false;
    out += c;
  }
  return encode_utf8(out);
}

}  // namespace clip::text
