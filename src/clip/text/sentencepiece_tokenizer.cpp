// SigLIP / Gemma SentencePiece tokenizers. Behaviour reference: transformers
// 5.17's SiglipTokenizer (tokenization_siglip.py, a SentencePieceBackend
// running in Python) and GemmaTokenizer / Siglip2Tokenizer (a
// TokenizersBackend: `tokenizers` BPE with byte fallback, rebuilt from the
// folder's files), as AutoTokenizer.from_pretrained(folder) loads them.
#include "clip/text/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "clip/error.h"
#include "clip/model/json_fields.h"
#include "clip/text/spm_text.h"
#include "clip/text/text_normalize.h"

namespace clip {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::string_view kUnderline = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// An entry of tokenizer_config.json's added_tokens_decoder (or
// tokenizer.json's added_tokens): text matched verbatim before tokenising.
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool lstrip = false;  // also take the whitespace before it
  bool rstrip = false;  // ... and after it
  bool normalized = false;
  bool special = false;
};

// A part of the text: plain text, or the added token `token` (an index).
struct Segment {
  std::string_view text;
  int token = -1;
};

// ---------------------------------------------------------------- files

// "<|x|>" or {"content": "<|x|>", ...} (an AddedToken as transformers saves it).
std::optional<std::string> token_text(const json* v) {
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    const auto it = v->find("content");
    if (it != v->end() && it->is_string()) return it->get<std::string>();
  }
  return std::nullopt;
}

bool flag(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

AddedToken read_added_token(const json& obj, int64_t id, const std::string& file) {
  if (!obj.is_object() || !obj.contains("content") || !obj["content"].is_string())
    throw Error(file + ": added token " + std::to_string(id) + " has no \"content\" string");
  if (id < 0 || id > INT32_MAX) throw Error(file + ": added token id " + std::to_string(id) + " is out of range");
  AddedToken t;
  t.content = obj["content"].get<std::string>();
  t.id = static_cast<int32_t>(id);
  t.lstrip = flag(obj, "lstrip");
  t.rstrip = flag(obj, "rstrip");
  t.normalized = flag(obj, "normalized");
  t.special = flag(obj, "special");
  if (flag(obj, "single_word"))
    throw Error(file + ": added token '" + t.content + "' is single_word, which clipfind does not support");
  return t;
}

// tokenizer_config.json's added_tokens_decoder: {"<id>": {...}}.
std::vector<AddedToken> added_from_config(const json& decoder, const std::string& file) {
  if (!decoder.is_object()) throw Error(file + ": added_tokens_decoder must be a JSON object");
  std::vector<AddedToken> out;
  for (const auto& [key, value] : decoder.items()) {
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(key, &used);
      if (used != key.size()) id = -1;
    } catch (const std::exception&) {
    }
    out.push_back(read_added_token(value, id, file));
  }
  return out;
}

// tokenizer.json's added_tokens: [{"id": N, "content": ..., ...}].
std::vector<AddedToken> added_from_tokenizer_json(const json& list, const std::string& file) {
  if (!list.is_array()) throw Error(file + ": added_tokens must be a JSON array");
  std::vector<AddedToken> out;
  for (const json& t : list) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer())
      throw Error(file + ": an entry of added_tokens has no integer \"id\"");
    out.push_back(read_added_token(t, t["id"].get<int64_t>(), file));
  }
  return out;
}

