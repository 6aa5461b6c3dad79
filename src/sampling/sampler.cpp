#include "sampling/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "base/error.h"

namespace lightboat::sampling {
namespace {

// Descending logit, ties to the lower id: a strict weak order (no NaNs reach it), and the same
// order on every platform whatever the sort algorithm does with equal keys.
bool higher(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

[[noreturn]] void throw_no_finite_logit(float max_logit) {
  throw Error(ErrorKind::kInvalidArgument, "sampler: the largest candidate logit is " + std::to_string(max_logit) +
                                               "; logits must be finite or -inf, with at least one finite");
}

uint64_t resolve_seed(uint64_t seed) {
  if (seed != kRandomSeed) return seed;
  // random_device may be deterministic on some platforms; mixing in the clock keeps two runs
  // apart there. The result is never kRandomSeed itself, so seed() can be fed back verbatim.
  std::random_device rd;
  uint64_t s = (uint64_t{rd()} << 32) ^ rd();
  s ^= static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return s == kRandomSeed ? 0 : s;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params), n_vocab_(n_vocab), seed_(resolve_seed(params.seed)), rng_(seed_) {
  params_.validate();
  check(n_vocab > 0, ErrorKind::kInvalidArgument,
        [&] { return "sampler: n_vocab = " + std::to_string(n_vocab) + " must be > 0"; });
  penalties_ = params_.penalties_active();
  candidates_.resize(static_cast<size_t>(n_vocab));
  if (penalties_) {
    counts_.assign(static_cast<size_t>(n_vocab), 0);
    if (params_.penalty_last_n > 0) window_.assign(static_cast<size_t>(params_.penalty_last_n), 0);
  }
}

void Sampler::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  window_head_ = 0;
  window_size_ = 0;
  n_candidates_ = 0;
  rng_.seed(seed_);
}

void Sampler::accept(int32_t token) {
  // if/throw rather than check(): check() would build its message on every call.
  if (token < 0 || token >= n_vocab_) {
    throw Error(ErrorKind::kInvalidArgument, "sampler: accepted token " + std::to_string(token) + " is outside [0, " +
                                                 std::to_string(n_vocab_) + ")");
  }
  if (!penalties_) return;
  if (!window_.empty()) {
    // Ring full: the oldest token leaves the window before the new one enters.
    if (window_size_ == window_.size()) {
      --counts_[static_cast<size_t>(window_[window_head_])];
    } else {
      ++window_size_;
    }
    window_[window_head_] = token;
    window_head_ = (window_head_ + 1) % window_.size();
  }
  ++counts_[static_cast<size_t>(token)];
}

float Sampler::penalised(float logit, int32_t id) const {
  if (!penalties_) return logit;
  const int32_t c = counts_[static_cast<size_t>(id)];
  if (c == 0) return logit;
  // llama.cpp's rule: scale towards "less likely" whatever the sign, then subtract.
  logit = logit <= 0.0f ? logit * params_.repeat_penalty : logit / params_.repeat_penalty;
  return logit - static_cast<float>(c) * params_.frequency_penalty - params_.presence_penalty;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.size() != static_cast<size_t>(n_vocab_)) {
    throw Error(ErrorKind::kInvalidArgument, "sampler: got " + std::to_string(logits.size()) +
                                                 " logits, expected n_vocab = " + std::to_string(n_vocab_));
  }
  if (params_.temperature == 0.0f) return sample_greedy(logits);

  size_t n = logits.size();
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    candidates_[i] = {id, penalised(logits[i], id), 0.0f};
  }

  // top_k: a partial sort both cuts and orders, O(V log k).
  bool sorted = false;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    const auto k = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(k),
                      candidates_.begin() + static_cast<ptrdiff_t>(n), higher);
    n = k;
    sorted = true;
  }
  if (params_.top_p < 1.0f) {
    n = apply_top_p(n, sorted);
    sorted = true;
  }
  if (params_.min_p > 0.0f) n = apply_min_p(n, sorted);

  // Temperature is applied inside the softmax, to differences from the max (all <= 0, in double):
  // dividing the logits themselves by a tiny temperature would overflow to inf.
  softmax(n, 1.0 / static_cast<double>(params_.temperature));
  n_candidates_ = n;

  // Inverse-CDF draw over the survivors in their current order. Rounding can leave the running
  // sum a hair under r at the end; the last candidate then takes it.
  const double r = uniform01();
  double cum = 0.0;
  for (size_t i = 0; i + 1 < n; ++i) {
    cum += candidates_[i].prob;
    if (r < cum) return candidates_[i].id;
  }
  return candidates_[n - 1].id;
}

