#include "video/open_video.h"

extern "C" {
#include <libavutil/hwcontext.h>
#include <libavutil/imgutils.h>
}
#include <algorithm>
#include <cmath>
#include <mutex>

#include "video/chroma_upsample.h"
#include "video/rotate.h"

namespace clipfind::video::detail {

namespace {

// FFmpeg logs to stderr by itself ("moov atom not found" ...); our errors say
// the same with the file name, once, so only its fatal messages stay.
void quiet_ffmpeg_logs() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_FATAL); });
}

}  // namespace

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

FrameColour frame_colour(const AVFrame* f) {
  FrameColour c;
  // sws_getCoefficients takes the AVColorSpace number and falls back to
  // BT.601 for the ones it has no table for (unspecified among them).
  c.sws_colorspace = f->colorspace;
  const AVPixelFormat fmt = AVPixelFormat(f->format);
  c.full_range = f->color_range == AVCOL_RANGE_JPEG || fmt == AV_PIX_FMT_YUVJ420P || fmt == AV_PIX_FMT_YUVJ422P ||
                 fmt == AV_PIX_FMT_YUVJ444P;
  return c;
}

OpenVideo::OpenVideo(const std::filesystem::path& path, int threads, bool keyframes_only,
                     const std::function<void(AVCodecContext*)>& configure)
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
  if (configure) configure(ctx_.get());
  if ((rc = avcodec_open2(ctx_.get(), codec, nullptr)) < 0) fail("cannot open decoder", rc);
  rotation_ = clockwise_degrees(
      reinterpret_cast<const int32_t*>(av_stream_get_side_data(stream_, AV_PKT_DATA_DISPLAYMATRIX, nullptr)));
  start_ = stream_->start_time != AV_NOPTS_VALUE ? stream_->start_time : 0;
  frame_.reset(av_frame_alloc());
  packet_.reset(av_packet_alloc());
  if (!frame_ || !packet_) throw std::bad_alloc();
}

void OpenVideo::fail(const std::string& what, int code) const {
  throw Error(path_.string() + ": " + what + " (" + av_error(code) + ")");
}

VideoInfo OpenVideo::info() const {
  VideoInfo i;
  const bool swap = rotation_ == 90 || rotation_ == 270;
  i.width = swap ? ctx_->height : ctx_->width;
  i.height = swap ? ctx_->width : ctx_->height;
  i.rotation = rotation_;
  if (stream_->avg_frame_rate.num > 0 && stream_->avg_frame_rate.den > 0) i.fps = av_q2d(stream_->avg_frame_rate);
  if (stream_->duration != AV_NOPTS_VALUE)
    i.duration = double(stream_->duration) * av_q2d(stream_->time_base);
  else if (fmt_->duration != AV_NOPTS_VALUE)
    i.duration = double(fmt_->duration) / AV_TIME_BASE;
  return i;
}

AVFrame* OpenVideo::next() {
  for (;;) {
    int rc = avcodec_receive_frame(ctx_.get(), frame_.get());
    if (rc == 0) {
      ++decoded_;
      return frame_.get();
    }
    if (rc == AVERROR_EOF) return nullptr;
    if (rc != AVERROR(EAGAIN)) fail("decoding failed", rc);
    if (flushed_) return nullptr;
    rc = read_packet();
    if (rc < 0) {
      if (rc != AVERROR_EOF) {
        if (strict_) fail("reading failed", rc);
        ++bad_packets_;
      }
      avcodec_send_packet(ctx_.get(), nullptr);  // drain the frames still inside
      flushed_ = true;
      continue;
    }
    // Non-key packets never reach the decoder on the --keyframes path.
    const bool wanted = !keyframes_only_ || (packet_->flags & AV_PKT_FLAG_KEY);
    if (packet_->stream_index == index_ && wanted && !keyframes_only_) {
      if (drop_before_key_frame()) {
        av_packet_unref(packet_.get());
        continue;
      }
      // A frame no other frame refers to (most B-frames) that shows before
      // the next sample time is not decoded at all: the kept frames are
      // the same, bit for bit, and a third of the work can go.
      ctx_->skip_frame = shown_before(*packet_, skip_nonref_before_) ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
    }
    if (packet_->stream_index == index_ && wanted) {
      rc = avcodec_send_packet(ctx_.get(), packet_.get());
      if (rc < 0) {
        av_packet_unref(packet_.get());
        if (strict_) fail("decoding failed", rc);
        ++bad_packets_;
      }
    }
    av_packet_unref(packet_.get());
  }
}

