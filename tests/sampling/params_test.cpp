// SamplingParams::validate: every bad value throws kInvalidArgument naming the field.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "base/error.h"
#include "sampling/params.h"

namespace lightboat::sampling {
namespace {

// Expects validate() to throw kInvalidArgument whose message names `field`.
void expect_rejected(const SamplingParams& p, const std::string& field) {
  try {
    p.validate();
    ADD_FAILURE() << "validate() accepted a bad " << field;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
}

TEST(SamplingParams, DefaultsAreValidAndMatchLlamaCpp) {
  const SamplingParams p;
  EXPECT_NO_THROW(p.validate());
  EXPECT_FLOAT_EQ(p.temperature, 0.8f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_EQ(p.penalty_last_n, 64);
  EXPECT_EQ(p.seed, kRandomSeed);
  EXPECT_FALSE(p.penalties_active());
}

TEST(SamplingParams, EdgeValuesAreValid) {
  EXPECT_NO_THROW(
      (SamplingParams{.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 1.0f, .penalty_last_n = -1}.validate()));
  EXPECT_NO_THROW((SamplingParams{
      .min_p = 0.0f, .frequency_penalty = -2.0f, .presence_penalty = -2.0f, .penalty_last_n = kMaxPenaltyLastN}
                       .validate()));
}

TEST(SamplingParams, RejectsBadValuesNamingTheField) {
  expect_rejected({.temperature = -0.1f}, "temperature");
  expect_rejected({.temperature = NAN}, "temperature");
  expect_rejected({.top_k = -1}, "top_k");
  expect_rejected({.top_p = 0.0f}, "top_p");
  expect_rejected({.top_p = 1.01f}, "top_p");
  expect_rejected({.min_p = -0.01f}, "min_p");
  expect_rejected({.min_p = 1.5f}, "min_p");
  expect_rejected({.repeat_penalty = 0.0f}, "repeat_penalty");
  expect_rejected({.frequency_penalty = INFINITY}, "frequency_penalty");
  expect_rejected({.presence_penalty = NAN}, "presence_penalty");
  expect_rejected({.penalty_last_n = -2}, "penalty_last_n");
  expect_rejected({.penalty_last_n = kMaxPenaltyLastN + 1}, "penalty_last_n");
}

}  // namespace
}  // namespace lightboat::sampling
