#include "video/gpu_decoder.h"

extern "C" {
#include <libavutil/hwcontext.h>
#include <libavutil/hwcontext_cuda.h>
#include <libavutil/pixdesc.h>
}
#include <dlfcn.h>

#include "video/chroma_upsample.h"
#include "video/open_video.h"

namespace clipfind::video {

namespace {

using detail::BufferUnref;
using detail::OpenVideo;

// The device's primary CUDA context, retained through the driver library
// (loaded at run time, as FFmpeg loads it, so nothing links libcuda).
// FFmpeg's own AV_CUDA_USE_PRIMARY_CONTEXT would insist on its scheduling
// flags and refuse a context the engine has already started with others.
class PrimaryContext {
 public:
  explicit PrimaryContext(int device) {
    lib_ = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib_) throw GpuDecodeError("NVDEC: no CUDA driver (libcuda.so.1)", 0);
    auto init = reinterpret_cast<CUresult (*)(unsigned)>(dlsym(lib_, "cuInit"));
    auto get = reinterpret_cast<CUresult (*)(CUdevice*, int)>(dlsym(lib_, "cuDeviceGet"));
    auto retain = reinterpret_cast<CUresult (*)(CUcontext*, CUdevice)>(dlsym(lib_, "cuDevicePrimaryCtxRetain"));
    release_ = reinterpret_cast<CUresult (*)(CUdevice)>(dlsym(lib_, "cuDevicePrimaryCtxRelease_v2"));
    CUdevice dev = 0;
    if (!init || !get || !retain || !release_ || init(0) != CUDA_SUCCESS || get(&dev, device) != CUDA_SUCCESS ||
        retain(&ctx_, dev) != CUDA_SUCCESS) {
      dlclose(lib_);
      throw GpuDecodeError("NVDEC: CUDA device " + std::to_string(device) + " is not usable", 0);
    }
    dev_ = dev;
  }
  ~PrimaryContext() {
    release_(dev_);
    dlclose(lib_);
  }
  PrimaryContext(const PrimaryContext&) = delete;
  PrimaryContext& operator=(const PrimaryContext&) = delete;
  CUcontext get() const { return ctx_; }

 private:
  void* lib_ = nullptr;
  CUresult (*release_)(CUdevice) = nullptr;
  CUcontext ctx_ = nullptr;
  CUdevice dev_ = 0;
};

class Stream {
 public:
  explicit Stream(int device) {
    if (cudaSetDevice(device) != cudaSuccess ||
        cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) != cudaSuccess) {
      throw GpuDecodeError("NVDEC: cannot create a CUDA stream on device " + std::to_string(device), 0);
    }
  }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// An FFmpeg CUDA device on that context whose work (NVDEC's post-processing
// into the output surface) goes to `stream`.
std::unique_ptr<AVBufferRef, BufferUnref> cuda_device(CUcontext ctx, cudaStream_t stream) {
  std::unique_ptr<AVBufferRef, BufferUnref> ref(av_hwdevice_ctx_alloc(AV_HWDEVICE_TYPE_CUDA));
  if (!ref) throw GpuDecodeError("NVDEC: FFmpeg was built without CUDA", 0);
  auto* hw = static_cast<AVCUDADeviceContext*>(reinterpret_cast<AVHWDeviceContext*>(ref->data)->hwctx);
  hw->cuda_ctx = ctx;
  hw->stream = reinterpret_cast<CUstream>(stream);
  const int rc = av_hwdevice_ctx_init(ref.get());
  if (rc < 0) throw GpuDecodeError("NVDEC: cannot set up FFmpeg's CUDA device (" + detail::av_error(rc) + ")", 0);
  return ref;
}

// Why NVDEC turned the stream down, for the error message.
struct Refusal {
  std::string why;
};

std::string describe_stream(const AVCodecContext* c) {
  const char* profile = avcodec_profile_name(c->codec_id, c->profile);
  const char* fmt = av_get_pix_fmt_name(c->sw_pix_fmt);
  return std::string(avcodec_get_name(c->codec_id)) + (profile ? std::string(" ") + profile : "") + " " +
         std::to_string(c->width) + "x" + std::to_string(c->height) + (fmt ? std::string(" ") + fmt : "");
}

// get_format: CUDA frames or nothing. FFmpeg offers CUDA while the NVDEC
// hwaccel is compiled in; when its set-up fails (profile, size, sessions)
// FFmpeg asks again without it, and we refuse rather than decode on the CPU.
AVPixelFormat pick_cuda(AVCodecContext* c, const AVPixelFormat* formats) {
  for (const AVPixelFormat* p = formats; *p != AV_PIX_FMT_NONE; ++p) {
    if (*p == AV_PIX_FMT_CUDA) return *p;
  }
  static_cast<Refusal*>(c->opaque)->why = "NVDEC cannot decode " + describe_stream(c);
  return AV_PIX_FMT_NONE;
}

bool has_nvdec(const AVCodec* codec) {
  for (int i = 0;; ++i) {
    const AVCodecHWConfig* cfg = avcodec_get_hw_config(codec, i);
    if (!cfg) return false;
    if (cfg->device_type == AV_HWDEVICE_TYPE_CUDA && (cfg->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX)) {
      return true;
    }
  }
}

// The colour conversion's description of a decoded CUDA frame; throws
// (as a plain message) what the GPU conversion does not handle.
clip::cuda::Yuv420Frame describe_frame(const AVFrame* f, int rotation) {
  if (f->format != AV_PIX_FMT_CUDA || !f->hw_frames_ctx) {
    throw std::string("the decoder returned a frame outside GPU memory (") +
        (av_get_pix_fmt_name(AVPixelFormat(f->format)) ?: "?") + ")";
  }
  const auto* frames = reinterpret_cast<const AVHWFramesContext*>(f->hw_frames_ctx->data);
  clip::cuda::Yuv420Frame y;
  if (frames->sw_format == AV_PIX_FMT_NV12)
    y.bit_depth = 8;
  else if (frames->sw_format == AV_PIX_FMT_P010)
    y.bit_depth = 10;
  else
    throw std::string("NVDEC output ") + (av_get_pix_fmt_name(frames->sw_format) ?: "?") +
        " is converted on the CPU only";
  y.luma = f->data[0];
  y.luma_pitch = size_t(f->linesize[0]);
  y.chroma = f->data[1];
  y.chroma_pitch = size_t(f->linesize[1]);
  y.width = f->width;
  y.height = f->height;
  // The matrix swscale would take for this colourspace (sws_getCoefficients'
  // table: RGB and BT.709 use 709, BT.2020 2020, FCC and SMPTE 240M their
  // own, everything else BT.601).
  const detail::FrameColour colour = detail::frame_colour(f);
  switch (f->colorspace) {
    case AVCOL_SPC_RGB:
    case AVCOL_SPC_BT709: y.matrix = clip::cuda::YuvMatrix::bt709; break;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: y.matrix = clip::cuda::YuvMatrix::bt2020; break;
    case AVCOL_SPC_FCC:
    case AVCOL_SPC_SMPTE240M:
      throw std::string("colour matrix ") + av_color_space_name(f->colorspace) + " is converted on the CPU only";
    default: y.matrix = clip::cuda::YuvMatrix::bt601; break;
  }
  y.full_range = colour.full_range;
  const detail::ChromaSiting siting = detail::chroma_siting(f);  // as the CPU path reads it
  y.chroma_centred_x = siting.centred_x;
  y.chroma_centred_y = siting.centred_y;
  y.rotation = rotation;
  return y;
}

}  // namespace