// tokenizer.json without its (large) "model": added tokens, post-processor,
// padding and truncation are all transformers takes from it for Gemma.
json read_tokenizer_json_head(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  const json::parser_callback_t skip_model = [](int depth, json::parse_event_t event, json& parsed) {
    return !(depth == 1 && event == json::parse_event_t::key && parsed == "model");
  };
  try {
    json j = json::parse(in, skip_model);
    if (!j.is_object()) throw Error(path.string() + ": not a JSON object");
    return j;
  } catch (const json::exception& e) {
    throw Error(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

// padding_side / truncation_side: tokenizer_config.json's, else the
// direction of tokenizer.json's padding / truncation ("Left", "Right"), else
// the tokenizer class's default.
std::string side(const json& cfg, const char* key, const json* fallback, const std::string& def,
                 const std::string& file) {
  std::string value = def;
  if (fallback && fallback->is_object() && fallback->contains("direction") && (*fallback)["direction"].is_string()) {
    value = (*fallback)["direction"].get<std::string>();
    std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
  }
  if (const auto it = cfg.find(key); it != cfg.end() && !it->is_null()) {
    if (!it->is_string()) throw Error(file + ": " + key + " must be \"left\" or \"right\"");
    value = it->get<std::string>();
  }
  if (value != "left" && value != "right")
    throw Error(file + ": " + key + " must be \"left\" or \"right\", not '" + value + "'");
  return value;
}

// ---------------------------------------------------------------- text

// The code point ending at `end` (> 0) of valid UTF-8, and where it starts.
char32_t last_char(std::string_view s, size_t end, size_t& start) {
  start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return text::decode_utf8(s.substr(start, end - start))[0];
}

char32_t first_char(std::string_view s, size_t begin, size_t& next) {
  const auto b = static_cast<unsigned char>(s[begin]);
  next = begin + (b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4);
  return text::decode_utf8(s.substr(begin, next - begin))[0];
}

using SpacePredicate = bool (*)(char32_t);

std::string_view strip_right(std::string_view s, SpacePredicate is_space) {
  size_t end = s.size();
  size_t start = 0;
  while (end > 0 && is_space(last_char(s, end, start))) end = start;
  return s.substr(0, end);
}

std::string_view strip_left(std::string_view s, SpacePredicate is_space) {
  size_t begin = 0;
  size_t next = 0;
  while (begin < s.size() && is_space(first_char(s, begin, next))) begin = next;
  return s.substr(begin);
}

// Added tokens matched in text: at each position the leftmost match, the
// longest there. (transformers' Trie and `tokenizers`' AddedVocabulary agree
// on this for tokens of which none is a proper infix of another.)
class TokenMatcher {
 public:
  void add(std::string content, int index) {
    if (content.empty()) return;
    by_first_byte_[static_cast<unsigned char>(content[0])].push_back(entries_.size());
    entries_.push_back({std::move(content), index});
  }
  bool empty() const { return entries_.empty(); }

  // Splits `text`; whitespace next to a token with lstrip/rstrip (by
  // `is_space`) is dropped from the neighbouring text.
  void split(std::string_view text, const std::vector<AddedToken>& tokens, SpacePredicate is_space,
             std::vector<Segment>& out) const {
    const size_t first = out.size();
    size_t pos = 0;
    while (pos < text.size()) {
      size_t at = pos;
      int best = -1;
      size_t best_len = 0;
      for (; at < text.size() && best < 0; ++at) {
        for (size_t e : by_first_byte_[static_cast<unsigned char>(text[at])]) {
          const Entry& entry = entries_[e];
          if (entry.content.size() > best_len && text.compare(at, entry.content.size(), entry.content) == 0) {
            best = entry.index;
            best_len = entry.content.size();
          }
        }
      }
      if (best < 0) break;
      --at;
      if (at > pos) out.push_back({text.substr(pos, at - pos), -1});
      out.push_back({text.substr(at, best_len), best});
      pos = at + best_len;
    }
    if (pos < text.size()) out.push_back({text.substr(pos), -1});
    for (size_t i = first; i < out.size(); ++i) {
      if (out[i].token < 0) continue;
      const AddedToken& t = tokens[static_cast<size_t>(out[i].token)];
      if (t.lstrip && i > first && out[i - 1].token < 0) out[i - 1].text = strip_right(out[i - 1].text, is_space);
      if (t.rstrip && i + 1 < out.size() && out[i + 1].token < 0)
        out[i + 1].text = strip_left(out[i + 1].text, is_space);
    }
  }

 private:
  struct Entry {
    std::string content;
    int index;
  };
  std::vector<Entry> entries_;
  std::array<std::vector<size_t>, 256> by_first_byte_;
};

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    const size_t at = s.find(from, pos);
    out.append(s.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos));
    if (at == std::string_view::npos) return out;
    out.append(to);
    pos = at + from.size();
  }
}

}  // namespace

// ---------------------------------------------------------------- Impl

struct SentencePieceTokenizer::Impl {
  Flavour flavour = Flavour::Siglip;
  fs::path model_file;
  sentencepiece::SentencePieceProcessor sp;
  int32_t piece_count = 0;

