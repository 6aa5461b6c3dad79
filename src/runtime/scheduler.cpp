#include "runtime/scheduler.h"

#include <algorithm>
#include <limits>
#include <string>

#include "base/error.h"

namespace lightboat::runtime {
namespace {

// Per-plan decay of the backlog measurement behind retry-after: about the last 50 plans count
// (a second or two of steps), so the estimate follows the load without jumping on every step.
constexpr double kBacklogDecay = 0.98;

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

Duration from_seconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

void require(bool cond, const std::string& what) {
  check(cond, ErrorKind::kInvalidArgument, [&] { return "SchedulerConfig: " + what; });
}

}  // namespace

const char* priority_name(Priority p) {
  switch (p) {
    case Priority::kHigh:
      return "high";
    case Priority::kNormal:
      return "normal";
    case Priority::kLow:
      return "low";
  }
  return "?";
}

const char* submit_status_name(SubmitStatus s) {
  switch (s) {
    case SubmitStatus::kAccepted:
      return "accepted";
    case SubmitStatus::kOverloaded:
      return "overloaded";
    case SubmitStatus::kDeadlineUnmeetable:
      return "deadline unmeetable";
    case SubmitStatus::kTooLarge:
      return "too large";
  }
  return "?";
}

const char* end_reason_name(EndReason r) {
  switch (r) {
    case EndReason::kCancelled:
      return "cancelled";
    case EndReason::kDeadlineExceeded:
      return "deadline exceeded";
    case EndReason::kMaxTokens:
      return "max tokens";
  }
  return "?";
}

Scheduler::Scheduler(const SchedulerConfig& config, const Clock& clock, KvPort& kv)
    : config_(config),
      clock_(clock),
      kv_(kv),
      prefill_tps_(config.prior_prefill_tokens_per_s),
      decode_interval_s_(config.prior_decode_interval_s) {
  for (int c = 0; c < kNumPriorities; ++c) {
    const std::string name = priority_name(static_cast<Priority>(c));
    require(config.class_weights[c] >= 1, "class_weights[" + name + "] must be >= 1");
    require(config.max_queued[c] >= 1, "max_queued[" + name + "] must be >= 1");
  }
  require(config.max_step_tokens >= 2, "max_step_tokens must be >= 2");
  require(config.max_running >= 1 && config.max_running < config.max_step_tokens,
          "max_running must be in [1, max_step_tokens), got " + std::to_string(config.max_running));
  for (int c = 0; c < kNumPriorities; ++c) {
    require(config.class_step_tokens[c] == 0 || config.class_step_tokens[c] >= 2,
            "class_step_tokens[" + std::string(priority_name(static_cast<Priority>(c))) + "] must be 0 or >= 2");
  }
  require(config.max_deferred_steps >= 0, "max_deferred_steps must be >= 0");
  require(config.admission_headroom_pages >= 0, "admission_headroom_pages must be >= 0");
  require(config.rate_alpha > 0.0 && config.rate_alpha <= 1.0, "rate_alpha must be in (0, 1]");
  require(config.prior_prefill_tokens_per_s >= 0.0 && config.prior_decode_interval_s >= 0.0,
          "prior rates must be >= 0");
  require(config.default_retry_after > Duration::zero(), "default_retry_after must be > 0");
  running_.reserve(static_cast<size_t>(config.max_running) + 1);
  victims_.reserve(static_cast<size_t>(config.max_running) + 1);
  plan_.items.reserve(static_cast<size_t>(config.max_running));
}

Scheduler::QueueKey Scheduler::queue_key(const Entry& e) const {
  const int64_t deadline =
      e.info.deadline ? e.info.deadline->time_since_epoch().count() : std::numeric_limits<int64_t>::max();
  return QueueKey{deadline, e.arrival, e.info.id};
}

bool Scheduler::ranks_before(const Entry& a, const Entry& b) const {
  if (cls(a) != cls(b)) return cls(a) < cls(b);
  return queue_key(a) < queue_key(b);
}

SubmitResult Scheduler::submit(const RequestInfo& info) {
  const std::string who = "request " + std::to_string(info.id);
  check(info.prompt_len >= 1, ErrorKind::kInvalidArgument, [&] { return who + ": prompt_len must be >= 1"; });
  check(info.max_new_tokens >= 1, ErrorKind::kInvalidArgument, [&] { return who + ": max_new_tokens must be >= 1"; });
  check(static_cast<int>(info.priority) < kNumPriorities, ErrorKind::kInvalidArgument,
        [&] { return who + ": bad priority"; });
  check(entries_.count(info.id) == 0, ErrorKind::kInvalidArgument, [&] { return who + ": id already live"; });
  const TimePoint now = clock_.now();
  const int c = static_cast<int>(info.priority);

  // Even alone in an empty pool it could not finish: refusing now beats blocking its class.
  const int64_t ps = kv_.page_size();
  const int64_t pages = (static_cast<int64_t>(info.prompt_len) + info.max_new_tokens + ps - 1) / ps;
  if (pages + config_.admission_headroom_pages > kv_.total_pages()) {
    ++counters_.refused_too_large;
    return {.status = SubmitStatus::kTooLarge};
  }

  if (info.deadline) {
    double est = 0.0;  // seconds of service if started at once
    if (prefill_tps_ > 0.0) est += info.prompt_len / prefill_tps_;
    if (decode_interval_s_ > 0.0) est += (info.max_new_tokens - 1) * decode_interval_s_;
    if (*info.deadline <= now || now + from_seconds(est) > *info.deadline) {
      ++counters_.refused_deadline;
      return {.status = SubmitStatus::kDeadlineUnmeetable, .estimated = from_seconds(est)};
    }
  }

  if (static_cast<int64_t>(queues_[c].size()) >= config_.max_queued[c]) {
    ++counters_.refused_overloaded;
    // A queue slot frees when this class admits one request: one admission interval divided by
    // the class's round-robin share among the classes waiting now.
    int64_t w_backlogged = 0;
    for (int k = 0; k < kNumPriorities; ++k) {
      if (!queues_[k].empty()) w_backlogged += config_.class_weights[k];
    }
    const double share = static_cast<double>(config_.class_weights[c]) / static_cast<double>(w_backlogged);
    const double interval = admission_interval_s();
    Duration retry = interval > 0.0 ? from_seconds(interval / share) : config_.default_retry_after;
    retry = std::max<Duration>(retry, std::chrono::milliseconds(1));
    return {.status = SubmitStatus::kOverloaded, .retry_after = retry};
  }

  Entry e{.info = info, .arrival = next_arrival_++};
  queues_[c].insert(queue_key(e));
  entries_.emplace(info.id, e);
  return {};
}

bool Scheduler::cancel(RequestId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  Entry& e = it->second;
  if (!e.cancelled && !e.running) ++n_cancelled_queued_;
  e.cancelled = true;
  return true;
}

bool Scheduler::reprioritize(RequestId id, Priority priority) {
  check(static_cast<int>(priority) < kNumPriorities, ErrorKind::kInvalidArgument,
        [&] { return "request " + std::to_string(id) + ": bad priority"; });
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  Entry& e = it->second;
  if (e.running) {
    e.info.priority = priority;  // running_ is sorted by rank at the start of every plan()
    return true;
  }
  // The queue key holds deadline and arrival, not the class: re-inserting keeps both.
  queues_[cls(e)].erase(queue_key(e));
  e.info.priority = priority;
  queues_[cls(e)].insert(queue_key(e));
  return true;
}

bool Scheduler::finish(RequestId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  Entry& e = it->second;
  if (e.running) {
    kv_.close(id);
    remove_running(id);
  } else {
    queues_[cls(e)].erase(queue_key(e));
    if (e.cancelled) --n_cancelled_queued_;
  }
  entries_.erase(it);
  return true;
}

void Scheduler::remove_running(RequestId id) {
  auto it = std::find(running_.begin(), running_.end(), id);
  if (it != running_.end()) running_.erase(it);
}

const StepPlan& Scheduler::plan() {
  plan_.items.clear();
  plan_.ended.clear();
  plan_.preempted.clear();
  plan_.admitted.clear();
  plan_.n_decode_tokens = 0;
  plan_.n_prefill_tokens = 0;
  block_from_ = kNumPriorities;
  const TimePoint now = clock_.now();

  sweep(now);
  std::sort(running_.begin(), running_.end(),
            [&](RequestId a, RequestId b) { return ranks_before(entries_.at(a), entries_.at(b)); });
  top_class_ = running_.empty() ? kNumPriorities - 1 : cls(entries_.at(running_.front()));
  for (int c = 0; c < top_class_; ++c) {
    if (!queues_[c].empty()) {
      top_class_ = c;
      break;
    }
  }
  grow_decodes();
  admit();
  build_batch();

  // Admission rate under backlog: only intervals that began with requests waiting count, so the
  // rate measures capacity, not the arrival rate of a lightly loaded server.
  if (last_plan_ && backlogged_) {
    backlog_s_ = backlog_s_ * kBacklogDecay + seconds(now - *last_plan_);
    backlog_admissions_ = backlog_admissions_ * kBacklogDecay + static_cast<double>(plan_.admitted.size());
  }
  last_plan_ = now;
  backlogged_ = std::any_of(queues_.begin(), queues_.end(), [](const auto& q) { return !q.empty(); });
  return plan_;
}

void Scheduler::sweep(TimePoint now) {
  // Running requests: cancelled, past their deadline, or done with max_new_tokens.
  size_t keep = 0;
  for (RequestId id : running_) {
    Entry& e = entries_.at(id);
    std::optional<EndReason> reason;
    if (e.cancelled) {
      reason = EndReason::kCancelled;
    } else if (e.info.deadline && *e.info.deadline <= now) {
      reason = EndReason::kDeadlineExceeded;
    } else if (e.generated >= e.info.max_new_tokens) {
      reason = EndReason::kMaxTokens;
    }
    if (!reason) {
      running_[keep++] = id;
      continue;
    }
    kv_.close(id);
    plan_.ended.push_back({id, *reason});
    if (*reason == EndReason::kCancelled) ++counters_.cancelled;
    if (*reason == EndReason::kDeadlineExceeded) ++counters_.deadline_exceeded;
    entries_.erase(id);
  }
  running_.resize(keep);

  // Queued requests: expired ones sit at the front of their class (earliest deadline first);
  // cancelled ones anywhere, so the whole queue is walked only when some are pending.
  const int64_t now_ns = now.time_since_epoch().count();
  for (auto& q : queues_) {
    for (auto it = q.begin(); it != q.end();) {
      const bool expired = it->deadline_ns <= now_ns;
      if (!expired && n_cancelled_queued_ == 0) break;
      Entry& e = entries_.at(it->id);
      if (!expired && !e.cancelled) {
        ++it;
        continue;
      }
      const EndReason reason = e.cancelled ? EndReason::kCancelled : EndReason::kDeadlineExceeded;
      if (e.cancelled) {
        --n_cancelled_queued_;
        ++counters_.cancelled;
      } else {
        ++counters_.deadline_exceeded;
      }
      plan_.ended.push_back({it->id, reason});
      entries_.erase(it->id);
      it = q.erase(it);
    }
  }
}

void Scheduler::preempt(RequestId id) {
  Entry& e = entries_.at(id);
  kv_.close(id);
  remove_running(id);
  e.running = false;
  e.computed = 0;  // recompute everything known (the prefix cache may still hold most of it)
  ++e.preemptions;
  queues_[cls(e)].insert(queue_key(e));  // original arrival and deadline: back near the head
  plan_.preempted.push_back(id);
  ++counters_.preemptions;
  // Its class must not re-admit it (or anything else) in the same step: the pages it gave up
  // were wanted by someone else.
  block_from_ = std::min(block_from_, cls(e));
}

void Scheduler::grow_decodes() {
  // Highest rank first; victims come from the lowest rank (the back), possibly the grower itself.
  for (size_t i = 0; i < running_.size(); ++i) {
    const RequestId id = running_[i];
    if (entries_.at(id).pending() != 1) continue;  // prefilling: its room was reserved at admission
    while (!kv_.grow(id, 1)) {
      const RequestId victim = running_.back();
      preempt(victim);
      if (victim == id) break;
    }
  }
}

int32_t Scheduler::step_tokens() const {
  const int32_t cap = config_.class_step_tokens[top_class_];
  return cap > 0 ? std::min(cap, config_.max_step_tokens) : config_.max_step_tokens;
}

int32_t Scheduler::prefill_budget(int32_t n_decode) const {
  const int32_t cap = step_tokens();
  // A cap below max_step_tokens must not let decodes crowd prefill out for good; max_step_tokens
  // itself is a hard limit (max_running < max_step_tokens leaves prefill at least one token).
  const int32_t floor = cap < config_.max_step_tokens ? std::max(1, cap / 4) : 0;
  return std::min(std::max(cap - n_decode, floor), config_.max_step_tokens - n_decode);
}

void Scheduler::admit() {
  for (;;) {
    int64_t w_eligible = 0;
    std::array<bool, kNumPriorities> eligible{};
    int pick = -1;
    int64_t best = 0;
    for (int c = 0; c < kNumPriorities; ++c) {
      if (queues_[c].empty()) credit_[c] = 0;  // an idle class banks no credit
      if (c >= block_from_ || queues_[c].empty()) continue;
      eligible[c] = true;
      w_eligible += config_.class_weights[c];
      const int64_t tentative = credit_[c] + config_.class_weights[c];
      if (pick < 0 || tentative > best) {  // ties go to the higher class
        pick = c;
        best = tentative;
      }
    }
    if (pick < 0) return;

    // Prefill budget left for this class: chunks of equal or higher classes are served first.
    int32_t n_decode = 0;  // an upper bound: some may sit out (step 4)
    for (RequestId id : running_) n_decode += entries_.at(id).pending() == 1 ? 1 : 0;
    int32_t budget = prefill_budget(n_decode);
    for (RequestId id : running_) {
      const Entry& r = entries_.at(id);
      if (r.pending() > 1 && cls(r) <= pick) budget -= r.pending();
    }
    Entry& e = entries_.at(queues_[pick].begin()->id);
    if (budget <= 0 || !try_admit(e)) {
      block_from_ = pick;  // it keeps its head position and its round-robin credit
      continue;
    }
    // Smooth weighted round-robin (every eligible class earns its weight, the winner pays the
    // total): over any window the admissions follow the weights within one per class.
    for (int c = 0; c < kNumPriorities; ++c) {
      if (eligible[c]) credit_[c] += config_.class_weights[c];
    }
    credit_[pick] -= w_eligible;
  }
}

bool Scheduler::try_admit(Entry& e) {
  const RequestId id = e.info.id;
  const int c = cls(e);
  bool slot = static_cast<int32_t>(running_.size()) < config_.max_running;
  // Who could make way: strictly lower classes, unprotected, lowest rank first.
  victims_.clear();
  for (size_t j = running_.size(); j-- > 0;) {
    const Entry& v = entries_.at(running_[j]);
    if (cls(v) <= c) break;
    if (!v.protected_turn) victims_.push_back(v.info.id);
  }
  if (!slot && victims_.empty()) return false;  // fail before touching the KV cache
  const int32_t n_known = e.known();
  const int32_t hit = kv_.open(id, n_known);
  check(hit >= 0 && hit < n_known, ErrorKind::kInternal, [&] {
    return "KvPort::open returned " + std::to_string(hit) + " computed tokens for " + std::to_string(n_known) +
           " known";
  });
  const int64_t need = static_cast<int64_t>(kv_.pages_needed(id, n_known - hit)) + config_.admission_headroom_pages;
  const int64_t avail = kv_.available_pages();

  if (need > avail || !slot) {
    // Would preempting strictly lower classes (lowest rank first) make room? Count before acting.
    int64_t freed = 0;
    size_t n_victims = 0;
    while (n_victims < victims_.size() && (need > avail + freed || !slot)) {
      freed += kv_.exclusive_pages(victims_[n_victims++]);
      slot = true;
    }
    if (need > avail + freed || !slot) {
      kv_.close(id);
      return false;
    }
    for (size_t k = 0; k < n_victims; ++k) preempt(victims_[k]);
  }
  if (!kv_.grow(id, n_known - hit)) {  // only if victims shared pages among themselves
    kv_.close(id);
    return false;
  }
  queues_[c].erase(queue_key(e));
  e.running = true;
  e.computed = hit;
  e.protected_turn = false;
  for (int k = 0; k < c; ++k) e.protected_turn = e.protected_turn || !queues_[k].empty();
  // Keep running_ in rank order: victims are taken from its back.
  auto at = std::upper_bound(running_.begin(), running_.end(), id,
                             [&](RequestId a, RequestId b) { return ranks_before(entries_.at(a), entries_.at(b)); });
  running_.insert(at, id);
  plan_.admitted.push_back(id);
  ++counters_.admissions[c];
  return true;
}

void Scheduler::build_batch() {
  // The highest class prefilling in this step: lower classes sit it out (within their limit).
  int urgent = kNumPriorities;
  for (RequestId id : running_) {
    const Entry& e = entries_.at(id);
    if (e.pending() > 1) urgent = std::min(urgent, cls(e));
  }
  const auto sits_out = [&](Entry& e) {
    if (cls(e) > urgent && e.deferred < config_.max_deferred_steps) {
      ++e.deferred;
      return true;
    }
    e.deferred = 0;
    return false;
  };
  // Decoders have their room for one token already (grow_decodes): one that sits out keeps it.
  for (RequestId id : running_) {
    Entry& e = entries_.at(id);
    if (e.pending() != 1 || sits_out(e)) continue;
    plan_.items.push_back({.id = id, .pos = e.computed, .n_tokens = 1, .samples = true});
    ++e.computed;
    ++e.generated;
    ++plan_.n_decode_tokens;
  }
  int32_t budget = prefill_budget(plan_.n_decode_tokens);
  for (RequestId id : running_) {
    if (budget <= 0) break;
    Entry& e = entries_.at(id);
    const int32_t pending = e.pending();
    if (pending <= 1 || sits_out(e)) continue;  // decoding (its token is planned above)
    const int32_t n = std::min(pending, budget);
    const bool samples = n == pending;
    plan_.items.push_back({.id = id, .pos = e.computed, .n_tokens = n, .samples = samples});
    e.computed += n;
    if (samples) ++e.generated;
    plan_.n_prefill_tokens += n;
    budget -= n;
  }
}

void Scheduler::observe_step(const StepTiming& timing) {
  const double s = seconds(timing.elapsed);
  if (s <= 0.0) return;
  const double a = config_.rate_alpha;
  if (timing.n_prefill_tokens > 0) {
    const double tps = timing.n_prefill_tokens / s;
    prefill_tps_ = prefill_tps_ > 0.0 ? (1.0 - a) * prefill_tps_ + a * tps : tps;
  }
  if (timing.n_decode_tokens > 0) {
    decode_interval_s_ = decode_interval_s_ > 0.0 ? (1.0 - a) * decode_interval_s_ + a * s : s;
  }
}

double Scheduler::admission_interval_s() const {
  if (backlog_s_ <= 0.0) return 0.0;
  return backlog_s_ / std::max(backlog_admissions_, 1.0);
}

std::optional<RequestView> Scheduler::find(RequestId id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  const Entry& e = it->second;
  return RequestView{.priority = e.info.priority,
                     .phase = e.running ? RequestPhase::kRunning : RequestPhase::kQueued,
                     .n_known = e.known(),
                     .n_computed = e.computed,
                     .n_generated = e.generated,
                     .preemptions = e.preemptions,
                     .cancelled = e.cancelled};
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats st = counters_;
  for (int c = 0; c < kNumPriorities; ++c) st.queued[c] = static_cast<int32_t>(queues_[c].size());
  for (RequestId id : running_) ++st.running[cls(entries_.at(id))];
  st.prefill_tokens_per_s = prefill_tps_;
  st.decode_interval_s = decode_interval_s_;
  st.admission_interval_s = admission_interval_s();
  return st;
}

}  // namespace lightboat::runtime
