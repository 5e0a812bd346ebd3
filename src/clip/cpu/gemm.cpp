#include "clip/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <unordered_map>

#include "clip/error.h"

namespace clip::cpu {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Below this many rows per thread the column split wins. With rows split,
// every thread streams all the weights; with columns split, each reads its
// share once, which outweighs the copy pass up to a few hundred rows.
// Measured on 2 cores (bench_cpu, medians of 4-6 alternating runs,
// 2026-12-07): one SigLIP B/16 image (196 rows) 85 -> 79 ms, 64-token
// texts at batch 8 (512 rows) 190 -> 182 ms, two images 172 -> 163 ms;
// ViT-B/32 at batch 8 (400 rows) unchanged. Before, 64 (from the B/32
// shapes: a 25-row block runs ~15% slower than half the columns of a 50-row
// one).
constexpr int64_t kMinRowsPerThread = 300;
constexpr int64_t kMaxRowsPerTask = 128;
// Column blocks per thread: more than one, so a thread that starts late (or
// is descheduled) leaves blocks to the others.
constexpr int64_t kColumnBlocksPerThread = 2;

// This Debian oneDNN uses the OpenMP runtime and sizes its work by
// omp_get_max_threads() of the calling thread. Our workers are set to 1 for
// good (gemm_thread_init); on the caller's thread we set it only while we
// work and then put the caller's own setting back.
class SerialOmpScope {
 public:
  SerialOmpScope() : saved_(omp_get_max_threads()) {
    if (saved_ != 1) omp_set_num_threads(1);
  }
  ~SerialOmpScope() {
    if (saved_ != 1) omp_set_num_threads(saved_);
  }
  SerialOmpScope(const SerialOmpScope&) = delete;
  SerialOmpScope& operator=(const SerialOmpScope&) = delete;

 private:
  int saved_;
};

dnnl::memory::desc dense(int64_t rows, int64_t cols, dt type = dt::f32) {
  return dnnl::memory::desc({rows, cols}, type, tag::ab);
}

// The GEMM's operand types per precision: weights, input (src) and output.
struct Types {
  dt weights, src, dst;
};
Types types_of(dt weights) {
  switch (weights) {
    case dt::bf16: return {dt::bf16, dt::bf16, dt::f32};
    case dt::s8: return {dt::s8, dt::u8, dt::s32};
    default: return {dt::f32, dt::f32, dt::f32};
  }
}
dt weight_type(Precision p) {
  switch (p) {
    case Precision::FP32: return dt::f32;
    case Precision::BF16: return dt::bf16;
    case Precision::INT8: return dt::s8;
    default: throw Error(std::string("cpu backend: no GEMM for precision ") + precision_name(p));
  }
}

struct Layout {
  tag format;
  int64_t block;  // columns per block: column blocks are contiguous in memory
};

// The weight layouts ([in, out], "B" = output columns outermost) whose
// column blocks are contiguous, so that a block-aligned column range is a
// matrix of its own at an offset. oneDNN asks for BA16a64b on AVX-512 (with
// 2 or 4 consecutive rows interleaved for bf16 and int8: the pairs and quads
// that vdpbf16ps and vpdpbusd multiply); plain "ba" (W exactly as stored) is
// the fallback if it ever wants something else.
Layout choose_layout(const dnnl::engine& eng, int64_t out, int64_t in, dt wt) {
  const Types t = types_of(wt);
  const dnnl::matmul::primitive_desc probe(
      dnnl::matmul::desc(dense(64, in, t.src), dnnl::memory::desc({in, out}, wt, tag::any), dense(64, out, t.dst)),
      eng);
  const bool f32 = wt == dt::f32, bf16 = wt == dt::bf16;
  for (Layout l : {Layout{f32    ? tag::BA16a64b
                          : bf16 ? tag::BA16a64b2a
                                 : tag::BA16a64b4a,
                          64},
                   Layout{f32    ? tag::BA16a48b
                          : bf16 ? tag::BA16a48b2a
                                 : tag::BA16a48b4a,
                          48},
                   Layout{f32    ? tag::BA16a32b
                          : bf16 ? tag::BA16a32b2a
                                 : tag::BA16a32b4a,
                          32},
                   Layout{f32    ? tag::BA16a16b
                          : bf16 ? tag::BA16a16b2a
                                 : tag::BA16a16b4a,
                          16}})
    if (probe.weights_desc() == dnnl::memory::desc({in, out}, wt, l.format)) return l;
  return {tag::ba, 1};
}

}  // namespace

