// The scheduler: a pure policy object. Requests in, one batch plan per engine step out, driven by
// an injected Clock (a FakeClock in tests) and talking to the KV cache only through a KvPort. No
// threads, no locks, no model: the engine loop owns it on one thread; other threads reach it
// through the engine's own queue.
//
// A request's tokens. n_known = prompt_len + generated: the prompt plus every token sampled so
// far. n_computed = tokens whose K/V is in the cache. Each step feeds a request the tokens
// [n_computed, n_computed + n) of its known tokens. While n_known - n_computed > 1 the request is
// prefilling (in chunks); the chunk that reaches n_known yields logits for the next token, which
// the engine samples (PlanItem::samples), so n_known grows by one and the request is decoding:
// one token per step. A preempted request restarts at n_computed = 0 (less what the prefix cache
// still holds) with all its known tokens to recompute; its stream just pauses.
//
// Policy, applied by plan() in this order:
//  1. Leaving: cancelled requests (cancel()), requests past their deadline (queued or running),
//     and requests that produced max_new_tokens end; running ones have their pages closed.
//  2. Growth: every decoding request needs room for one more token; when pages run out, the
//     lowest-ranked running request (possibly the one growing) is preempted until it fits.
//     Rank: priority class, then earliest deadline (none = last), then arrival (FIFO).
//  3. Admission, while the batch has a slot (max_running) and prefill budget: the class is chosen
//     by smooth weighted round-robin among the classes with waiting requests (class_weights,
//     e.g. 8:4:1: when all are backlogged they get 8/13, 4/13, 1/13 of the admissions, so low
//     priority is never starved), the request inside the class by earliest deadline, then FIFO.
//     Admission opens the request's KV sequence (prefix cache hit counted) and reserves pages for
//     all of its known tokens at once, keeping admission_headroom_pages spare, so that a started
//     prefill never stalls for pages. When the pages or the slot are short, running requests of
//     STRICTLY lower classes are preempted, lowest rank first, if that frees enough; otherwise
//     the request waits at the head of its class (its round-robin turn kept), and neither its
//     class nor any lower one admits more in this step (no overtaking by smaller requests, which
//     would starve large ones), while higher classes still may.
//     Only requests that were admitted while no higher class had anyone waiting can be preempted
//     this way: they were using idle capacity, which higher classes may take back. A request
//     admitted on its round-robin turn while higher classes waited is protected from admission
//     preemption; otherwise a flood of high priority would evict every low request it let in and
//     the round-robin would guarantee nothing. (Growth in step 2 may still preempt anyone: running
//     requests must be able to progress.)
//  4. The batch: one decode token for every decoding request, then prefill chunks in rank order
//     under the per-step budget: max_step_tokens minus the decodes (chunked prefill: a long
//     prompt never freezes the running streams). Admission in 3 only happens when the request's
//     class would get prefill budget in this step.
//     Latency of higher classes (a step in flight cannot be interrupted, so two things bound the
//     wait of a request that arrives during a flood of lower-class work):
//     - While a request of class c is prefilling, requests of lower classes sit the step out
//       (no decode token, no prefill chunk), so c's first token costs what it costs on an idle
//       engine. Each waits at most max_deferred_steps steps in a row, then rides along: a
//       stream of higher-class prompts slows lower classes but never stops them.
//     - A step whose highest class with work (running or queued) is c holds at most
//       class_step_tokens[c] tokens (0: max_step_tokens), so the step a high request arrives
//       during is short when only background work was running. Decodes are never cut; prefill
//       keeps at least a quarter of the cap so that it always advances.
//
// Refusals at submit() (statuses, not exceptions: they are normal under load):
//  - kOverloaded: the request's class queue holds max_queued[class] requests; retry_after is
//    estimated from the measured admission rate during backlog, scaled by the class's share;
//  - kDeadlineUnmeetable: deadline already past, or now + prompt_len / prefill rate +
//    (max_new_tokens - 1) * per-token decode interval is after it (the rates are exponential
//    moving averages of what the engine reports through observe_step(); with no measurement and
//    no prior yet, only the "already past" test applies). A deadline covers the whole answer at
//    its declared maximum length: a request with a deadline should set max_new_tokens to what it
//    really needs;
//  - kTooLarge: prompt_len + max_new_tokens tokens need more pages than the whole pool.
// Malformed requests (prompt_len < 1, max_new_tokens < 1, an id already live) throw
// Error(kInvalidArgument).
//
// The engine loop (sketch):
//   for (;;) {
//     move submissions / cancellations from other threads into submit() / cancel();
//     const StepPlan& plan = scheduler.plan();
//     tell the sinks of plan.ended why they ended (their pages are already closed);
//     run one forward pass over plan.items: item i feeds its request's known tokens
//       [pos, pos + n_tokens) at those positions; then KvPages::commit() them, and where
//       samples is set, sample a token, append it to the known tokens and stream it;
//       a request that stops (EOS, stop string, error) -> scheduler.finish(id);
//     scheduler.observe_step({...counts and elapsed time of the pass...});
//   }
// The plan is a contract: the scheduler advances n_computed (and n_generated for sampling items)
// as it plans, so the engine must run every item or finish() the requests it could not run.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "runtime/clock.h"
#include "runtime/kv_port.h"

