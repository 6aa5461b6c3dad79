// The token sampler: one per sequence. Turns a row of logits into a token id.
//
// Pipeline (llama.cpp's default chain, minus the stages we do not offer):
//
//   penalties -> top_k -> top_p -> min_p -> temperature -> softmax -> draw
//
// - penalties use the tokens given to accept() (the last penalty_last_n of them);
// - top_p and min_p look at the softmax of the logits *before* temperature, as in llama.cpp;
// - temperature == 0 is greedy: argmax of the penalised logits, ties to the lowest token id; no
//   random number is drawn, so greedy output does not depend on the seed;
// - the draw uses std::mt19937_64 seeded with params.seed, turned into a uniform double with our
//   own 53-bit conversion (std::uniform_real_distribution differs between standard libraries),
//   so the same seed gives the same tokens on every platform we build on.
//
// Allocation: every buffer ([n_vocab] candidates, [n_vocab] token counts, the penalty window) is
// allocated by the constructor; sample() and accept() never touch the heap. Sorting uses
// std::partial_sort / std::sort, which work in place.
//
// Not thread-safe: one Sampler belongs to one sequence, used by one thread at a time.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "sampling/params.h"

namespace lightboat::sampling {

// One token still in the running after the filters of the last sample() call.
struct Candidate {
  int32_t id = 0;
  float logit = 0.0f;  // after penalties, before temperature (which only shapes prob)
  float prob = 0.0f;   // softmax over the surviving candidates; sums to 1
};

class Sampler {
 public:
  // Validates params (throws Error(kInvalidArgument) naming the field) and n_vocab (> 0), resolves
  // a kRandomSeed seed, and allocates all scratch.
  Sampler(const SamplingParams& params, int32_t n_vocab);

  // Picks the next token from logits [n_vocab] (raw model output, fp32; -inf allowed for masked
  // tokens). Throws Error(kInvalidArgument) when the size is wrong or no logit is finite.
  // Does not record the token: call accept() with whatever token the caller keeps.
  int32_t sample(std::span<const float> logits);

  // Records a token in the penalty history. The caller decides what counts: llama.cpp's CLI
  // accepts the prompt tokens too, its server only generated ones. Throws when token is not in
  // [0, n_vocab).
  void accept(int32_t token);

  // Back to the state right after construction: empty history, RNG reseeded with seed(), so the
  // same logits give the same tokens again.
  void reset();

  // The survivors of the last sample() call, in the order the draw walked them (by descending
  // logit when a stage sorted, else by id), with their final probabilities. Greedy leaves one
  // candidate with prob 1. Valid until the next sample()/reset(). For tests and post-sampling
  // probabilities.
  std::span<const Candidate> candidates() const { return {candidates_.data(), n_candidates_}; }

  const SamplingParams& params() const { return params_; }
  int32_t n_vocab() const { return n_vocab_; }
  // The seed in use: params.seed, or the one picked when params.seed was kRandomSeed.
  uint64_t seed() const { return seed_; }

 private:
  float penalised(float logit, int32_t id) const;
  int32_t sample_greedy(std::span<const float> logits);
  size_t apply_top_p(size_t n, bool sorted);  // returns the kept count; leaves them sorted
  size_t apply_min_p(size_t n, bool sorted);
  // Fills prob of candidates_[0, n) = softmax(logit * scale); scale = 1 / temperature.
  void softmax(size_t n, double scale = 1.0);
  double uniform01();  // [0, 1), 53 random bits

  SamplingParams params_;
  int32_t n_vocab_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  bool penalties_ = false;  // params_.penalties_active(), cached

  std::vector<Candidate> candidates_;  // [n_vocab] scratch; the first n_candidates_ are live
  size_t n_candidates_ = 0;

  // Penalty history: counts_[id] = occurrences of id in the window. With penalty_last_n > 0 the
  // window is a ring buffer of the last penalty_last_n accepted ids; with -1 it is unbounded and
  // only counts_ is kept. Both empty when penalties are off.
  std::vector<int32_t> counts_;  // [n_vocab]
  std::vector<int32_t> window_;  // [penalty_last_n] ring, token ids
  size_t window_head_ = 0;       // next slot to write
  size_t window_size_ = 0;       // filled slots
};

}  // namespace lightboat::sampling
