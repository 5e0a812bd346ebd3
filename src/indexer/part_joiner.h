// Between the encoders and the writer of `clipfind index`: a file split into
// parts (decode_units.h) may have them embedded by different encoders (one
// per GPU with --device cuda:all); the joiner puts each file together once
// all its parts are in, and hands it to the writer.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "indexer/bounded_queue.h"
#include "indexer/stages.h"
#include "video/sampler.h"

namespace clipfind {

class PartJoiner {
 public:
  // on_part(unit) is called for each part taken (UnitQueue::done), before
  // its file can reach the writer.
  PartJoiner(const video::SamplingOptions& sampling, BoundedQueue<FinishedFile>& out,
             std::function<void(size_t unit)> on_part = {})
      : sampling_(sampling), out_(out), on_part_(std::move(on_part)) {}

  // From any encoder thread. False when the writer is gone (stop).
  bool add(FinishedPart&& part);

 private:
  struct Parts {
    std::vector<std::optional<FinishedPart>> parts;
    int in = 0;
  };
  FinishedFile join(Parts& p) const;

  const video::SamplingOptions& sampling_;
  BoundedQueue<FinishedFile>& out_;
  std::function<void(size_t)> on_part_;
  std::mutex m_;
  std::map<size_t, Parts> files_;  // files with some parts in, not all
};

}  // namespace clipfind