namespace lightboat::runtime {

enum class Priority : uint8_t { kHigh = 0, kNormal = 1, kLow = 2 };
inline constexpr int kNumPriorities = 3;
const char* priority_name(Priority p);

struct RequestInfo {
  RequestId id = 0;
  Priority priority = Priority::kNormal;
  std::optional<TimePoint> deadline;  // absolute, on the scheduler's clock: the answer must be done
  int32_t prompt_len = 0;             // tokens, >= 1
  int32_t max_new_tokens = 0;         // >= 1; the request ends (kMaxTokens) after that many
};

enum class SubmitStatus { kAccepted, kOverloaded, kDeadlineUnmeetable, kTooLarge };
const char* submit_status_name(SubmitStatus s);

struct SubmitResult {
  SubmitStatus status = SubmitStatus::kAccepted;
  Duration retry_after{};  // kOverloaded: when a retry may find room (>= 1 ms)
  Duration estimated{};    // kDeadlineUnmeetable: the service time the estimate came to
};

enum class EndReason {
  kCancelled,         // cancel()
  kDeadlineExceeded,  // the deadline passed while queued or running
  kMaxTokens,         // max_new_tokens generated
};
const char* end_reason_name(EndReason r);

// One request's part of a step's batch.
struct PlanItem {
  RequestId id = 0;
  int32_t pos = 0;       // first position fed = tokens already computed
  int32_t n_tokens = 0;  // feeds known tokens [pos, pos + n_tokens); room for them is reserved
  bool samples = false;  // pos + n_tokens == n_known: sample the next token from the last logits
};

struct Ended {
  RequestId id = 0;
  EndReason reason = EndReason::kCancelled;
};

// Rebuilt by every plan() call in the same buffers (no allocation once they have grown).
struct StepPlan {
  std::vector<PlanItem> items;       // decodes first, then prefill chunks; each in rank order
  std::vector<Ended> ended;          // left at this plan; pages (if any) already closed
  std::vector<RequestId> preempted;  // pages closed, back in the queue to recompute; keep their tokens
  std::vector<RequestId> admitted;   // KV sequence opened at this plan (re-admissions included)
  int32_t n_decode_tokens = 0;       // items with n_tokens == 1 that sample (one per decoding request)
  int32_t n_prefill_tokens = 0;      // all other tokens in items; n_decode + n_prefill <= max_step_tokens
};

// What the engine measured for one forward pass, fed back through observe_step().
struct StepTiming {
  int32_t n_prefill_tokens = 0;
  int32_t n_decode_tokens = 0;
  Duration elapsed{};  // wall time of the pass, sampling included
};

struct SchedulerConfig {
  // Admission shares of high, normal, low when all are backlogged (each >= 1).
  std::array<int32_t, kNumPriorities> class_weights{8, 4, 1};
  int32_t max_step_tokens = 256;  // tokens per forward pass, decodes + prefill chunks
  int32_t max_running = 64;       // requests in the batch at once; must be < max_step_tokens
  // Waiting requests per class beyond which submit() answers kOverloaded (each >= 1). Separate
  // bounds so that a flood of low-priority work cannot lock high priority out of the queue.
  std::array<int32_t, kNumPriorities> max_queued{256, 256, 256};
  // Tokens per step when the class is the highest with work (see step 4); 0 (or anything above
  // max_step_tokens) = max_step_tokens.
  // Small steps for low priority bound how long a high-priority arrival waits for the step in
  // flight; on a compute-bound CPU they cost little throughput (the step's fixed cost, one pass
  // over the weights, is small next to the per-token cost).
  std::array<int32_t, kNumPriorities> class_step_tokens{0, 0, 32};
  // Consecutive steps a lower-class request may sit out while a higher class prefills; 0 = never.
  int32_t max_deferred_steps = 4;
  int32_t admission_headroom_pages = 0;  // pages admission leaves free for decodes to grow into
  double rate_alpha = 0.2;               // EMA weight of the newest observation, in (0, 1]
  // Rates assumed before the first observation; 0 = unknown (no deadline estimate yet).
  double prior_prefill_tokens_per_s = 0.0;
  double prior_decode_interval_s = 0.0;                    // seconds between two tokens of one decoding stream
  Duration default_retry_after = std::chrono::seconds(1);  // before any admission was measured
};

enum class RequestPhase { kQueued, kRunning };

struct RequestView {
  Priority priority = Priority::kNormal;
  RequestPhase phase = RequestPhase::kQueued;
  int32_t n_known = 0;     // prompt_len + n_generated
  int32_t n_computed = 0;  // K/V in the cache (as of the last plan)
  int32_t n_generated = 0;
  int32_t preemptions = 0;
  bool cancelled = false;  // cancel() seen, leaves at the next plan
};

struct SchedulerStats {
  std::array<int32_t, kNumPriorities> queued{};
  std::array<int32_t, kNumPriorities> running{};
  std::array<int64_t, kNumPriorities> admissions{};  // since construction, re-admissions included
  int64_t preemptions = 0;
  int64_t refused_overloaded = 0;
  int64_t refused_deadline = 0;
  int64_t refused_too_large = 0;
  int64_t deadline_exceeded = 0;
  int64_t cancelled = 0;
  double prefill_tokens_per_s = 0.0;  // EMA; 0 = not measured yet
  double decode_interval_s = 0.0;     // EMA; 0 = not measured yet
  double admission_interval_s = 0.0;  // mean time between admissions under backlog; 0 = unknown
};

class Scheduler {
 public:
  // Validates the config (Error(kInvalidArgument) naming the field). Keeps references to clock
  // and kv: both must outlive the scheduler.
  Scheduler(const SchedulerConfig& config, const Clock& clock, KvPort& kv);

