// The CUDA backend: the Backend adapter over the pieces in this folder.
//   device.cpp         whether a GPU is usable, and which
//   weight_upload.cpp  the weights converted once and kept on the GPU
//   tower.cpp          the towers' passes on the scratch buffers (the per-layer plan is there)
//   graph_cache.cpp    passes captured into CUDA graphs and replayed
//   resources.cpp      the stream, the cuBLASLt runner, the memory tally
// What stays here: host and device inputs into the scratch buffers
// (pinned staging, GPU preprocessing of 8-bit frames), one pass, results out.
#include "clip/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "clip/cuda/batch_bucket.h"
#include "clip/cuda/device.h"
#include "clip/cuda/frame_upload.h"
#include "clip/cuda/gpu_preprocess.h"
#include "clip/cuda/graph_cache.h"
#include "clip/cuda/profiler.h"
#include "clip/cuda/resources.h"
#include "clip/cuda/tower.h"
#include "clip/error.h"

namespace clip {
namespace {

class CudaBackendImpl final : public CudaBackend {
 public:
  CudaBackendImpl(const ClipConfig& config, const ModelWeights& weights, const CudaOptions& options,
                  const cuda::Tuning& tuning)
      : config_(config), precision_(options.precision), tuning_(tuning), res_(options.device, tuning_) {
    CUDA_CHECK(cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming));
    towers_.emplace(config_, weights, precision_, tuning_, res_, prof_, graphs_);
  }

  ~CudaBackendImpl() override {
    cudaSetDevice(res_.device());
    cudaStreamSynchronize(res_.stream());
    graphs_.clear();
    if (staged_) cudaEventDestroy(staged_);
  }

  std::string name() const override { return device() + " " + precision_name(precision_); }
  std::string device() const override { return "cuda:" + std::to_string(res_.device()); }
  Precision precision() const override { return precision_; }
  void* stream() const override { return res_.stream(); }
  void synchronize() override {
    res_.make_current();
    res_.synchronize();
  }
  const cuda::Tuning& tuning() const override { return tuning_; }
  size_t weight_bytes() const override { return towers_->weight_bytes(); }
  size_t allocated_bytes() const override { return res_.allocated_bytes(); }

  Tensor encode_images(const Tensor& pixels) override {
    res_.make_current();
    const VisionConfig& c = towers_->vision_config();
    if (pixels.shape.size() != 4 || pixels.shape[1] != c.num_channels || pixels.shape[2] != c.image_size ||
        pixels.shape[3] != c.image_size)
      throw Error("CUDA backend: pixels have shape " + cuda::dims(pixels.shape) + ", expected [n, " +
                  std::to_string(c.num_channels) + ", " + std::to_string(c.image_size) + ", " +
                  std::to_string(c.image_size) + "]");
    const int n = static_cast<int>(pixels.shape[0]);
    Tensor out({n, config_.projection_dim});
    if (n == 0) return out;
    const int rows = ensure_vision(n);
    wait_staging_free();
    host_in_.reserve(pixels.numel() * 4);
    std::memcpy(host_in_.get(), pixels.ptr(), pixels.numel() * 4);
    CUDA_CHECK(cudaMemcpyAsync(towers_->scratch().pixels.get(), host_in_.get(), pixels.numel() * 4,
                               cudaMemcpyHostToDevice, res_.stream()));
    CUDA_CHECK(cudaEventRecord(staged_, res_.stream()));
    run(cuda::Tower::Vision, rows, 0);
    return download(out);
  }

  bool takes_rgb() const override {
    return tuning_.gpu_preprocess && config_.vision && config_.vision->num_channels == 3;
  }

  Tensor encode_rgb(const std::vector<ImageView>& images,
                    const std::vector<const detail::PreprocessPlan*>& plans) override {
    res_.make_current();
    return encode_frames(
        images, plans, [](const ImageView& v) { return cuda::FrameUploader::slot_bytes(v); },
        [&](const ImageView* first, int m) { return uploader_.upload(first, m); }, [&] { uploader_.release(); });
  }

  bool takes_device_rgb() const override { return config_.vision && config_.vision->num_channels == 3; }

  // Frames already on this device: the preprocessing reads them where they
  // are. The device address is only compared (frames evenly spaced go in
  // one launch), never dereferenced on the host.
  Tensor encode_device_rgb(const std::vector<DeviceImageView>& images,
                           const std::vector<const detail::PreprocessPlan*>& plans) override {
    res_.make_current();
    return encode_frames(
        images, plans, [](const DeviceImageView&) { return size_t(0); },
        [](const DeviceImageView* first, int m) {
          std::vector<const uint8_t*> at(static_cast<size_t>(m));
          for (int i = 0; i < m; ++i) at[size_t(i)] = first[i].rgb;
          return at;
        },
        [] {});
  }