VideoInfo decode_video_gpu(const std::filesystem::path& path, const GpuDecodeOptions& o,
                           const std::function<void(const GpuFrame&)>& on_frame) {
  const std::string name = path.string() + ": ";
  PrimaryContext context(o.device);
  Stream stream(o.device);
  auto device = cuda_device(context.get(), stream.get());
  Refusal refusal;
  const auto configure = [&](AVCodecContext* c) {
    if (!has_nvdec(c->codec)) throw GpuDecodeError(name + "no NVDEC decoder for " + avcodec_get_name(c->codec_id), 0);
    c->hw_device_ctx = av_buffer_ref(device.get());
    if (!c->hw_device_ctx) throw std::bad_alloc();
    c->opaque = &refusal;
    c->get_format = pick_cuda;
    c->thread_count = 1;  // the CPU only parses headers; NVDEC decodes
  };
  // Errors opening the file are no NVDEC matter: they stay video::Error.
  OpenVideo v(path, 1, o.sampling.mode == Sampling::keyframes, configure);
  v.set_strict(true);
  // Frames nothing refers to are still skipped, but decoding does not
  // restart at later key frames: a restart flushes the decoder, and FFmpeg's
  // H.264 decoder then sets NVDEC up anew (h264_decode_flush clears its
  // context). On the H100 (2026-12-07), with restarts, `clipfind index
  // --every 1` on H.264 ran at 90x realtime (201-283x before them) with
  // NVDEC taking 9 files of 32, and `--every 5` crashed.
  v.set_key_frame_jumps(false);
  long delivered = 0;
  try {
    return detail::sample_frames(
        v, o.sampling, o.stop,
        [&](const AVFrame* f, double t) {
          GpuFrame g;
          g.time = t;
          try {
            g.picture = describe_frame(f, v.rotation());
          } catch (const std::string& why) {
            throw GpuDecodeError(name + why, delivered);
          }
          g.stream = stream.get();
          on_frame(g);
          ++delivered;
          // What on_frame enqueued on the stream reads the planes, which go
          // back to NVDEC when the next frame is received.
          const cudaError_t err = cudaStreamSynchronize(stream.get());
          if (err != cudaSuccess) throw GpuDecodeError(name + "CUDA error: " + cudaGetErrorString(err), delivered);
        },
        o.part);
  } catch (const GpuDecodeError&) {
    throw;
  } catch (const Error& e) {
    throw GpuDecodeError(refusal.why.empty() ? std::string(e.what()) + " (NVDEC)" : name + refusal.why, delivered);
  }
}

bool gpu_decoding_available(int device, std::string* why) {
  try {
    const AVCodec* h264 = avcodec_find_decoder(AV_CODEC_ID_H264);
    if (!h264 || !has_nvdec(h264)) throw GpuDecodeError("this FFmpeg has no NVDEC H.264 decoder", 0);
    PrimaryContext context(device);
    Stream stream(device);
    cuda_device(context.get(), stream.get());
    return true;
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return false;
  }
}

}  // namespace clipfind::video
