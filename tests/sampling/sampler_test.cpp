// Sampler on hand-computable distributions: each stage alone, then determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"
#include "sampling/sampler.h"

namespace lightboat::sampling {
namespace {

// Every filter off, temperature 1: the stage under test is the only one that acts.
SamplingParams plain() {
  return {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 1};
}

std::vector<float> log_of(const std::vector<float>& probs) {
  std::vector<float> out;
  out.reserve(probs.size());
  for (float p : probs) out.push_back(std::log(p));
  return out;
}

std::vector<int32_t> ids(const Sampler& s) {
  std::vector<int32_t> out;
  for (const auto& c : s.candidates()) out.push_back(c.id);
  return out;
}

std::vector<float> random_logits(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto& v : out) v = normal(rng);
  return out;
}

TEST(Sampler, GreedyIsArgmaxWithTiesToLowestId) {
  Sampler s({.temperature = 0.0f}, 5);
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 3.0f, 2.0f, 3.0f, -1.0f}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{-INFINITY, -5.0f, -5.0f, -INFINITY, -6.0f}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{9.0f, 3.0f, 2.0f, 3.0f, -1.0f}), 0);
  ASSERT_EQ(s.candidates().size(), 1u);
  EXPECT_EQ(s.candidates()[0].prob, 1.0f);
}

TEST(Sampler, TopKOneEqualsGreedy) {
  Sampler greedy({.temperature = 0.0f}, 100);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto p = plain();
    p.top_k = 1;
    p.seed = seed;
    Sampler s(p, 100);
    const auto logits = random_logits(100, seed);
    EXPECT_EQ(s.sample(logits), greedy.sample(logits)) << "seed " << seed;
  }
}

TEST(Sampler, TopKKeepsTheKHighestInOrder) {
  auto p = plain();
  p.top_k = 2;
  Sampler s(p, 4);
  s.sample(log_of({0.1f, 0.4f, 0.2f, 0.3f}));
  EXPECT_EQ(ids(s), (std::vector<int32_t>{1, 3}));
  EXPECT_NEAR(s.candidates()[0].prob, 4.0 / 7, 1e-6);
}

TEST(Sampler, TopPKeepsTheMinimalPrefixReachingP) {
  // Sorted: id1 0.4, id3 0.3 (0.7), id2 0.2 (0.9), id0 0.1 (1.0).
  const auto logits = log_of({0.1f, 0.4f, 0.2f, 0.3f});
  const std::vector<std::pair<float, std::vector<int32_t>>> cases = {
      {0.35f, {1}}, {0.65f, {1, 3}}, {0.75f, {1, 3, 2}}, {0.95f, {1, 3, 2, 0}}};
  for (const auto& [top_p, kept] : cases) {
    auto p = plain();
    p.top_p = top_p;
    Sampler s(p, 4);
    s.sample(logits);
    EXPECT_EQ(ids(s), kept) << "top_p " << top_p;
  }
  auto p = plain();
  p.top_p = 0.65f;
  Sampler s(p, 4);
  s.sample(logits);
  EXPECT_NEAR(s.candidates()[0].prob, 4.0 / 7, 1e-6);  // renormalised over {1, 3}
  EXPECT_NEAR(s.candidates()[1].prob, 3.0 / 7, 1e-6);
}

TEST(Sampler, TopPOnALargeVocabularyMatchesAFullSort) {
  // The sampler orders candidates piecewise (see apply_top_p); a flat distribution (sigma 0.5)
  // goes through several chunks, a peaked one (sigma 4) stops after the first cut. The kept
  // prefix must be exactly the one a full sort gives.
  const int n = 5000;
  for (float sigma : {0.5f, 4.0f}) {
    for (float top_p : {0.1f, 0.5f, 0.9f, 0.99f}) {
      auto logits = random_logits(n, 11);
      for (auto& v : logits) v *= sigma / 3.0f;
      std::vector<int32_t> order(n);
      for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
      std::sort(order.begin(), order.end(),
                [&](int32_t a, int32_t b) { return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)]; });
      double z = 0.0;
      for (float v : logits) z += std::exp(static_cast<double>(v));
      std::vector<int32_t> expected;
      double cum = 0.0;
      for (int32_t id : order) {
        expected.push_back(id);
        cum += std::exp(static_cast<double>(logits[static_cast<size_t>(id)])) / z;
        if (cum >= top_p) break;
      }
      auto p = plain();
      p.top_p = top_p;
      Sampler s(p, n);
      s.sample(logits);
      EXPECT_EQ(ids(s), expected) << "sigma " << sigma << " top_p " << top_p;
    }
  }
}