  Tensor encode_texts(const TextBatch& batch) override {
    res_.make_current();
    Tensor out({batch.count, config_.projection_dim});
    if (batch.count == 0) return out;
    upload_text(batch);
    run(cuda::Tower::Text, batch.count, batch.seq_len);
    return download(out);
  }

  void encode_images_device(const float* pixels, int n, float* out) override {
    res_.make_current();
    const VisionConfig& c = towers_->vision_config();
    if (n <= 0) return;
    const int rows = ensure_vision(n);
    const size_t bytes = size_t(n) * c.num_channels * c.image_size * c.image_size * 4;
    // Into the fixed input buffer so that a captured graph can replay (a
    // device-to-device copy: ~0.2 ms per GB, small next to the tower).
    CUDA_CHECK(
        cudaMemcpyAsync(towers_->scratch().pixels.get(), pixels, bytes, cudaMemcpyDeviceToDevice, res_.stream()));
    run(cuda::Tower::Vision, rows, 0);
    CUDA_CHECK(cudaMemcpyAsync(out, towers_->scratch().out.get(), size_t(n) * config_.projection_dim * 4,
                               cudaMemcpyDeviceToDevice, res_.stream()));
  }

  void encode_texts_device(const TextBatch& batch, float* out) override {
    res_.make_current();
    if (batch.count == 0) return;
    upload_text(batch);
    run(cuda::Tower::Text, batch.count, batch.seq_len);
    CUDA_CHECK(cudaMemcpyAsync(out, towers_->scratch().out.get(), size_t(batch.count) * config_.projection_dim * 4,
                               cudaMemcpyDeviceToDevice, res_.stream()));
  }

 private:
  void upload_text(const TextBatch& batch) {
    towers_->ensure_text(batch);
    const int n = batch.count, seq = batch.seq_len;
    const size_t id_bytes = size_t(n) * seq * 4;
    wait_staging_free();
    host_in_.reserve(id_bytes + size_t(n) * 4);
    int32_t* staged = host_in_.as<int32_t>();
    std::memcpy(staged, batch.ids.data(), id_bytes);
    int32_t* rows = staged + size_t(n) * seq;
    for (int b = 0; b < n; ++b) rows[b] = b * seq + batch.pool_at[b];
    const cuda::Scratch& s = towers_->scratch();
    CUDA_CHECK(cudaMemcpyAsync(s.ids.get(), staged, id_bytes, cudaMemcpyHostToDevice, res_.stream()));
    CUDA_CHECK(cudaMemcpyAsync(s.rows.get(), rows, size_t(n) * 4, cudaMemcpyHostToDevice, res_.stream()));
    CUDA_CHECK(cudaEventRecord(staged_, res_.stream()));
  }

