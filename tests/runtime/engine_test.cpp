// The engine loop end to end on stories260K: concurrent greedy requests reproduce llama.cpp's
// greedy text, cancellation, deadlines, overload refusals and the prefix cache.
#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "fixtures.h"
#include "model/model.h"

namespace lightboat::runtime {
namespace {

std::string stories_f32() { return (testing::fixtures_dir() / "stories260K" / "stories260K-F32.gguf").string(); }

// Collects one job's output; wait() blocks until on_done.
struct Collector {
  std::mutex mutex;
  std::condition_variable cv;
  std::string streamed;
  std::optional<JobResult> result;

  void attach(Job& job) {
    job.on_text = [this](std::string_view text, int32_t) {
      std::lock_guard<std::mutex> lock(mutex);
      streamed.append(text);
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

Job greedy_job(const EngineLoop& engine, const std::string& prompt, int32_t max_tokens) {
  Job job;
  job.prompt = engine.tokenize(prompt);
  job.sampling.temperature = 0.0f;
  job.max_tokens = max_tokens;
  return job;
}

TEST(Engine, ConcurrentGreedyRequestsMatchLlamaCpp) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  std::ifstream in(testing::fixtures_dir() / "stories260K" / "reference.json");
  const auto ref = nlohmann::json::parse(in);
  std::vector<std::pair<std::string, std::string>> cases;  // prompt, greedy text (F32 model)
  for (const auto& c : ref["cases"]) {
    if (c["model_file"] == "stories260K-F32.gguf") cases.emplace_back(c["prompt"], c["result"]["greedy"]["text"]);
  }
  ASSERT_EQ(cases.size(), 3u);

  EngineConfig config{.model_path = stories_f32(), .threads = 2, .kv_page_size = 8};
  config.scheduler.max_step_tokens = 32;  // forces chunked prefill next to running decodes
  config.scheduler.max_running = 8;
  EngineLoop engine(config);
  // Three copies of each prompt, submitted from three threads at once.
  std::vector<Collector> collectors(9);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int c = 0; c < 3; ++c) {
        Job job = greedy_job(engine, cases[static_cast<size_t>(c)].first, 32);
        collectors[static_cast<size_t>(t * 3 + c)].attach(job);
        EXPECT_EQ(engine.submit(std::move(job)).status, SubmitStatus::kAccepted);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 9; ++i) {
    const JobResult r = collectors[static_cast<size_t>(i)].wait();
    EXPECT_EQ(r.end, JobEnd::kLength);
    EXPECT_EQ(r.completion_tokens, 32);
    EXPECT_EQ(r.text, cases[static_cast<size_t>(i % 3)].second) << "request " << i;
    EXPECT_EQ(collectors[static_cast<size_t>(i)].streamed, r.text) << "the stream adds up to the text";
  }
  const EngineCounters c = engine.counters();
  EXPECT_EQ(c.completed, 9);
  EXPECT_EQ(c.kv.in_use, 0) << "every page released";
}

TEST(Engine, CancelEndsAJobAndFreesItsPages) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  EngineLoop engine({.model_path = stories_f32(), .threads = 1});
  Collector col;
  Job job = greedy_job(engine, "Once upon a time", 100);
  col.attach(job);
  const JobSubmit s = engine.submit(std::move(job));
  ASSERT_EQ(s.status, SubmitStatus::kAccepted);
  EXPECT_TRUE(engine.cancel(s.id));
  const JobResult r = col.wait();
  EXPECT_EQ(r.end, JobEnd::kCancelled);
  EXPECT_LT(r.completion_tokens, 100);
  EXPECT_FALSE(engine.cancel(s.id)) << "already gone";
  EXPECT_EQ(engine.counters().kv.in_use, 0);
}

TEST(Engine, RepeatedPromptReusesThePrefixCache) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  EngineLoop engine({.model_path = stories_f32(), .threads = 1, .kv_page_size = 4});
  const std::string prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
  JobResult first, second;
  for (JobResult* out : {&first, &second}) {
    Collector col;
    Job job = greedy_job(engine, prompt, 4);
    col.attach(job);
    ASSERT_EQ(engine.submit(std::move(job)).status, SubmitStatus::kAccepted);
    *out = col.wait();
  }
  EXPECT_EQ(first.cached_prompt_tokens, 0);
  EXPECT_GE(second.cached_prompt_tokens, first.prompt_tokens - 4) << "all full pages of the prompt reused";
  EXPECT_EQ(first.text, second.text);
}

TEST(Engine, DeadlinesAndOverload) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  EngineConfig config{.model_path = stories_f32(), .threads = 1};
  config.scheduler.max_queued = {1, 1, 1};
  config.scheduler.max_running = 1;
  EngineLoop engine(config);
  // A deadline already as good as past is refused or expires; never runs to the end.
  {
    Collector col;
    Job job = greedy_job(engine, "Once upon a time", 120);
    job.deadline = std::chrono::microseconds(1);
    col.attach(job);
    const JobSubmit s = engine.submit(std::move(job));
    if (s.status == SubmitStatus::kAccepted) {
      EXPECT_EQ(col.wait().end, JobEnd::kDeadlineExceeded);
    } else {
      EXPECT_EQ(s.status, SubmitStatus::kDeadlineUnmeetable);
    }
  }
  // A flood of low-priority jobs: the queue (1 per class) refuses with a retry-after.
  std::vector<Collector> cols(6);
  int overloaded = 0;
  std::vector<std::pair<RequestId, Collector*>> accepted;
  for (auto& col : cols) {
    Job job = greedy_job(engine, "The little dog", 60);
    job.priority = Priority::kLow;
    col.attach(job);
    const JobSubmit s = engine.submit(std::move(job));
    if (s.status == SubmitStatus::kOverloaded) {
      ++overloaded;
      EXPECT_GT(s.retry_after.count(), 0);
    } else {
      ASSERT_EQ(s.status, SubmitStatus::kAccepted);
      accepted.emplace_back(s.id, &col);
    }
  }
  EXPECT_GE(overloaded, 3);
  for (auto& [id, col] : accepted) {
    engine.cancel(id);
    col->wait();  // the sink must outlive its job
  }
}

