// Final hidden states (Batch::hidden_rows) and the output head alone (logits_from_hidden): the
// head over the hidden rows gives the logits the step computes itself, hidden rows do not
// disturb logits or the KV cache, and bad rows are errors.
#include <gtest/gtest.h>

#include <algorithm>
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

TEST(Hidden, HeadOverHiddenRowsEqualsTheStepsLogits) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(2);
  auto model = load_model(gguf::Reader::open(stories("Q8_0")), {.n_ctx = 64});
  const int64_t n_vocab = model->hparams().n_vocab, n_embd = model->hparams().n_embd;
  const auto n = static_cast<int32_t>(kTokens.size());
  std::vector<int32_t> positions, seq(kTokens.size(), 0), all;
  for (int32_t i = 0; i < n; ++i) {
    positions.push_back(i);
    all.push_back(i);
  }
  const std::vector<int32_t> table = {0, 1, 2, 3};
  const std::span<const int32_t> tables[1] = {table};

  // Logits of every row, and hidden states of every row, in the same step.
  std::vector<float> logits(static_cast<size_t>(n * n_vocab)), hidden(static_cast<size_t>(n * n_embd));
  model->forward_batch({.tokens = kTokens,
                        .positions = positions,
                        .seq = seq,
                        .page_tables = tables,
                        .logit_rows = all,
                        .hidden_rows = all,
                        .hidden = hidden.data()},
                       logits.data(), pool);
  for (float v : hidden) ASSERT_TRUE(std::isfinite(v));

  // The head over the hidden rows, a few rows at a time, reproduces the step's logits exactly
  // (same kernel over the same normed rows).
  std::vector<float> head(static_cast<size_t>(3 * n_vocab));
  for (int32_t r0 = 0; r0 < n; r0 += 3) {
    const int32_t rows = std::min(3, n - r0);
    model->logits_from_hidden(&hidden[static_cast<size_t>(r0 * n_embd)], rows, head.data(), pool);
    for (int64_t i = 0; i < rows * n_vocab; ++i) {
      ASSERT_EQ(head[static_cast<size_t>(i)], logits[static_cast<size_t>(r0 * n_vocab + i)]) << "row " << r0;
    }
  }

  // A second model, logits of the last row only: the same, hidden rows changed nothing else.
  auto plain = load_model(gguf::Reader::open(stories("Q8_0")), {.n_ctx = 64});
  std::vector<float> last(static_cast<size_t>(n_vocab));
  plain->forward(kTokens, 1, last.data(), pool);
  for (int64_t v = 0; v < n_vocab; ++v) {
    ASSERT_NEAR(last[static_cast<size_t>(v)], logits[static_cast<size_t>((n - 1) * n_vocab + v)], 1e-5f);
  }

  // Bad hidden requests are errors naming the problem.
  const int32_t down[2] = {3, 1};
  EXPECT_THROW(model->forward_batch({.tokens = std::span(kTokens).first(4),
                                     .positions = std::span(positions).first(4),
                                     .seq = std::span(seq).first(4),
                                     .page_tables = tables,
                                     .hidden_rows = down,
                                     .hidden = hidden.data()},
                                    logits.data(), pool),
               Error);
  const int32_t one[1] = {0};
  EXPECT_THROW(model->forward_batch({.tokens = std::span(kTokens).first(1),
                                     .positions = std::span(positions).first(1),
                                     .seq = std::span(seq).first(1),
                                     .page_tables = tables,
                                     .hidden_rows = one},
                                    logits.data(), pool),
               Error);
  EXPECT_THROW(model->logits_from_hidden(hidden.data(), model->max_batch() + 1, logits.data(), pool), Error);
}

}  // namespace
}  // namespace lightboat::model
