#include "video/decoder.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>

#include "video/rotate.h"

namespace clipfind::video {

namespace {

// FFmpeg logs to stderr by itself ("moov atom not found" ...); our errors say
// the same with the file name, once, so only its fatal messages stay.
void quiet_ffmpeg_logs() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_FATAL); });
}

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

struct FormatCloser { void operator()(AVFormatContext* f) const { avformat_close_input(&f); } };
struct CodecFreer { void operator()(AVCodecContext* c) const { avcodec_free_context(&c); } };
struct FrameFreer { void operator()(AVFrame* f) const { av_frame_free(&f); } };
struct PacketFreer { void operator()(AVPacket* p) const { av_packet_free(&p); } };
struct SwsFreer { void operator()(SwsContext* s) const { sws_freeContext(s); } };

// One open video stream: demuxer, decoder and converter, released together.
class OpenVideo {
 public:
  OpenVideo(const std::filesystem::path& path, int threads, bool keyframes_only)
      : path_(path), keyframes_only_(keyframes_only) {
    quiet_ffmpeg_logs();
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) == 0) {
      throw Error(path.string() + ": empty file (0 bytes)");
    }
    AVFormatContext* fmt = nullptr;
    int rc = avformat_open_input(&fmt, path.c_str(), nullptr, nullptr);
    if (rc < 0) fail("cannot open as a video", rc);
    fmt_.reset(fmt);
    if ((rc = avformat_find_stream_info(fmt, nullptr)) < 0) fail("cannot read stream info", rc);
    const AVCodec* codec = nullptr;
    index_ = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (index_ == AVERROR_STREAM_NOT_FOUND) throw Error(path_.string() + ": no video stream");
    if (index_ < 0 || !codec) fail("no decoder for its video stream", index_);
    stream_ = fmt->streams[index_];
    // Everything else is dropped by the demuxer, not decoded.
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
      if (int(i) != index_) fmt->streams[i]->discard = AVDISCARD_ALL;
    }
    ctx_.reset(avcodec_alloc_context3(codec));
    if (!ctx_) throw std::bad_alloc();
    if ((rc = avcodec_parameters_to_context(ctx_.get(), stream_->codecpar)) < 0) fail("bad codec parameters", rc);
    ctx_->thread_count = threads;
    ctx_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    // The --keyframes fast path: the decoder skips everything but key frames.
    if (keyframes_only) ctx_->skip_frame = AVDISCARD_NONKEY;
    if ((rc = avcodec_open2(ctx_.get(), codec, nullptr)) < 0) fail("cannot open decoder", rc);
    rotation_ = clockwise_degrees(reinterpret_cast<const int32_t*>(
        av_stream_get_side_data(stream_, AV_PKT_DATA_DISPLAYMATRIX, nullptr)));
    start_ = stream_->start_time != AV_NOPTS_VALUE ? stream_->start_time : 0;
    frame_.reset(av_frame_alloc());
    packet_.reset(av_packet_alloc());
    if (!frame_ || !packet_) throw std::bad_alloc();
  }

  [[noreturn]] void fail(const std::string& what, int code) const {
    throw Error(path_.string() + ": " + what + " (" + av_error(code) + ")");
  }

  VideoInfo info() const {
    VideoInfo i;
    const bool swap = rotation_ == 90 || rotation_ == 270;
    i.width = swap ? ctx_->height : ctx_->width;
    i.height = swap ? ctx_->width : ctx_->height;
    i.rotation = rotation_;
    if (stream_->avg_frame_rate.num > 0 && stream_->avg_frame_rate.den > 0) i.fps = av_q2d(stream_->avg_frame_rate);
    if (stream_->duration != AV_NOPTS_VALUE) i.duration = double(stream_->duration) * av_q2d(stream_->time_base);
    else if (fmt_->duration != AV_NOPTS_VALUE) i.duration = double(fmt_->duration) / AV_TIME_BASE;
    return i;
  }

  // Next decoded frame, or nullptr at the end. Corrupt packets are skipped
  // (counted in bad_packets) so a damaged tail still yields the frames before it.
  AVFrame* next() {
    for (;;) {
      int rc = avcodec_receive_frame(ctx_.get(), frame_.get());
      if (rc == 0) {
        ++decoded_;
        return frame_.get();
      }
      if (rc == AVERROR_EOF) return nullptr;
      if (rc != AVERROR(EAGAIN)) fail("decoding failed", rc);
      if (flushed_) return nullptr;
      rc = av_read_frame(fmt_.get(), packet_.get());
      if (rc < 0) {
        if (rc != AVERROR_EOF) ++bad_packets_;
        avcodec_send_packet(ctx_.get(), nullptr);  // drain the frames still inside
        flushed_ = true;
        continue;
      }
      // Non-key packets never reach the decoder on the --keyframes path.
      const bool wanted = !keyframes_only_ || (packet_->flags & AV_PKT_FLAG_KEY);
      if (packet_->stream_index == index_ && wanted && !keyframes_only_) {
        // A frame no other frame refers to (most B-frames) that shows before
        // the next sample time is not decoded at all: the kept frames are
        // the same, bit for bit, and a third of the work can go.
        ctx_->skip_frame = shown_before(*packet_, skip_nonref_before_) ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
      }
      if (packet_->stream_index == index_ && wanted) {
        if (avcodec_send_packet(ctx_.get(), packet_.get()) < 0) ++bad_packets_;
      }
      av_packet_unref(packet_.get());
    }
  }

  // From now on, frames shown before `seconds` may be skipped if nothing
  // refers to them (negative: none).
  void skip_nonref_before(double seconds) { skip_nonref_before_ = seconds; }

  // Whether packet p is shown before `seconds`, with a millisecond to spare
  // (rounding of its timestamp); false when it has no timestamp.
  bool shown_before(const AVPacket& p, double seconds) const {
    if (seconds <= 0.0 || p.pts == AV_NOPTS_VALUE) return false;
    return double(p.pts - start_) * av_q2d(stream_->time_base) + 1e-3 < seconds;
  }

  // Seconds from the stream start; NaN when the frame has no timestamp.
  double time_of(const AVFrame* f) const {
    const int64_t pts = f->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) return std::nan("");
    return double(pts - start_) * av_q2d(stream_->time_base);
  }

  void seek(double seconds) {
    const int64_t ts = start_ + int64_t(std::floor(seconds / av_q2d(stream_->time_base)));
    if (av_seek_frame(fmt_.get(), index_, ts, AVSEEK_FLAG_BACKWARD) >= 0) avcodec_flush_buffers(ctx_.get());
  }

  clip::Image to_rgb(const AVFrame* f, int max_short_side) {
    int w = f->width, h = f->height;
    const int short_side = std::min(w, h);
    if (max_short_side > 0 && short_side > max_short_side) {
      const double s = double(max_short_side) / short_side;
      w = std::max(1, int(std::lround(w * s)));
      h = std::max(1, int(std::lround(h * s)));
    }
    // Bicubic widens its filter when shrinking, so big downscales stay antialiased.
    sws_.reset(sws_getCachedContext(sws_.release(), f->width, f->height, AVPixelFormat(f->format), w, h,
                                    AV_PIX_FMT_RGB24, SWS_BICUBIC, nullptr, nullptr, nullptr));
    if (!sws_) throw Error(path_.string() + ": cannot convert pixel format to RGB");
    clip::Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * h * 3);
    uint8_t* dst[4] = {img.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {w * 3, 0, 0, 0};
    sws_scale(sws_.get(), f->data, f->linesize, 0, f->height, dst, dst_stride);
    return rotate_clockwise(img, rotation_);
  }

  // 32x32 grey thumbnail for scene detection, without the full RGB conversion.
  void thumbnail(const AVFrame* f, uint8_t* out) {
    const int n = SceneSampler::kSide;
    thumb_sws_.reset(sws_getCachedContext(thumb_sws_.release(), f->width, f->height, AVPixelFormat(f->format), n,
                                          n, AV_PIX_FMT_GRAY8, SWS_AREA, nullptr, nullptr, nullptr));
    if (!thumb_sws_) throw Error(path_.string() + ": cannot convert pixel format");
    uint8_t* dst[4] = {out, nullptr, nullptr, nullptr};
    int stride[4] = {n, 0, 0, 0};
    sws_scale(thumb_sws_.get(), f->data, f->linesize, 0, f->height, dst, stride);
  }

  long decoded() const { return decoded_; }
  long bad_packets() const { return bad_packets_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::unique_ptr<AVFormatContext, FormatCloser> fmt_;
  std::unique_ptr<AVCodecContext, CodecFreer> ctx_;
  std::unique_ptr<AVFrame, FrameFreer> frame_;
  std::unique_ptr<AVPacket, PacketFreer> packet_;
  std::unique_ptr<SwsContext, SwsFreer> sws_, thumb_sws_;
  AVStream* stream_ = nullptr;
  int index_ = -1;
  int rotation_ = 0;
  int64_t start_ = 0;
  bool keyframes_only_ = false;
  double skip_nonref_before_ = -1.0;
  bool flushed_ = false;
  long decoded_ = 0, bad_packets_ = 0;
};

}  // namespace

