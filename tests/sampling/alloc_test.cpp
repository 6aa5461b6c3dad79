// The token loop must not allocate: count global operator new calls around it.
//
// Counted with tests/alloc_counter.h (linked into the whole test binary; counting is off except
// inside the measured regions, so other tests are unaffected).
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "sampling/logprobs.h"
#include "sampling/sampler.h"
#include "sampling/stop.h"

namespace lightboat::sampling {
namespace {

using testing::allocations_in;

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
