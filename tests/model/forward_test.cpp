// Properties of the forward pass that need no reference: incremental decoding with the KV cache
// equals evaluating the whole sequence at once, chunked batches equal one batch, thread counts
// do not change results, and bad calls fail with clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "fixtures.h"
#include "model/model.h"

namespace lightboat::model {
namespace {

const std::vector<int32_t> kTokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};

std::string stories(const char* type) {
  return (testing::fixtures_dir() / "stories260K" / (std::string("stories260K-") + type + ".gguf")).string();
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

class ForwardTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ForwardTest, IncrementalDecodingEqualsOneBatch) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(2);
  auto batch = load_model(gguf::Reader::open(stories(GetParam())), {});
  const int64_t n_vocab = batch->hparams().n_vocab;
  const auto n = static_cast<int64_t>(kTokens.size());
  std::vector<float> all(static_cast<size_t>(n * n_vocab));
  batch->forward(kTokens, n, all.data(), pool);
  EXPECT_EQ(batch->n_past(), n);

  auto step = load_model(gguf::Reader::open(stories(GetParam())), {});
  std::vector<float> one(static_cast<size_t>(n_vocab));
  for (int64_t i = 0; i < n; ++i) {
    step->forward(std::span(&kTokens[static_cast<size_t>(i)], 1), 1, one.data(), pool);
    std::vector<float> want(all.begin() + i * n_vocab, all.begin() + (i + 1) * n_vocab);
    EXPECT_LT(max_abs_diff(one, want), 1e-4f) << "position " << i;
  }
}

TEST_P(ForwardTest, ChunksAndThreadsDoNotChangeLogits) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool1(1);
  ThreadPool pool3(3);
  auto whole = load_model(gguf::Reader::open(stories(GetParam())), {});
  auto chunked = load_model(gguf::Reader::open(stories(GetParam())), {.max_batch = 5});
  const int64_t n_vocab = whole->hparams().n_vocab;
  const int64_t n_logits = 7;  // spans two chunks of 5
  std::vector<float> a(static_cast<size_t>(n_logits * n_vocab));
  std::vector<float> b(a.size());
  whole->forward(kTokens, n_logits, a.data(), pool1);
  chunked->forward(kTokens, n_logits, b.data(), pool3);
  EXPECT_EQ(max_abs_diff(a, b), 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Stories260K, ForwardTest, ::testing::Values("F32", "Q8_0", "Q4_0"));

TEST(Forward, ContextOverflowAndBadTokensAreErrors) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(1);
  auto model = load_model(gguf::Reader::open(stories("F32")), {.n_ctx = 8});
  std::vector<float> logits(static_cast<size_t>(model->hparams().n_vocab));
  EXPECT_THROW(model->forward(kTokens, 1, logits.data(), pool), Error);  // 12 tokens > n_ctx 8
  const int32_t bad[1] = {100000};
  EXPECT_THROW(model->forward(bad, 1, logits.data(), pool), Error);
  EXPECT_EQ(model->n_past(), 0);
  model->forward(std::span(kTokens.data(), 8), 1, logits.data(), pool);
  EXPECT_THROW(model->forward(std::span(kTokens.data(), 1), 1, logits.data(), pool), Error);
  model->truncate(4);
  EXPECT_EQ(model->n_past(), 4);
  model->forward(std::span(kTokens.data(), 1), 1, logits.data(), pool);
}

}  // namespace
}  // namespace lightboat::model
