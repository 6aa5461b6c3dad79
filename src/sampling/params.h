// Per-request sampling parameters: one plain struct, defaults written once (here), checked by
// validate(). Built with designated initialisers at call sites:
//
//   SamplingParams p{.temperature = 0.7f, .top_k = 20, .seed = 42};
//   p.validate();  // throws lightboat::Error(kInvalidArgument) naming the bad field
//
// Semantics and defaults follow llama.cpp's common sampler so that `--temp/--top-k/--top-p/--seed`
// mean the same thing in both programs. Every stage has a value that switches it off; the
// pipeline applies them in llama.cpp's default order (see sampler.h).
#pragma once

#include <cstdint>

namespace lightboat::sampling {

// The seed value that means "pick one at construction from std::random_device and the clock".
// Sampler::seed() reports the seed actually used, so a random run can still be reproduced.
inline constexpr uint64_t kRandomSeed = ~uint64_t{0};

// Largest positive penalty_last_n accepted: the window is a ring buffer allocated up front
// (4 bytes per slot), so an absurd window would be an absurd allocation. 1 Mi tokens is beyond
// any context we run; -1 (whole history) costs nothing extra.
inline constexpr int32_t kMaxPenaltyLastN = 1 << 20;

struct SamplingParams {
  // Logits are divided by this before the softmax. 0 = greedy: argmax of the (penalised) logits,
  // ties to the lowest token id; top_k/top_p/min_p cannot change the argmax so they are skipped.
  float temperature = 0.8f;
  // Keep only the k highest logits. 0 = off. (k >= n_vocab is also a no-op.)
  int32_t top_k = 40;
  // Nucleus: keep the shortest prefix of the sorted candidates whose probability mass is >= top_p
  // (at least one token). 1 = off. Must be in (0, 1].
  float top_p = 0.95f;
  // Keep tokens whose probability is >= min_p * (probability of the most likely token). 0 = off.
  // Must be in [0, 1].
  float min_p = 0.05f;

  // Penalties over the last penalty_last_n accepted tokens (Sampler::accept), llama.cpp's rules:
  // a token seen c > 0 times has its logit divided by repeat_penalty when positive, multiplied
  // when negative, then reduced by c * frequency_penalty + presence_penalty.
  float repeat_penalty = 1.0f;     // 1 = off; must be > 0
  float frequency_penalty = 0.0f;  // 0 = off; any finite value (OpenAI uses [-2, 2])
  float presence_penalty = 0.0f;   // 0 = off; any finite value
  // Window of accepted tokens the penalties look at: 0 = penalties off, -1 = every token accepted
  // since construction / reset(), otherwise 1..kMaxPenaltyLastN.
  int32_t penalty_last_n = 64;

  // Seed of the sampler's RNG; same seed + same logits + same accepted tokens -> same tokens.
  uint64_t seed = kRandomSeed;

  // Throws lightboat::Error(kInvalidArgument) naming the first bad field and its value.
  void validate() const;

  // True when the penalty stage changes anything (so the sampler can skip it).
  bool penalties_active() const {
    return penalty_last_n != 0 && (repeat_penalty != 1.0f || frequency_penalty != 0.0f || presence_penalty != 0.0f);
  }
};

}  // namespace lightboat::sampling
