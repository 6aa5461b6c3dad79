// Log-probabilities for API responses (OpenAI `logprobs` / `top_logprobs`).
//
// Computed from the *unmodified* logits, before penalties, top-k/p, min-p and temperature: the
// model's own distribution, comparable across requests whatever their sampling settings, which is
// what OpenAI-style clients expect. (The post-filter probabilities of the tokens that survived are
// available from Sampler::candidates() if ever needed.)
//
// Stateless and allocation-free: the caller owns the output buffer (a server keeps one per
// sequence, sized to its top_logprobs limit).
#pragma once

#include <cstdint>
#include <span>

namespace lightboat::sampling {

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;  // natural log, <= 0
};

// Returns log softmax(logits)[chosen] and fills `top` with the top.size() most likely tokens,
// most likely first, ties to the lower id. logits: [n_vocab], finite or -inf with at least one
// finite value. Throws Error(kInvalidArgument) when chosen is out of range, top.size() exceeds
// n_vocab, or no logit is finite. One pass for the max, one for the sum and the top list:
// O(n_vocab * top.size()) in the worst case, about O(n_vocab) in practice.
float log_softmax_top(std::span<const float> logits, int32_t chosen, std::span<TokenLogprob> top);

}  // namespace lightboat::sampling
