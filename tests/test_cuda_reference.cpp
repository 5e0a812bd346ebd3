#include "test_cuda_reference.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <thread>

namespace clip::ref {
namespace {

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(std::thread::hardware_concurrency(), n));
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) pool.emplace_back([&, t] { fn(n * t / threads, n * (t + 1) / threads); });
  for (auto& th : pool) th.join();
}

void add_inplace(std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
}

std::vector<float> stack_qkv(const LayerWeights& L, int H, std::vector<float>& bias) {
  std::vector<float> w(size_t(3) * H * H);
  bias.resize(size_t(3) * H);
  const LinearWeights* parts[3] = {&L.q, &L.k, &L.v};
  for (int p = 0; p < 3; ++p) {
    std::copy(parts[p]->weight.data.begin(), parts[p]->weight.data.end(), w.begin() + size_t(p) * H * H);
    std::copy(parts[p]->bias.data.begin(), parts[p]->bias.data.end(), bias.begin() + size_t(p) * H);
  }
  return w;
}

// The encoder layers on h [B*S, H], in place.
void encoder(std::vector<float>& h, int B, int S, const TowerConfig& c, const std::vector<LayerWeights>& layers,
             bool causal) {
  const int H = c.hidden_size, I = c.intermediate_size, D = c.head_dim();
  const int64_t M = int64_t(B) * S;
  for (const LayerWeights& L : layers) {
    std::vector<float> x = layernorm(h, M, H, L.ln1.weight.ptr(), L.ln1.bias.ptr(), c.layer_norm_eps);
    std::vector<float> bqkv;
    std::vector<float> wqkv = stack_qkv(L, H, bqkv);
    std::vector<float> qkv = linear(x, M, H, wqkv.data(), bqkv.data(), 3 * H);
    std::vector<float> a = attention(qkv, B, S, c.num_heads, D, causal, 1.f / std::sqrt(float(D)));
    add_inplace(h, linear(a, M, H, L.out.weight.ptr(), L.out.bias.ptr(), H));
    x = layernorm(h, M, H, L.ln2.weight.ptr(), L.ln2.bias.ptr(), c.layer_norm_eps);
    std::vector<float> y = linear(x, M, H, L.fc1.weight.ptr(), L.fc1.bias.ptr(), I);
    for (float& v : y) v = c.activation == Activation::Gelu ? gelu(v) : quick_gelu(v);
    add_inplace(h, linear(y, M, I, L.fc2.weight.ptr(), L.fc2.bias.ptr(), H));
  }
}

Tensor project(const std::vector<float>& pooled, int B, int H, const LinearWeights& proj, int P) {
  Tensor out({B, P});
  out.data = linear(pooled, B, H, proj.weight.ptr(), nullptr, P);
  return out;
}

}  // namespace

float quick_gelu(float x) { return float(double(x) / (1.0 + std::exp(-1.702 * double(x)))); }
float gelu(float x) { return float(0.5 * double(x) * (1.0 + std::erf(double(x) / std::sqrt(2.0)))); }
float gelu_tanh(float x) {
  const double v = x;
  return float(0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
}

std::vector<float> linear(const std::vector<float>& x, int64_t M, int64_t K, const float* w, const float* b,
                          int64_t N) {
  std::vector<float> y(size_t(M) * N);
  parallel_for(M, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* xr = x.data() + m * K;
      for (int64_t n = 0; n < N; ++n) {
        const float* wr = w + n * K;
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += double(xr[k]) * wr[k];
        y[m * N + n] = float(acc + (b ? b[n] : 0.0));
      }
    }
  });
  return y;
}

std::vector<float> layernorm(const std::vector<float>& x, int64_t M, int H, const float* g, const float* b, float eps) {
  std::vector<float> y(size_t(M) * H);
  for (int64_t m = 0; m < M; ++m) {
    const float* r = x.data() + m * H;
    double mean = 0, var = 0;
    for (int i = 0; i < H; ++i) mean += r[i];
    mean /= H;
    for (int i = 0; i < H; ++i) var += (r[i] - mean) * (r[i] - mean);
    var /= H;
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (int i = 0; i < H; ++i) y[m * H + i] = float((r[i] - mean) * rstd * g[i] + b[i]);
  }
  return y;
}

