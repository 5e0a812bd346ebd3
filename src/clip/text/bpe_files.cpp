#include "clip/text/bpe_files.h"

#include <zlib.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "clip/error.h"

namespace clip {
namespace {

using nlohmann::json;

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path.string() + ": cannot read file");
  return std::move(ss).str();
}

json parse_json(const std::filesystem::path& path) {
  try {
    return json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    throw Error(path.string() + ": invalid JSON: " + e.what());
  }
}

// Object of token -> non-negative id (vocab.json, or "vocab" of tokenizer.json).
BpeModel::Vocab read_vocab_object(const json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": the vocabulary is not a JSON object of token -> id");
  BpeModel::Vocab vocab;
  vocab.reserve(j.size());
  for (const auto& [token, id] : j.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max())
      throw Error(source + ": id of token '" + token + "' is not a non-negative 32-bit integer");
    vocab.emplace(token, static_cast<int32_t>(id.get<int64_t>()));
  }
  return vocab;
}

// "a b" with exactly one space, as `tokenizers` demands.
bool split_merge(std::string_view line, std::pair<std::string, std::string>& out) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) return false;
  out = {std::string(line.substr(0, space)), std::string(line.substr(space + 1))};
  return true;
}

std::string gz_read_all(const std::filesystem::path& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw Error(path.string() + ": cannot open file");
  std::string data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  if (n < 0) {
    int code = 0;
    const std::string why = gzerror(f, &code);
    gzclose(f);
    throw Error(path.string() + ": cannot decompress: " + why);
  }
  gzclose(f);
  return data;
}

}  // namespace

BpeFiles read_vocab_and_merges(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt) {
  BpeFiles out;
  out.source = merges_txt.string();
  out.vocab = read_vocab_object(parse_json(vocab_json), vocab_json.string());

  std::istringstream lines(read_text_file(merges_txt));
  std::string line;
  for (size_t line_no = 1; std::getline(lines, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF, like Rust's lines()
    if (line.starts_with("#version")) continue;
    std::pair<std::string, std::string> merge;
    if (!split_merge(line, merge))
      throw Error(merges_txt.string() + ": line " + std::to_string(line_no) +
                  ": expected two tokens separated by one space, got \"" + line + "\"");
    out.merges.push_back(std::move(merge));
  }
  return out;
}

BpeFiles read_tokenizer_json(const std::filesystem::path& tokenizer_json) {
  const std::string source = tokenizer_json.string();
  const json j = parse_json(tokenizer_json);
  BpeFiles out;
  out.source = source;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) throw Error(source + ": no \"model\" object");
  const json& model = j["model"];
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") throw Error(source + ": model type is " + type + ", expected BPE");
  // Only CLIP's variant of BPE is implemented: words end with "</w>", no prefix.
  if (model.contains("end_of_word_suffix") &&
      !(model["end_of_word_suffix"].is_string() && model["end_of_word_suffix"] == "</w>"))
    throw Error(source + ": end_of_word_suffix is not \"</w>\"; not a CLIP tokenizer");
  if (model.contains("continuing_subword_prefix") && model["continuing_subword_prefix"].is_string() &&
      !model["continuing_subword_prefix"].get<std::string>().empty())
    throw Error(source + ": continuing_subword_prefix is set; not a CLIP tokenizer");
  if (!model.contains("vocab")) throw Error(source + ": model has no \"vocab\"");
  out.vocab = read_vocab_object(model["vocab"], source);

  if (!model.contains("merges") || !model["merges"].is_array()) throw Error(source + ": model has no \"merges\" array");
  size_t index = 0;
  for (const json& m : model["merges"]) {
    ++index;
    std::pair<std::string, std::string> merge;
    bool ok = false;
    if (m.is_string()) {  // older files: "a b"
      ok = split_merge(m.get<std::string>(), merge);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merge = {m[0].get<std::string>(), m[1].get<std::string>()};  // tokenizers >= 0.20
      ok = true;
    }
    if (!ok)
      throw Error(source + ": merge " + std::to_string(index) + " is neither \"a b\" nor [\"a\", \"b\"]: " + m.dump());
    out.merges.push_back(std::move(merge));
  }

  if (j.contains("added_tokens")) {
    if (!j["added_tokens"].is_array()) throw Error(source + ": \"added_tokens\" is not an array");
    for (const json& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string() || !t.contains("id") ||
          !t["id"].is_number_integer() || t["id"].get<int64_t>() < 0 ||
          t["id"].get<int64_t>() > std::numeric_limits<int32_t>::max())
        throw Error(source + ": bad entry in \"added_tokens\": " + t.dump());
      out.added_tokens.emplace_back(t["content"].get<std::string>(), static_cast<int32_t>(t["id"].get<int64_t>()));
    }
  }
  return out;
}

BpeFiles read_clip_bpe_gz(const std::filesystem::path& gz) {
  const std::string source = gz.string();
  const std::string data = gz_read_all(gz);
  // openai/CLIP keeps 49152 - 256 - 2 merges after the header line; with the
  // 512 byte tokens and the 2 specials the vocabulary has 49408 entries.
  constexpr size_t kMerges = 49152 - 256 - 2;
  BpeFiles out;
  out.source = source;
  size_t pos = data.find('\n');  // skip the header line
  if (pos == std::string::npos) throw Error(source + ": no merges after the header line");
  ++pos;
  while (out.merges.size() < kMerges) {
    const size_t end = data.find('\n', pos);
    if (end == std::string::npos)
      throw Error(source + ": only " + std::to_string(out.merges.size()) + " merges, expected " +
                  std::to_string(kMerges));
    std::pair<std::string, std::string> merge;
    if (!split_merge(std::string_view(data).substr(pos, end - pos), merge))
      throw Error(source + ": line " + std::to_string(out.merges.size() + 2) +
                  ": expected two tokens separated by one space");
    out.merges.push_back(std::move(merge));
    pos = end + 1;
  }

  int32_t next_id = 0;
  auto add = [&](std::string token) {
    if (!out.vocab.emplace(std::move(token), next_id).second)
      throw Error(source + ": duplicate token in the vocabulary built from the merges");
    ++next_id;
  };
  // bytes_to_unicode().values() order: the bytes that stand for themselves
  // (code point == byte) first, then the remapped ones, each in byte order.
  std::vector<std::string> byte_tokens;
  for (int pass = 0; pass < 2; ++pass) {
    for (int b = 0; b < 256; ++b) {
      const auto byte = static_cast<uint8_t>(b);
      if (byte_stands_for_itself(byte) == (pass == 0)) byte_tokens.push_back(byte_to_unicode(byte));
    }
  }
  for (const std::string& t : byte_tokens) add(t);
  for (const std::string& t : byte_tokens) add(t + "</w>");
  for (const auto& [a, b] : out.merges) add(a + b);
  add("<|startoftext|>");
  add("<|endoftext|>");
  return out;
}

}  // namespace clip