// The next packet: the one start_at left in packet_, else the oldest read
// ahead, else a new one from the demuxer.
int OpenVideo::read_packet() {
  if (pending_) {
    pending_ = false;
    return 0;
  }
  if (!ahead_.empty()) {
    av_packet_move_ref(packet_.get(), ahead_.front().get());
    ahead_bytes_ -= size_t(packet_->size);
    ahead_.pop_front();
    // A look ahead cut short by its size limit goes on once its packets are used.
    if (ahead_.empty()) looked_ahead_for_ = -1.0;
    return 0;
  }
  if (read_ahead_rc_ < 0) {
    const int rc = read_ahead_rc_;
    read_ahead_rc_ = 0;
    return rc;
  }
  return av_read_frame(fmt_.get(), packet_.get());
}

// Skipping to a key frame. With sampling every few seconds, most frames
// decoded only lead up to the next sample; when a key frame shown at or
// before the next sample time comes first, nothing before it is needed:
// every frame that precedes a key frame in decoding order is also shown
// before it (H.264 IDR and recovery points, HEVC IRAP pictures), so the
// frame kept for the sample time is decoded the same from there. So the
// packets up to that key frame are dropped undecoded, and the decoder is
// flushed before it (the frames still inside were shown before it: not
// needed either; after a flush, HEVC drops a CRA's leading pictures, which
// would refer to dropped frames). With --every 1 and key frames every
// 3 s that leaves a third of the frames undecoded; with samples further
// apart than the key frames, whole groups of pictures.
//
// Whether packet_ (a video packet) is dropped on the way to such a key
// frame. The look ahead (key_frame_ahead) runs once per sample time, from
// the first packet shown before it.
bool OpenVideo::drop_before_key_frame() {
  if (jump_to_ != AV_NOPTS_VALUE) {
    if (!(packet_->flags & AV_PKT_FLAG_KEY) || packet_->pts != jump_to_) return true;
    jump_to_ = AV_NOPTS_VALUE;
    avcodec_flush_buffers(ctx_.get());
    ++jumps_;
    looked_ahead_for_ = -1.0;  // look again from here: a later key frame may qualify too
    return false;
  }
  const double t = skip_nonref_before_;
  if (!key_frame_jumps_ || t <= 0.0 || t == looked_ahead_for_ || !shown_before(*packet_, t)) return false;
  looked_ahead_for_ = t;
  jump_to_ = key_frame_ahead(t);
  return jump_to_ != AV_NOPTS_VALUE;
}

// The pts of the last key frame after packet_ that is shown at or before
// `seconds`, reading packets ahead into ahead_ (up to the first whose
// decoding time is past `seconds`: nothing after it is shown earlier, and
// at most read_ahead_limit_ bytes, by default 25 s of a 10 Mb/s stream:
// with samples further apart, each jump looks ahead again from its key
// frame); AV_NOPTS_VALUE when there is none.
int64_t OpenVideo::key_frame_ahead(double seconds) {
  int64_t best = AV_NOPTS_VALUE;
  auto look = [&](const AVPacket& p) {  // false: nothing further can qualify
    if (p.stream_index != index_) return true;
    if (p.dts != AV_NOPTS_VALUE && seconds_of(p.dts) > seconds + kTimeSlack) return false;
    if ((p.flags & AV_PKT_FLAG_KEY) && p.pts != AV_NOPTS_VALUE && seconds_of(p.pts) <= seconds + kTimeSlack)
      best = p.pts;
    return true;
  };
  for (const auto& p : ahead_)
    if (!look(*p)) return best;
  while (read_ahead_rc_ == 0 && ahead_bytes_ < read_ahead_limit_) {
    std::unique_ptr<AVPacket, PacketFreer> p(av_packet_alloc());
    if (!p) throw std::bad_alloc();
    const int rc = av_read_frame(fmt_.get(), p.get());
    if (rc < 0) {
      read_ahead_rc_ = rc;  // returned by read_packet in its turn
      break;
    }
    ahead_bytes_ += size_t(p->size);
    ahead_.push_back(std::move(p));
    if (!look(*ahead_.back())) break;
  }
  return best;
}

void OpenVideo::clear_read_ahead() {
  ahead_.clear();
  ahead_bytes_ = 0;
  read_ahead_rc_ = 0;
  looked_ahead_for_ = -1.0;
  jump_to_ = AV_NOPTS_VALUE;
}

// Whether packet p is shown before `seconds`, with a millisecond to spare
// (rounding of its timestamp); false when it has no timestamp.
bool OpenVideo::shown_before(const AVPacket& p, double seconds) const {
  if (seconds <= 0.0 || p.pts == AV_NOPTS_VALUE) return false;
  return double(p.pts - start_) * av_q2d(stream_->time_base) + 1e-3 < seconds;
}

double OpenVideo::time_of(const AVFrame* f) const {
  const int64_t pts = f->best_effort_timestamp;
  if (pts == AV_NOPTS_VALUE) return std::nan("");
  return double(pts - start_) * av_q2d(stream_->time_base);
}

