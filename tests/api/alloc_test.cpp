// The engine's token loop, end to end on stories260K: after the first tokens, generating a token
// makes no heap allocation of its own. What is left are amortised ones: a request's token and
// text buffers growing by doubling, and one prefix-cache entry per filled KV page. A per-token
// allocation anywhere in the step (scheduler, batch layout, forward pass, sampling, stop
// strings, the sink call) would show as at least one per token. Pieces are counted, which here
// are one per token. (stories260K's pieces are all short: longer ones, which pass through the
// same reused buffers, are not exercised here.)
//
// Counted with tests/alloc_counter.h, between two of the sink's calls.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "alloc_counter.h"
#include "fixtures.h"
#include "lightboat/engine.h"

namespace lightboat {
namespace {

constexpr int kFrom = 16, kTo = 80;  // counted: between these on_text calls

// Counts allocations between its kFrom-th and kTo-th text pieces (on the engine thread).
class CountingSink final : public TokenSink {
 public:
  void on_text(const std::string&, int32_t) override {
    ++texts_;
    if (texts_ == kFrom) {
      testing::start_counting_allocations();
    } else if (texts_ == kTo) {
      counted_ = testing::stop_counting_allocations();
    }
  }
  void on_done(const Completion& c) override {
    if (texts_ < kTo) testing::stop_counting_allocations();
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    finish_ = c.finish_reason;
    cv_.notify_all();
  }
  // Waits for on_done; returns the allocations counted (-1 if fewer than kTo pieces came, or
  // on_done did not come in time).
  long wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, std::chrono::seconds(60), [&] { return done_; })) {
      ADD_FAILURE() << "no on_done within 60 s";
      return -1;  // (the engine thread may still be writing texts_)
    }
    return texts_ >= kTo ? counted_ : -1;
  }
  FinishReason finish() const { return finish_; }

 private:
  int texts_ = 0;  // engine thread only
  long counted_ = -1;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  FinishReason finish_ = FinishReason::kError;
};

TEST(EngineAllocation, TokensAllocateOnlyAmortised) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  for (int threads : {1, 2}) {
    auto engine =
        Engine::open({.model_path = (testing::fixtures_dir() / "stories260K" / "stories260K-Q8_0.gguf").string(),
                      .threads = threads});
    GenerateRequest r{.prompt = "Once upon a time", .max_tokens = 2 * kTo, .stop = {"never said"}};
    r.sampling.temperature = 0.0f;  // greedy: stories260K runs on for well past kTo pieces
    auto sink = std::make_shared<CountingSink>();
    ASSERT_EQ(engine->submit(std::move(r), sink).status, SubmitStatus::kAccepted);
    const long n = sink->wait();
    ASSERT_GE(n, 0) << "the request ended before " << kTo << " text pieces";
    // Amortised growth and a page entry now and then: a handful over the window, not one per token.
    EXPECT_LT(n, (kTo - kFrom) / 2) << threads << " thread(s): " << n << " allocations over " << kTo - kFrom
                                    << " tokens";
  }
}

}  // namespace
}  // namespace lightboat
