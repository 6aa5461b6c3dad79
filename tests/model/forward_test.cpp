// Properties of the forward pass that need no reference: incremental decoding with the KV cache
// equals evaluating the whole sequence at once, chunked batches equal one batch, thread counts
// do not change results, and bad calls fail with clear errors.
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

// Eight sequences of different lengths in one batch, over interleaved (non-contiguous) KV
// pages, give each sequence the logits it gets alone; then eight decode steps in one batch.
TEST_P(ForwardTest, BatchOfSequencesEqualsEachAlone) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(2);
  constexpr int kSeqs = 8;
  constexpr int64_t kPage = 4;
  auto batched = load_model(gguf::Reader::open(stories(GetParam())),
                            {.n_ctx = 64, .kv_page_size = kPage, .kv_pages = kSeqs * 16});
  const int64_t n_vocab = batched->hparams().n_vocab;

  // Sequence s: the first 3 + s tokens of a longer prompt, shifted so the sequences differ.
  std::vector<std::vector<int32_t>> prompts(kSeqs);
  for (int s = 0; s < kSeqs; ++s) {
    for (int i = 0; i < 3 + s; ++i) prompts[s].push_back(kTokens[static_cast<size_t>((i + s) % kTokens.size())]);
  }
  // Page p of sequence s is page p * kSeqs + (kSeqs - 1 - s): every sequence's pages interleave.
  std::vector<std::vector<int32_t>> tables(kSeqs);
  for (int s = 0; s < kSeqs; ++s) {
    for (int p = 0; p < 16; ++p) tables[s].push_back(p * kSeqs + (kSeqs - 1 - s));
  }
  std::vector<std::span<const int32_t>> table_spans(tables.begin(), tables.end());

  // Reference: each sequence alone through the convenience API, then 8 greedy steps.
  std::vector<std::vector<float>> alone(kSeqs);    // [steps + 1][n_vocab] per sequence
  std::vector<std::vector<int32_t>> greedy(kSeqs);
  for (int s = 0; s < kSeqs; ++s) {
    auto single = load_model(gguf::Reader::open(stories(GetParam())), {.n_ctx = 64});
    std::vector<float> row(static_cast<size_t>(n_vocab));
    single->forward(prompts[s], 1, row.data(), pool);
    for (int step = 0; step < 8; ++step) {
      alone[s].insert(alone[s].end(), row.begin(), row.end());
      const auto next = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
      greedy[s].push_back(next);
      single->forward(std::span(&greedy[s].back(), 1), 1, row.data(), pool);
    }
  }

  // Batched: all prompts in one step, then one step per token with all 8 sequences.
  std::vector<int32_t> tokens, positions, seq, rows;
  for (int s = 0; s < kSeqs; ++s) {
    for (size_t i = 0; i < prompts[s].size(); ++i) {
      tokens.push_back(prompts[s][i]);
      positions.push_back(static_cast<int32_t>(i));
      seq.push_back(s);
    }
    rows.push_back(static_cast<int32_t>(tokens.size() - 1));
  }
  std::vector<float> logits(static_cast<size_t>(kSeqs * n_vocab));
  for (int step = 0; step < 8; ++step) {
    batched->forward_batch({tokens, positions, seq, table_spans, rows}, logits.data(), pool);
    for (int s = 0; s < kSeqs; ++s) {
      for (int64_t v = 0; v < n_vocab; ++v) {
        const float want = alone[s][static_cast<size_t>(step * n_vocab + v)];
        ASSERT_NEAR(logits[static_cast<size_t>(s * n_vocab + v)], want, 1e-4f * std::max(1.0f, std::abs(want)))
            << "sequence " << s << " step " << step << " token " << v;
      }
    }
    // Next step: each sequence's greedy token at its next position.
    std::vector<int32_t> next_positions;
    for (int s = 0; s < kSeqs; ++s) next_positions.push_back(static_cast<int32_t>(prompts[s].size()) + step);
    tokens.clear();
    for (int s = 0; s < kSeqs; ++s) tokens.push_back(greedy[s][static_cast<size_t>(step)]);
    positions = next_positions;
    seq.clear();
    rows.clear();
    for (int s = 0; s < kSeqs; ++s) {
      seq.push_back(s);
      rows.push_back(s);
    }
  }
}

TEST(Forward, BatchValidationNamesTheProblem) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(1);
  auto model = load_model(gguf::Reader::open(stories("F32")), {.n_ctx = 32, .kv_page_size = 4, .kv_pages = 4});
  std::vector<float> logits(static_cast<size_t>(model->hparams().n_vocab));
  const std::vector<int32_t> table = {0, 1};  // covers positions 0..7
  const std::span<const int32_t> tables[1] = {table};
  const int32_t tok[1] = {5}, seq0[1] = {0}, row0[1] = {0};
  const int32_t pos_far[1] = {8}, seq_bad[1] = {1};
  EXPECT_THROW(model->forward_batch({tok, pos_far, seq0, tables, row0}, logits.data(), pool), Error);
  EXPECT_THROW(model->forward_batch({tok, row0, seq_bad, tables, row0}, logits.data(), pool), Error);
  const std::vector<int32_t> bad_page = {7};
  const std::span<const int32_t> bad_tables[1] = {bad_page};
  EXPECT_THROW(model->forward_batch({tok, row0, seq0, bad_tables, row0}, logits.data(), pool), Error);
  model->forward_batch({tok, row0, seq0, tables, row0}, logits.data(), pool);
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