void gemm_thread_init() { omp_set_num_threads(1); }

GemmContext::GemmContext(int threads) : threads_(threads < 1 ? 1 : threads), engine_(dnnl::engine::kind::cpu, 0) {
  for (int t = 0; t < threads_; ++t) streams_.emplace_back(engine_);
  thread_state_.resize(threads_);
}

const GemmContext::Primitive& GemmContext::primitive(int64_t m, int64_t n, int64_t k, bool bias, Epilogue ep,
                                                     const dnnl::memory::desc& weights) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Key key{m, n, k, bias, static_cast<int>(ep), static_cast<int>(weights.data_type())};
  if (auto it = primitives_.find(key); it != primitives_.end()) return it->second;

  const Types t = types_of(weights.data_type());
  dnnl::post_ops ops;
  // int8: the int32 results go to our epilogue (quantize.h) instead.
  if (t.dst != dt::s32) switch (ep) {
      case Epilogue::Store: break;
      case Epilogue::QuickGelu:  // swish(x) = x * sigmoid(alpha x)
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_swish, 1.702f, 0.f);
        break;
      case Epilogue::Gelu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f); break;
      case Epilogue::GeluTanh: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f); break;
      case Epilogue::Accumulate: ops.append_sum(1.f); break;
    }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  // Each thread brings its own scratchpad: the library's shared one is not
  // safe with two matmuls running at once.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::matmul::desc desc = bias
                                      ? dnnl::matmul::desc(dense(m, k, t.src), weights, dense(1, n), dense(m, n, t.dst))
                                      : dnnl::matmul::desc(dense(m, k, t.src), weights, dense(m, n, t.dst));
  const dnnl::matmul::primitive_desc pd(desc, attr, engine_);
  return primitives_.emplace(key, Primitive{dnnl::matmul(pd), pd.scratchpad_desc()}).first->second;
}

Linear::Linear(GemmContext& ctx, const float* weight, const float* bias, int64_t out, int64_t in, Precision precision)
    : out_(out), in_(in), precision_(precision) {
  SerialOmpScope serial;
  const dnnl::engine& eng = ctx.engine();
  const dt wt = weight_type(precision);
  const Layout layout = choose_layout(eng, out, in, wt);
  layout_ = layout.format;
  layout_block_ = layout.block;

  // W [out, in] row-major is the [in, out] matrix in "ba" order; oneDNN
  // rounds it to bf16 in the reorder, int8 we quantise ourselves.
  QuantizedWeights q;
  const void* plain_data = weight;
  if (wt == dt::s8) {
    q = quantize_weights(weight, out, in);
    plain_data = q.q.data();
    int8_scale_ = std::move(q.scale);
    int8_sum_ = std::move(q.sum);
    int8_bias_ = bias ? std::vector<float>(bias, bias + out) : std::vector<float>();
  }
  dnnl::memory plain(dnnl::memory::desc({in, out}, wt == dt::s8 ? dt::s8 : dt::f32, tag::ba), eng,
                     const_cast<void*>(plain_data));
  weights_ = dnnl::memory(dnnl::memory::desc({in, out}, wt, layout_), eng);
  dnnl::stream stream(eng);
  dnnl::reorder(plain, weights_).execute(stream, plain, weights_);
  stream.wait();
  if (bias && wt != dt::s8) {
    bias_ = dnnl::memory(dense(1, out), eng);
    std::copy(bias, bias + out, static_cast<float*>(bias_.get_data_handle()));
  }

  all_ = columns(ctx, 0, out);
  // Column blocks of whole layout blocks (and at least 64 columns, so each
  // stays an efficient GEMM).
  const int64_t align = std::max<int64_t>(layout_block_, 16);
  const int64_t wanted = (out + kColumnBlocksPerThread * ctx.threads() - 1) / (kColumnBlocksPerThread * ctx.threads());
  const int64_t width = std::max<int64_t>(64, (wanted + align - 1) / align * align);
  for (int64_t b = 0; b < out; b += width) blocks_.push_back(columns(ctx, b, std::min(out, b + width)));
}

