// The public engine API (include/lightboat/engine.h) end to end on stories260K.
#include "lightboat/engine.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "fixtures.h"

namespace lightboat {
namespace {

class WaitingSink final : public TokenSink {
 public:
  void on_text(const std::string& text, int32_t) override {
    std::lock_guard<std::mutex> lock(mutex_);
    streamed_ += text;
  }
  void on_done(const Completion& c) override {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = c;
    cv_.notify_all();
  }
  Completion wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return done_.has_value(); });
    EXPECT_TRUE(done_.has_value());
    return done_.value_or(Completion{});
  }
  std::string streamed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return streamed_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string streamed_;
  std::optional<Completion> done_;
};

EngineOptions stories() {
  return {.model_path = (testing::fixtures_dir() / "stories260K" / "stories260K-Q8_0.gguf").string(), .threads = 2};
}

TEST(EngineApi, StreamsGreedyTextAndCounts) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  auto engine = Engine::open(stories());
  std::vector<std::shared_ptr<WaitingSink>> sinks;
  for (int i = 0; i < 4; ++i) {
    GenerateRequest r{.prompt = "Once upon a time", .max_tokens = 16};
    r.sampling.temperature = 0.0f;
    r.priority = i % 2 ? Priority::kHigh : Priority::kLow;
    sinks.push_back(std::make_shared<WaitingSink>());
    const SubmitResult s = engine->submit(std::move(r), sinks.back());
    ASSERT_EQ(s.status, SubmitStatus::kAccepted) << s.message;
  }
  std::string first;
  for (auto& sink : sinks) {
    const Completion c = sink->wait();
    EXPECT_EQ(c.finish_reason, FinishReason::kLength);
    EXPECT_EQ(c.completion_tokens, 16);
    EXPECT_EQ(c.prompt_tokens, 5);
    EXPECT_EQ(sink->streamed(), c.text);
    EXPECT_GT(c.total_ms, 0);
    if (first.empty()) first = c.text;
    EXPECT_EQ(c.text, first) << "greedy: every copy says the same";
  }
  EXPECT_EQ(first.rfind(", there was a little girl named Lily.", 0), 0u) << first;
  const EngineStats st = engine->stats();
  EXPECT_EQ(st.requests_completed, 4);
  EXPECT_EQ(st.generated_tokens, 64);
  EXPECT_GT(st.steps, 0);
  EXPECT_EQ(st.kv_pages_free, st.kv_pages_total);
  EXPECT_EQ(engine->n_ctx(), 128);
}

TEST(EngineApi, Fp16KvCacheHalvesThePoolAndKeepsTheText) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  std::string text[2];
  int64_t bytes[2] = {0, 0};
  for (int f16 = 0; f16 < 2; ++f16) {
    EngineOptions o = stories();
    o.kv_f16 = f16 == 1;
    auto engine = Engine::open(o);
    GenerateRequest r{.prompt = "Once upon a time", .max_tokens = 16};
    r.sampling.temperature = 0.0f;
    auto sink = std::make_shared<WaitingSink>();
    ASSERT_EQ(engine->submit(std::move(r), sink).status, SubmitStatus::kAccepted);
    text[f16] = sink->wait().text;
    bytes[f16] = engine->stats().kv_cache_bytes;
  }
  EXPECT_EQ(bytes[1] * 2, bytes[0]);  // same pages, half the bytes each
  EXPECT_EQ(text[1], text[0]);        // greedy text unchanged on this model
}

TEST(EngineApi, ChatMessagesUseTheTemplateAndBadRequestsAreRefused) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  auto engine = Engine::open(stories());
  auto sink = std::make_shared<WaitingSink>();
  GenerateRequest chat{.messages = {{"system", "Be brief."}, {"user", "Tell a story."}}, .max_tokens = 8};
  chat.stop = {"\n"};
  ASSERT_EQ(engine->submit(std::move(chat), sink).status, SubmitStatus::kAccepted);
  const Completion c = sink->wait();
  EXPECT_GT(c.prompt_tokens, 10) << "the conversation was formatted, not sent raw";
  EXPECT_EQ(c.text.find('\n'), std::string::npos);

  auto other = std::make_shared<WaitingSink>();
  EXPECT_EQ(engine->submit({.prompt = "x", .messages = {{"user", "y"}}}, other).status, SubmitStatus::kInvalid);
  EXPECT_EQ(engine->submit({.prompt = "x"}, nullptr).status, SubmitStatus::kInvalid);
  GenerateRequest bad{.prompt = "x"};
  bad.sampling.top_p = 3.0f;
  const SubmitResult r = engine->submit(std::move(bad), other);
  EXPECT_EQ(r.status, SubmitStatus::kInvalid);
  EXPECT_NE(r.message.find("top_p"), std::string::npos) << r.message;
  EXPECT_THROW(Engine::open({.model_path = "/nonexistent.gguf"}), std::exception);
  EXPECT_EQ(parse_priority("high"), Priority::kHigh);
  EXPECT_FALSE(parse_priority("urgent").has_value());
}