  std::vector<AddedToken> added;
  std::map<std::string, int32_t, std::less<>> added_ids;  // content -> id
  std::set<std::string, std::less<>> special_strings;     // transformers' all_special_tokens
  TokenMatcher raw_matcher;                               // matched in the raw text
  TokenMatcher normalized_matcher;                        // Gemma: normalized=true tokens

  bool lower_case = false;
  std::string unk_text;  // SigLIP: the unk token put in front of each part
  size_t unk_pieces = 0;

  int32_t bos = -1, eos = -1, pad = -1;
  std::vector<int32_t> prefix, suffix;  // added around the ids for the model
  bool siglip_eos_unless_present = false;
  bool pad_left = false;
  bool truncate_left = false;

  // convert_tokens_to_ids for one token: added tokens first, then the model.
  int32_t token_id(std::string_view token) const {
    if (const auto it = added_ids.find(token); it != added_ids.end()) return it->second;
    return sp.PieceToId(token);
  }

  void add_token(AddedToken t) {
    if (t.content.empty()) return;  // transformers skips empty tokens too
    if (added_ids.contains(t.content)) return;
    if (t.id < 0) {
      // A special token not listed as added: the model's own piece, else a new id.
      const int id = sp.PieceToId(t.content);
      if (sp.IdToPiece(id) == t.content) {
        t.id = id;
      } else {
        int32_t next = piece_count;
        for (const AddedToken& a : added) next = std::max(next, a.id + 1);
        t.id = next;
      }
    }
    added_ids.emplace(t.content, t.id);
    added.push_back(std::move(t));
  }

  void load_model(const fs::path& file) {
    model_file = file;
    const auto status = sp.Load(file.string());
    if (!status.ok()) throw Error(file.string() + ": not a readable SentencePiece model (" + status.ToString() + ")");
    piece_count = sp.GetPieceSize();
    if (piece_count <= 0) throw Error(file.string() + ": the SentencePiece model has no pieces");
  }

  void build_matchers() {
    for (size_t i = 0; i < added.size(); ++i) {
      const AddedToken& t = added[i];
      if (flavour == Flavour::Gemma && t.normalized) {
        normalized_matcher.add(normalize_gemma(t.content), static_cast<int>(i));
      } else {
        raw_matcher.add(t.content, static_cast<int>(i));
      }
    }
  }

  // GemmaTokenizer's normalizer (Siglip2Tokenizer: Lowercase first), for
  // matching normalized added tokens; SentencePiece's identity normaliser
  // does the same " " -> "▁" itself.
  std::string normalize_gemma(std::string_view s) const {
    std::string out = lower_case ? text::encode_utf8(text::rust_lowercase(text::decode_utf8(s))) : std::string(s);
    return replace_all(out, " ", kUnderline);
  }

  void encode_pieces(std::string_view text, std::vector<std::string>& pieces) const {
    pieces.clear();
    const auto status = sp.Encode(text, &pieces);
    if (!status.ok()) throw Error(model_file.string() + ": SentencePiece cannot encode the text: " + status.ToString());
  }

  void encode_ids(std::string_view text, std::vector<int32_t>& ids) const {
    if (text.empty()) return;
    std::vector<int> out;
    const auto status = sp.Encode(text, &out);
    if (!status.ok()) throw Error(model_file.string() + ": SentencePiece cannot encode the text: " + status.ToString());
    ids.insert(ids.end(), out.begin(), out.end());
  }

  std::vector<int32_t> encode_siglip(std::string_view utf8) const;
  std::vector<int32_t> encode_gemma(std::string_view utf8) const;
};

