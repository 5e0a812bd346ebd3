// Byte-level BPE of CLIP: a word's UTF-8 bytes become the printable
// characters of GPT-2's byte table, the last one carrying the "</w>" suffix,
// and adjacent symbols are merged lowest rank first, as `tokenizers`' BPE
// model does (min-heap on (rank, position), stale entries skipped).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace clip {

// Lets maps keyed on std::string be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class BpeModel {
 public:
  using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;
  using Merges = std::vector<std::pair<std::string, std::string>>;

  // `source` names the file in error messages. `unk_token` may be empty (no
  // unknown token: symbols missing from the vocabulary are dropped, as in
  // `tokenizers`). Throws clip::Error when a merge refers to a token, or makes
  // a token, that the vocabulary lacks.
  BpeModel(Vocab vocab, const Merges& merges, const std::string& unk_token, const std::string& source);
  ~BpeModel();

  // Appends the ids of one pre-tokenised word (UTF-8). Thread-safe.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // Id of a token string, or -1.
  int32_t token_id(std::string_view token) const;
  // One past the largest id.
  int32_t id_limit() const { return id_limit_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const Merge* find_merge(int32_t a, int32_t b) const;
  void bpe(std::string_view word, std::vector<int32_t>& ids) const;

  Vocab vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_id_[256];      // id of the byte's character, or -1
  int32_t byte_eow_id_[256];  // id of the byte's character + "</w>", or -1
  int32_t unk_id_ = -1;
  int32_t id_limit_ = 0;

  // Per-word cache like `tokenizers`' (bounded; a query's words repeat).
  static constexpr size_t kCacheCapacity = 10000;
  static constexpr size_t kMaxCachedWordBytes = 256;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

// GPT-2's table: byte -> UTF-8 of the printable character standing for it.
const std::string& byte_to_unicode(uint8_t byte);
// Whether that character is the byte's own Latin-1 code point (printable
// bytes); the other 68 bytes map to U+0100 onwards.
bool byte_stands_for_itself(uint8_t byte);

}  // namespace clip