int32_t Sampler::sample_greedy(std::span<const float> logits) {
  int32_t best = 0;
  float best_logit = penalised(logits[0], 0);
  for (size_t i = 1; i < logits.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    const float v = penalised(logits[i], id);
    if (v > best_logit) {  // strict: an equal logit later in the vocabulary does not win
      best = id;
      best_logit = v;
    }
  }
  if (!std::isfinite(best_logit)) throw_no_finite_logit(best_logit);
  candidates_[0] = {best, best_logit, 1.0f};
  n_candidates_ = 1;
  return best;
}

size_t Sampler::apply_top_p(size_t n, bool sorted) {
  softmax(n);
  // Shortest prefix (by descending logit) whose mass reaches top_p; at least one token survives.
  // A full sort of a 150k vocabulary costs ~20 ms. Instead, when the candidates are not sorted
  // yet, they are ordered a piece at a time, each piece a prefix of the full order:
  // - first the tokens with prob >= kFirstCut (at most 1/kFirstCut of them), found by one
  //   partition pass: in a typical peaked distribution they already hold top_p of the mass;
  // - then chunks of doubling size, nth_element moving each in front of the rest; a flat
  //   distribution costs a few linear passes, no more than a sort.
  // Same result as a full sort: prob is monotonic in logit and `higher` is a total order.
  constexpr float kFirstCut = 1.0f / 1024;
  const auto at = [this](size_t i) { return candidates_.begin() + static_cast<ptrdiff_t>(i); };
  double cum = 0.0;
  size_t done = 0;                             // candidates_[0, done) are sorted and in their final places
  const auto walk = [&](size_t end) -> bool {  // true when the prefix reached top_p at done
    for (; done < end; ++done) {
      cum += candidates_[done].prob;
      if (cum >= params_.top_p) {
        ++done;
        return true;
      }
    }
    return false;
  };
  if (sorted) return walk(n) ? done : n;

  const auto first = std::partition(at(0), at(n), [](const Candidate& c) { return c.prob >= kFirstCut; });
  std::sort(at(0), first, higher);
  if (walk(static_cast<size_t>(first - at(0)))) return done;
  while (done < n) {
    const size_t end = std::min(n, std::max<size_t>(2 * done, 256));
    if (end < n) std::nth_element(at(done), at(end), at(n), higher);
    std::sort(at(done), at(end), higher);
    if (walk(end)) return done;
  }
  return n;
}

size_t Sampler::apply_min_p(size_t n, bool sorted) {
  // p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p): no softmax needed.
  float max_logit = candidates_[0].logit;
  if (!sorted) {
    for (size_t i = 1; i < n; ++i) max_logit = std::max(max_logit, candidates_[i].logit);
  }
  const float threshold = max_logit + std::log(params_.min_p);
  // Stable in-place compaction: the kept tokens keep their order (sorted stays sorted).
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (candidates_[i].logit >= threshold) candidates_[kept++] = candidates_[i];
  }
  return kept;  // >= 1: the max always passes (log(min_p) <= 0)
}

void Sampler::softmax(size_t n, double scale) {
  float max_logit = candidates_[0].logit;
  for (size_t i = 1; i < n; ++i) max_logit = std::max(max_logit, candidates_[i].logit);
  if (!std::isfinite(max_logit)) throw_no_finite_logit(max_logit);
  // Exponents in float (a vocabulary's worth of double exp is measurably slower), summed in
  // double. The scale is clamped to the float range so that 0 * scale stays 0 for the max.
  const auto fscale = static_cast<float>(std::min(scale, static_cast<double>(std::numeric_limits<float>::max())));
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float e = std::exp((candidates_[i].logit - max_logit) * fscale);
    candidates_[i].prob = e;
    sum += e;
  }
  const double inv = 1.0 / sum;  // sum >= 1: the max contributes exp(0)
  for (size_t i = 0; i < n; ++i) {
    candidates_[i].prob = static_cast<float>(candidates_[i].prob * inv);
  }
}

double Sampler::uniform01() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

}  // namespace lightboat::sampling
