// The token loop must not allocate: count global operator new calls around it.
//
// This file replaces the global operator new/delete for the whole test binary; counting is off
// except inside the measured regions, so other tests are unaffected.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "sampling/logprobs.h"
#include "sampling/sampler.h"
#include "sampling/stop.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC, once it inlines these into a caller of new, sees "free of a new'd pointer"; here that pairing
// is exactly the point.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#pragma GCC diagnostic pop

namespace lightboat::sampling {
namespace {

// Runs fn with allocation counting on; returns the number of operator new calls it made.
template <typename Fn>
long allocations_in(Fn&& fn) {
  g_allocations = 0;
  g_counting = true;
  fn();
  g_counting = false;
  return g_allocations.load();
}

TEST(NoAllocation, CounterWorks) {
  EXPECT_GE(allocations_in([] { std::vector<int> v(10); }), 1);
}

TEST(NoAllocation, SamplerTokenLoop) {
  const int n_vocab = 1000;
  std::vector<float> logits(n_vocab);
  for (int i = 0; i < n_vocab; ++i) logits[static_cast<size_t>(i)] = static_cast<float>(i % 37);
  // Every stage on, both penalty window kinds, and greedy.
  for (int32_t last_n : {16, -1}) {
    Sampler s({.temperature = 0.9f,
               .top_k = 200,
               .top_p = 0.9f,
               .min_p = 0.01f,
               .repeat_penalty = 1.1f,
               .frequency_penalty = 0.1f,
               .presence_penalty = 0.1f,
               .penalty_last_n = last_n,
               .seed = 5},
              n_vocab);
    EXPECT_EQ(allocations_in([&] {
                for (int i = 0; i < 100; ++i) s.accept(s.sample(logits));
                s.reset();
              }),
              0);
  }
  Sampler no_top_k({.temperature = 1.0f, .top_k = 0, .top_p = 0.5f, .seed = 5}, n_vocab);
  Sampler greedy({.temperature = 0.0f, .repeat_penalty = 1.3f}, n_vocab);
  std::array<TokenLogprob, 5> top{};
  EXPECT_EQ(allocations_in([&] {
              for (int i = 0; i < 20; ++i) {
                no_top_k.accept(no_top_k.sample(logits));
                const int32_t t = greedy.sample(logits);
                greedy.accept(t);
                log_softmax_top(logits, t, top);
              }
            }),
            0);
}

TEST(NoAllocation, StopMatcherStream) {
  StopMatcher m({"</answer>", "\n\n"});
  const std::vector<std::string> pieces = {"The", " answer", " <", "/ans", "wer", " is", "\n", "x", " \xC3", "\xA9"};
  EXPECT_EQ(allocations_in([&] {
              for (int i = 0; i < 50; ++i) {
                for (const auto& p : pieces) m.feed(p);
              }
              m.flush();
            }),
            0);
}

}  // namespace
}  // namespace lightboat::sampling