Linear::Columns Linear::columns(GemmContext& ctx, int64_t begin, int64_t end) {
  Columns c;
  c.begin = begin;
  c.end = end;
  if (end <= begin) return c;
  // Offset of column `begin`: whole column blocks, strides[1] elements each.
  const dnnl::memory::desc& desc = weights_.get_desc();
  const int64_t block_stride = desc.data.format_desc.blocking.strides[1];
  const int64_t element_bytes = int64_t(dnnl::memory::data_type_size(desc.data_type()));
  if (begin % layout_block_ != 0) throw Error("cpu backend: GEMM column block not aligned to the weight layout");
  uint8_t* base =
      static_cast<uint8_t*>(weights_.get_data_handle()) + begin / layout_block_ * block_stride * element_bytes;
  c.weights = dnnl::memory(dnnl::memory::desc({in_, end - begin}, desc.data_type(), layout_), ctx.engine(), base);
  if (bias_)
    c.bias = dnnl::memory(dense(1, end - begin), ctx.engine(), static_cast<float*>(bias_.get_data_handle()) + begin);
  return c;
}

void Linear::run(GemmContext& ctx, int thread, const Columns& c, const void* x, int64_t rows, void* y,
                 Epilogue ep) const {
  const GemmContext::Primitive& prim =
      ctx.primitive(rows, c.end - c.begin, in_, bool(c.bias), ep, c.weights.get_desc());
  const Types t = types_of(c.weights.get_desc().data_type());
  const dnnl::engine& eng = ctx.engine();
  std::vector<uint8_t>& pad = ctx.thread_state_[thread].scratchpad;
  if (pad.size() < prim.scratchpad.get_size()) pad.resize(prim.scratchpad.get_size());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(dense(rows, in_, t.src), eng, const_cast<void*>(x))},
      {DNNL_ARG_WEIGHTS, c.weights},
      {DNNL_ARG_DST, dnnl::memory(dense(rows, c.end - c.begin, t.dst), eng, y)},
      {DNNL_ARG_SCRATCHPAD, dnnl::memory(prim.scratchpad, eng, pad.data())}};
  if (c.bias) args.emplace(DNNL_ARG_BIAS, c.bias);
  prim.matmul.execute(ctx.streams_[thread], args);
}

void Linear::task(GemmContext& ctx, int thread, const Columns& c, const void* x, int64_t r0, int64_t r1, float* y,
                  Epilogue ep) const {
  const int64_t rows = r1 - r0, n = c.end - c.begin;
  GemmContext::ThreadState& state = ctx.thread_state_[thread];
  if (precision_ == Precision::INT8) {
    const QuantizedRows& in = ctx.int8_input_;
    if (state.acc.size() < size_t(rows * n)) state.acc.resize(rows * n);
    run(ctx, thread, c, in.q.data() + r0 * in_, rows, state.acc.data(), Epilogue::Store);
    const Int8Columns cols{int8_scale_.data() + c.begin, int8_sum_.data() + c.begin,
                           int8_bias_.empty() ? nullptr : int8_bias_.data() + c.begin};
    dequantize_block(state.acc.data(), rows, n, in.scale.data() + r0, in.zero.data() + r0, cols, ep,
                     y + r0 * out_ + c.begin, out_);
    return;
  }
  const size_t element_bytes = precision_ == Precision::BF16 ? 2 : 4;
  const void* xr = static_cast<const uint8_t*>(x) + r0 * in_ * element_bytes;
  if (n == out_) {  // all columns: oneDNN writes in place, epilogue included
    run(ctx, thread, c, xr, rows, y + r0 * out_, ep);
    return;
  }
  // A column block: the kernel writes a dense block, which we then put in
  // place; the residual is added here rather than by the kernel.
  const Epilogue kernel_ep = ep == Epilogue::Accumulate ? Epilogue::Store : ep;
  if (state.columns.size() < size_t(rows * n)) state.columns.resize(rows * n);
  run(ctx, thread, c, xr, rows, state.columns.data(), kernel_ep);
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = state.columns.data() + r * n;
    float* dst = y + (r0 + r) * out_ + c.begin;
    if (ep == Epilogue::Accumulate)
      for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
    else
      std::copy_n(src, n, dst);
  }
}