TEST(EngineApi, ReprioritizeMovesAQueuedRequestAheadAndModelFactsAreReported) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  EngineOptions o = stories();
  o.max_running = 1;  // one at a time: B and C wait while A runs
  o.step_tokens = 64;
  auto engine = Engine::open(o);
  EXPECT_EQ(engine->quantization(), "Q8_0");
  EXPECT_GT(engine->stats().weight_bytes, 200000);
  EXPECT_GT(engine->stats().kv_cache_bytes, 0);
  auto a = std::make_shared<WaitingSink>(), b = std::make_shared<WaitingSink>(), c = std::make_shared<WaitingSink>();
  GenerateRequest long_one{.prompt = "Once upon a time", .max_tokens = -1};  // until the context is full
  long_one.sampling.temperature = 0.0f;
  ASSERT_EQ(engine->submit(long_one, a).status, SubmitStatus::kAccepted);
  GenerateRequest short_one{.prompt = "Once upon a time", .max_tokens = 4, .priority = Priority::kLow};
  const SubmitResult rb = engine->submit(short_one, b);
  const SubmitResult rc = engine->submit(short_one, c);
  ASSERT_EQ(rc.status, SubmitStatus::kAccepted);
  EXPECT_TRUE(engine->reprioritize(rc.id, Priority::kHigh));
  const Completion done_c = c->wait();
  const Completion done_b = b->wait();
  EXPECT_LT(done_c.total_ms, done_b.total_ms) << "C was raised to high: it is admitted before B";
  EXPECT_GT(done_c.queue_ms, 0);
  a->wait();
  EXPECT_FALSE(engine->reprioritize(rb.id, Priority::kHigh)) << "finished";
}

TEST(EngineApi, StepsNeverExceedWhatTheContextCapsABatchAt) {
  // stories260K's 128-token context caps a forward pass at 128 tokens; 8 prompts of ~40 tokens
  // arriving together ask for more prefill than that in one step (step_tokens is 256).
  LIGHTBOAT_REQUIRE_FIXTURES();
  auto engine = Engine::open(stories());
  std::vector<std::shared_ptr<WaitingSink>> sinks;
  for (int i = 0; i < 8; ++i) {
    GenerateRequest r{.prompt =
                          "Once upon a time, there was a little girl named Lily. She loved to play outside in "
                          "the park with her friends and her dog every single day.",
                      .max_tokens = 4};
    sinks.push_back(std::make_shared<WaitingSink>());
    ASSERT_EQ(engine->submit(std::move(r), sinks.back()).status, SubmitStatus::kAccepted);
  }
  for (auto& sink : sinks) {
    const Completion c = sink->wait();
    EXPECT_EQ(c.finish_reason, FinishReason::kLength) << c.error;
    EXPECT_GT(c.prompt_tokens, 30);
  }
}

TEST(EngineApi, ClassifyRanksTheLikelyContinuation) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  auto engine = Engine::open(stories());
  // After "Once upon a time," the story model strongly expects " there was".
  const std::vector<LabelScore> s = engine->classify(
      {.text = "Once upon a time,", .labels = {" there was", " the cat ran", " quantum"}, .prompt_template = "{text}"});
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].label, " there was");
  EXPECT_GT(s[0].probability, s[1].probability);
  EXPECT_GT(s[0].probability, s[2].probability);
  double total = 0;
  for (const LabelScore& l : s) {
    EXPECT_LT(l.logprob, 0.0);
    total += l.probability;
  }
  EXPECT_NEAR(total, 1.0, 1e-9);
  EXPECT_THROW(engine->classify({.text = "x", .labels = {}}), std::exception);
  EXPECT_THROW(engine->classify({.text = "x", .labels = {"a"}, .prompt_template = "no placeholder"}), std::exception);
  EXPECT_EQ(engine->stats().kv_pages_free, engine->stats().kv_pages_total);
}

}  // namespace
}  // namespace lightboat
