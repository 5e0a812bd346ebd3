// The CUDA backend: weights converted once and kept on the GPU, and the two
// towers as a sequence of launches on one stream (plain C++: the kernels
// live in the .cu files, each behind its small .cuh launcher).
//
// Per layer, with h the float32 residual stream [tokens, hidden] and T the
// compute precision (float32 for fp32/tf32, else fp16/bf16):
//   x   = LN1(h)                          layernorm      -> T
//   qkv = x Wqkv^T + bqkv                 cuBLASLt, bias epilogue
//   x   = attention(qkv)                  attention kernel (fp32 softmax)
//   h  += x Wo^T + bo                     cuBLASLt, bias + residual epilogue
//   x   = LN2(h)
//   y   = act(x W1^T + b1)                cuBLASLt + bias_act (exact activations)
//   h  += y W2^T + b2                     cuBLASLt, bias + residual epilogue
// On Hopper in fp16, each GEMM may instead be an sm90/ CUTLASS kernel with
// the same epilogue (and fc1's activation) fused, where it times faster, and
// fc1 over few rows (a batch-1 image) always is (gemm.h). Large passes there
// fold LN1/LN2 into those kernels (gemm.h, LnFold; encoder()). LN1 and LN2's
// gamma/beta live in the qkv and fc1 weights on every path (fold_norm.h).
// Passes of at most 16 rows (text queries, the pooled rows) run each linear
// layer as one small_linear launch with the bias, activation or residual
// fused, and up to 8 rows the LayerNorm before it too (linear_step).
// Only the pooled row of each item (class token, end-of-text token) reaches
// the output, so the last layer gathers those rows after attention and runs
// its out-projection, LN2 and MLP on n rows instead of n*seq.
// Keeping h in float32 is what holds fp16/bf16 close to the fp32 result:
// only the GEMM inputs are rounded, never the running sum.
#include "clip/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <tuple>

#include "clip/cuda/attention.cuh"
#include "clip/cuda/bias_act.cuh"
#include "clip/cuda/convert.cuh"
#include "clip/cuda/embed.cuh"
#include "clip/cuda/fold_norm.h"
#include "clip/cuda/frame_upload.h"
#include "clip/cuda/gather.cuh"
#include "clip/cuda/gpu_preprocess.h"
#include "clip/cuda/layernorm.cuh"
#include "clip/cuda/ln_fold.cuh"
#include "clip/cuda/profiler.h"
#include "clip/cuda/resources.h"
#include "clip/cuda/small_linear.cuh"
#include "clip/error.h"