void Linear::forward(GemmContext& ctx, ThreadPool& pool, const float* x, int64_t rows, float* y, Epilogue ep) const {
  if (rows <= 0 || out_ == 0) return;
  const int threads = ctx.threads();
  if (pool.size() != threads) throw Error("cpu backend: GEMM context and thread pool disagree on the thread count");
  SerialOmpScope serial;

  // The input in the GEMM's type, once for all tasks (a few percent of the
  // GEMM's time: rows x in against rows x in x out).
  const void* input = x;
  if (precision_ == Precision::BF16) {
    if (ctx.bf16_input_.size() < size_t(rows * in_)) ctx.bf16_input_.resize(rows * in_);
    rows_to_bf16(x, rows, in_, ctx.bf16_input_.data(), pool);
    input = ctx.bf16_input_.data();
  } else if (precision_ == Precision::INT8) {
    quantize_rows(x, rows, in_, ctx.int8_input_, pool);
  }
  // int8 has no oneDNN epilogue, so its primitives differ by shape only.
  auto kernel_ep = [&](Epilogue e) { return precision_ == Precision::INT8 ? Epilogue::Store : e; };

  // Primitives are created (JIT-compiled the first time a shape is seen) on
  // this thread before the tasks start; the tasks then find them in the map.
  if (threads == 1 || rows >= kMinRowsPerThread * threads) {
    // Blocks of at most 128 rows (the kernel is at full speed from 64),
    // the same number for every thread so that none is left with one more.
    const int64_t tasks_per_thread = (rows + threads * kMaxRowsPerTask - 1) / (threads * kMaxRowsPerTask);
    const int64_t tasks = threads * tasks_per_thread;
    // One thread runs fp32/bf16 as one GEMM; int8 still in blocks, so that
    // its int32 results stay in cache for the epilogue.
    const bool whole = threads == 1 && precision_ != Precision::INT8;
    const int64_t chunk = whole ? rows : (rows + tasks - 1) / tasks;
    const int64_t chunks = (rows + chunk - 1) / chunk;
    ctx.primitive(std::min(rows, chunk), out_, in_, bool(bias_), kernel_ep(ep), all_.weights.get_desc());
    if (rows % chunk) ctx.primitive(rows % chunk, out_, in_, bool(bias_), kernel_ep(ep), all_.weights.get_desc());
    pool.run(chunks, [&](int64_t c, int thread) {
      const int64_t r0 = c * chunk, r1 = std::min(rows, r0 + chunk);
      task(ctx, thread, all_, input, r0, r1, y, ep);
    });
    return;
  }

  // Column split: each task one block of output columns for all rows.
  const Epilogue block_ep = kernel_ep(ep == Epilogue::Accumulate ? Epilogue::Store : ep);
  for (const Columns& c : blocks_)
    ctx.primitive(rows, c.end - c.begin, in_, bool(c.bias), block_ep, c.weights.get_desc());
  pool.run(static_cast<int64_t>(blocks_.size()),
           [&](int64_t index, int thread) { task(ctx, thread, blocks_[index], input, 0, rows, y, ep); });
}

}  // namespace clip::cpu
