// The engine's non-text outputs on stories260K: embedding jobs (mean of the final hidden
// states) against a direct forward pass, batched against one by one and across prefill chunks;
// scoring with a bounded logits buffer; per-token logprobs against the raw logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>

#include "base/error.h"
#include "fixtures.h"
#include "model/model.h"
#include "runtime/engine.h"

namespace lightboat::runtime {
namespace {

std::string stories_f32() {
  return (testing::fixtures_dir() / "stories260K" / "stories260K-F32.gguf").string();
}

struct Waiter {
  std::mutex mutex;
  std::condition_variable cv;
  std::optional<JobResult> result;
  std::vector<TokenLogprobs> streamed;

  void attach(Job& job) {
    job.on_logprob = [this](const TokenLogprobs& lp) {
      std::lock_guard<std::mutex> lock(mutex);
      streamed.push_back(lp);
    };
    job.on_done = [this](const JobResult& r) {
      std::lock_guard<std::mutex> lock(mutex);
      result = r;
      cv.notify_all();
    };
  }
  JobResult wait() {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return result.has_value(); });
    EXPECT_TRUE(result.has_value()) << "job did not finish";
    return result.value_or(JobResult{});
  }
};

// Mean over the prompt of the final hidden states, from one single-sequence forward pass.
std::vector<float> direct_embedding(const std::vector<int32_t>& ids) {
  auto model = model::load_model(gguf::Reader::open(stories_f32()), {});
  const int64_t n_embd = model->hparams().n_embd;
  const auto n = static_cast<int32_t>(ids.size());
  std::vector<int32_t> positions, seq(ids.size(), 0), table;
  for (int32_t i = 0; i < n; ++i) positions.push_back(i);
  for (int32_t p = 0; p < model->kv_pages(); ++p) table.push_back(p);
  const std::span<const int32_t> tables[1] = {table};
  std::vector<float> hidden(static_cast<size_t>(n * n_embd)), logits;
  ThreadPool pool(1);
  model->forward_batch({.tokens = ids,
                        .positions = positions,
                        .seq = seq,
                        .page_tables = tables,
                        .hidden_rows = positions,
                        .hidden = hidden.data()},
                       logits.data(), pool);
  std::vector<float> mean(static_cast<size_t>(n_embd), 0.0f);
  for (int32_t t = 0; t < n; ++t) {
    for (int64_t k = 0; k < n_embd; ++k)
      mean[static_cast<size_t>(k)] += hidden[static_cast<size_t>(t * n_embd + k)] / n;
  }
  return mean;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_NEAR(got[k], want[k], 1e-4f * std::max(1.0f, std::abs(want[k]))) << what << " dim " << k;
  }
}

TEST(EngineOutputs, EmbeddingsMatchTheDirectMeanBatchedAndAlone) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  // Small steps (16 tokens): the longer texts are prefilled over several chunks and steps.
  EngineConfig config{.model_path = stories_f32(), .threads = 1, .kv_page_size = 4};
  config.scheduler.max_step_tokens = 16;
  config.scheduler.max_running = 4;
  EngineLoop engine(config);
  const std::vector<std::string> texts = {
      "Once upon a time, there was a little girl named Lily who loved to play in the park with her dog", "The cat sat",
      "Tom had a big red ball. He liked to kick it high into the sky and run after it."};
  std::vector<std::vector<float>> want;
  for (const auto& t : texts) want.push_back(direct_embedding(engine.tokenize(t)));

  // Together: the three jobs share steps.
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (const auto& t : texts) {
    waiters.push_back(std::make_unique<Waiter>());
    Job job;
    job.prompt = engine.tokenize(t);
    job.embed = true;
    waiters.back()->attach(job);
    ASSERT_EQ(engine.submit(std::move(job)).status, SubmitStatus::kAccepted);
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    const JobResult r = waiters[i]->wait();
    EXPECT_EQ(r.end, JobEnd::kStop);
    EXPECT_EQ(r.completion_tokens, 0);
    expect_close(r.embedding, want[i], "batched");
  }
  // One by one, the prefix cache warm from the first round: still every position computed.
  for (size_t i = 0; i < texts.size(); ++i) {
    Waiter w;
    Job job;
    job.prompt = engine.tokenize(texts[i]);
    job.embed = true;
    w.attach(job);
    ASSERT_EQ(engine.submit(std::move(job)).status, SubmitStatus::kAccepted);
    expect_close(w.wait().embedding, want[i], "alone");
  }
  const EngineCounters c = engine.counters();
  EXPECT_EQ(c.kv.n_pages - c.kv.free - c.kv.cached, 0) << "an embedding job kept pages";

  Job both;
  both.prompt = engine.tokenize("x y");
  both.embed = true;
  both.score_from = 1;
  EXPECT_THROW(engine.submit(std::move(both)), Error);
}

