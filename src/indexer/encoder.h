// The encoding stage of `clipfind index`: batches frames across files, embeds
// them, and hands each finished file to the writer.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clip/clip.h"
#include "indexer/bounded_queue.h"
#include "indexer/pipeline.h"
#include "indexer/progress.h"
#include "indexer/stages.h"

namespace clipfind {

// Runs f on a new thread named "cf-encode", kEncoderNiceSteps (encoder.cpp)
// below this one (Linux: a nice value is per thread), and waits for it;
// rethrows what f throws.
void on_thread_behind_decoders(const std::function<void()>& f);

// Embeds frames in batches that may mix files (with many short videos every
// batch is still full), and hands a file to the writer once its end has been
// seen and its last frame embedded. On the CPU backend a frame's embedding
// does not depend on the batch it was in, so the index equals one built one
// file at a time, byte for byte (tests/test_video_cli.py ManyInFlight).
class Encoder {
 public:
  Encoder(clip::Engine& engine, const IndexRequest& req, const std::vector<std::filesystem::path>& files, bool pixels,
          BoundedQueue<Work>& in, BoundedQueue<FinishedFile>& out, StageTimes& times, Progress& progress)
      : engine_(engine),
        req_(req),
        files_(files),
        pixels_(pixels),
        in_(in),
        out_(out),
        times_(times),
        progress_(progress) {}

  // Until the decoders are done, or Ctrl-C (then unfinished files are dropped).
  void run();

 private:
  // What one part of a file (the whole file unless it was split,
  // decode_units.h) has delivered so far.
  struct Part {
    std::vector<double> times;
    std::vector<float> embeddings;
    int attempt = 0;             // the decoding its frames come from (SampledFrame::attempt)
    std::optional<FileEnd> end;  // set once the decoder finished it
  };
  // A file with frames seen and not yet handed to the writer.
  struct Open {
    std::vector<Part> parts;  // grows as parts are seen
    int parts_total = 0;      // known from the first part's end
    int parts_ended = 0;
    size_t in_batch = 0;  // its frames in batch_, not embedded yet
    std::string error;    // set when it failed (decoding or embedding)
    Part& part(int p);
    bool ended() const { return parts_total > 0 && parts_ended == parts_total; }
  };
  struct Pending {
    size_t file;
    double time;
    int attempt;
    int part;
  };

  bool file_waits() const;
  static void restart_if_later(Open& o, int part, int attempt);
  FinishedFile join_parts(Open& o) const;
  void add(SampledFrame&& f);
  clip::Tensor embed(const std::vector<size_t>& rows);
  clip::Tensor embed_host(const std::vector<size_t>& rows);
  void keep(const std::vector<size_t>& rows, const clip::Tensor& e);
  void flush();
  void finish_ready();

  clip::Engine& engine_;
  const IndexRequest& req_;
  const std::vector<std::filesystem::path>& files_;
  bool pixels_;
  BoundedQueue<Work>& in_;
  BoundedQueue<FinishedFile>& out_;
  StageTimes& times_;
  Progress& progress_;
  std::map<size_t, Open> open_;
  std::vector<Pending> batch_;
  std::vector<std::vector<float>> pixel_rows_;  // with pixels_
  std::vector<clip::Image> images_;             // without (empty for a frame in GPU memory)
  std::vector<DeviceFrame> device_;             // without: the frames in GPU memory (else null)
  bool writer_gone_ = false;                    // the writer failed: stop (run_index reports why)
};

}  // namespace clipfind
