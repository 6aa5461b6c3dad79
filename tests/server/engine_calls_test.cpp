// The public engine calls the server's embeddings, classify and logprobs endpoints stand on
// (include/lightboat/engine.h), end to end on stories260K: embeddings batched equal alone and
// are unit vectors, asynchronous classification equals the blocking one, a group id cancels
// every job of a call, logprobs reach the sink before their text.
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>

#include "fixtures.h"
#include "lightboat/engine.h"

namespace lightboat {
namespace {

EngineOptions stories() {
  return {.model_path = (testing::fixtures_dir() / "stories260K" / "stories260K-Q8_0.gguf").string(), .threads = 1};
}

TEST(EngineCalls, EmbeddingsAreBatchedUnitVectors) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  auto engine = Engine::open(stories());
  const std::vector<std::vector<float>> alone = engine->embed({.texts = {"Once upon a time"}});
  const std::vector<std::vector<float>> batch =
      engine->embed({.texts = {"The cat sat on the mat", "Once upon a time", "Lily"}, .priority = Priority::kLow});
  ASSERT_EQ(alone.size(), 1u);
  ASSERT_EQ(batch.size(), 3u);
  double norm = 0;
  for (float v : alone[0]) norm += double{v} * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  ASSERT_EQ(batch[1].size(), alone[0].size());
  for (size_t k = 0; k < alone[0].size(); ++k) EXPECT_NEAR(batch[1][k], alone[0][k], 1e-5f) << k;
  EXPECT_THROW(engine->embed({.texts = {}}), std::exception);
  EXPECT_THROW(engine->embed({.texts = {"a", ""}}), std::exception);
  EXPECT_EQ(engine->stats().kv_pages_free, engine->stats().kv_pages_total);
}

TEST(EngineCalls, AsyncClassifyEqualsBlockingAndGroupsCancel) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  auto engine = Engine::open(stories());
  const ClassifyRequest request{.text = "Once upon a time,", .labels = {" there was", " quantum"}, .prompt_template = "{text}"};
  const std::vector<LabelScore> blocking = engine->classify(request);
  std::promise<ClassifyOutcome> promise;
  const SubmitResult r = engine->submit_classify(request, [&](ClassifyOutcome o) { promise.set_value(std::move(o)); });
  ASSERT_EQ(r.status, SubmitStatus::kAccepted) << r.message;
  const ClassifyOutcome o = promise.get_future().get();
  ASSERT_EQ(o.finish_reason, FinishReason::kStop) << o.error;
  ASSERT_EQ(o.scores.size(), 2u);
  EXPECT_GT(o.prompt_tokens, 0);
  for (size_t i = 0; i < 2; ++i) EXPECT_NEAR(o.scores[i].logprob, blocking[i].logprob, 1e-9);

  // Many long texts at low priority, cancelled at once through the call's one id.
  EmbedRequest big{.priority = Priority::kLow};
  std::string text;
  for (int i = 0; i < 8; ++i) text += "Once upon a time there was a little girl. ";  // < 128 tokens
  big.texts.assign(64, text);
  std::promise<EmbedOutcome> cancelled;
  const SubmitResult e = engine->submit_embed(big, [&](EmbedOutcome out) { cancelled.set_value(std::move(out)); });
  ASSERT_EQ(e.status, SubmitStatus::kAccepted) << e.message;
  EXPECT_TRUE(engine->reprioritize(e.id, Priority::kNormal));
  EXPECT_TRUE(engine->cancel(e.id));
  EXPECT_EQ(cancelled.get_future().get().finish_reason, FinishReason::kCancelled);
  EXPECT_FALSE(engine->cancel(e.id)) << "the group is gone once its outcome was delivered";
  EXPECT_EQ(engine->submit_embed({.texts = {}}, [](EmbedOutcome) {}).status, SubmitStatus::kInvalid);
}

TEST(EngineCalls, LogprobsReachTheSinkBeforeTheirText) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  struct Sink : TokenSink {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::string> order;  // "lp:<token>" and "text:<text>"
    std::optional<Completion> done;
    void on_logprob(const TokenLogprob& lp) override {
      std::lock_guard<std::mutex> lock(mutex);
      EXPECT_EQ(lp.top.size(), 2u);
      order.push_back("lp:" + lp.token);
    }
    void on_text(const std::string& text, int32_t) override {
      std::lock_guard<std::mutex> lock(mutex);
      order.push_back("text:" + text);
    }
    void on_done(const Completion& c) override {
      std::lock_guard<std::mutex> lock(mutex);
      done = c;
      cv.notify_all();
    }
  };
  auto engine = Engine::open(stories());
  auto sink = std::make_shared<Sink>();
  GenerateRequest g{.prompt = "Once upon a time", .max_tokens = 6, .top_logprobs = 2};
  g.sampling.temperature = 0;
  ASSERT_EQ(engine->submit(std::move(g), sink).status, SubmitStatus::kAccepted);
  std::unique_lock<std::mutex> lock(sink->mutex);
  sink->cv.wait(lock, [&] { return sink->done.has_value(); });
  ASSERT_EQ(sink->done->logprobs.size(), 6u);
  std::string joined;
  for (const TokenLogprob& lp : sink->done->logprobs) {
    joined += lp.token;
    EXPECT_EQ(lp.token, lp.top[0].token);  // greedy
  }
  EXPECT_EQ(joined, sink->done->text);
  ASSERT_FALSE(sink->order.empty());
  EXPECT_EQ(sink->order.front().rfind("lp:", 0), 0u);
}

}  // namespace
}  // namespace lightboat