std::vector<float> attention(const std::vector<float>& qkv, int B, int S, int heads, int D, bool causal, float scale) {
  const int H = heads * D;
  std::vector<float> out(size_t(B) * S * H);
  parallel_for(int64_t(B) * heads, [&](int64_t i0, int64_t i1) {
    std::vector<double> p(S);
    for (int64_t i = i0; i < i1; ++i) {
      const int b = int(i / heads), h = int(i % heads);
      for (int q = 0; q < S; ++q) {
        const float* qv = qkv.data() + (size_t(b) * S + q) * 3 * H + h * D;
        const int kend = causal ? q + 1 : S;
        double mx = -1e300;
        for (int k = 0; k < kend; ++k) {
          const float* kv = qkv.data() + (size_t(b) * S + k) * 3 * H + H + h * D;
          double s = 0;
          for (int d = 0; d < D; ++d) s += double(qv[d]) * kv[d];
          p[k] = s * scale;
          mx = std::max(mx, p[k]);
        }
        double sum = 0;
        for (int k = 0; k < kend; ++k) sum += (p[k] = std::exp(p[k] - mx));
        for (int d = 0; d < D; ++d) {
          double acc = 0;
          for (int k = 0; k < kend; ++k) acc += p[k] * qkv[(size_t(b) * S + k) * 3 * H + 2 * H + h * D + d];
          out[(size_t(b) * S + q) * H + h * D + d] = float(acc / sum);
        }
      }
    }
  });
  return out;
}

Tensor encode_images(const ClipConfig& c, const ModelWeights& w, const Tensor& pixels) {
  const VisionConfig& v = *c.vision;
  const VisionWeights& vw = *w.vision;
  const int B = int(pixels.shape[0]), H = v.hidden_size, p = v.patch_size, g = v.grid(), S = v.num_positions();
  const int C = v.num_channels, img = v.image_size, K = C * p * p;
  std::vector<float> cols(size_t(B) * g * g * K);
  for (int b = 0; b < B; ++b)
    for (int gy = 0; gy < g; ++gy)
      for (int gx = 0; gx < g; ++gx)
        for (int ch = 0; ch < C; ++ch)
          for (int ky = 0; ky < p; ++ky)
            for (int kx = 0; kx < p; ++kx)
              cols[((size_t(b) * g * g + gy * g + gx) * K) + (ch * p + ky) * p + kx] =
                  pixels.data[((size_t(b) * C + ch) * img + gy * p + ky) * img + gx * p + kx];
  std::vector<float> pe = linear(cols, int64_t(B) * g * g, K, vw.patch_embedding.ptr(), nullptr, H);
  std::vector<float> h(size_t(B) * S * H);
  for (int b = 0; b < B; ++b)
    for (int s = 0; s < S; ++s)
      for (int i = 0; i < H; ++i)
        h[(size_t(b) * S + s) * H + i] =
            (s == 0 ? vw.class_embedding.data[i] : pe[(size_t(b) * g * g + s - 1) * H + i]) +
            vw.position_embedding.data[size_t(s) * H + i];
  h = layernorm(h, int64_t(B) * S, H, vw.pre_ln.weight.ptr(), vw.pre_ln.bias.ptr(), v.layer_norm_eps);
  encoder(h, B, S, v, vw.layers, false);
  std::vector<float> pooled(size_t(B) * H);
  for (int b = 0; b < B; ++b) std::copy_n(h.begin() + size_t(b) * S * H, H, pooled.begin() + size_t(b) * H);
  pooled = layernorm(pooled, B, H, vw.post_ln.weight.ptr(), vw.post_ln.bias.ptr(), v.layer_norm_eps);
  return project(pooled, B, H, vw.projection, c.projection_dim);
}

Tensor encode_texts(const ClipConfig& c, const ModelWeights& w, const TextBatch& batch) {
  const TextConfig& t = *c.text;
  const TextWeights& tw = *w.text;
  const int B = batch.count, S = batch.seq_len, H = t.hidden_size;
  std::vector<float> h(size_t(B) * S * H);
  for (int b = 0; b < B; ++b)
    for (int s = 0; s < S; ++s) {
      const int id = batch.ids[size_t(b) * S + s];
      for (int i = 0; i < H; ++i)
        h[(size_t(b) * S + s) * H + i] =
            tw.token_embedding.data[size_t(id) * H + i] + tw.position_embedding.data[size_t(s) * H + i];
    }
  encoder(h, B, S, t, tw.layers, true);
  std::vector<float> pooled(size_t(B) * H);
  for (int b = 0; b < B; ++b)
    std::copy_n(h.begin() + (size_t(b) * S + batch.pool_at[b]) * H, H, pooled.begin() + size_t(b) * H);
  pooled = layernorm(pooled, B, H, tw.final_ln.weight.ptr(), tw.final_ln.bias.ptr(), t.layer_norm_eps);
  return project(pooled, B, H, tw.projection, c.projection_dim);
}

}  // namespace clip::ref
