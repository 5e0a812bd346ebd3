#include "index/compat.h"

#include <map>

namespace clipfind::index {

namespace {

std::string name(const Catalog& c) { return c.dir().string(); }

}  // namespace

void check_same_model(const std::vector<const Catalog*>& catalogs) {
  std::optional<ModelRecord> first;
  for (const Catalog* c : catalogs) {
    const auto m = c->model();
    if (!m) throw Error(name(*c) + ": no model recorded (nothing was ever indexed into it)");
    if (!first) {
      first = m;
      continue;
    }
    const Catalog& a = *catalogs.front();
    auto differ = [&](const std::string& what, const std::string& x, const std::string& y) {
      throw Error(name(a) + " and " + name(*c) + " cannot be combined: " + what + " " + x + " vs " + y +
                  " (embeddings of different models do not compare; re-index one with the other's model)");
    };
    if (m->family != first->family) differ("model family", first->family, m->family);
    if (m->dim != first->dim) differ("embedding width", std::to_string(first->dim), std::to_string(m->dim));
    if (m->fingerprint != first->fingerprint) {
      differ("model", first->path + " (fingerprint " + first->fingerprint + ")",
             m->path + " (fingerprint " + m->fingerprint + ")");
    }
  }
}

void check_disjoint_videos(const std::vector<const Catalog*>& catalogs) {
  std::map<std::string, const Catalog*> owner;
  for (const Catalog* c : catalogs) {
    for (const auto& v : c->videos()) {
      const auto [it, added] = owner.emplace(v.path, c);
      if (!added) {
        throw Error(v.path + " is in both " + name(*it->second) + " and " + name(*c) +
                    " (shards of one split never share a video: was a shard given twice, or were they "
                    "split with different --shard counts?)");
      }
    }
  }
}

void check_same_sampling(const std::vector<const Catalog*>& catalogs) {
  if (catalogs.empty()) return;
  const std::string first = catalogs.front()->meta("sampling").value_or("");
  for (const Catalog* c : catalogs) {
    const std::string s = c->meta("sampling").value_or("");
    if (s != first) {
      throw Error(name(*catalogs.front()) + " and " + name(*c) + " cannot be merged: frames sampled " + first + " vs " +
                  s + " (index the shards with the same --every/--keyframes/--scenes)");
    }
  }
}

}  // namespace clipfind::index
