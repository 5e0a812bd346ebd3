// The progress line of `clipfind index`, and error lines that do not garble it.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "indexer/stages.h"

namespace clipfind {

// One line on stderr, redrawn at most 5 times a second (a terminal is slow
// and frames come fast), from the encoder and the writer threads.
class Progress {
 public:
  Progress(bool enabled, size_t files, int64_t bytes) : enabled_(enabled), files_(files), bytes_(bytes) {}

  // From lane `lane`'s encoder (lanes.h): frames embedded, parts of files
  // it has open.
  void embedded(long frames, size_t in_flight, int lane = 0);
  void file_done(int64_t bytes);
  // A log line (an error) without garbling the progress line.
  void print(const std::string& line);
  void finish();

 private:
  void draw(bool force);

  std::mutex m_;
  bool enabled_;
  size_t files_, files_done_ = 0;
  std::vector<size_t> in_flight_;  // by lane
  int64_t bytes_, bytes_done_ = 0;
  long frames_ = 0;
  Clock::time_point start_ = Clock::now(), last_draw_ = Clock::now() - std::chrono::seconds(1);
};

}  // namespace clipfind
