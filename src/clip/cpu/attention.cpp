#include "clip/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "clip/cpu/attention_bf16.h"
#include "clip/cpu/cpu_precision.h"
#include "clip/cpu/ops.h"
#include "clip/cpu/simd.h"
#include "clip/error.h"

namespace clip::cpu {

namespace {

// Queries handled together, and 16-wide blocks of keys (or of output
// columns) per pass: 8 x 2 independent sums, the shape of a GEMM micro-kernel
// (attention at 196 tokens ran at a third of the FMA peak with 4 x 1).
constexpr int kRows = 8;
constexpr int kBlocks = 2;
static_assert(kRows == Bf16HeadTiles::kRows, "one query loop feeds both kinds of tiles");

// Keeps a loaded vector in a register: GCC otherwise folds the load into
// every FMA that uses it (kRows loads instead of one). Only where a vector
// fits one register (AVX-512); elsewhere (the fuzz build has no -march) the
// compiler splits it and there is nothing to pin.
inline void in_register([[maybe_unused]] f32x16& v) {
#ifdef __AVX512F__
  asm volatile("" : "+v"(v));
#endif
}

// One (item, head): keys transposed and values copied into padded, 16-aligned
// tiles so that every inner loop runs on whole vectors.
struct HeadTiles {
  int seq, seq_pad, dim, dim_pad;
  float* kt;      // [dim_pad][seq_pad], zero padded
  float* v;       // [seq_pad][dim_pad], zero padded
  float* q;       // [kRows][dim_pad], scaled queries
  float* scores;  // [kRows][seq_pad]
};

// The tiles of one (item, head) laid out in a thread's buffer of
// tile_floats(seq_pad, dim_pad) floats; the query rows start zeroed.
size_t tile_floats(int seq_pad, int dim_pad) {
  return size_t(dim_pad) * seq_pad * 2 + size_t(kRows) * (dim_pad + seq_pad);
}

HeadTiles tiles_in(float* buf, int seq, int seq_pad, int dim, int dim_pad) {
  HeadTiles t{seq,
              seq_pad,
              dim,
              dim_pad,
              buf,
              buf + int64_t(dim_pad) * seq_pad,
              buf + 2 * int64_t(dim_pad) * seq_pad,
              buf + 2 * int64_t(dim_pad) * seq_pad + kRows * dim_pad};
  std::fill(t.q, t.q + kRows * dim_pad, 0.f);
  return t;
}

// A head's slice of a q|k|v row is a few cache lines 3 * hidden floats
// after the previous row's: too far apart for the hardware to fetch ahead,
// so the row copies below waited on memory for most of their time (a
// 196-token batch of 8 does not fit the cache). Rows this far ahead are
// asked for early.
constexpr int kRowsAhead = 8;

void prefetch_row(const float* p, int floats) {
  for (int c = 0; c < floats; c += kLanes) __builtin_prefetch(p + c);
}

void load_keys_values(const float* qkv, int64_t row_stride, int64_t k_off, int64_t v_off, HeadTiles& t) {
  std::fill(t.kt, t.kt + int64_t(t.dim_pad) * t.seq_pad, 0.f);
  std::fill(t.v, t.v + int64_t(t.seq_pad) * t.dim_pad, 0.f);
  for (int j = 0; j < t.seq; ++j) {
    if (j + kRowsAhead < t.seq) {
      prefetch_row(qkv + (j + kRowsAhead) * row_stride + k_off, t.dim);
      prefetch_row(qkv + (j + kRowsAhead) * row_stride + v_off, t.dim);
    }
    const float* k = qkv + j * row_stride + k_off;
    const float* v = qkv + j * row_stride + v_off;
    for (int c = 0; c < t.dim; ++c) t.kt[int64_t(c) * t.seq_pad + j] = k[c];
    std::copy(v, v + t.dim, t.v + int64_t(j) * t.dim_pad);
  }
}

// acc[r][b] += sum over i < n of a[r * a_stride + i] * m[i * m_stride + 16 b ..
// + 16) for the kRows rows of a: NB blocks of 16 columns of m, each row's
// vectors loaded once and kept in registers, kRows x NB independent sums.
// The product of score_blocks and output_blocks.
template <int NB>
inline void accumulate_blocks(const float* a, int a_stride, const float* m, int64_t m_stride, int n,
                              f32x16 (&acc)[kRows][NB]) {
  for (int i = 0; i < n; ++i) {
    f32x16 v[NB];
    for (int b = 0; b < NB; ++b) {
      v[b] = load16(m + int64_t(i) * m_stride + b * kLanes);
      in_register(v[b]);
    }
    for (int r = 0; r < kRows; ++r) {
      const float x = a[r * a_stride + i];
      for (int b = 0; b < NB; ++b) acc[r][b] += x * v[b];
    }
  }
}

// scores[r][jb .. jb + 16 * NB) = q_r . k_j for the kRows query rows in t.q
// (rows of them stored), from the transposed keys.
template <int NB>
void score_blocks(HeadTiles& t, int rows, int jb) {
  f32x16 acc[kRows][NB] = {};
  accumulate_blocks<NB>(t.q, t.dim_pad, t.kt + jb, t.seq_pad, t.dim, acc);
  for (int r = 0; r < rows; ++r) {
    for (int b = 0; b < NB; ++b) store16(t.scores + r * t.seq_pad + jb + b * kLanes, acc[r][b]);
  }
}

// out_r[cb .. cb + 16 * NB) = sum_j p_rj v_j over the first `keys` keys;
// write(column, sums, r) stores the result.
template <int NB, class Write>
void output_blocks(HeadTiles& t, int rows, int keys, int cb, Write write) {
  f32x16 acc[kRows][NB] = {};
  accumulate_blocks<NB>(t.scores, t.seq_pad, t.v + cb, t.dim_pad, keys, acc);
  for (int r = 0; r < rows; ++r) {
    for (int b = 0; b < NB; ++b) write(cb + b * kLanes, acc[r][b], r);
  }
}

// Attention for `rows` (<= kRows) queries of one head whose rows are already
// in t.q; query r may see keys [0, visible[r]). Writes out[r][0..dim).
void attend_rows(HeadTiles& t, int rows, const int* visible, float* const* out) {
  const int keys = *std::max_element(visible, visible + rows);
  const int keys_pad = round_up_to_lanes(keys);

  // Scores kBlocks * 16 keys at a time, then 16.
  int jb = 0;
  for (; jb + kBlocks * kLanes <= keys_pad; jb += kBlocks * kLanes) score_blocks<kBlocks>(t, rows, jb);
  for (; jb < keys_pad; jb += kLanes) score_blocks<1>(t, rows, jb);
  for (int r = 0; r < rows; ++r) {
    float* s = t.scores + r * t.seq_pad;
    softmax(s, visible[r]);
    std::fill(s + visible[r], s + keys_pad, 0.f);  // masked keys weigh nothing
  }

  // Outputs kBlocks * 16 columns at a time, then 16.
  const auto write = [&](int cb, const f32x16& acc, int r) {
    float* o = out[r];
    const int n = std::min(kLanes, t.dim - cb);
    if (n == kLanes) {
      store16(o + cb, acc);
    } else {
      for (int l = 0; l < n; ++l) o[cb + l] = acc[l];
    }
  };
  int cb = 0;
  for (; cb + kBlocks * kLanes <= t.dim_pad; cb += kBlocks * kLanes) output_blocks<kBlocks>(t, rows, keys, cb, write);
  for (; cb < t.dim_pad; cb += kLanes) output_blocks<1>(t, rows, keys, cb, write);
}

// The float32 tiles behind the interface attention_bf16.h's Bf16HeadTiles
// has too, so that one task loop below runs either.
class Fp32HeadTiles {
 public:
  static void reserve(AttentionScratch& scratch, int threads, int seq, int dim) {
    for (int t = 0; t < threads; ++t) scratch.get(t, floats(seq, dim));
  }
  Fp32HeadTiles(AttentionScratch& scratch, int thread, int seq, int dim)
      : t_(tiles_in(scratch.get(thread, floats(seq, dim)), seq, round_up_to_lanes(seq), dim, round_up_to_lanes(dim))) {}
  void load_keys_values(const float* item, int64_t row_stride, int64_t k_off, int64_t v_off) {
    cpu::load_keys_values(item, row_stride, k_off, v_off, t_);
  }
  void set_query(int r, const float* q, float scale) {
    for (int c = 0; c < t_.dim; ++c) t_.q[r * t_.dim_pad + c] = q[c] * scale;
  }
  void attend(int rows, const int* visible, float* const* out) { attend_rows(t_, rows, visible, out); }

