// The server's model threads (server/query_batcher.h) with two engines, as
// `clipfind serve --device cuda:all` makes one per GPU (issue 31): queries
// queued at once are spread over both, each answer is its own text's
// embedding (the one a single engine gives, within 1e-5), and the status counts each
// engine's calls. Two CPU engines stand in for two GPUs.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "clip/clip.h"
#include "server/query_batcher.h"

namespace fs = std::filesystem;
using clipfind::server::BatcherOptions;
using clipfind::server::QueryBatcher;

namespace {

const fs::path kModel = fs::path(CLIPFIND_TEST_DATA) / "models" / "full_fp32_quickgelu_p32";

std::unique_ptr<clip::Engine> engine() { return clip::Engine::load(kModel, {.device = "cpu", .threads = 1}); }

TEST(QueryBatcher, TwoEnginesShareTheQueriesAndAnswerEachItsOwn) {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("query number " + std::to_string(i));
  QueryBatcher alone(engine(), BatcherOptions{.max_batch = 4});
  std::vector<std::unique_ptr<clip::Engine>> two;
  two.push_back(engine());
  two.push_back(engine());
  QueryBatcher both(std::move(two), BatcherOptions{.max_batch = 4});
  EXPECT_EQ(both.device(), alone.device() + " + " + alone.device());
  EXPECT_EQ(both.projection_dim(), alone.projection_dim());

  std::vector<std::future<std::vector<float>>> a, b;
  for (const auto& t : texts) a.push_back(alone.embed_text(t));
  for (const auto& t : texts) b.push_back(both.embed_text(t));
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto want = a[i].get(), got = b[i].get();
    ASSERT_EQ(got.size(), want.size());
    // Batches differ between the two runs (and so may the GEMM's blocking).
    for (size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], want[k], 1e-5) << texts[i] << " [" << k << "]";
  }
  const auto stats = both.stats();
  EXPECT_EQ(stats.texts, texts.size());
  ASSERT_EQ(stats.engine_calls.size(), 2u);
  EXPECT_EQ(stats.engine_calls[0] + stats.engine_calls[1], stats.calls);
  // 200 queries queued at once, 4 a call: both threads take some.
  EXPECT_GT(stats.engine_calls[0], 0u);
  EXPECT_GT(stats.engine_calls[1], 0u);
}

}  // namespace