// SiglipTokenizer.tokenize + convert_tokens_to_ids.
std::vector<int32_t> SentencePieceTokenizer::Impl::encode_siglip(std::string_view utf8) const {
  const std::string text = std::string(kUnderline) + replace_all(utf8, kUnderline, " ");
  std::vector<Segment> segments;
  raw_matcher.split(text, added, text::is_python_space, segments);

  struct Token {
    std::string text;
    bool added = false;
  };
  std::vector<Token> tokens;
  std::vector<std::string> pieces;
  for (const Segment& seg : segments) {
    if (seg.token >= 0) {
      tokens.push_back({added[static_cast<size_t>(seg.token)].content, true});
      continue;
    }
    if (seg.text.empty()) continue;
    // _tokenize: encode "<unk>" + the canonical text, drop the unk's pieces.
    encode_pieces(unk_text + text::siglip_canonicalize(seg.text, lower_case), pieces);
    const size_t drop = pieces.size() >= unk_pieces ? unk_pieces : 0;
    for (size_t i = drop; i < pieces.size(); ++i) tokens.push_back({std::move(pieces[i]), false});
  }
  if (tokens.size() > 1 && tokens[0].text == kUnderline && special_strings.contains(tokens[1].text))
    tokens.erase(tokens.begin());

  std::vector<int32_t> ids;
  ids.reserve(tokens.size());
  for (const Token& t : tokens) ids.push_back(t.added ? added_ids.find(t.text)->second : token_id(t.text));
  return ids;
}

// `tokenizers`: added tokens split out, the rest normalised and BPE-encoded
// (SentencePiece's BPE with byte fallback gives the same pieces).
std::vector<int32_t> SentencePieceTokenizer::Impl::encode_gemma(std::string_view utf8) const {
  std::vector<Segment> segments;
  raw_matcher.split(utf8, added, text::is_rust_whitespace, segments);
  std::vector<int32_t> ids;
  std::vector<Segment> parts;
  for (const Segment& seg : segments) {
    if (seg.token >= 0) {
      ids.push_back(added[static_cast<size_t>(seg.token)].id);
      continue;
    }
    if (!lower_case && normalized_matcher.empty()) {
      encode_ids(seg.text, ids);
      continue;
    }
    const std::string normalized = normalize_gemma(seg.text);
    parts.clear();
    normalized_matcher.split(normalized, added, text::is_rust_whitespace, parts);
    for (const Segment& part : parts) {
      if (part.token >= 0) {
        ids.push_back(added[static_cast<size_t>(part.token)].id);
      } else {
        encode_ids(part.text, ids);
      }
    }
  }
  return ids;
}

// ---------------------------------------------------------------- loading

