// Internal to src/video: one open video stream (demuxer + decoder) and the
// sampling loop over its frames, shared by the CPU decoder (decoder.cpp) and
// the NVDEC one (gpu_decoder.cpp) so both keep the same frames.
#pragma once
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}
#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "clip/image/image.h"
#include "video/decoder.h"

namespace clipfind::video::detail {

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct BufferUnref {
  void operator()(AVBufferRef* b) const { av_buffer_unref(&b); }
};

std::string av_error(int code);

// The YUV -> RGB conversion a frame asks for: swscale's colourspace number
// (SWS_CS_*, which is also the AVColorSpace value; unknown ones give
// swscale's default, BT.601) and whether its samples span the full range.
struct FrameColour {
  int sws_colorspace = 0;
  bool full_range = false;
};
FrameColour frame_colour(const AVFrame* f);

// One open video stream: demuxer, decoder and converters, released together.
class OpenVideo {
 public:
  // configure, when set, adjusts the decoder context before it is opened
  // (the NVDEC path attaches its hardware device there).
  OpenVideo(const std::filesystem::path& path, int threads, bool keyframes_only,
            const std::function<void(AVCodecContext*)>& configure = {});

  [[noreturn]] void fail(const std::string& what, int code) const;
  VideoInfo info() const;

  // Next decoded frame, or nullptr at the end. Corrupt packets are skipped
  // (counted in bad_packets) so a damaged tail still yields the frames
  // before it; with strict(), they throw Error instead.
  AVFrame* next();
  void set_strict(bool on) { strict_ = on; }

  // From now on, frames shown before `seconds` are not needed (negative:
  // all are). Those nothing refers to are not decoded; and when a key frame
  // shown at or before `seconds` lies ahead, the packets before it are
  // dropped undecoded and decoding restarts there (next()).
  void skip_nonref_before(double seconds) { skip_nonref_before_ = seconds; }
  // Whether next() may restart decoding at a later key frame (default on).
  // The NVDEC path turns it off: each restart flushes the decoder, and
  // FFmpeg's H.264 flush makes it set up the hardware decoder again.
  void set_key_frame_jumps(bool on) { key_frame_jumps_ = on; }
  // Seconds from the stream start; NaN when the frame has no timestamp.
  double time_of(const AVFrame* f) const;
  double seconds_of(int64_t pts) const;
  // The pts (in the stream's time base) of `seconds` from the stream start.
  int64_t pts_at(double seconds) const;

  // For split_at_keyframes: the presentation timestamp of the first key
  // frame from a seek to `seconds`; nullopt when seeking or reading fails.
  std::optional<int64_t> key_pts_near(double seconds);
  // For a part starting at `from`, and frame_at: positions the demuxer on a
  // key frame shown at or before `from` (decoding then starts there). False
  // when no seek worked (the demuxer is where the last try left it); Error
  // when a packet cannot be read after a seek.
  bool start_at(int64_t from);

  // Upright RGB, the short side scaled down to max_short_side (0: full size).
  clip::Image to_rgb(const AVFrame* f, int max_short_side, bool sited_chroma = true);
  // 32x32 grey thumbnail for scene detection (frames in GPU memory are
  // downloaded first).
  void thumbnail(const AVFrame* f, uint8_t* out);

  const AVCodecContext* codec() const { return ctx_.get(); }
  int rotation() const { return rotation_; }
  long decoded() const { return decoded_; }
  // How many times decoding restarted at a later key frame (next()).
  long key_frame_jumps() const { return jumps_; }
  // The most bytes of packets one look ahead for a key frame holds (default
  // 32 MB; tests make it small).
  void set_read_ahead_limit(size_t bytes) { read_ahead_limit_ = bytes; }
  long bad_packets() const { return bad_packets_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  bool shown_before(const AVPacket& p, double seconds) const;
  int read_packet();
  bool drop_before_key_frame();
  int64_t key_frame_ahead(double seconds);
  void clear_read_ahead();

  std::filesystem::path path_;
  std::unique_ptr<AVFormatContext, FormatCloser> fmt_;
  std::unique_ptr<AVCodecContext, CodecFreer> ctx_;
  std::unique_ptr<AVFrame, FrameFreer> frame_, host_frame_, full_chroma_;
  std::unique_ptr<AVPacket, PacketFreer> packet_;
  std::unique_ptr<SwsContext, SwsFreer> sws_, thumb_sws_;
  FrameColour sws_colour_{-1, false};
  AVStream* stream_ = nullptr;
  int index_ = -1;
  int rotation_ = 0;
  int64_t start_ = 0;
  bool keyframes_only_ = false;
  bool strict_ = false;
  bool key_frame_jumps_ = true;
  double skip_nonref_before_ = -1.0;
  bool flushed_ = false;
  bool pending_ = false;  // packet_ holds a packet start_at read: next() sends it first
  // Packets read ahead while looking for a key frame (key_frame_ahead),
  // oldest first; next() takes them before reading more. read_ahead_rc_: a
  // read error met there, returned once they are used up.
  std::deque<std::unique_ptr<AVPacket, PacketFreer>> ahead_;
  size_t ahead_bytes_ = 0, read_ahead_limit_ = size_t(32) << 20;
  int read_ahead_rc_ = 0;
  double looked_ahead_for_ = -1.0;    // the sample time the last look ahead was for
  int64_t jump_to_ = AV_NOPTS_VALUE;  // dropping packets until the key frame with this pts
  long decoded_ = 0, bad_packets_ = 0, jumps_ = 0;
};

// The sampling loop: decodes v to the end (or until *stop), calls
// on_kept(frame, seconds) for each frame the policy keeps, and returns the
// video's info (Error when no frame at all could be decoded). With a part,
// only the frames shown in it are sampled (decoding starts at its key frame).
VideoInfo sample_frames(OpenVideo& v, const SamplingOptions& sampling, const std::atomic<bool>* stop,
                        const std::function<void(const AVFrame*, double)>& on_kept, const VideoPart& part = {});

}  // namespace clipfind::video::detail