TEST(Sampler, MinPCutsRelativeToTheMostLikely) {
  // p_max = 0.5; min_p 0.25 keeps p >= 0.125: ids 0, 1, 2 (in id order: nothing sorted).
  auto p = plain();
  p.min_p = 0.25f;
  Sampler s(p, 4);
  s.sample(log_of({0.5f, 0.25f, 0.15f, 0.1f}));
  EXPECT_EQ(ids(s), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_NEAR(s.candidates()[2].prob, 0.15 / 0.9, 1e-6);
}

TEST(Sampler, TemperatureScalesATwoTokenDistribution) {
  // P(token 1) = sigmoid((1 - 0) / T). Frequencies over n draws within 5 binomial sigmas; with a
  // fixed seed the test is deterministic, the tolerance only says how lucky the seed may be.
  const std::vector<float> logits = {0.0f, 1.0f};
  for (float t : {0.5f, 1.0f, 2.0f}) {
    auto p = plain();
    p.temperature = t;
    Sampler s(p, 2);
    const double expected = 1.0 / (1.0 + std::exp(-1.0 / t));
    const int n = 20000;
    int ones = 0;
    for (int i = 0; i < n; ++i) ones += s.sample(logits);
    const double sigma = std::sqrt(expected * (1 - expected) / n);
    EXPECT_NEAR(static_cast<double>(ones) / n, expected, 5 * sigma) << "T " << t;
    EXPECT_NEAR(s.candidates()[1].prob, expected, 1e-6);
  }
}

TEST(Sampler, TinyTemperatureApproachesGreedyWithoutOverflow) {
  // 1/T overflows float for these; the sampler must still give the argmax, not throw.
  for (float t : {1e-30f, 1e-40f}) {
    auto p = plain();
    p.temperature = t;
    Sampler s(p, 3);
    EXPECT_EQ(s.sample(std::vector<float>{1.0f, 50.0f, -INFINITY}), 1) << "T " << t;
    EXPECT_EQ(s.candidates()[1].prob, 1.0f);
  }
}

std::vector<int32_t> draw(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(s.sample(logits));
    s.accept(out.back());
  }
  return out;
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferent) {
  const auto logits = random_logits(50, 3);
  auto p = plain();
  p.temperature = 2.0f;  // flat enough that two seeds cannot agree on 200 draws
  p.repeat_penalty = 1.1f;
  p.seed = 7;
  Sampler a(p, 50), b(p, 50);
  const auto first = draw(a, logits, 200);
  EXPECT_EQ(first, draw(b, logits, 200));
  p.seed = 8;
  Sampler c(p, 50);
  EXPECT_NE(first, draw(c, logits, 200));
  a.reset();  // reset = fresh sampler with the same seed
  EXPECT_EQ(first, draw(a, logits, 200));
}

TEST(Sampler, RandomSeedIsResolvedAndReproducible) {
  auto p = plain();
  p.seed = kRandomSeed;
  Sampler a(p, 50);
  EXPECT_NE(a.seed(), kRandomSeed);
  p.seed = a.seed();
  Sampler b(p, 50);
  const auto logits = random_logits(50, 4);
  EXPECT_EQ(draw(a, logits, 50), draw(b, logits, 50));
}

TEST(Sampler, PenaltiesOnAHandExample) {
  auto p = plain();
  p.repeat_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  Sampler s(p, 4);
  for (int32_t t : {0, 1, 0}) s.accept(t);
  s.sample(std::vector<float>{2.0f, -1.0f, 0.5f, 1.0f});
  // id0: seen 2x, positive: 2/2 - 2*0.5 - 0.25; id1: seen once, negative: -1*2 - 0.5 - 0.25.
  const auto c = s.candidates();
  ASSERT_EQ(c.size(), 4u);
  EXPECT_FLOAT_EQ(c[0].logit, -0.25f);
  EXPECT_FLOAT_EQ(c[1].logit, -2.75f);
  EXPECT_FLOAT_EQ(c[2].logit, 0.5f);
  EXPECT_FLOAT_EQ(c[3].logit, 1.0f);
}

TEST(Sampler, PenaltyWindowForgetsOldTokens) {
  auto p = plain();
  p.presence_penalty = 1.0f;
  p.penalty_last_n = 2;
  Sampler s(p, 4);
  for (int32_t t : {0, 1, 2}) s.accept(t);  // 0 has left the 2-token window
  s.sample(std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f});
  const auto c = s.candidates();
  EXPECT_EQ(c[0].logit, 0.0f);
  EXPECT_EQ(c[1].logit, -1.0f);
  EXPECT_EQ(c[2].logit, -1.0f);
  EXPECT_EQ(c[3].logit, 0.0f);

  p.penalty_last_n = -1;  // whole history
  p.frequency_penalty = 1.0f;
  Sampler all(p, 4);
  for (int i = 0; i < 100; ++i) all.accept(0);
  all.sample(std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f});
  EXPECT_EQ(all.candidates()[0].logit, -101.0f);
  all.reset();
  all.sample(std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f});
  EXPECT_EQ(all.candidates()[0].logit, 0.0f);
}

TEST(Sampler, GreedySeesPenalties) {
  Sampler s({.temperature = 0.0f, .repeat_penalty = 1.1f}, 2);
  const std::vector<float> logits = {2.0f, 1.9f};
  EXPECT_EQ(s.sample(logits), 0);
  s.accept(0);
  EXPECT_EQ(s.sample(logits), 1);  // 2 / 1.1 < 1.9
}

TEST(Sampler, RejectsBadInput) {
  EXPECT_THROW(Sampler(plain(), 0), Error);
  EXPECT_THROW(Sampler({.top_p = 0.0f}, 4), Error);
  Sampler s(plain(), 4);
  EXPECT_THROW(s.sample(std::vector<float>{0.0f, 1.0f}), Error);
  EXPECT_THROW(s.sample(std::vector<float>(4, -INFINITY)), Error);
  EXPECT_THROW(s.accept(4), Error);
  EXPECT_THROW(s.accept(-1), Error);
  Sampler g({.temperature = 0.0f}, 2);
  EXPECT_THROW(g.sample(std::vector<float>(2, -INFINITY)), Error);
}

}  // namespace
}  // namespace lightboat::sampling