TEST(EngineOutputs, LongScoringKeepsTheLogitsBufferBounded) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  EngineConfig config{.model_path = stories_f32(), .threads = 1, .kv_page_size = 4};
  config.scheduler.max_step_tokens = 64;
  config.scheduler.max_running = 4;
  EngineLoop engine(config);
  std::string text;
  for (int i = 0; i < 6; ++i) text += "Once upon a time, there was a little girl named Lily. ";
  const std::vector<int32_t> ids = engine.tokenize(text);
  ASSERT_GT(ids.size(), 60u);

  auto direct = model::load_model(gguf::Reader::open(stories_f32()), {});
  const int64_t n_vocab = direct->hparams().n_vocab;
  const auto n = static_cast<int64_t>(ids.size());
  std::vector<float> logits(static_cast<size_t>(n * n_vocab));
  ThreadPool pool(1);
  direct->forward(ids, n, logits.data(), pool);
  double want = 0;
  for (int64_t p = 0; p + 1 < n; ++p) {
    const float* row = &logits[static_cast<size_t>(p * n_vocab)];
    double max = *std::max_element(row, row + n_vocab), sum = 0;
    for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(row[v] - max);
    want += row[ids[static_cast<size_t>(p + 1)]] - max - std::log(sum);
  }
  Waiter w;
  Job job;
  job.prompt = ids;
  job.score_from = 1;  // every token after BOS: ~60 scored positions per step
  w.attach(job);
  ASSERT_EQ(engine.submit(std::move(job)).status, SubmitStatus::kAccepted);
  EXPECT_NEAR(w.wait().score_logprob, want, 1e-4 * std::abs(want));
  EXPECT_LE(engine.counters().logits_buffer_rows, 4 + EngineLoop::kScoreChunkRows);
}

TEST(EngineOutputs, LogprobsAreTheRawLogSoftmax) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  EngineLoop engine({.model_path = stories_f32(), .threads = 1});
  Waiter w;
  Job job;
  job.prompt = engine.tokenize("Once upon a time");
  job.sampling.temperature = 0.0f;
  job.sampling.repeat_penalty = 1.3f;  // logprobs ignore penalties: the raw distribution
  job.max_tokens = 8;
  job.top_logprobs = 3;
  w.attach(job);
  const std::vector<int32_t> prompt = job.prompt;
  ASSERT_EQ(engine.submit(std::move(job)).status, SubmitStatus::kAccepted);
  const JobResult r = w.wait();
  ASSERT_EQ(r.logprobs.size(), 8u);
  EXPECT_EQ(w.streamed.size(), r.logprobs.size());

  auto direct = model::load_model(gguf::Reader::open(stories_f32()), {});
  const int64_t n_vocab = direct->hparams().n_vocab;
  ThreadPool pool(1);
  std::vector<float> row(static_cast<size_t>(n_vocab));
  direct->forward(prompt, 1, row.data(), pool);
  for (size_t i = 0; i < r.logprobs.size(); ++i) {
    const TokenLogprobs& lp = r.logprobs[i];
    ASSERT_EQ(lp.token, r.generated[i]);
    const double max = *std::max_element(row.begin(), row.end());
    double sum = 0;
    for (float v : row) sum += std::exp(v - max);
    EXPECT_NEAR(lp.logprob, row[static_cast<size_t>(lp.token)] - max - std::log(sum), 1e-4) << "token " << i;
    ASSERT_EQ(lp.top.size(), 3u);
    EXPECT_GE(lp.top[0].logprob, lp.top[1].logprob);
    EXPECT_GE(lp.top[1].logprob, lp.top[2].logprob);
    EXPECT_GE(lp.top[0].logprob, lp.logprob);
    direct->forward(std::span(&lp.token, 1), 1, row.data(), pool);
  }
  Job bad;
  bad.prompt = engine.tokenize("x");
  bad.top_logprobs = 21;
  EXPECT_THROW(engine.submit(std::move(bad)), Error);
}

}  // namespace
}  // namespace lightboat::runtime