double OpenVideo::seconds_of(int64_t pts) const { return double(pts - start_) * av_q2d(stream_->time_base); }

int64_t OpenVideo::pts_at(double seconds) const {
  return start_ + int64_t(std::floor(seconds / av_q2d(stream_->time_base)));
}

std::optional<int64_t> OpenVideo::key_pts_near(double seconds) {
  if (av_seek_frame(fmt_.get(), index_, pts_at(seconds), AVSEEK_FLAG_BACKWARD) < 0) return std::nullopt;
  pending_ = false;
  clear_read_ahead();
  // Within a few hundred packets; a stream without key frames there is not split.
  for (int n = 0; n < 1000; ++n) {
    if (av_read_frame(fmt_.get(), packet_.get()) < 0) return std::nullopt;
    const bool key =
        packet_->stream_index == index_ && (packet_->flags & AV_PKT_FLAG_KEY) && packet_->pts != AV_NOPTS_VALUE;
    const int64_t pts = packet_->pts;
    av_packet_unref(packet_.get());
    if (key) return pts;
  }
  return std::nullopt;
}

bool OpenVideo::start_at(int64_t from) {
  // MP4 seeks by decoding timestamps, which run ahead of presentation ones
  // with B-frames: a seek to `from` may land on a later key frame (also one
  // whose leading pictures, an open GOP's, would be shown before `from` but
  // are dropped when decoding starts there). Then step back (1 s, 2 s, ...),
  // and in the end to the start; frames shown before `from` are decoded but
  // not sampled.
  const double tb = av_q2d(stream_->time_base);
  clear_read_ahead();
  for (int attempt = 0;; ++attempt) {
    const int64_t ts = attempt == 0 ? from : attempt < 8 ? from - int64_t(std::ldexp(1.0, attempt - 1) / tb) : start_;
    if (av_seek_frame(fmt_.get(), index_, std::max(ts, start_), AVSEEK_FLAG_BACKWARD) < 0) {
      if (attempt >= 8) return false;
      continue;
    }
    avcodec_flush_buffers(ctx_.get());
    int rc;
    while ((rc = av_read_frame(fmt_.get(), packet_.get())) >= 0 && packet_->stream_index != index_)
      av_packet_unref(packet_.get());
    if (rc < 0) fail("cannot read a packet after seeking", rc);
    if (attempt >= 8 || packet_->pts == AV_NOPTS_VALUE || packet_->pts <= from) {
      pending_ = true;
      return true;
    }
    av_packet_unref(packet_.get());
  }
}

