// Video decoding with FFmpeg: sampled RGB frames with their presentation times.
//
//   VideoInfo info = decode_video("a.mp4", {}, [](Frame&& f) { ... f.time, f.image ... });
//
// Times are seconds from the stream's start, from timestamps (never from frame
// counts). Pictures are upright (display matrix applied) and scaled down so the
// short side is at most max_short_side. Errors are video::Error naming the file.
#pragma once
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "clip/image/image.h"
#include "video/sampler.h"

namespace clipfind::video {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct VideoInfo {
  double duration = 0.0;  // seconds; 0 when the container does not say
  double fps = 0.0;       // average frame rate; 0 when unknown
  int width = 0;          // upright, before any scaling
  int height = 0;
  int rotation = 0;  // clockwise degrees applied
  long decoded = 0;  // frames decoded (with --every, what no sample needs is skipped: OpenVideo::next)
};

struct Frame {
  double time = 0.0;
  clip::Image image;
};

// A stretch of a video between two key frames, so that a long file can be
// decoded on several threads: the frames shown from `from` (a key frame's
// presentation timestamp, in the stream's time base) until `to` (the next
// part's `from`). Parts from split_at_keyframes cover the video once.
struct VideoPart {
  int64_t from = INT64_MIN;  // INT64_MIN: from the start
  int64_t to = INT64_MAX;    // INT64_MAX: to the end
  bool whole() const { return from == INT64_MIN && to == INT64_MAX; }
};

// At most `parts` parts of at least min_seconds each, split at key frames
// found through the container's index (a seek, then the first key packet):
// one whole part when the video is shorter, has no known duration or cannot
// seek. Throws Error when it cannot be opened.
std::vector<VideoPart> split_at_keyframes(const std::filesystem::path& path, int parts, double min_seconds);
// The same, with the number of parts chosen from the video's duration in
// seconds (0 when unknown), read as the file is opened.
std::vector<VideoPart> split_at_keyframes(const std::filesystem::path& path,
                                          const std::function<int(double duration)>& parts_for, double min_seconds);

struct DecodeOptions {
  SamplingOptions sampling;
  // Only this part's frames; with Sampling::every its first frame is kept
  // whatever came before (EverySampler::joins says if it belongs to the
  // whole). Sampling::scenes takes whole videos only (its state, the last
  // kept picture, cannot be carried into a part).
  VideoPart part;
  // Bounded size handed to CLIP preprocessing: big enough for its 224-336 px
  // crops, small enough that the bicubic resize there stays cheap. 0: no limit.
  int max_short_side = 448;
  // 4:2:0 chroma interpolated at its sited position, as the NVDEC path does
  // (chroma_upsample.h), so that CPU- and GPU-decoded frames agree (median
  // cosine 1.000000 against 0.9996). It costs 10-14 ms a kept 1080p frame on
  // 2 cores, so `clipfind index` asks for it only when its engine runs on
  // CUDA, where frames of both decoders meet in one index.
  bool sited_chroma = true;
  int threads = 0;                          // decoder threads; 0: FFmpeg chooses
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT) to stop early
};

VideoInfo decode_video(const std::filesystem::path& path, const DecodeOptions& options,
                       const std::function<void(Frame&&)>& on_frame);

// The picture shown at `seconds` (the last frame starting at or before it; the
// first frame for earlier times), upright, full size. *duration (when given):
// how long the video lasts in seconds, 0 when the container does not say, so
// the caller can tell a time past the end (which gets the last frame).
Frame frame_at(const std::filesystem::path& path, double seconds, double* duration = nullptr);

}  // namespace clipfind::video
