#include "sampling/params.h"

#include <cmath>
#include <string>

#include "base/error.h"

namespace lightboat::sampling {
namespace {

[[noreturn]] void bad(const char* field, const std::string& value, const std::string& rule) {
  throw Error(ErrorKind::kInvalidArgument, "sampling parameter " + std::string(field) + " = " + value + ": " + rule);
}

void check_finite(const char* field, float v) {
  if (!std::isfinite(v)) bad(field, std::to_string(v), "must be a finite number");
}

}  // namespace

void SamplingParams::validate() const {
  check_finite("temperature", temperature);
  check_finite("top_p", top_p);
  check_finite("min_p", min_p);
  check_finite("repeat_penalty", repeat_penalty);
  check_finite("frequency_penalty", frequency_penalty);
  check_finite("presence_penalty", presence_penalty);

  if (temperature < 0.0f) bad("temperature", std::to_string(temperature), "must be >= 0");
  if (top_k < 0) bad("top_k", std::to_string(top_k), "must be >= 0 (0 = off)");
  // (0, 1]: top_p = 0 would keep nothing; llama.cpp clamps it to one token, we say so instead.
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    bad("top_p", std::to_string(top_p), "must be in (0, 1] (1 = off)");
  }
  if (min_p < 0.0f || min_p > 1.0f) bad("min_p", std::to_string(min_p), "must be in [0, 1]");
  if (repeat_penalty <= 0.0f) {
    bad("repeat_penalty", std::to_string(repeat_penalty), "must be > 0 (1 = off)");
  }
  if (penalty_last_n < -1 || penalty_last_n > kMaxPenaltyLastN) {
    bad("penalty_last_n", std::to_string(penalty_last_n),
        "must be -1 (whole history), 0 (off) or 1.." + std::to_string(kMaxPenaltyLastN));
  }
}

}  // namespace lightboat::sampling