clip::Image OpenVideo::to_rgb(const AVFrame* f, int max_short_side, bool sited_chroma) {
  int w = f->width, h = f->height;
  const int short_side = std::min(w, h);
  if (max_short_side > 0 && short_side > max_short_side) {
    const double s = double(max_short_side) / short_side;
    w = std::max(1, int(std::lround(w * s)));
    h = std::max(1, int(std::lround(h * s)));
  }
  // With sited_chroma, 4:2:0 chroma is brought to full size here, at its
  // sited position, as the GPU path does (chroma_upsample.h); swscale then
  // only applies the matrix and scales, and takes those 16-bit samples as
  // limited range. Without, swscale interpolates the chroma itself.
  const FrameColour colour = frame_colour(f);
  bool full_range = colour.full_range;
  if (sited_chroma && upsamples_420(f->format)) {
    if (!full_chroma_) full_chroma_.reset(av_frame_alloc());
    if (!full_chroma_) throw std::bad_alloc();
    upsample_420(f, chroma_siting(f), colour.full_range, full_chroma_.get());
    f = full_chroma_.get();
    full_range = false;
  }
  // Bicubic widens its filter when shrinking, so big downscales stay
  // antialiased. Accurate rounding, bit-exact and full chroma interpolation
  // keep swscale off its fast paths, whose 8-bit precision cost up to 2
  // levels and whose SIMD writes ran past the end of our buffer on widths
  // that are not a multiple of 16 ("malloc(): invalid size").
  constexpr int kFlags = SWS_BICUBIC | SWS_FULL_CHR_H_INT | SWS_ACCURATE_RND | SWS_BITEXACT;
  SwsContext* before = sws_.get();
  sws_.reset(sws_getCachedContext(sws_.release(), f->width, f->height, AVPixelFormat(f->format), w, h, AV_PIX_FMT_RGB24,
                                  kFlags, nullptr, nullptr, nullptr));
  if (!sws_) throw Error(path_.string() + ": cannot convert pixel format to RGB");
  // The stream's own matrix and range (swscale assumes BT.601 otherwise),
  // as the GPU conversion uses them.
  if (sws_.get() != before || colour.sws_colorspace != sws_colour_.sws_colorspace ||
      full_range != sws_colour_.full_range) {
    sws_setColorspaceDetails(sws_.get(), sws_getCoefficients(colour.sws_colorspace), full_range,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    sws_colour_ = FrameColour{colour.sws_colorspace, full_range};
  }
  clip::Image img;
  img.width = w;
  img.height = h;
  // Room past the last row in case a swscale path writes whole SIMD blocks
  // (its unscaled YUV->RGB code overran by up to 32 bytes), then trimmed.
  constexpr size_t kSlack = 64;
  const size_t bytes = size_t(w) * h * 3;
  img.rgb.resize(bytes + kSlack);
  uint8_t* dst[4] = {img.rgb.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {w * 3, 0, 0, 0};
  sws_scale(sws_.get(), f->data, f->linesize, 0, f->height, dst, dst_stride);
  img.rgb.resize(bytes);
  return rotate_clockwise(img, rotation_);
}

void OpenVideo::thumbnail(const AVFrame* f, uint8_t* out) {
  if (f->hw_frames_ctx) {
    if (!host_frame_) host_frame_.reset(av_frame_alloc());
    if (!host_frame_) throw std::bad_alloc();
    av_frame_unref(host_frame_.get());
    const int rc = av_hwframe_transfer_data(host_frame_.get(), f, 0);
    if (rc < 0) fail("cannot download a frame from the GPU", rc);
    f = host_frame_.get();
  }
  const int n = SceneSampler::kSide;
  thumb_sws_.reset(sws_getCachedContext(thumb_sws_.release(), f->width, f->height, AVPixelFormat(f->format), n, n,
                                        AV_PIX_FMT_GRAY8, SWS_AREA, nullptr, nullptr, nullptr));
  if (!thumb_sws_) throw Error(path_.string() + ": cannot convert pixel format");
  uint8_t* dst[4] = {out, nullptr, nullptr, nullptr};
  int stride[4] = {n, 0, 0, 0};
  sws_scale(thumb_sws_.get(), f->data, f->linesize, 0, f->height, dst, stride);
}

VideoInfo sample_frames(OpenVideo& v, const SamplingOptions& sampling, const std::atomic<bool>* stop,
                        const std::function<void(const AVFrame*, double)>& on_kept, const VideoPart& part) {
  const bool keyframes = sampling.mode == Sampling::keyframes;
  // A part: frames shown before it (the key frame's leading pictures, the
  // pre-roll of an earlier key frame the seek landed on) are the part
  // before's; those from its end on, the next one's.
  if (part.from != INT64_MIN && !v.start_at(part.from)) v.fail("cannot seek to a part's start", AVERROR(EINVAL));
  const double from_seconds = part.from != INT64_MIN ? v.seconds_of(part.from) : 0.0;
  bool in_part = part.from == INT64_MIN;
  EverySampler every(sampling.mode == Sampling::every ? sampling.every : 1.0);
  SceneSampler scenes(sampling.scene_threshold);
  uint8_t thumb[SceneSampler::kSide * SceneSampler::kSide];
  double last_time = -1.0;
  for (;;) {
    if (sampling.mode == Sampling::every) v.skip_nonref_before(std::max(every.next(), from_seconds));
    const AVFrame* f = v.next();
    if (!f) break;
    if (stop && stop->load()) break;
    const int64_t pts = f->best_effort_timestamp;
    if (pts != AV_NOPTS_VALUE && pts >= part.to) break;
    if (!in_part && (pts == AV_NOPTS_VALUE || pts < part.from)) continue;
    in_part = true;
    if (keyframes && !f->key_frame) continue;  // decoders that ignore skip_frame
    double t = v.time_of(f);
    if (std::isnan(t)) t = last_time < 0 ? 0.0 : last_time;  // no pts: treat as the previous instant
    // Pre-roll before the stream start (edit lists) is not part of the video.
    if (t < -1e-6) continue;
    t = std::max(t, 0.0);
    bool keep = false;
    switch (sampling.mode) {
      case Sampling::every: keep = every.keep(t); break;
      case Sampling::keyframes: keep = true; break;  // only key frames get here
      case Sampling::scenes:
        v.thumbnail(f, thumb);
        keep = scenes.keep(thumb);
        break;
    }
    last_time = t;
    if (keep) on_kept(f, t);
  }
  VideoInfo info = v.info();
  info.decoded = v.decoded();
  if (v.decoded() == 0 && !(stop && stop->load())) {
    throw Error(v.path().string() +
                (v.bad_packets() ? ": damaged: no frame could be decoded" : ": the video stream has no frames"));
  }
  if (info.duration <= 0.0 && last_time > 0.0) info.duration = last_time;
  return info;
}

}  // namespace clipfind::video::detail
