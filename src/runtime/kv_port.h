// KvPort: the scheduler's narrow window on the KV cache, keyed by request id. The scheduler asks
// it for page counts and tells it when a request's sequence starts, grows and ends; it never sees
// page ids or tokens. The engine plugs in KvPagesPort (below) over its KvPages; the scheduler's
// tests plug in fakes or the real thing.
//
// Every call happens on the engine thread, inside Scheduler calls (plan, finish).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <utility>

#include "runtime/kv_pages.h"

namespace lightboat::runtime {

using RequestId = uint64_t;  // chosen by the engine, unique among live requests

class KvPort {
 public:
  virtual ~KvPort() = default;

  virtual int32_t page_size() const = 0;    // tokens per page
  virtual int32_t total_pages() const = 0;  // the whole pool
  // Pages an allocation could take right now (free + evictable cached).
  virtual int32_t available_pages() const = 0;

  // Starts the KV sequence of request `id` (first admission, or re-admission after preemption)
  // and reuses what the prefix cache holds of its known tokens (prompt, plus the tokens generated
  // before a preemption). Returns how many of them are already computed: 0 <= r < n_known, where
  // n_known is the count the scheduler passes (for checking; the port knows the tokens).
  virtual int32_t open(RequestId id, int32_t n_known) = 0;
  // Pages grow(id, n_tokens) would allocate.
  virtual int32_t pages_needed(RequestId id, int32_t n_tokens) const = 0;
  // Room for n_tokens more tokens past the computed ones; false (nothing changed) when pages run
  // out.
  virtual bool grow(RequestId id, int32_t n_tokens) = 0;
  // Pages close(id) would hand back (those no other sequence shares).
  virtual int32_t exclusive_pages(RequestId id) const = 0;
  // Ends the sequence (finished, cancelled, expired or preempted); its pages go back to the pool.
  virtual void close(RequestId id) = 0;
};

// KvPort over a KvPages: one KvPages sequence per open request. `known_tokens(id)` must return
// the request's known tokens (prompt ++ generated so far) whenever open() is called; the span is
// only read during the call. The engine uses seq(id) to reach the page table and to commit.
class KvPagesPort final : public KvPort {
 public:
  using KnownTokensFn = std::function<std::span<const TokenId>(RequestId)>;

  // match_limit(id), when given, caps how many leading known tokens open() may take from the
  // prefix cache (a scoring request must compute the positions it scores).
  using MatchLimitFn = std::function<int32_t(RequestId)>;
  KvPagesPort(KvPages& kv, KnownTokensFn known_tokens, MatchLimitFn match_limit = nullptr)
      : kv_(kv), known_tokens_(std::move(known_tokens)), match_limit_(std::move(match_limit)) {}

  int32_t page_size() const override { return kv_.page_size(); }
  int32_t total_pages() const override { return kv_.n_pages(); }
  int32_t available_pages() const override { return kv_.available_pages(); }
  int32_t open(RequestId id, int32_t n_known) override;
  int32_t pages_needed(RequestId id, int32_t n_tokens) const override;
  bool grow(RequestId id, int32_t n_tokens) override;
  int32_t exclusive_pages(RequestId id) const override;
  void close(RequestId id) override;

  // The KvPages sequence of an open request; throws Error(kInvalidArgument) when not open.
  SeqId seq(RequestId id) const;
  bool is_open(RequestId id) const { return seqs_.count(id) != 0; }

 private:
  KvPages& kv_;
  KnownTokensFn known_tokens_;
  MatchLimitFn match_limit_;
  std::unordered_map<RequestId, SeqId> seqs_;
};

}  // namespace lightboat::runtime
