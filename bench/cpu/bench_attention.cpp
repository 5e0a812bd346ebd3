// The CPU backend's attention alone (clip::cpu::attention), one thread, on
// the shapes the towers run: 12 heads of 64 over 50 tokens (ViT-B/32), 196
// (SigLIP B/16-224) and 256; batch 8, best of 30 calls. The rest of a
// tower is GEMMs (bench_cpu); this isolates the part that is not.
//   bench_attention [seq ...]
// Prints, for the float32 products and (where the CPU has AVX512_BF16) the
// bf16 ones that the bf16 and int8 paths use: ms per call, GFLOP/s (q k^T
// and p v: 4 * batch * heads * seq^2 * head_dim) and a checksum of the
// output, equal before and after a change that only reorders the work.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "clip/cpu/attention.h"
#include "clip/cpu/cpu_precision.h"

int main(int argc, char** argv) {
  std::vector<int> seqs;
  for (int i = 1; i < argc; ++i) seqs.push_back(std::atoi(argv[i]));
  if (seqs.empty()) seqs = {50, 196, 256};
  clip::cpu::ThreadPool pool(1);
  clip::cpu::AttentionScratch scratch;
  std::vector<std::pair<const char*, clip::cpu::AttentionProducts>> kinds{{"fp32", clip::cpu::AttentionProducts::Fp32}};
  if (clip::cpu_has_native_bf16())
    kinds.push_back({"bf16", clip::cpu::AttentionProducts::Bf16});
  else
    std::printf("# no AVX512_BF16 on this CPU: float32 products only\n");
  std::printf("products\tseq\tms\tGFLOP/s\tchecksum\n");
  for (auto [name, products] : kinds)
    for (int seq : seqs) {
      const clip::cpu::AttentionShape s{8, seq, 12, 64, false};
      std::vector<float> qkv(size_t(s.batch) * seq * 3 * s.hidden()), out(size_t(s.batch) * seq * s.hidden());
      std::mt19937 gen(1);
      std::normal_distribution<float> normal;
      for (float& x : qkv) x = normal(gen);
      double best = 1e9;
      for (int r = 0; r < 30; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        clip::cpu::attention(qkv.data(), s, nullptr, out.data(), pool, scratch, products);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      const double flops = 4.0 * s.batch * s.heads * double(seq) * seq * s.head_dim;
      double sum = 0.0;
      for (float x : out) sum += x;
      std::printf("%s\t%d\t%.3f\t%.1f\t%.6f\n", name, seq, best * 1e3, flops / best * 1e-9, sum);
    }
  return 0;
}
