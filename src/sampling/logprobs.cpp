#include "sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"

namespace lightboat::sampling {

float log_softmax_top(std::span<const float> logits, int32_t chosen, std::span<TokenLogprob> top) {
  const size_t n = logits.size();
  if (chosen < 0 || static_cast<size_t>(chosen) >= n) {
    throw Error(ErrorKind::kInvalidArgument,
                "logprobs: chosen token " + std::to_string(chosen) + " is outside [0, " + std::to_string(n) + ")");
  }
  if (top.size() > n) {
    throw Error(ErrorKind::kInvalidArgument, "logprobs: asked for " + std::to_string(top.size()) +
                                                 " top tokens of a vocabulary of " + std::to_string(n));
  }

  float max_logit = logits[0];
  for (size_t i = 1; i < n; ++i) max_logit = std::max(max_logit, logits[i]);
  if (!std::isfinite(max_logit)) {
    throw Error(ErrorKind::kInvalidArgument, "logprobs: the largest logit is " + std::to_string(max_logit) +
                                                 "; logits must be finite or -inf, with at least one finite");
  }

  // Sum for the log-normaliser, and an insertion-sorted top list. Ids arrive in increasing order,
  // so a logit equal to one already listed goes after it: ties favour the lower id.
  double sum = 0.0;
  size_t filled = 0;
  for (size_t i = 0; i < n; ++i) {
    const float v = logits[i];
    sum += std::exp(static_cast<double>(v - max_logit));
    if (top.empty() || (filled == top.size() && !(v > top[filled - 1].logprob))) continue;
    size_t pos = filled < top.size() ? filled++ : filled - 1;
    while (pos > 0 && v > top[pos - 1].logprob) {
      top[pos] = top[pos - 1];
      --pos;
    }
    top[pos] = {static_cast<int32_t>(i), v};  // logit for now; normalised below
  }

  const double log_z = static_cast<double>(max_logit) + std::log(sum);
  for (auto& t : top) t.logprob = static_cast<float>(t.logprob - log_z);
  return static_cast<float>(logits[static_cast<size_t>(chosen)] - log_z);
}

}  // namespace lightboat::sampling