 private:
  static size_t floats(int seq, int dim) { return tile_floats(round_up_to_lanes(seq), round_up_to_lanes(dim)); }
  HeadTiles t_;
};

// Tasks of one or more (item, head) pairs, each at least ~64k multiply-adds
// (a few microseconds) of `work` per pair, else a text query's tiny heads
// would cost more in hand-offs than in arithmetic. body(tiles, b, h) runs a pair.
template <class Tiles, class Body>
void run_heads(const AttentionShape& s, int64_t work, ThreadPool& pool, AttentionScratch& scratch, Body body) {
  // Reserve on this thread: the workers must not resize the vector of buffers.
  Tiles::reserve(scratch, pool.size(), s.seq, s.head_dim);
  pool.parallel_for(int64_t(s.batch) * s.heads, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, work)),
                    [&](int thread, int64_t begin, int64_t end) {
                      Tiles tiles(scratch, thread, s.seq, s.head_dim);
                      for (int64_t task = begin; task < end; ++task)
                        body(tiles, static_cast<int>(task / s.heads), static_cast<int>(task % s.heads));
                    });
}

template <class Tiles>
void attention_with(const float* qkv, const AttentionShape& s, const int32_t* query_pos, float* out, ThreadPool& pool,
                    AttentionScratch& scratch) {
  const int hidden = s.hidden();
  const int64_t row_stride = 3 * int64_t(hidden);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int64_t queries = query_pos ? 1 : s.seq;
  run_heads<Tiles>(s, queries * s.seq * s.head_dim * 2, pool, scratch, [&](Tiles& t, int b, int h) {
    const float* item = qkv + int64_t(b) * s.seq * row_stride;
    const int64_t q_off = int64_t(h) * s.head_dim;
    t.load_keys_values(item, row_stride, hidden + q_off, 2 * hidden + q_off);

    // Which queries: all positions, or the one pooled position.
    const int first = query_pos ? query_pos[b] : 0;
    const int count = query_pos ? 1 : s.seq;
    for (int i0 = first; i0 < first + count; i0 += kRows) {
      const int rows = std::min(kRows, first + count - i0);
      int visible[kRows];
      float* rows_out[kRows];
      const int64_t out_base = query_pos ? b : int64_t(b) * s.seq + i0;
      for (int r = 0; r < rows; ++r) {
        if (i0 + r + kRows < first + count)
          prefetch_row(item + int64_t(i0 + r + kRows) * row_stride + q_off, s.head_dim);
        t.set_query(r, item + int64_t(i0 + r) * row_stride + q_off, scale);
        visible[r] = s.causal ? i0 + r + 1 : s.seq;
        rows_out[r] = out + (out_base + r) * hidden + q_off;
      }
      t.attend(rows, visible, rows_out);
    }
  });
}

