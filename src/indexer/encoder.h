// The encoding stage of `clipfind index`: batches frames across files, embeds
// them, and hands each finished file to the writer.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "clip/clip.h"
#include "indexer/bounded_queue.h"
#include "indexer/part_joiner.h"
#include "indexer/pipeline.h"
#include "indexer/progress.h"
#include "indexer/stages.h"

namespace clipfind {

// Runs f on a new thread named "cf-encode", kEncoderNiceSteps (encoder.cpp)
// below this one (Linux: a nice value is per thread), and waits for it;
// rethrows what f throws.
void on_thread_behind_decoders(const std::function<void()>& f);

// Which lane (lanes.h) an encoder serves, and what it does when its device
// fails.
struct EncoderLane {
  int index = 0;
  // Called with the error; true when the lane is given up (another lane
  // takes its unfinished units: UnitQueue::lose_lane), false when it is the
  // last one (its files then fail one by one, as with a single device).
  std::function<bool(const std::string& error)> lose;
  // For tests: the device "fails" at this embed call (1: the first; 0: never).
  long simulate_at_batch = 0;
};

// Embeds frames in batches that may mix files (with many short videos every
// batch is still full), and hands each part of a file (decode_units.h; the
// whole file unless it was split) to the joiner once its end has been seen
// and its last frame embedded. On the CPU backend a frame's embedding does
// not depend on the batch it was in, so the index equals one built one file
// at a time, byte for byte (tests/test_video_cli.py ManyInFlight).
class Encoder {
 public:
  Encoder(clip::Engine& engine, const IndexRequest& req, const std::vector<std::filesystem::path>& files, bool pixels,
          BoundedQueue<Work>& in, PartJoiner& out, Progress& progress, EncoderLane lane = {})
      : engine_(engine),
        req_(req),
        files_(files),
        pixels_(pixels),
        in_(in),
        out_(out),
        progress_(progress),
        lane_(std::move(lane)) {}

  // Until the decoders are done, or Ctrl-C (then unfinished files are
  // dropped), or the lane is lost (then lost() says why).
  void run();
  const std::string& lost() const { return lost_; }
  long frames() const { return frames_; }
  long batches() const { return batches_; }
  double embed_seconds() const { return embed_s_; }
  double starved_seconds() const { return starved_s_; }

 private:
  // What one part of a file has delivered so far.
  struct Part {
    std::vector<double> times;
    std::vector<float> embeddings;
    int attempt = 0;             // the decoding its frames come from (SampledFrame::attempt)
    std::optional<FileEnd> end;  // set once the decoder finished it
    size_t in_batch = 0;         // its frames in batch_, not embedded yet
    std::string error;           // set when it failed (decoding or embedding)
    bool ended() const { return end.has_value(); }
  };
  using PartKey = std::pair<size_t, int>;  // file, part
  struct Pending {
    size_t file;
    double time;
    int attempt;
    int part;
  };

  bool part_waits() const;
  static void restart_if_later(Part& p, int attempt);
  void add(SampledFrame&& f);
  clip::Tensor embed(const std::vector<size_t>& rows);
  clip::Tensor embed_host(const std::vector<size_t>& rows);
  void keep(const std::vector<size_t>& rows, const clip::Tensor& e);
  bool flush();  // false: the lane was lost
  void clear_batch();
  void finish_ready();

  clip::Engine& engine_;
  const IndexRequest& req_;
  const std::vector<std::filesystem::path>& files_;
  bool pixels_;
  BoundedQueue<Work>& in_;
  PartJoiner& out_;
  Progress& progress_;
  EncoderLane lane_;
  std::map<PartKey, Part> open_;
  std::vector<Pending> batch_;
  std::vector<std::vector<float>> pixel_rows_;  // with pixels_
  std::vector<clip::Image> images_;             // without (empty for a frame in GPU memory)
  std::vector<DeviceFrame> device_;             // without: the frames in GPU memory (else null)
  bool writer_gone_ = false;                    // the writer failed: stop (run_index reports why)
  std::string lost_;
  long frames_ = 0, batches_ = 0;
  double embed_s_ = 0.0, starved_s_ = 0.0;
};

}  // namespace clipfind
