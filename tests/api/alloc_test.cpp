// The engine's token loop, end to end on stories260K: after the first tokens, generating a token
// makes no heap allocation of its own. What is left are amortised ones: a request's token and
// text buffers growing by doubling, and one prefix-cache entry per filled KV page. A per-token
// allocation anywhere in the step (scheduler, batch layout, forward pass, sampling, stop
// strings, the sink call) would show as at least one per token.
//
// This file replaces the global operator new for its own test binary; counting is on only
// between two of the sink's calls.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>

#include "fixtures.h"
#include "lightboat/engine.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  const auto a = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
// GCC, once it inlines these into a caller of new, sees "free of a new'd pointer"; here that pairing
// is exactly the point.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace lightboat {
namespace {

constexpr int kFrom = 16, kTo = 80;  // counted: between these on_text calls

// Counts allocations between its kFrom-th and kTo-th text pieces (on the engine thread).
class CountingSink final : public TokenSink {
 public:
  void on_text(const std::string&, int32_t) override {
    ++texts_;
    if (texts_ == kFrom) {
      g_allocations = 0;
      g_counting = true;
    } else if (texts_ == kTo) {
      g_counting = false;
      counted_ = g_allocations.load();
    }
  }
  void on_done(const Completion& c) override {
    g_counting = false;
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    finish_ = c.finish_reason;
    cv_.notify_all();
  }
  // Waits for on_done; returns the allocations counted (-1 if fewer than kTo pieces came).
  long wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return done_; });
    EXPECT_TRUE(done_);
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
    auto engine = Engine::open(
        {.model_path = (testing::fixtures_dir() / "stories260K" / "stories260K-Q8_0.gguf").string(), .threads = threads});
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