template <class Tiles>
void probe_attention_with(const float* q, const float* kv, const AttentionShape& s, float* out, ThreadPool& pool,
                          AttentionScratch& scratch) {
  const int hidden = s.hidden();
  const int64_t row_stride = 2 * int64_t(hidden);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  run_heads<Tiles>(s, int64_t(s.seq) * s.head_dim * 2, pool, scratch, [&](Tiles& t, int b, int h) {
    const int64_t q_off = int64_t(h) * s.head_dim;
    t.load_keys_values(kv + int64_t(b) * s.seq * row_stride, row_stride, q_off, hidden + q_off);
    t.set_query(0, q + q_off, scale);
    const int visible = s.seq;
    float* row_out = out + int64_t(b) * hidden + q_off;
    t.attend(1, &visible, &row_out);
  });
}

// run.template operator()<Tiles>() with the tiles of `products`. Refuses
// bf16 on a CPU without AVX512_BF16, where Bf16HeadTiles' instructions
// would stop the process.
template <class Run>
void with_tiles(AttentionProducts products, Run run) {
  if (products == AttentionProducts::Fp32) return run.template operator()<Fp32HeadTiles>();
  static const bool have_bf16 = cpu_has_native_bf16();
  if (!have_bf16) throw Error("cpu attention: bf16 products need a CPU with AVX512_BF16; this one has none");
  run.template operator()<Bf16HeadTiles>();
}

// Thread `thread`'s buffer of buffers, grown to at least n elements.
template <class T>
T* thread_buffer(std::vector<std::vector<T>>& buffers, int thread, size_t n) {
  if (static_cast<int>(buffers.size()) <= thread) buffers.resize(thread + 1);
  if (buffers[thread].size() < n) buffers[thread].resize(n);
  return buffers[thread].data();
}

}  // namespace

float* AttentionScratch::get(int thread, size_t floats) { return thread_buffer(buffers_, thread, floats); }

uint32_t* AttentionScratch::words(int thread, size_t n) { return thread_buffer(words_, thread, n); }

void attention(const float* qkv, const AttentionShape& s, const int32_t* query_pos, float* out, ThreadPool& pool,
               AttentionScratch& scratch, AttentionProducts products) {
  with_tiles(products, [&]<class Tiles>() { attention_with<Tiles>(qkv, s, query_pos, out, pool, scratch); });
}

void probe_attention(const float* q, const float* kv, const AttentionShape& s, float* out, ThreadPool& pool,
                     AttentionScratch& scratch, AttentionProducts products) {
  with_tiles(products, [&]<class Tiles>() { probe_attention_with<Tiles>(q, kv, s, out, pool, scratch); });
}

}  // namespace clip::cpu