  // encode_rgb for images wherever they are (View: ImageView on the host,
  // DeviceImageView on this GPU). Chunks of up to kRgbChunk images (and
  // ~kRgbChunkBytes of staged_bytes(view), the host's staging slots):
  // place(first, m) makes the chunk's frames readable on the compute stream
  // (uploading host frames on the copy stream, so chunk k+1 travels while
  // chunk k is preprocessed and encoded) and gives their device addresses;
  // done() once the chunk's reads are enqueued. Results land in pinned
  // memory, read once at the end, after which no frame is read any more.
  template <class View, class StagedBytes, class Place, class Done>
  Tensor encode_frames(const std::vector<View>& images, const std::vector<const detail::PreprocessPlan*>& plans,
                       StagedBytes staged_bytes, Place place, Done done) {
    const VisionConfig& c = towers_->vision_config();
    if (plans.size() != images.size()) throw Error("CUDA backend: one preprocessing plan per image expected");
    for (const auto* p : plans)
      if (p->crop_w != c.image_size || p->crop_h != c.image_size)
        throw Error("CUDA backend: preprocessing makes " + std::to_string(p->crop_w) + "x" + std::to_string(p->crop_h) +
                    " images but the model takes " + std::to_string(c.image_size) + "x" + std::to_string(c.image_size));
    const size_t n = images.size(), dim = config_.projection_dim;
    Tensor out({int64_t(n), int64_t(dim)});
    if (n == 0) return out;
    host_out_.reserve(n * dim * 4);
    const size_t pixels_per_image = size_t(3) * c.image_size * c.image_size;
    for (size_t start = 0; start < n;) {
      size_t end = start, bytes = 0;
      while (end < n && end - start < kRgbChunk &&
             (end == start || bytes + staged_bytes(images[end]) <= kRgbChunkBytes))
        bytes += staged_bytes(images[end++]);
      const int m = int(end - start);
      const int rows = ensure_vision(m);
      const std::vector<const uint8_t*> frames = place(&images[start], m);
      // Runs of images of one size, evenly spaced, go through in one launch.
      for (int i = 0; i < m;) {
        const View& a = images[start + i];
        const size_t stride = cuda::FrameUploader::slot_bytes(ImageView{a.width, a.height, nullptr});
        int j = i + 1;
        while (j < m && images[start + j].width == a.width && images[start + j].height == a.height &&
               frames[j] == frames[j - 1] + stride && j - i < 65535)
          ++j;
        preprocessor_.run(res_.exec(), *plans[start + i], a.width, a.height, frames[i], stride, j - i,
                          towers_->scratch().pixels.as<float>() + size_t(i) * pixels_per_image);
        i = j;
      }
      done();
      run(cuda::Tower::Vision, rows, 0);
      CUDA_CHECK(cudaMemcpyAsync(host_out_.as<float>() + start * dim, towers_->scratch().out.get(), size_t(m) * dim * 4,
                                 cudaMemcpyDeviceToHost, res_.stream()));
      start = end;
    }
    res_.synchronize();
    std::memcpy(out.ptr(), host_out_.get(), n * dim * 4);
    return out;
  }

  // The pinned input buffer is read by asynchronous copies: before writing
  // it again, wait until the last copies from it are done (not for the whole
  // forward pass, which keeps back-to-back calls overlapped).
  void wait_staging_free() { CUDA_CHECK(cudaEventSynchronize(staged_)); }

  Tensor download(Tensor& out) {
    const size_t bytes = out.numel() * 4;
    host_out_.reserve(bytes);
    CUDA_CHECK(
        cudaMemcpyAsync(host_out_.get(), towers_->scratch().out.get(), bytes, cudaMemcpyDeviceToHost, res_.stream()));
    res_.synchronize();
    std::memcpy(out.ptr(), host_out_.get(), bytes);
    return std::move(out);
  }

  // Sizes the vision buffers for n images and returns the rows a pass over
  // them runs at: n rounded up to a few sizes (batch_bucket.h), so that
  // varying batches reuse GEMM plans and graphs. The rows past n are not
  // copied out.
  int ensure_vision(int n) {
    const int rows = tuning_.batch_buckets ? cuda::batch_bucket(n) : n;
    towers_->ensure_vision(rows);
    return rows;
  }

  // One pass of tower t over the inputs in the scratch buffers: eagerly,
  // or through the graph cache (graph_cache.h), or with the op profiler.
  void run(cuda::Tower t, int n, int seq) {
    towers_->prepare(t, n);
    const cuda::GraphCache::Key key{int(t), n, seq};
    const auto forward = [&] { towers_->forward(t, n, seq); };
    if (!prof_.enabled()) return graphs_.run(key, forward);
    graphs_.run_profiled(key,
                         std::string(t == cuda::Tower::Vision ? "vision" : "text") + " n=" + std::to_string(n) +
                             (seq ? " seq=" + std::to_string(seq) : ""),
                         forward);
  }

  static constexpr size_t kRgbChunk = 64;
  static constexpr size_t kRgbChunkBytes = size_t(256) << 20;

  ClipConfig config_;
  Precision precision_;
  cuda::Tuning tuning_;
  cuda::CudaResources res_;
  cuda::GpuPreprocessor preprocessor_{res_};
  cuda::FrameUploader uploader_{res_};
  cuda::OpProfiler prof_{tuning_.profile};
  cuda::GraphCache graphs_{res_.exec(), tuning_.graphs, prof_};
  std::optional<cuda::Towers> towers_;  // made last: its weight tally leaves the buffers above out
  cuda::PinnedBuffer host_in_, host_out_;
  cudaEvent_t staged_ = nullptr;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const ClipConfig& config, const ModelWeights& weights,
                                           const CudaOptions& options) {
  cuda::require_device(options.device);
  const cuda::Tuning tuning = options.tuning ? *options.tuning : cuda::Tuning::from_environment();
  return std::make_unique<CudaBackendImpl>(config, weights, options, tuning);
}

}  // namespace clip
