#include "clip/text/bpe_model.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <queue>

#include "clip/error.h"

namespace clip {
namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
// other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) map to U+0100 onwards in
// byte order, so every byte is a visible, non-space character.
std::array<std::string, 256> make_byte_table() {
  std::array<std::string, 256> table;
  int next_extra = 256;
  for (int b = 0; b < 256; ++b) {
    const int cp = byte_stands_for_itself(static_cast<uint8_t>(b)) ? b : next_extra++;
    // cp < 0x800 always: two-byte UTF-8 at most.
    if (cp < 0x80) {
      table[b] = std::string(1, static_cast<char>(cp));
    } else {
      table[b] = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    }
  }
  return table;
}

}  // namespace

bool byte_stands_for_itself(uint8_t b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

const std::string& byte_to_unicode(uint8_t byte) {
  static const std::array<std::string, 256> table = make_byte_table();
  return table[byte];
}

BpeModel::BpeModel(Vocab vocab, const Merges& merges, const std::string& unk_token, const std::string& source)
    : vocab_(std::move(vocab)) {
  for (const auto& [token, id] : vocab_) id_limit_ = std::max(id_limit_, id + 1);
  for (int b = 0; b < 256; ++b) {
    const std::string& ch = byte_to_unicode(static_cast<uint8_t>(b));
    byte_id_[b] = token_id(ch);
    byte_eow_id_[b] = token_id(ch + "</w>");
  }
  if (!unk_token.empty()) {
    unk_id_ = token_id(unk_token);
    if (unk_id_ < 0) throw Error(source + ": unknown token '" + unk_token + "' is not in the vocabulary");
  }

  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    // Named references, not a structured binding: clang < 16 cannot capture
    // those in the lambda below.
    const std::string& a = merges[rank].first;
    const std::string& b = merges[rank].second;
    auto missing = [&](const std::string& what) {
      return Error(source + ": merge " + std::to_string(rank + 1) + " \"" + a + " " + b + "\": " + what +
                   " is not in the vocabulary");
    };
    const int32_t a_id = token_id(a);
    if (a_id < 0) throw missing("token '" + a + "'");
    const int32_t b_id = token_id(b);
    if (b_id < 0) throw missing("token '" + b + "'");
    const int32_t new_id = token_id(a + b);
    if (new_id < 0) throw missing("merged token '" + a + b + "'");
    // A repeated pair takes its later rank, as in `tokenizers` (map insert).
    merges_.insert_or_assign(pair_key(a_id, b_id), Merge{static_cast<int32_t>(rank), new_id});
  }
}

BpeModel::~BpeModel() = default;

int32_t BpeModel::token_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const BpeModel::Merge* BpeModel::find_merge(int32_t a, int32_t b) const {
  const auto it = merges_.find(pair_key(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() > kMaxCachedWordBytes) {
    bpe(word, out);
    return;
  }
  {
    std::shared_lock lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  bpe(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::unique_lock lock(cache_mutex_);
  if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::move(ids));
}

void BpeModel::bpe(std::string_view word, std::vector<int32_t>& ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    const auto byte = static_cast<uint8_t>(word[i]);
    int32_t id = i + 1 == word.size() ? byte_eow_id_[byte] : byte_id_[byte];
    if (id < 0) id = unk_id_;  // each unknown symbol on its own (fuse_unk off)
    if (id < 0) continue;      // no unknown token: dropped, as `tokenizers` does
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, n + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    // priority_queue pops the largest: invert so the lowest rank, then the
    // leftmost position, comes first.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id))
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Skip entries made stale by earlier merges around this position.
    const Merge* m = find_merge(left.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;

    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* pm = find_merge(symbols[left.prev].id, left.id)) queue.push({pm->rank, left.prev, pm->new_id});
    }
    if (left.next >= 0) {
      if (const Merge* nm = find_merge(left.id, symbols[left.next].id)) queue.push({nm->rank, top.pos, nm->new_id});
    }
  }
  for (const Symbol& s : symbols)
    if (s.alive) ids.push_back(s.id);
}

}  // namespace clip