VideoInfo decode_video(const std::filesystem::path& path, const DecodeOptions& o,
                       const std::function<void(Frame&&)>& on_frame) {
  const bool keyframes = o.sampling.mode == Sampling::keyframes;
  OpenVideo v(path, o.threads, keyframes);
  EverySampler every(o.sampling.mode == Sampling::every ? o.sampling.every : 1.0);
  SceneSampler scenes(o.sampling.scene_threshold);
  uint8_t thumb[SceneSampler::kSide * SceneSampler::kSide];
  double last_time = -1.0;
  long kept = 0;
  for (;;) {
    if (o.sampling.mode == Sampling::every) v.skip_nonref_before(every.next());
    const AVFrame* f = v.next();
    if (!f) break;
    if (o.stop && o.stop->load()) break;
    if (keyframes && !f->key_frame) continue;  // decoders that ignore skip_frame
    double t = v.time_of(f);
    if (std::isnan(t)) t = last_time < 0 ? 0.0 : last_time;  // no pts: treat as the previous instant
    // Pre-roll before the stream start (edit lists) is not part of the video.
    if (t < -1e-6) continue;
    t = std::max(t, 0.0);
    bool keep = false;
    switch (o.sampling.mode) {
      case Sampling::every: keep = every.keep(t); break;
      case Sampling::keyframes: keep = true; break;  // only key frames get here
      case Sampling::scenes:
        v.thumbnail(f, thumb);
        keep = scenes.keep(thumb);
        break;
    }
    last_time = t;
    if (!keep) continue;
    on_frame(Frame{t, v.to_rgb(f, o.max_short_side)});
    ++kept;
  }
  VideoInfo info = v.info();
  info.decoded = v.decoded();
  if (v.decoded() == 0 && !(o.stop && o.stop->load())) {
    throw Error(path.string() + (v.bad_packets() ? ": damaged: no frame could be decoded"
                                                 : ": the video stream has no frames"));
  }
  if (info.duration <= 0.0 && last_time > 0.0) info.duration = last_time;
  return info;
}

Frame frame_at(const std::filesystem::path& path, double seconds, double* duration) {
  if (!(seconds >= 0.0)) throw Error(path.string() + ": time must be >= 0");
  OpenVideo v(path, 0, false);
  v.seek(seconds);
  // Keep the last frame starting at or before the requested time; decoding
  // goes on from the key frame the seek landed on.
  Frame best;
  bool have = false;
  while (const AVFrame* f = v.next()) {
    const double t = v.time_of(f);
    if (have && !std::isnan(t) && t > seconds + 1e-6) break;
    best = Frame{std::isnan(t) ? 0.0 : std::max(t, 0.0), v.to_rgb(f, 0)};
    have = true;
    if (!std::isnan(t) && t > seconds + 1e-6) break;  // first frame already after the time
  }
  if (!have) throw Error(path.string() + ": no frame could be decoded");
  if (duration) *duration = v.info().duration;
  return best;
}

}  // namespace clipfind::video
