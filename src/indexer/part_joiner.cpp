#include "indexer/part_joiner.h"

#include <algorithm>
#include <utility>

namespace clipfind {

bool PartJoiner::add(FinishedPart&& part) {
  if (on_part_) on_part_(part.end.unit);
  std::optional<FinishedFile> file;
  {
    std::lock_guard lock(m_);
    const size_t f = part.end.file;
    const int parts = std::max(1, part.end.parts), p = part.end.part;
    Parts& have = files_[f];
    have.parts.resize(size_t(parts));
    if (!have.parts[size_t(p)]) ++have.in;
    have.parts[size_t(p)] = std::move(part);
    if (have.in == parts) {
      file = join(have);
      files_.erase(f);
    }
  }
  // Outside the lock: a writer that is behind holds up this encoder only.
  return !file || out_.push(std::move(*file));
}

// The file's parts in order, as one decoding would have sampled them: with
// --every, a part's first sample (its sampler started afresh) is dropped
// when the whole video's sampler would not have kept it.
FinishedFile PartJoiner::join(Parts& have) const {
  FinishedFile f;
  std::string error;
  const video::EverySampler every(sampling_.mode == video::Sampling::every ? sampling_.every : 1.0);
  for (auto& slot : have.parts) {
    FinishedPart& p = *slot;
    if (error.empty()) error = !p.error.empty() ? p.error : p.end.ok ? "" : p.end.error;
    if (&slot == &have.parts.front()) {
      f.end = std::move(p.end);
    } else {
      f.end.info.duration = std::max(f.end.info.duration, p.end.info.duration);
      f.end.info.decoded += p.end.info.decoded;
    }
    size_t skip = 0;
    if (sampling_.mode == video::Sampling::every && !f.times.empty() && !p.times.empty() &&
        !every.joins(f.times.back(), p.times.front()))
      skip = 1;
    f.times.insert(f.times.end(), p.times.begin() + long(skip), p.times.end());
    const size_t dim = p.times.empty() ? 0 : p.embeddings.size() / p.times.size();
    f.embeddings.insert(f.embeddings.end(), p.embeddings.begin() + long(skip * dim), p.embeddings.end());
  }
  f.end.ok = error.empty();
  f.end.error = error;
  f.end.part = 0;
  f.end.parts = int(have.parts.size());
  if (!f.end.ok) {
    f.times.clear();
    f.embeddings.clear();
  }
  return f;
}

}  // namespace clipfind