namespace {

const json* member(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// The named special tokens transformers knows (SPECIAL_TOKENS_ATTRIBUTES).
constexpr std::array<const char*, 7> kNamedTokens = {"bos_token", "eos_token", "unk_token", "sep_token",
                                                     "pad_token", "cls_token", "mask_token"};

// additional_special_tokens / extra_special_tokens: a list, or (model
// specific names) an object of name -> token.
std::vector<std::string> extra_specials(const json& cfg) {
  std::vector<std::string> out;
  for (const char* key : {"additional_special_tokens", "extra_special_tokens"}) {
    const json* v = member(cfg, key);
    if (!v) continue;
    if (v->is_array()) {
      for (const json& t : *v)
        if (auto s = token_text(&t)) out.push_back(*s);
    } else if (v->is_object()) {
      for (const auto& [name, t] : v->items())
        if (auto s = token_text(&t)) out.push_back(*s);
    }
  }
  return out;
}

// TemplateProcessing's "single": [{"SpecialToken": {"id": "<bos>"}},
// {"Sequence": {"id": "A"}}, ...] -> the ids before and after the text.
void read_template(const json& pp, const std::string& file, std::vector<int32_t>& prefix,
                   std::vector<int32_t>& suffix) {
  const std::string type = pp.value("type", "");
  if (type != "TemplateProcessing")
    throw Error(file + ": post_processor type '" + type + "' is not supported (TemplateProcessing or null)");
  const json* single = member(pp, "single");
  const json* specials = member(pp, "special_tokens");
  if (!single || !single->is_array()) throw Error(file + ": post_processor has no \"single\" template");
  bool seen_sequence = false;
  for (const json& item : *single) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    const json* tok = item.is_object() ? member(item, "SpecialToken") : nullptr;
    if (!tok || !tok->contains("id") || !(*tok)["id"].is_string())
      throw Error(file + ": post_processor template item " + item.dump() + " is not supported");
    const std::string name = (*tok)["id"].get<std::string>();
    const json* entry = specials ? member(*specials, name.c_str()) : nullptr;
    const json* ids = entry ? member(*entry, "ids") : nullptr;
    if (!ids || !ids->is_array()) throw Error(file + ": post_processor special token '" + name + "' has no ids");
    for (const json& id : *ids) {
      if (!id.is_number_integer())
        throw Error(file + ": post_processor special token '" + name + "': ids must be integers");
      (seen_sequence ? suffix : prefix).push_back(id.get<int32_t>());
    }
  }
  if (!seen_sequence) throw Error(file + ": post_processor template has no sequence");
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer& SentencePieceTokenizer::operator=(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

SentencePieceTokenizer SentencePieceTokenizer::from_folder(const fs::path& dir) {
  std::error_code ec;
  const fs::path spiece = dir / "spiece.model", gemma = dir / "tokenizer.model";
  const fs::path config_file = dir / "tokenizer_config.json", tokenizer_json = dir / "tokenizer.json";
  auto impl = std::make_unique<Impl>();
  Impl& t = *impl;
  if (fs::is_regular_file(spiece, ec)) {
    t.flavour = Flavour::Siglip;
  } else if (fs::is_regular_file(gemma, ec)) {
    t.flavour = Flavour::Gemma;
  } else if (fs::is_regular_file(tokenizer_json, ec)) {
    throw Error(dir.string() +
                ": has a tokenizer.json but no SentencePiece model; a SigLIP tokenizer needs tokenizer.model "
                "(SigLIP 2, Gemma) or spiece.model (SigLIP) beside it");
  } else {
    throw Error(dir.string() + ": no SentencePiece model (tokenizer.model or spiece.model)");
  }
  t.load_model(t.flavour == Flavour::Siglip ? spiece : gemma);

  const json cfg = fs::exists(config_file, ec) ? detail::read_json_file(config_file) : json::object();
  const std::string cfg_name = config_file.string();
  if (!cfg.is_object()) throw Error(cfg_name + ": not a JSON object");
  const bool has_tokenizer_json = t.flavour == Flavour::Gemma && fs::is_regular_file(tokenizer_json, ec);
  const json tj = has_tokenizer_json ? read_tokenizer_json_head(tokenizer_json) : json::object();
  const std::string tj_name = tokenizer_json.string();

  // The named special tokens: the class's defaults, then the config's.
  std::map<std::string, std::string> named;
  if (t.flavour == Flavour::Siglip) {
    named = {{"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"pad_token", "</s>"}};
  } else {
    named = {{"unk_token", "<unk>"},
             {"bos_token", "<bos>"},
             {"eos_token", "<eos>"},
             {"pad_token", "<pad>"},
             {"mask_token", "<mask>"}};
  }
  for (const char* key : kNamedTokens) {
    if (const auto it = cfg.find(key); it != cfg.end()) {
      if (const auto s = token_text(&*it)) {
        named[key] = *s;
      } else {
        named.erase(key);
      }
    }
  }
  for (const auto& [key, value] : named) t.special_strings.insert(value);
  for (const std::string& s : extra_specials(cfg)) t.special_strings.insert(s);
  // Model-specific special tokens ("boi_token": "<start_of_image>", ...).
  for (const auto& [key, value] : cfg.items()) {
    if (key.size() > 6 && key.ends_with("_token") && !named.contains(key))
      if (const auto s = token_text(&value)) t.special_strings.insert(*s);
  }

  // Added tokens: the config's list; without one (older folders), tokenizer.json's.
  std::vector<AddedToken> listed;
  if (const json* decoder = member(cfg, "added_tokens_decoder")) {
    listed = added_from_config(*decoder, cfg_name);
  } else if (const json* list = member(tj, "added_tokens")) {
    listed = added_from_tokenizer_json(*list, tj_name);
  }
  for (AddedToken& a : listed) t.add_token(std::move(a));
  // Special tokens that are not listed become added tokens too.
  for (const std::string& s : t.special_strings) {
    if (t.added_ids.contains(s)) continue;
    AddedToken a;
    a.content = s;
    a.special = true;
    t.add_token(std::move(a));
  }
  t.build_matchers();

  auto id_of = [&](const char* key) -> int32_t {
    const auto it = named.find(key);
    return it == named.end() ? -1 : t.token_id(it->second);
  };
  t.bos = id_of("bos_token");
  t.eos = id_of("eos_token");
  t.pad = id_of("pad_token");

  if (t.flavour == Flavour::Siglip) {
    detail::JsonFields f(cfg, cfg_name);
    t.lower_case = f.get_bool("do_lower_case", true);
    t.unk_text = named.contains("unk_token") ? named["unk_token"] : "";
    std::vector<std::string> pieces;
    t.encode_pieces(t.unk_text, pieces);
    t.unk_pieces = pieces.size();
    t.siglip_eos_unless_present = t.eos >= 0;
    t.pad_left = side(cfg, "padding_side", nullptr, "right", cfg_name) == "left";
    t.truncate_left = side(cfg, "truncation_side", nullptr, "right", cfg_name) == "left";
  } else {
    const std::string cls = cfg.value("tokenizer_class", std::string());
    t.lower_case = cls == "Siglip2Tokenizer";
    if (has_tokenizer_json) {
      // transformers then ignores add_bos_token/add_eos_token: the
      // post-processor of tokenizer.json decides (none: no special tokens).
      if (const json* pp = member(tj, "post_processor")) read_template(*pp, tj_name, t.prefix, t.suffix);
    } else {
      detail::JsonFields f(cfg, cfg_name);
      if (f.get_bool("add_bos_token", false) && t.bos >= 0) t.prefix.push_back(t.bos);
      if (f.get_bool("add_eos_token", false) && t.eos >= 0) t.suffix.push_back(t.eos);
    }
    t.pad_left = side(cfg, "padding_side", member(tj, "padding"), "left", cfg_name) == "left";
    t.truncate_left = side(cfg, "truncation_side", member(tj, "truncation"), "right", cfg_name) == "left";
  }
  return SentencePieceTokenizer(std::move(impl));
}

SentencePieceTokenizer::Flavour SentencePieceTokenizer::flavour() const { return impl_->flavour; }
const fs::path& SentencePieceTokenizer::model_file() const { return impl_->model_file; }

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view utf8) const {
  text::check_utf8(utf8);
  return impl_->flavour == Flavour::Siglip ? impl_->encode_siglip(utf8) : impl_->encode_gemma(utf8);
}

std::vector<int32_t> SentencePieceTokenizer::encode_for_model(std::string_view utf8, int max_length, bool pad) const {
  const Impl& t = *impl_;
  const size_t specials = t.prefix.size() + t.suffix.size() + (t.siglip_eos_unless_present ? 1 : 0);
  if (max_length < 1 || static_cast<size_t>(max_length) <= specials)
    throw Error("max_length " + std::to_string(max_length) + " leaves no room for text after the " +
                std::to_string(specials) + " start/end tokens");
  if (pad && t.pad < 0) throw Error(t.model_file.string() + ": the tokenizer has no pad token to pad with");
  std::vector<int32_t> ids = encode(utf8);
  const size_t keep = static_cast<size_t>(max_length) - specials;
  if (ids.size() > keep) {
    if (t.truncate_left) {
      ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(keep));
    } else {
      ids.resize(keep);
    }
  }
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(max_length));
  out.insert(out.end(), t.prefix.begin(), t.prefix.end());
  out.insert(out.end(), ids.begin(), ids.end());
  out.insert(out.end(), t.suffix.begin(), t.suffix.end());
  // SiglipTokenizer._add_eos_if_not_present.
  if (t.siglip_eos_unless_present && (out.empty() || out.back() != t.eos)) out.push_back(t.eos);
  if (pad && out.size() < static_cast<size_t>(max_length)) {
    const size_t n = static_cast<size_t>(max_length) - out.size();
    out.insert(t.pad_left ? out.begin() : out.end(), n, t.pad);
  }
  return out;
}

int32_t SentencePieceTokenizer::pad_id() const { return impl_->pad; }
int32_t SentencePieceTokenizer::eos_id() const { return impl_->eos; }
int32_t SentencePieceTokenizer::bos_id() const { return impl_->bos; }
bool SentencePieceTokenizer::pads_left() const { return impl_->pad_left; }

int32_t SentencePieceTokenizer::vocab_size() const {
  int32_t n = impl_->piece_count;
  for (const AddedToken& a : impl_->added) n = std::max(n, a.id + 1);
  return n;
}

}  // namespace clip