namespace clip {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::FP32;
  if (name == "tf32") return Precision::TF32;
  if (name == "fp16") return Precision::FP16;
  if (name == "bf16") return Precision::BF16;
  throw Error("unknown precision '" + name + "' (expected fp32, tf32, fp16 or bf16)");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::FP16: return "fp16";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

bool cuda_available(std::string* why) {
  auto fail = [&](const std::string& msg) {
    if (why) *why = msg;
    cudaGetLastError();  // clear the sticky-free error state the query left
    return false;
  };
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaErrorInsufficientDriver) {
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    if (driver == 0) return fail("no NVIDIA driver found (libcuda.so is not installed or not loadable)");
    return fail("the NVIDIA driver is too old: it supports CUDA " + std::to_string(driver / 1000) + "." +
                std::to_string(driver % 1000 / 10) + ", this build needs CUDA " +
                std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10));
  }
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) return fail("no CUDA GPU found");
  if (err != cudaSuccess)
    return fail(std::string("CUDA is unavailable: ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return fail("cannot query CUDA device 0");
  if (prop.major < 8)
    return fail(std::string("GPU ") + prop.name + " has compute capability " + std::to_string(prop.major) + "." +
                std::to_string(prop.minor) + "; the CUDA backend needs 8.0 (Ampere) or newer");
  std::string k;
  if (!cuda::kernels_runnable(&k)) return fail(k);
  if (why) why->clear();
  return true;
}

namespace {

using cuda::DeviceBuffer;
using cuda::DType;
using cuda::GemmCompute;
using cuda::GemmShape;

struct DevNorm {
  DeviceBuffer gamma, beta;  // float32 [hidden]
};

struct DevLinear {
  DeviceBuffer w;       // T [out, in]
  DeviceBuffer bias;    // float32 [out], or empty
  DeviceBuffer bias_t;  // T [out] for a 16-bit GEMM output's epilogue (QKV), or empty
  int out = 0, in = 0;
};

// ln1 and ln2 hold ones and zeros: their gamma and beta are in qkv and fc1
// (fold_norm.h).
struct DevLayer {
  DevNorm ln1, ln2;
  DevLinear qkv;  // q, k, v stacked: [3*hidden, hidden]
  DevLinear out, fc1, fc2;
};

struct DevTower {
  std::vector<DevLayer> layers;
  DevLinear projection;  // [projection_dim, hidden], no bias
};

struct DevVision : DevTower {
  DeviceBuffer patch_w;  // T [hidden, channels*patch*patch]
  DeviceBuffer cls;      // float32 [hidden]
  DeviceBuffer pos;      // float32 [num_positions, hidden]
  DevNorm pre_ln, post_ln;
};

struct DevText : DevTower {
  DeviceBuffer tok;  // T [vocab, hidden]
  DeviceBuffer pos;  // float32 [max_positions, hidden]
  DevNorm final_ln;
};

// clip_cuda stands alone (clip_engine links it, not the reverse), so it
// formats shapes itself rather than calling clip::shape_str.
std::string dims(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void expect_shape(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what) {
  if (t.shape != shape || t.data.size() != Tensor::numel_of(shape))
    throw Error("CUDA backend: " + what + " has shape " + dims(t.shape) + ", expected " + dims(shape));
}

// Uploads float32 host tensors and converts them on the GPU into their
// final type; one staging buffer of the largest tensor's size is reused.
// Every copy is cudaMemcpyAsync on the backend's stream: a plain cudaMemcpy
// from pageable memory may return before its DMA has landed, and the
// conversion kernel on our (non-blocking) stream would then read a staging
// buffer still half old (seen: a partly garbage token-embedding table).
class Uploader {
 public:
  Uploader(cuda::CudaResources& res, DType act) : res_(res), act_(act) {}

  DeviceBuffer f32(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what) {
    expect_shape(t, shape, what);
    DeviceBuffer b = res_.alloc(t.numel() * 4);
    copy(b.get(), t.ptr(), t.numel() * 4);
    return b;
  }
  // Several tensors stacked along the first dimension, converted to `type`.
  DeviceBuffer stacked(const std::vector<const Tensor*>& parts, DType type) {
    size_t n = 0;
    for (auto* p : parts) n += p->numel();
    if (type == DType::F32) {
      DeviceBuffer b = res_.alloc(n * 4);
      size_t off = 0;
      for (auto* p : parts) {
        copy(b.as<float>() + off, p->ptr(), p->numel() * 4);
        off += p->numel();
      }
      return b;
    }
    if (staging_.bytes() < n * 4) {
      res_.synchronize();  // the old staging buffer may still be read
      staging_.reset();
      staging_ = DeviceBuffer(n * 4, nullptr);  // temporary: not counted
    }
    size_t off = 0;
    for (auto* p : parts) {
      copy(staging_.as<float>() + off, p->ptr(), p->numel() * 4);
      off += p->numel();
    }
    DeviceBuffer b = res_.alloc(n * cuda::dtype_size(type));
    cuda::convert(res_.exec(), staging_.get(), DType::F32, b.get(), type, n);  // same stream: after the copies
    res_.synchronize();  // the staging buffer is reused by the next call
    return b;
  }
  DeviceBuffer act(const Tensor& t, const std::vector<int64_t>& shape, const std::string& what) {
    expect_shape(t, shape, what);
    return stacked({&t}, act_);
  }
  DevNorm norm(const NormWeights& n, int hidden, const std::string& what) {
    return {f32(n.weight, {hidden}, what + ".weight"), f32(n.bias, {hidden}, what + ".bias")};
  }
  // A norm whose gamma and beta went into the next layer: ones and zeros.
  DevNorm unit_norm(const NormWeights& n, int hidden, const std::string& what) {
    expect_shape(n.weight, {hidden}, what + ".weight");
    expect_shape(n.bias, {hidden}, what + ".bias");
    Tensor ones({hidden}), zeros({hidden});
    std::fill(ones.data.begin(), ones.data.end(), 1.f);
    return {f32(ones, {hidden}, what + ".weight"), f32(zeros, {hidden}, what + ".bias")};
  }

  DevLinear linear(const LinearWeights& l, int out, int in, const std::string& what, bool need_bias) {
    DevLinear d;
    d.out = out;
    d.in = in;
    d.w = act(l.weight, {out, in}, what + ".weight");
    if (!l.bias.empty()) d.bias = f32(l.bias, {out}, what + ".bias");
    else if (need_bias) throw Error("CUDA backend: " + what + ".bias is missing");
    return d;
  }
  DevLayer layer(const LayerWeights& w, const TowerConfig& c, const std::string& what) {
    const int H = c.hidden_size, I = c.intermediate_size;
    DevLayer d;
    d.ln1 = unit_norm(w.ln1, H, what + ".layer_norm1");
    d.ln2 = unit_norm(w.ln2, H, what + ".layer_norm2");
    LinearWeights qkv[3];
    int part = 0;
    for (auto [lin, name] : {std::pair{&w.q, "q_proj"}, {&w.k, "k_proj"}, {&w.v, "v_proj"}}) {
      const std::string lw = what + ".self_attn." + name;
      expect_shape(lin->weight, {H, H}, lw + ".weight");
      expect_shape(lin->bias, {H}, lw + ".bias");
      qkv[part++] = cuda::fold_norm(*lin, w.ln1, lw);
    }
    d.qkv.out = 3 * H;
    d.qkv.in = H;
    d.qkv.w = stacked({&qkv[0].weight, &qkv[1].weight, &qkv[2].weight}, act_);
    d.qkv.bias = stacked({&qkv[0].bias, &qkv[1].bias, &qkv[2].bias}, DType::F32);
    // The QKV output is 16-bit in fp16/bf16 mode; cuBLASLt's bias epilogue
    // then wants the bias in that type too.
    if (act_ != DType::F32) d.qkv.bias_t = stacked({&qkv[0].bias, &qkv[1].bias, &qkv[2].bias}, act_);
    d.out = linear(w.out, H, H, what + ".self_attn.out_proj", true);
    expect_shape(w.fc1.weight, {I, H}, what + ".mlp.fc1.weight");
    expect_shape(w.fc1.bias, {I}, what + ".mlp.fc1.bias");
    d.fc1 = linear(cuda::fold_norm(w.fc1, w.ln2, what + ".mlp.fc1"), I, H, what + ".mlp.fc1", true);
    d.fc2 = linear(w.fc2, H, I, what + ".mlp.fc2", true);
    return d;
  }

 private:
  // Ordered on the backend's stream; the host memory stays valid until the
  // constructor's final synchronize (the weights outlive the backend's
  // construction), and every staging reuse synchronises first.
  void copy(void* dst, const void* src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, res_.stream()));
  }

  cuda::CudaResources& res_;
  DType act_;
  DeviceBuffer staging_;
};

class CudaBackendImpl final : public CudaBackend {
 public:
  CudaBackendImpl(const ClipConfig& config, const ModelWeights& weights, const CudaOptions& options)
      : config_(config), precision_(options.precision), res_(options.device) {
    switch (precision_) {
      case Precision::FP32: act_ = DType::F32; compute_ = GemmCompute::F32; break;
      case Precision::TF32: act_ = DType::F32; compute_ = GemmCompute::TF32; break;
      case Precision::FP16: act_ = DType::F16; compute_ = GemmCompute::Mixed; break;
      case Precision::BF16: act_ = DType::BF16; compute_ = GemmCompute::Mixed; break;
    }
    CUDA_CHECK(cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming));
    // CLIPFIND_CUDA_ATTN=simt: the float32 SIMT attention kernel everywhere
    // (debugging aid: rules the tensor-core kernels in or out); =mma keeps
    // the mma.sync kernel where the wgmma one would run (attention_choice).
    if (cuda::env_is("CLIPFIND_CUDA_ATTN", "simt")) attn_impl_ = cuda::AttnImpl::Simt;
    // CLIPFIND_CUDA_PREPROCESS=0: images preprocessed on the CPU instead.
    gpu_preprocess_ = !cuda::env_is("CLIPFIND_CUDA_PREPROCESS", "0");
    graphs_ = options.graphs && !cuda::env_is("CLIPFIND_CUDA_GRAPHS", "0");
    // CLIPFIND_CUDA_SMALL_M=0: few-row passes through cuBLASLt and separate
    // LayerNorm/activation kernels instead of small_linear. A/B switches of
    // its use: CLIPFIND_CUDA_SMALL_ROWS=N (passes of up to N rows),
    // CLIPFIND_CUDA_SMALL_LN_ROWS=N (the LayerNorm in small_linear's prologue
    // up to N rows, beyond as a kernel of its own), CLIPFIND_CUDA_SMALL_MAX_K=N
    // (layers with more inputs go to cuBLASLt).
    small_rows_ = cuda::env_is("CLIPFIND_CUDA_SMALL_M", "0")
                      ? 0
                      : std::min(cuda::env_int("CLIPFIND_CUDA_SMALL_ROWS", small_rows_), cuda::kSmallMaxRows);
    small_ln_rows_ = cuda::env_int("CLIPFIND_CUDA_SMALL_LN_ROWS", small_ln_rows_);
    small_max_k_ = cuda::env_int("CLIPFIND_CUDA_SMALL_MAX_K", small_max_k_);
    const size_t before = res_.allocated_bytes();
    Uploader up(res_, act_);
    if (config.vision && weights.vision) load_vision(up, *config.vision, *weights.vision);
    if (config.text && weights.text) load_text(up, *config.text, *weights.text);
    res_.synchronize();
    weight_bytes_ = res_.allocated_bytes() - before;
  }

  ~CudaBackendImpl() override {
    cudaStreamSynchronize(res_.stream());
    clear_graphs();
    if (staged_) cudaEventDestroy(staged_);
  }

  std::string name() const override {
    return std::string("cuda:") + std::to_string(res_.device()) + " " + precision_name(precision_);
  }
  void* stream() const override { return res_.stream(); }
  void synchronize() override { res_.synchronize(); }
  Precision precision() const override { return precision_; }
  size_t weight_bytes() const override { return weight_bytes_; }
  size_t allocated_bytes() const override { return res_.allocated_bytes(); }

  // ---- host API --------------------------------------------------------------

  Tensor encode_images(const Tensor& pixels) override {
    const VisionConfig& c = vision_config();
    if (pixels.shape.size() != 4 || pixels.shape[1] != c.num_channels || pixels.shape[2] != c.image_size ||
        pixels.shape[3] != c.image_size)
      throw Error("CUDA backend: pixels have shape " + dims(pixels.shape) + ", expected [n, " +
                  std::to_string(c.num_channels) + ", " + std::to_string(c.image_size) + ", " +
                  std::to_string(c.image_size) + "]");
    const int n = static_cast<int>(pixels.shape[0]);
    Tensor out({n, config_.projection_dim});
    if (n == 0) return out;
    ensure_vision(n);
    wait_staging_free();
    host_in_.reserve(pixels.numel() * 4);
    std::memcpy(host_in_.get(), pixels.ptr(), pixels.numel() * 4);
    CUDA_CHECK(cudaMemcpyAsync(s_.pixels.get(), host_in_.get(), pixels.numel() * 4, cudaMemcpyHostToDevice,
                               res_.stream()));
    CUDA_CHECK(cudaEventRecord(staged_, res_.stream()));
    run(Tower::Vision, n, 0);
    return download(out);
  }

  bool takes_rgb() const override { return gpu_preprocess_ && config_.vision && config_.vision->num_channels == 3; }

  // Chunks of up to kRgbChunk images (and ~kRgbChunkBytes of pixels): the
  // upload of chunk k+1 (copy stream) runs while chunk k is preprocessed and
  // encoded (compute stream); results land in pinned memory, read once at
  // the end.
  Tensor encode_rgb(const std::vector<ImageView>& images,
                    const std::vector<const detail::PreprocessPlan*>& plans) override {
    const VisionConfig& c = vision_config();
    if (plans.size() != images.size()) throw Error("CUDA backend: one preprocessing plan per image expected");
    for (const auto* p : plans)
      if (p->crop_w != c.image_size || p->crop_h != c.image_size)
        throw Error("CUDA backend: preprocessing makes " + std::to_string(p->crop_w) + "x" +
                    std::to_string(p->crop_h) + " images but the model takes " + std::to_string(c.image_size) +
                    "x" + std::to_string(c.image_size));
    const size_t n = images.size(), dim = config_.projection_dim;
    Tensor out({int64_t(n), int64_t(dim)});
    if (n == 0) return out;
    host_out_.reserve(n * dim * 4);
    const size_t pixels_per_image = size_t(3) * c.image_size * c.image_size;
    for (size_t start = 0; start < n;) {
      size_t end = start, bytes = 0;
      while (end < n && end - start < kRgbChunk &&
             (end == start || bytes + cuda::FrameUploader::slot_bytes(images[end]) <= kRgbChunkBytes))
        bytes += cuda::FrameUploader::slot_bytes(images[end++]);
      const int m = int(end - start);
      ensure_vision(m);
      const std::vector<const uint8_t*> frames = uploader_.upload(&images[start], m);
      // Runs of images of one size, evenly spaced, go through in one launch.
      for (int i = 0; i < m;) {
        const ImageView& a = images[start + i];
        const size_t stride = cuda::FrameUploader::slot_bytes(a);
        int j = i + 1;
        while (j < m && images[start + j].width == a.width && images[start + j].height == a.height &&
               frames[j] == frames[j - 1] + stride && j - i < 65535)
          ++j;
        preprocessor_.run(res_.exec(), *plans[start + i], a.width, a.height, frames[i], stride, j - i,
                          s_.pixels.as<float>() + size_t(i) * pixels_per_image);
        i = j;
      }
      uploader_.release();
      run(Tower::Vision, m, 0);
      CUDA_CHECK(cudaMemcpyAsync(host_out_.as<float>() + start * dim, s_.out.get(), size_t(m) * dim * 4,
                                 cudaMemcpyDeviceToHost, res_.stream()));
      start = end;
    }
    res_.synchronize();
    std::memcpy(out.ptr(), host_out_.get(), n * dim * 4);
    return out;
  }

  Tensor encode_texts(const TextBatch& batch) override {
    Tensor out({batch.count, config_.projection_dim});
    if (batch.count == 0) return out;
    upload_text(batch);
    run(Tower::Text, batch.count, batch.seq_len);
    return download(out);
  }

  // ---- device API --------------------------------------------------------------

  void encode_images_device(const float* pixels, int n, float* out) override {
    const VisionConfig& c = vision_config();
    if (n <= 0) return;
    ensure_vision(n);
    const size_t bytes = size_t(n) * c.num_channels * c.image_size * c.image_size * 4;
    // Into the fixed input buffer so that a captured graph can replay (a
    // device-to-device copy: ~0.2 ms per GB, small next to the tower).
    CUDA_CHECK(cudaMemcpyAsync(s_.pixels.get(), pixels, bytes, cudaMemcpyDeviceToDevice, res_.stream()));
    run(Tower::Vision, n, 0);
    CUDA_CHECK(cudaMemcpyAsync(out, s_.out.get(), size_t(n) * config_.projection_dim * 4,
                               cudaMemcpyDeviceToDevice, res_.stream()));
  }

  void encode_texts_device(const TextBatch& batch, float* out) override {
    if (batch.count == 0) return;
    upload_text(batch);
    run(Tower::Text, batch.count, batch.seq_len);
    CUDA_CHECK(cudaMemcpyAsync(out, s_.out.get(), size_t(batch.count) * config_.projection_dim * 4,
                               cudaMemcpyDeviceToDevice, res_.stream()));
  }

 private:
  enum class Tower { Vision, Text };

  // Scratch buffers, grown to the largest batch seen. Any growth changes
  // addresses, so the captured graphs are dropped with it.
  struct Scratch {
    DeviceBuffer h;       // float32 [tokens, hidden]: the residual stream
    DeviceBuffer x;       // T [tokens, hidden]: norm outputs, attention output, patch embeddings
    DeviceBuffer wide;    // T [tokens, max(3*hidden, intermediate)] or the unfolded patches
    DeviceBuffer pixels;  // float32 [n, C, S, S]
    DeviceBuffer ids;     // int32 [n, seq]
    DeviceBuffer rows;    // int32 [n]: rows pooled by the final norm
    DeviceBuffer pooled_h;  // float32 [n, hidden]: the pooled rows of h through the last layer
    DeviceBuffer pooled_x;  // T [n, hidden]: their attention output, then their LN2
    DeviceBuffer out;     // float32 [n, projection_dim]
    // With LayerNorms folded (fold_rows): an fp16 copy of h [tokens, hidden],
    // the residual GEMMs' partial row statistics, and the norm's per-row
    // scale (float32 [tokens]).
    DeviceBuffer xn, ln_partials, ln_scale;
  } s_;

  const VisionConfig& vision_config() const {
    if (!config_.vision || !vision_.patch_w.get())
      throw Error("CUDA backend: this model has no vision tower");
    return *config_.vision;
  }
  const TextConfig& text_config() const {
    if (!config_.text || !text_.tok.get()) throw Error("CUDA backend: this model has no text tower");
    return *config_.text;
  }

  void load_vision(Uploader& up, const VisionConfig& c, const VisionWeights& w) {
    const int H = c.hidden_size, C = c.num_channels, p = c.patch_size, S = c.num_positions();
    if (H <= 0 || c.num_heads <= 0 || H % c.num_heads || p <= 0 || c.image_size < p)
      throw Error("CUDA backend: bad vision configuration");
    if (static_cast<int>(w.layers.size()) != c.num_layers)
      throw Error("CUDA backend: vision tower has " + std::to_string(w.layers.size()) + " layers, config says " +
                  std::to_string(c.num_layers));
    vision_.patch_w = up.act(w.patch_embedding, {H, C, p, p}, "vision_model.embeddings.patch_embedding.weight");
    vision_.cls = up.f32(w.class_embedding, {H}, "vision_model.embeddings.class_embedding");
    vision_.pos = up.f32(w.position_embedding, {S, H}, "vision_model.embeddings.position_embedding.weight");
    vision_.pre_ln = up.norm(w.pre_ln, H, "vision_model.pre_layrnorm");
    vision_.post_ln = up.norm(w.post_ln, H, "vision_model.post_layernorm");
    for (int i = 0; i < c.num_layers; ++i)
      vision_.layers.push_back(up.layer(w.layers[i], c, "vision_model.encoder.layers." + std::to_string(i)));
    vision_.projection = up.linear(w.projection, config_.projection_dim, H, "visual_projection", false);
  }

  void load_text(Uploader& up, const TextConfig& c, const TextWeights& w) {
    const int H = c.hidden_size;
    if (H <= 0 || c.num_heads <= 0 || H % c.num_heads) throw Error("CUDA backend: bad text configuration");
    if (static_cast<int>(w.layers.size()) != c.num_layers)
      throw Error("CUDA backend: text tower has " + std::to_string(w.layers.size()) + " layers, config says " +
                  std::to_string(c.num_layers));
    text_.tok = up.act(w.token_embedding, {c.vocab_size, H}, "text_model.embeddings.token_embedding.weight");
    text_.pos = up.f32(w.position_embedding, {c.max_positions, H}, "text_model.embeddings.position_embedding.weight");
    text_.final_ln = up.norm(w.final_ln, H, "text_model.final_layer_norm");
    for (int i = 0; i < c.num_layers; ++i)
      text_.layers.push_back(up.layer(w.layers[i], c, "text_model.encoder.layers." + std::to_string(i)));
    text_.projection = up.linear(w.projection, config_.projection_dim, H, "text_projection", false);
  }

  // ---- scratch ----------------------------------------------------------------

  void grow(DeviceBuffer& b, size_t bytes) {
    if (b.bytes() >= bytes) return;
    clear_graphs();
    vision_rows_n_ = -1;
    res_.synchronize();  // work in flight may still use the old buffer
    b.reset();
    b = res_.alloc(bytes);
  }

  void ensure_common(int64_t tokens, const TowerConfig& c, int n, size_t wide_elems) {
    const size_t t = cuda::dtype_size(act_);
    grow(s_.h, size_t(tokens) * c.hidden_size * 4);
    grow(s_.x, size_t(tokens) * c.hidden_size * t);
    wide_elems = std::max(wide_elems, size_t(tokens) * std::max(3 * c.hidden_size, c.intermediate_size));
    grow(s_.wide, wide_elems * t);
    grow(s_.rows, size_t(n) * 4);
    grow(s_.pooled_h, size_t(n) * c.hidden_size * 4);
    grow(s_.pooled_x, size_t(n) * c.hidden_size * t);
    grow(s_.out, size_t(n) * config_.projection_dim * 4);
    if (fold_rows(tokens, c.hidden_size)) {
      grow(s_.xn, size_t(tokens) * c.hidden_size * 2);
      grow(s_.ln_partials, size_t(cuda::sm90::ln_partials_floats(tokens, c.hidden_size)) * 4);
      grow(s_.ln_scale, size_t(tokens) * 4);
    }
  }

  // Whether a pass over `rows` tokens folds its LayerNorms into the GEMMs.
  bool fold_rows(int64_t rows, int hidden) {
    return act_ == DType::F16 && res_.gemm().ln_fold_available(rows, hidden);
  }

  // Whether small_linear takes linear layer `l` on `rows` rows (its input
  // x, or with `layernorm` LN of the float32 stream): 16-bit precisions, at
  // most small_rows_ rows, A within shared memory.
  bool use_small(int64_t rows, const DevLinear& l, bool layernorm) const {
    if (act_ == DType::F32 || rows > small_rows_ || l.in > small_max_k_ || (layernorm && rows > small_ln_rows_))
      return false;
    return cuda::small_linear_fits(static_cast<int>(rows), l.out, l.in, layernorm);
  }

  void ensure_vision(int n) {
    const VisionConfig& c = vision_config();
    const int g = c.grid();
    const int64_t tokens = int64_t(n) * c.num_positions();
    ensure_common(tokens, c, n, size_t(n) * g * g * c.num_channels * c.patch_size * c.patch_size);
    grow(s_.pixels, size_t(n) * c.num_channels * c.image_size * c.image_size * 4);
  }

  void upload_text(const TextBatch& batch) {
    const TextConfig& c = text_config();
    const int n = batch.count, seq = batch.seq_len;
    if (seq <= 0 || seq > c.max_positions)
      throw Error("CUDA backend: text batch seq_len " + std::to_string(seq) + " outside 1.." +
                  std::to_string(c.max_positions));
    if (batch.ids.size() != size_t(n) * seq || batch.pool_at.size() != size_t(n))
      throw Error("CUDA backend: text batch has inconsistent sizes");
    for (int32_t id : batch.ids)
      if (id < 0 || id >= c.vocab_size)
        throw Error("CUDA backend: token id " + std::to_string(id) + " outside the vocabulary (size " +
                    std::to_string(c.vocab_size) + ")");
    ensure_common(int64_t(n) * seq, c, n, 0);
    grow(s_.ids, size_t(n) * seq * 4);
    const size_t id_bytes = size_t(n) * seq * 4;
    wait_staging_free();
    host_in_.reserve(id_bytes + size_t(n) * 4);
    int32_t* staged = host_in_.as<int32_t>();
    std::memcpy(staged, batch.ids.data(), id_bytes);
    int32_t* rows = staged + size_t(n) * seq;
    for (int b = 0; b < n; ++b) {
      const int at = batch.pool_at[b];
      if (at < 0 || at >= seq) throw Error("CUDA backend: pool position " + std::to_string(at) + " outside the sequence");
      rows[b] = b * seq + at;
    }
    CUDA_CHECK(cudaMemcpyAsync(s_.ids.get(), staged, id_bytes, cudaMemcpyHostToDevice, res_.stream()));
    CUDA_CHECK(cudaMemcpyAsync(s_.rows.get(), rows, size_t(n) * 4, cudaMemcpyHostToDevice, res_.stream()));
    CUDA_CHECK(cudaEventRecord(staged_, res_.stream()));
  }

  // The pinned input buffer is read by asynchronous copies: before writing
  // it again, wait until the last copies from it are done (not for the whole
  // forward pass, which keeps back-to-back calls overlapped).
  void wait_staging_free() { CUDA_CHECK(cudaEventSynchronize(staged_)); }

  Tensor download(Tensor& out) {
    const size_t bytes = out.numel() * 4;
    host_out_.reserve(bytes);
    CUDA_CHECK(cudaMemcpyAsync(host_out_.get(), s_.out.get(), bytes, cudaMemcpyDeviceToHost, res_.stream()));
    res_.synchronize();
    std::memcpy(out.ptr(), host_out_.get(), bytes);
    return std::move(out);
  }

  // ---- forward ------------------------------------------------------------------

  GemmShape shape(int64_t M, const DevLinear& l, DType out_type, bool accumulate, bool bias) const {
    GemmShape s;
    s.M = M;
    s.N = l.out;
    s.K = l.in;
    s.in_type = act_;
    s.out_type = out_type;
    s.compute = compute_;
    s.accumulate = accumulate;
    s.bias = bias;
    return s;
  }

  // The layers on h (float32 [n*seq, hidden]). The last one continues on
  // the pooled rows alone (s_.rows) after attention; returns the float32
  // [n, hidden] buffer they end in, or h itself (every row) with no layers.
  // `folded_in`: s_.xn and s_.ln_scale already hold h's fp16 copy and LN1's
  // row scales (the vision embeddings write them with their own norm).
  const float* encoder(const DevTower& tw, const TowerConfig& c, int n, int seq, bool causal, bool folded_in) {
    const cuda::Exec& ex = res_.exec();
    const int64_t M = int64_t(n) * seq;
    const int H = c.hidden_size;
    cuda::AttnShape as;
    as.batch = n;
    as.seq = seq;
    as.heads = c.num_heads;
    as.head_dim = c.head_dim();
    as.causal = causal;
    as.scale = 1.f / std::sqrt(static_cast<float>(as.head_dim));
    const cuda::Act act = c.activation == Activation::Gelu ? cuda::Act::Gelu : cuda::Act::QuickGelu;
    float* h = s_.h.as<float>();
    // Large fp16 passes on Hopper fold LN1 and LN2 into the GEMMs around
    // them (gemm.h, LnFold): the out-projection and fc2 also leave an fp16
    // copy of h in s_.xn with the next norm's row scales, which qkv and fc1
    // read. Layer 0's LN1 and the last layer's pooled rows keep the norm
    // kernel unless the embeddings wrote h's copy (folded_in).
    const bool fold = fold_rows(M, H);
    bool folded = fold && folded_in;  // s_.xn and s_.ln_scale hold h's copy and its norm
    for (size_t i = 0; i < tw.layers.size(); ++i) {
      const DevLayer& L = tw.layers[i];
      LinearStep qkv{"qkv", M, &L.qkv};
      normed_input(qkv, folded, "qkv (ln folded)", h, L.ln1, s_.x.get());
      qkv.out = s_.wide.get();
      linear_step(qkv, c);
      cuda::attention(ex, s_.wide.get(), s_.x.get(), act_, as, res_.num_sms(), attn_impl_);
      prof_.mark("attention");
      // From here on a row only mixes with itself: the last layer needs the pooled rows alone.
      const bool last = i + 1 == tw.layers.size();
      int64_t rows = M;
      float* hl = h;
      void* xl = s_.x.get();
      if (last) {
        gather_pooled(n, H);
        rows = n;
        hl = s_.pooled_h.as<float>();
        xl = s_.pooled_x.get();
      }
      folded = fold && !last;
      LinearStep out{folded ? "out+res (ln stats)" : "out+res", rows, &L.out};
      out.x = xl;
      out.residual = hl;
      if (folded) out.ln_fold = cuda::LnFold::Stats;
      linear_step(out, c);
      LinearStep fc1{"fc1+act", rows, &L.fc1};
      normed_input(fc1, folded, "fc1+act (ln folded)", hl, L.ln2, xl);
      fc1.act = act;
      fc1.out = s_.wide.get();
      linear_step(fc1, c);
      LinearStep fc2{folded ? "fc2+res (ln stats)" : "fc2+res", rows, &L.fc2};
      fc2.x = s_.wide.get();
      fc2.residual = hl;
      if (folded) fc2.ln_fold = cuda::LnFold::Stats;
      linear_step(fc2, c);
      if (last) return hl;
    }
    return h;
  }

  // The pooled rows of the attention output and of h (before the last
  // layer's out-projection), in one launch.
  void gather_pooled(int n, int H) {
    const cuda::GatherTable x{s_.x.get(), size_t(H) * cuda::dtype_size(act_), s_.pooled_x.get()};
    const cuda::GatherTable h{s_.h.get(), size_t(H) * 4, s_.pooled_h.get()};
    cuda::gather_rows(res_.exec(), s_.rows.as<int32_t>(), n, x, &h);
    prof_.mark("gather_pooled");
  }

  // One linear layer of a pass over `rows` rows, with what surrounds it:
  //   input     x, or LN(ln_in) of the float32 stream with norm `ln`
  //   output    out = act(A w^T + b) in T (float32 with out_f32), or
  //             residual += A w^T + b (float32)
  struct LinearStep {
    const char* name;
    int64_t rows;
    const DevLinear* l;
    const void* x = nullptr;
    const float* ln_in = nullptr;
    const DevNorm* ln = nullptr;
    void* ln_out = nullptr;  // where a separate LayerNorm writes A (T [rows, in])
    cuda::Act act = cuda::Act::None;
    void* out = nullptr;
    bool out_f32 = false;
    float* residual = nullptr;
    // Stats: also writes s_.xn and s_.ln_scale; Apply: x is s_.xn,
    // normalised with them (encoder()).
    cuda::LnFold ln_fold = cuda::LnFold::None;
  };

  // The input of a layer after a norm: LN(ln_in) by the norm kernel (or
  // small_linear's prologue) into ln_out, or with the norm folded
  // (encoder()) the fp16 copy in s_.xn, normalised in the GEMM's epilogue.
  void normed_input(LinearStep& s, bool folded, const char* folded_name, const float* ln_in, const DevNorm& ln,
                    void* ln_out) {
    if (folded) {
      s.name = folded_name;
      s.x = s_.xn.get();
      s.ln_fold = cuda::LnFold::Apply;
    } else {
      s.ln_in = ln_in;
      s.ln = &ln;
      s.ln_out = ln_out;
    }
  }

  // Runs a LinearStep as one small_linear launch where it takes the shape
  // (few rows; small_linear.cuh), else as LayerNorm + GEMM: cuBLASLt or an
  // sm90 kernel with the bias, activation or residual in its epilogue.
  void linear_step(const LinearStep& s, const TowerConfig& c) {
    const cuda::Exec& ex = res_.exec();
    const DevLinear& l = *s.l;
    bool layernorm = s.ln_in != nullptr;  // still to do (in small_linear's prologue if it takes it)
    bool small = use_small(s.rows, l, layernorm);
    const void* x = s.x;
    if (layernorm && !small) {  // a separate LayerNorm; then A may fit small_linear once 16-bit
      cuda::layernorm(ex, s.ln_in, nullptr, s.rows, l.in, s.ln->gamma.as<float>(), s.ln->beta.as<float>(),
                      c.layer_norm_eps, s.ln_out, act_);
      prof_.mark("layernorm");
      x = s.ln_out;
      layernorm = false;
      small = use_small(s.rows, l, false);
    }
    if (small) {
      cuda::SmallLinear o;
      o.M = static_cast<int>(s.rows);
      o.N = l.out;
      o.K = l.in;
      o.type = act_;
      if (layernorm) {
        o.ln_in = s.ln_in;
        o.gamma = s.ln->gamma.as<float>();
        o.beta = s.ln->beta.as<float>();
        o.eps = c.layer_norm_eps;
      } else {
        o.x = x;
      }
      o.w = l.w.get();
      o.bias = l.bias.as<float>();
      o.act = s.act;
      o.out = s.out;
      o.out_f32 = s.out_f32;
      o.residual = s.residual;
      cuda::small_linear(ex, o);
      prof_.mark(s.name);
      return;
    }
    const bool has_bias = l.bias.get() != nullptr;
    GemmShape g = shape(s.rows, l, s.residual || s.out_f32 ? DType::F32 : act_, s.residual != nullptr, has_bias);
    g.act = s.act;  // fused on Hopper; cuBLASLt + a bias_act pass elsewhere
    g.ln_fold = s.ln_fold;
    const void* bias = l.bias.get();
    if (act_ != DType::F32 && l.bias_t.get() && !s.residual && !s.out_f32 && s.ln_fold == cuda::LnFold::None) {
      g.bias_type = act_;  // the 16-bit bias cuBLASLt takes with a 16-bit output
      bias = l.bias_t.get();
    }
    cuda::LnFoldIo fold;
    if (s.ln_fold != cuda::LnFold::None) {
      fold.copy = s_.xn.get();
      fold.partials = s_.ln_partials.as<float>();
      fold.eps = c.layer_norm_eps;
      fold.scale = s_.ln_scale.as<float>();
    }
    res_.gemm().linear(ex, g, x, l.w.get(), bias, s.residual ? static_cast<void*>(s.residual) : s.out,
                       l.bias.as<float>(), s.ln_fold != cuda::LnFold::None ? &fold : nullptr);
    prof_.mark(s.name);
  }

  // Final norm of the pooled rows and the projection. `pooled` is the
  // encoder's result: the n pooled rows, or with no layers h itself, from
  // which s_.rows picks them.
  void pool_and_project(const DevTower& tw, const DevNorm& ln, const TowerConfig& c, int n, const float* pooled) {
    LinearStep p{"pool_ln+projection", n, &tw.projection};
    p.out = s_.out.get();
    p.out_f32 = true;
    if (tw.layers.empty()) {  // the norm picks the pooled rows out of h
      cuda::layernorm(res_.exec(), pooled, s_.rows.as<int32_t>(), n, c.hidden_size, ln.gamma.as<float>(),
                      ln.beta.as<float>(), c.layer_norm_eps, s_.x.get(), act_);
      prof_.mark("pool_ln");
      p.name = "projection";
      p.x = s_.x.get();
    } else {
      p.ln_in = pooled;
      p.ln = &ln;
      p.ln_out = s_.x.get();
    }
    linear_step(p, c);
  }

  void forward_vision(int n) {
    const VisionConfig& c = *config_.vision;
    const cuda::Exec& ex = res_.exec();
    const int g = c.grid(), S = c.num_positions(), H = c.hidden_size;
    const int patch_k = c.num_channels * c.patch_size * c.patch_size;
    // Patch embedding = unfold + GEMM with the conv weight as [hidden, C*p*p].
    cuda::im2col_patches(ex, s_.pixels.as<float>(), n, c.num_channels, c.image_size, c.patch_size, s_.wide.get(),
                         act_);
    prof_.mark("im2col");
    GemmShape ps;
    ps.M = int64_t(n) * g * g;
    ps.N = H;
    ps.K = patch_k;
    ps.in_type = act_;
    ps.out_type = act_;
    ps.compute = compute_;
    res_.gemm().linear(ex, ps, s_.wide.get(), vision_.patch_w.get(), nullptr, s_.x.get());
    prof_.mark("gemm_patch");
    // With the norms folded (encoder()), also h's fp16 copy and the first
    // LN1's row scales.
    const bool fold = fold_rows(int64_t(n) * S, H);
    cuda::vision_embed_layernorm(ex, s_.x.get(), act_, vision_.cls.as<float>(), vision_.pos.as<float>(), n, S, H,
                                 vision_.pre_ln.gamma.as<float>(), vision_.pre_ln.beta.as<float>(),
                                 c.layer_norm_eps, s_.h.as<float>(), fold ? s_.xn.get() : nullptr,
                                 fold ? s_.ln_scale.as<float>() : nullptr, c.layer_norm_eps);
    prof_.mark(fold ? "embed+pre_ln+ln1 stats" : "embed+pre_ln");
    pool_and_project(vision_, vision_.post_ln, c, n, encoder(vision_, c, n, S, false, fold));
  }

  void forward_text(int n, int seq) {
    const TextConfig& c = *config_.text;
    cuda::text_embed(res_.exec(), s_.ids.as<int32_t>(), n, seq, text_.tok.get(), act_, text_.pos.as<float>(),
                     c.hidden_size, s_.h.as<float>());
    prof_.mark("text_embed");
    pool_and_project(text_, text_.final_ln, c, n, encoder(text_, c, n, seq, true, false));
  }

  void forward(Tower t, int n, int seq) {
    if (t == Tower::Vision) forward_vision(n);
    else forward_text(n, seq);
  }

  // The pooled rows of the vision tower are the class tokens: b * S.
  void set_vision_rows(int n) {
    const int S = config_.vision->num_positions();
    if (vision_rows_n_ == n) return;
    std::vector<int32_t> rows(n);
    for (int b = 0; b < n; ++b) rows[b] = b * S;
    CUDA_CHECK(cudaMemcpyAsync(s_.rows.get(), rows.data(), size_t(n) * 4, cudaMemcpyHostToDevice, res_.stream()));
    res_.synchronize();  // `rows` is pageable and about to go away
    vision_rows_n_ = n;
  }

  // Runs a tower on the scratch buffers. The first call of a (tower, n, seq)
  // runs eagerly (creating the cuBLASLt plans and kernel attributes outside
  // any capture); the second captures a graph that later calls replay.
  void run(Tower t, int n, int seq) {
    if (t == Tower::Vision) set_vision_rows(n);
    else vision_rows_n_ = -1;  // the text path overwrote s_.rows
    const auto key = std::make_tuple(int(t), n, seq);
    if (prof_.enabled()) {  // an event after each op
      // In graph mode every call after a shape's first (eager: it creates
      // the plans) is captured with its events and replayed once, so the
      // per-op times include the gaps of a graph replay, not eager launches.
      const bool in_graph = prof_.graph_mode() && graphs_ && profiled_.count(key);
      profiled_.insert(key);
      const std::string shape = std::string(t == Tower::Vision ? "vision" : "text") + " n=" + std::to_string(n) +
                                (seq ? " seq=" + std::to_string(seq) : "");
      if (!in_graph) {
        prof_.begin(res_.stream(), shape);
        forward(t, n, seq);
        prof_.end();
        return;
      }
      cudaGraphExec_t exec = nullptr;
      CUDA_CHECK(capture(
          [&] {
            prof_.begin(res_.stream(), shape + " (graph)");
            forward(t, n, seq);
          },
          &exec));
      CUDA_CHECK(cudaGraphLaunch(exec, res_.stream()));
      prof_.end();
      cudaGraphExecDestroy(exec);
      return;
    }
    if (!graphs_) return forward(t, n, seq);
    auto it = graphs_by_shape_.find(key);
    if (it != graphs_by_shape_.end()) {
      if (it->second) {
        CUDA_CHECK(cudaGraphLaunch(it->second, res_.stream()));
        CLIP_CHECK_LAUNCH(res_.exec(), "cudaGraphLaunch");
        return;
      }
      // Seen once: capture now.
      cudaGraphExec_t exec = nullptr;
      cudaError_t err = cudaSuccess;
      try {
        err = capture([&] { forward(t, n, seq); }, &exec);
      } catch (...) {
        err = cudaErrorStreamCaptureUnsupported;
      }
      if (err != cudaSuccess) {
        cudaGetLastError();
        graphs_ = false;  // this build/driver cannot capture: stay eager
        return forward(t, n, seq);
      }
      if (graphs_by_shape_.size() >= kMaxGraphs) clear_graphs();
      graphs_by_shape_[key] = exec;
      CUDA_CHECK(cudaGraphLaunch(exec, res_.stream()));
      CLIP_CHECK_LAUNCH(res_.exec(), "cudaGraphLaunch");
      return;
    }
    forward(t, n, seq);
    graphs_by_shape_[key] = nullptr;  // seen once
  }

  // Captures what `body` launches on the stream and instantiates it into
  // *exec; returns the instantiation's status. If `body` throws, the capture
  // is ended and the exception passed on.
  cudaError_t capture(const std::function<void()>& body, cudaGraphExec_t* exec) {
    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(res_.stream(), cudaStreamCaptureModeRelaxed));
    try {
      body();
    } catch (...) {
      cudaStreamEndCapture(res_.stream(), &graph);
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
      throw;
    }
    CUDA_CHECK(cudaStreamEndCapture(res_.stream(), &graph));
    const cudaError_t err = cudaGraphInstantiate(exec, graph, 0);
    cudaGraphDestroy(graph);
    return err;
  }

  void clear_graphs() {
    for (auto& [k, g] : graphs_by_shape_)
      if (g) cudaGraphExecDestroy(g);
    graphs_by_shape_.clear();
  }

  static constexpr size_t kMaxGraphs = 32;
  static constexpr size_t kRgbChunk = 64;
  static constexpr size_t kRgbChunkBytes = size_t(256) << 20;

  ClipConfig config_;
  Precision precision_;
  DType act_ = DType::F16;
  GemmCompute compute_ = GemmCompute::Mixed;
  bool graphs_ = true;
  int small_rows_ = cuda::kSmallMaxRows;  // small_linear for passes up to this many rows
  // The LayerNorm goes in small_linear's prologue up to this many rows.
  // Every block normalises all rows itself, so each reads the float32 rows
  // from L2: at 16 rows that cost more than a LayerNorm kernel of its own
  // (bench/RESULTS.md, seventh round).
  int small_ln_rows_ = 8;
  int small_max_k_ = 1 << 20;  // small_linear for layers of at most this many inputs
  cuda::AttnImpl attn_impl_ = cuda::AttnImpl::Auto;
  cuda::CudaResources res_;
  cuda::GpuPreprocessor preprocessor_{res_};
  cuda::FrameUploader uploader_{res_};
  bool gpu_preprocess_ = true;
  DevVision vision_;
  DevText text_;
  size_t weight_bytes_ = 0;
  cuda::PinnedBuffer host_in_, host_out_;
  int vision_rows_n_ = -1;
  cudaEvent_t staged_ = nullptr;
  cuda::OpProfiler prof_;
  std::map<std::tuple<int, int, int>, cudaGraphExec_t> graphs_by_shape_;
  std::set<std::tuple<int, int, int>> profiled_;  // shapes the profiler has run eagerly once
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const ClipConfig& config, const ModelWeights& weights,
                                           const CudaOptions& options) {
  std::string why;
  if (!cuda_available(&why)) throw Error("CUDA backend unavailable: " + why);
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (options.device < 0 || options.device >= count)
    throw Error("CUDA device " + std::to_string(options.device) + " does not exist (" + std::to_string(count) +
                " found)");
  return std::make_unique<CudaBackendImpl>(config, weights, options);
}

}  // namespace clip