// A scoring job's log-probability equals the one computed from the model's logits directly,
// also when the prompt's pages come from the prefix cache (second run).
TEST(Engine, ScoringJobsMatchDirectLogProbabilities) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  EngineLoop engine({.model_path = stories_f32(), .threads = 1, .kv_page_size = 4});
  const std::vector<int32_t> ids = engine.tokenize("Once upon a time, there was a little girl named Lily");
  const int32_t score_from = 6;

  auto direct = model::load_model(gguf::Reader::open(stories_f32()), {});
  const int64_t n_vocab = direct->hparams().n_vocab;
  const auto n = static_cast<int64_t>(ids.size());
  std::vector<float> logits(static_cast<size_t>(n * n_vocab));
  ThreadPool pool(1);
  direct->forward(ids, n, logits.data(), pool);
  double want = 0;
  for (int64_t p = score_from - 1; p + 1 < n; ++p) {
    const float* row = &logits[static_cast<size_t>(p * n_vocab)];
    double max = *std::max_element(row, row + n_vocab), sum = 0;
    for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(row[v] - max);
    want += row[ids[static_cast<size_t>(p + 1)]] - max - std::log(sum);
  }
  for (int run = 0; run < 2; ++run) {
    Collector col;
    Job job;
    job.prompt = ids;
    job.score_from = score_from;
    col.attach(job);
    ASSERT_EQ(engine.submit(std::move(job)).status, SubmitStatus::kAccepted);
    const JobResult r = col.wait();
    EXPECT_EQ(r.end, JobEnd::kStop);
    EXPECT_EQ(r.completion_tokens, 0);
    EXPECT_NEAR(r.score_logprob, want, 1e-4 * std::abs(want)) << "run " << run;
  }
}

TEST(Engine, MalformedJobsAreRefused) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  EngineLoop engine({.model_path = stories_f32(), .threads = 1});
  Job empty;
  EXPECT_THROW(engine.submit(std::move(empty)), Error);
  Job bad_temp = greedy_job(engine, "x", 4);
  bad_temp.sampling.temperature = -1.0f;
  EXPECT_THROW(engine.submit(std::move(bad_temp)), Error);
  Job too_long;
  too_long.prompt.assign(static_cast<size_t>(engine.model().n_ctx()), 5);
  EXPECT_THROW(engine.submit(std::move(too_long)), Error);
}

}  // namespace
}  // namespace lightboat::runtime