  // Queues a request (arrival = clock.now()) or refuses it; see the header comment.
  SubmitResult submit(const RequestInfo& info);
  // Marks a live request cancelled: it leaves at the next plan() (listed in ended, pages closed).
  // Returns false when the id is not live.
  bool cancel(RequestId id);
  // Moves a live request to another class. A queued one joins the new class's queue keeping its
  // arrival order and deadline (so it sits among that class's requests as if submitted there
  // originally; the class's max_queued does not apply: it was already accepted). A running one
  // keeps running and is ranked by its new class, for the batch order and for preemption, from
  // the next plan() on. Returns false when the id is not live.
  bool reprioritize(RequestId id, Priority priority);
  // The engine ended a request (EOS, stop string, error): it leaves now, its pages are closed
  // now, and no plan lists it. Returns false when the id is not live.
  bool finish(RequestId id);

  // The next step. The reference stays valid until the next plan() call.
  const StepPlan& plan();

  // Updates the rate estimates from one forward pass. A pass with prefill is charged wholly to
  // prefill (prefill tokens/s = n_prefill / elapsed: conservative, as its decodes ride along); a
  // pass with decodes measures the decode interval (every decoding stream waited `elapsed` for
  // its token).
  void observe_step(const StepTiming& timing);

  std::optional<RequestView> find(RequestId id) const;
  SchedulerStats stats() const;
  const SchedulerConfig& config() const { return config_; }
  size_t n_live() const { return entries_.size(); }

 private:
  struct Entry {
    RequestInfo info;
    uint64_t arrival = 0;  // submission order, the FIFO tie-break
    bool running = false;
    bool cancelled = false;
    int32_t computed = 0;
    int32_t generated = 0;
    int32_t preemptions = 0;
    bool protected_turn = false;  // admitted while a higher class waited: see step 3 above
    int32_t deferred = 0;         // consecutive steps sat out for a higher class: see step 4
    int32_t known() const { return info.prompt_len + generated; }
    int32_t pending() const { return known() - computed; }
  };
  // Queue order inside a class: earliest deadline first (none last), then arrival.
  struct QueueKey {
    int64_t deadline_ns;
    uint64_t arrival;
    RequestId id;
    auto operator<=>(const QueueKey&) const = default;
  };

  static int cls(const Entry& e) { return static_cast<int>(e.info.priority); }
  QueueKey queue_key(const Entry& e) const;
  bool ranks_before(const Entry& a, const Entry& b) const;  // a is served before b
  void sweep(TimePoint now);
  void grow_decodes();
  void admit();
  bool try_admit(Entry& e);
  void preempt(RequestId id);
  void build_batch();
  void remove_running(RequestId id);
  int32_t step_tokens() const;     // this step's token cap (class_step_tokens of top_class_)
  int32_t prefill_budget(int32_t n_decode) const;  // step_tokens() minus decodes (at least a quarter)
  double admission_interval_s() const;

  SchedulerConfig config_;
  const Clock& clock_;
  KvPort& kv_;
  std::unordered_map<RequestId, Entry> entries_;
  std::array<std::set<QueueKey>, kNumPriorities> queues_;
  std::vector<RequestId> running_;                // sorted by rank during plan()
  std::vector<RequestId> victims_;                // scratch of try_admit()
  std::array<int64_t, kNumPriorities> credit_{};  // smooth weighted round-robin state
  uint64_t next_arrival_ = 0;
  int32_t n_cancelled_queued_ = 0;   // cancelled while queued, not yet swept
  int block_from_ = kNumPriorities;  // during plan(): classes >= this admit no more this step
  int top_class_ = 0;                // during plan(): the highest class running or queued
  StepPlan plan_;

  // Rates (EMAs) and the admission-rate measurement: decayed sums of backlogged time and of the
  // admissions made in it, updated at each plan() whose previous plan left requests waiting.
  double prefill_tps_;
  double decode_interval_s_;
  double backlog_s_ = 0.0;
  double backlog_admissions_ = 0.0;
  std::optional<TimePoint> last_plan_;
  bool backlogged_ = false;

  SchedulerStats counters_;  // the monotonic counters; the rest is filled by stats()
};

}  // namespace lightboat::runtime
