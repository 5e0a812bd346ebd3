// The tokenizer proper: special tokens, then text_normalize's words, then BPE.
// Behaviour reference: transformers 5 CLIPTokenizer (tokenizers backend).
#include "clip/text/tokenizer.h"

#include <algorithm>

#include "clip/error.h"
#include "clip/text/bpe_files.h"
#include "clip/text/bpe_model.h"
#include "clip/text/text_normalize.h"

namespace clip {
namespace {

constexpr const char* kBos = "<|startoftext|>";
constexpr const char* kEos = "<|endoftext|>";

struct SpecialMatch {
  size_t pos = std::string_view::npos;
  size_t len = 0;
  int32_t id = -1;
};

}  // namespace

struct Tokenizer::Impl {
  // Matched in the raw text, leftmost then longest, like `tokenizers`'
  // AddedVocabulary for tokens with normalized=false (CLIP's specials).
  // Declared first: built from the files before the vocabulary moves out.
  std::vector<std::pair<std::string, int32_t>> specials;
  BpeModel bpe;
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t vocab_size = 0;

  explicit Impl(BpeFiles files);
  SpecialMatch find_special(std::string_view text, size_t from) const;
  void encode_segment(std::string_view text, std::vector<int32_t>& ids) const;
};

namespace {

// transformers' CLIPTokenizer always registers <|startoftext|> and
// <|endoftext|> as special tokens, whatever the files list; take their ids
// from the added tokens, else from the vocabulary.
std::vector<std::pair<std::string, int32_t>> with_clip_specials(const BpeFiles& files) {
  auto specials = files.added_tokens;
  for (const char* name : {kBos, kEos}) {
    const bool listed = std::any_of(specials.begin(), specials.end(), [&](const auto& s) { return s.first == name; });
    if (listed) continue;
    const auto it = files.vocab.find(std::string_view(name));
    if (it == files.vocab.end()) throw Error(files.source + ": the vocabulary has no " + name + " token");
    specials.emplace_back(name, it->second);
  }
  // An empty added token would match everywhere; `tokenizers` ignores it too.
  std::erase_if(specials, [](const auto& s) { return s.first.empty(); });
  return specials;
}

int32_t id_of(const std::vector<std::pair<std::string, int32_t>>& specials, const char* name) {
  for (const auto& [content, id] : specials)
    if (content == name) return id;
  return -1;  // unreachable: with_clip_specials adds both
}

}  // namespace

Tokenizer::Impl::Impl(BpeFiles files)
    : specials(with_clip_specials(files)),
      bpe(std::move(files.vocab), files.merges,
          // CLIP's unknown token. A CLIP-format vocabulary holds every byte, so
          // it only matters for vocabularies that lack some.
          files.vocab.contains(std::string_view(kEos)) ? kEos : "", files.source) {
  bos = id_of(specials, kBos);
  eos = id_of(specials, kEos);
  vocab_size = bpe.id_limit();
  for (const auto& [content, id] : specials) vocab_size = std::max(vocab_size, id + 1);
}

SpecialMatch Tokenizer::Impl::find_special(std::string_view text, size_t from) const {
  SpecialMatch best;
  for (const auto& [content, id] : specials) {
    const size_t pos = text.find(content, from);
    if (pos == std::string_view::npos) continue;
    if (pos < best.pos || (pos == best.pos && content.size() > best.len)) best = {pos, content.size(), id};
  }
  return best;
}

void Tokenizer::Impl::encode_segment(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<std::string> words;
  text::pretokenize(text, words);
  for (const std::string& word : words) bpe.encode_word(word, ids);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_folder(const std::filesystem::path& dir) {
  // Like transformers: tokenizer.json wins when both forms are present.
  if (std::filesystem::exists(dir / "tokenizer.json")) return from_tokenizer_json(dir / "tokenizer.json");
  if (std::filesystem::exists(dir / "vocab.json") && std::filesystem::exists(dir / "merges.txt"))
    return from_files(dir / "vocab.json", dir / "merges.txt");
  throw Error(dir.string() + ": no tokenizer.json, nor vocab.json + merges.txt");
}

Tokenizer Tokenizer::from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt) {
  return Tokenizer(std::make_unique<Impl>(read_vocab_and_merges(vocab_json, merges_txt)));
}

Tokenizer Tokenizer::from_tokenizer_json(const std::filesystem::path& tokenizer_json) {
  return Tokenizer(std::make_unique<Impl>(read_tokenizer_json(tokenizer_json)));
}

Tokenizer Tokenizer::from_clip_bpe_gz(const std::filesystem::path& gz) {
  return Tokenizer(std::make_unique<Impl>(read_clip_bpe_gz(gz)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view utf8) const {
  // Checked up front so the error gives the offset in the whole text.
  text::check_utf8(utf8);
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= utf8.size()) {
    const SpecialMatch m = impl_->find_special(utf8, pos);
    const size_t end = m.pos == std::string_view::npos ? utf8.size() : m.pos;
    impl_->encode_segment(utf8.substr(pos, end - pos), ids);
    if (m.pos == std::string_view::npos) break;
    ids.push_back(m.id);
    pos = m.pos + m.len;
  }
  return ids;
}

std::vector<int32_t> Tokenizer::encode_for_model(std::string_view utf8, int context_length) const {
  if (context_length < 2)
    throw Error("context_length must be at least 2 (start and end tokens), got " + std::to_string(context_length));
  const std::vector<int32_t> ids = encode(utf8);
  const size_t keep = std::min(ids.size(), static_cast<size_t>(context_length) - 2);
  std::vector<int32_t> out;
  out.reserve(keep + 2);
  out.push_back(impl_->bos);
  out.insert(out.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep));
  out.push_back(impl_->eos);
  return out;
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

}  // namespace clip
