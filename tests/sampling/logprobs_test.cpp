// log_softmax_top on a hand-computable distribution.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "sampling/logprobs.h"

namespace lightboat::sampling {
namespace {

TEST(Logprobs, HandDistributionWithTieToLowerId) {
  // Probabilities 1/8, 2/8, 3/8, 2/8.
  const std::vector<float> logits = {std::log(1.0f), std::log(2.0f), std::log(3.0f), std::log(2.0f)};
  std::array<TokenLogprob, 3> top{};
  const float lp = log_softmax_top(logits, 0, top);
  EXPECT_NEAR(lp, std::log(1.0 / 8), 1e-6);
  EXPECT_EQ(top[0].token, 2);
  EXPECT_NEAR(top[0].logprob, std::log(3.0 / 8), 1e-6);
  EXPECT_EQ(top[1].token, 1);  // 1 and 3 tie: the lower id first
  EXPECT_EQ(top[2].token, 3);
  EXPECT_NEAR(top[1].logprob, std::log(2.0 / 8), 1e-6);
  EXPECT_NEAR(top[2].logprob, std::log(2.0 / 8), 1e-6);
}

TEST(Logprobs, ShiftInvariantAndMaskedTokens) {
  // Adding a constant changes nothing; -inf tokens get -inf.
  const std::vector<float> logits = {1000.0f, 1000.0f, -INFINITY};
  std::array<TokenLogprob, 1> top{};
  EXPECT_NEAR(log_softmax_top(logits, 1, top), std::log(0.5), 1e-6);
  EXPECT_EQ(top[0].token, 0);
  EXPECT_TRUE(std::isinf(log_softmax_top(logits, 2, {})));
}

TEST(Logprobs, RejectsBadArguments) {
  const std::vector<float> logits = {0.0f, 1.0f};
  std::array<TokenLogprob, 3> too_many{};
  EXPECT_THROW(log_softmax_top(logits, 2, {}), Error);
  EXPECT_THROW(log_softmax_top(logits, -1, {}), Error);
  EXPECT_THROW(log_softmax_top(logits, 0, too_many), Error);
  const std::vector<float> masked = {-INFINITY, -INFINITY};
  EXPECT_THROW(log_softmax_top(masked, 0, {}), Error);
}

}  // namespace
}  // namespace lightboat::sampling
