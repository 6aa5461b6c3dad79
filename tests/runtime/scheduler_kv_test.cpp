// Preemption, and the scheduler driving the real KvPages through KvPagesPort: a miniature engine
// that "computes" K/V by writing token ids into a page store, so that prefix reuse, preemption
// and recompute are checked against what every sequence must read back.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "fake_kv.h"
#include "runtime/kv_pages.h"
#include "runtime/kv_port.h"
#include "runtime/scheduler.h"

namespace lightboat::runtime {
namespace {

using testing::contains;
using testing::Harness;

TEST(SchedulerPreemption, HigherClassPreemptsLowerWhenPagesAreShort) {
  Harness h(SchedulerConfig{}, /*total_pages=*/10, /*page_size=*/4);
  ASSERT_EQ(h.submit(1, Priority::kLow, 30, 8).status, SubmitStatus::kAccepted);
  EXPECT_EQ(h.step().admitted, std::vector<RequestId>{1});  // 8 of 10 pages
  ASSERT_EQ(h.submit(2, Priority::kHigh, 12, 4).status, SubmitStatus::kAccepted);
  const StepPlan& p = h.step();
  EXPECT_EQ(p.preempted, std::vector<RequestId>{1});
  EXPECT_EQ(p.admitted, std::vector<RequestId>{2});
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].id, 2u);
  const RequestView low = *h.sched.find(1);
  EXPECT_EQ(low.phase, RequestPhase::kQueued);
  EXPECT_EQ(low.n_computed, 0);
  EXPECT_EQ(low.n_generated, 1);  // its first token stays; it recomputes 31 known tokens
  EXPECT_EQ(low.preemptions, 1);
  EXPECT_FALSE(h.kv.is_open(1));

  // The low request waits (it cannot preempt high) and comes back once high is done.
  bool readmitted = false;
  for (int i = 0; i < 30 && !h.ended.count(1); ++i) {
    const StepPlan& q = h.step();
    if (contains(q.admitted, 1)) {
      readmitted = true;
      EXPECT_TRUE(h.ended.count(2));
      ASSERT_EQ(q.items.size(), 1u);
      EXPECT_EQ(q.items[0].pos, 0);
      EXPECT_EQ(q.items[0].n_tokens, 31);
      EXPECT_TRUE(q.items[0].samples);
    }
  }
  EXPECT_TRUE(readmitted);
  EXPECT_EQ(h.ended[1], EndReason::kMaxTokens);
  EXPECT_EQ(h.ended[2], EndReason::kMaxTokens);
  EXPECT_EQ(h.sched.stats().preemptions, 1);
}

TEST(SchedulerPreemption, HigherClassTakesBackASlotUsedByIdleCapacity) {
  Harness h(SchedulerConfig{.max_running = 1});
  h.submit(1, Priority::kLow, 10, 20);
  EXPECT_EQ(h.step().admitted, std::vector<RequestId>{1});  // nobody else waited
  h.submit(2, Priority::kHigh, 10, 20);
  const StepPlan& p = h.step();
  EXPECT_EQ(p.preempted, std::vector<RequestId>{1});
  EXPECT_EQ(p.admitted, std::vector<RequestId>{2});
}

TEST(SchedulerPreemption, ARoundRobinTurnIsNotTakenBack) {
  // One slot, eight high requests and one low: low's turn comes while high ones wait, and then
  // it runs to the end although high requests keep waiting.
  Harness h(SchedulerConfig{.max_running = 1});
  for (RequestId id = 1; id <= 8; ++id) h.submit(id, Priority::kHigh, 1, 1);
  h.submit(100, Priority::kLow, 1, 5);
  int low_steps = 0;
  for (int i = 0; i < 40 && !h.ended.count(100); ++i) {
    const StepPlan& p = h.step();
    EXPECT_TRUE(p.preempted.empty());
    for (const PlanItem& it : p.items) low_steps += it.id == 100 ? 1 : 0;
  }
  EXPECT_EQ(h.ended[100], EndReason::kMaxTokens);
  EXPECT_EQ(low_steps, 5);
  EXPECT_LT(h.sched.stats().admissions[0], 8);  // it ran while high ones were still queued
}

TEST(SchedulerPreemption, SameClassWaitsInsteadOfPreempting) {
  Harness h(SchedulerConfig{}, /*total_pages=*/4, /*page_size=*/4);
  h.submit(1, Priority::kNormal, 12, 4);
  h.submit(2, Priority::kNormal, 8, 4);
  EXPECT_EQ(h.step().admitted, std::vector<RequestId>{1});  // 3 pages; 2 needs 2, 1 is left
  for (int i = 0; i < 20 && h.ended.size() < 2; ++i) {
    const StepPlan& p = h.step();
    EXPECT_TRUE(p.preempted.empty());
    if (contains(p.admitted, 2)) {
      EXPECT_TRUE(h.ended.count(1));
    }
  }
  EXPECT_EQ(h.ended.size(), 2u);
  EXPECT_EQ(h.sched.stats().preemptions, 0);
}

TEST(SchedulerPreemption, DecodeGrowthPreemptsTheLowestRankedRequest) {
  // Both need 4 pages at the end, 7 exist: the later arrival gives way, then finishes.
  Harness h(SchedulerConfig{}, /*total_pages=*/7, /*page_size=*/4);
  h.submit(1, Priority::kNormal, 4, 12);
  h.submit(2, Priority::kNormal, 4, 12);
  std::vector<RequestId> preempted;
  for (int i = 0; i < 100 && h.ended.size() < 2; ++i) {
    const StepPlan& p = h.step();
    preempted.insert(preempted.end(), p.preempted.begin(), p.preempted.end());
    EXPECT_LE(h.kv.available_pages(), 7);
  }
  EXPECT_FALSE(preempted.empty());
  EXPECT_FALSE(contains(preempted, 1));
  EXPECT_EQ(h.ended[1], EndReason::kMaxTokens);
  EXPECT_EQ(h.ended[2], EndReason::kMaxTokens);
  EXPECT_EQ(h.kv.n_open(), 0u);
}

// The engine in miniature over the real allocator.
class MiniEngine {
 public:
  MiniEngine(int32_t n_pages, int32_t page_size, SchedulerConfig config)
      : kv_({.n_pages = n_pages, .page_size = page_size}),
        store_(static_cast<size_t>(n_pages * page_size), -1),
        port_(kv_, [this](RequestId id) { return std::span<const TokenId>(known_.at(id)); }),
        sched_(config, clock_, port_) {}

  SubmitResult submit(RequestId id, Priority pri, std::vector<TokenId> prompt, int32_t max_new) {
    const int32_t n = static_cast<int32_t>(prompt.size());
    const SubmitResult r = sched_.submit({.id = id, .priority = pri, .prompt_len = n, .max_new_tokens = max_new});
    if (r.status == SubmitStatus::kAccepted) known_[id] = std::move(prompt);
    return r;
  }

  // plan -> "forward" (write K/V = token ids) -> commit -> sample; checks everything after.
  const StepPlan& step() {
    const StepPlan& p = sched_.plan();
    for (const Ended& e : p.ended) {
      ended_[e.id] = e.reason;
      known_.erase(e.id);
    }
    std::vector<RequestId> stop;
    for (const PlanItem& item : p.items) {
      std::vector<TokenId>& toks = known_.at(item.id);
      const SeqId s = port_.seq(item.id);
      EXPECT_EQ(kv_.n_tokens(s), item.pos);
      EXPECT_LE(item.pos + item.n_tokens, kv_.capacity(s)) << "no room reserved";
      const auto fed =
          std::span<const TokenId>(toks).subspan(static_cast<size_t>(item.pos), static_cast<size_t>(item.n_tokens));
      for (int32_t i = 0; i < item.n_tokens; ++i) {
        const int32_t pos = item.pos + i;
        const PageId page = kv_.page_table(s)[static_cast<size_t>(pos / kv_.page_size())];
        EXPECT_EQ(kv_.ref_count(page), 1) << "write into a shared page";
        EXPECT_FALSE(kv_.is_cached(page)) << "write into a cached page";
        store_[static_cast<size_t>(page * kv_.page_size() + pos % kv_.page_size())] = fed[static_cast<size_t>(i)];
      }
      kv_.commit(s, fed);
      if (item.samples) {
        toks.push_back(next_token(item.id, toks.size()));
        // Some requests stop early, as on an end-of-generation token.
        if (item.id % 5 == 0 && toks.size() >= prompt_len_.at(item.id) + 3) stop.push_back(item.id);
      }
    }
    for (RequestId id : stop) {
      EXPECT_TRUE(sched_.finish(id));
      ended_[id] = EndReason::kMaxTokens;  // close enough for the bookkeeping here
      known_.erase(id);
    }
    verify();
    return p;
  }

  void verify() {
    kv_.check_invariants();
    for (const auto& [id, toks] : known_) {
      if (!port_.is_open(id)) continue;
      const SeqId s = port_.seq(id);
      const auto computed = kv_.tokens(s);
      ASSERT_LE(computed.size(), toks.size());
      for (size_t pos = 0; pos < computed.size(); ++pos) {
        ASSERT_EQ(computed[pos], toks[pos]) << "request " << id << " position " << pos;
        const PageId page = kv_.page_table(s)[pos / static_cast<size_t>(kv_.page_size())];
        ASSERT_EQ(store_[static_cast<size_t>(page) * static_cast<size_t>(kv_.page_size()) +
                         pos % static_cast<size_t>(kv_.page_size())],
                  toks[pos])
            << "request " << id << " reads wrong K/V at position " << pos;
      }
    }
  }

  static TokenId next_token(RequestId id, size_t pos) { return static_cast<TokenId>(1000 + (id * 31 + pos) % 50); }

  void remember_prompt_len(RequestId id, size_t n) { prompt_len_[id] = n; }

  KvPages kv_;
  std::vector<TokenId> store_;  // [n_pages, page_size]: the "K/V" of each slot
  std::map<RequestId, std::vector<TokenId>> known_;
  std::map<RequestId, size_t> prompt_len_;
  std::map<RequestId, EndReason> ended_;
  FakeClock clock_;
  KvPagesPort port_;
  Scheduler sched_;
};

std::vector<TokenId> with_tail(std::vector<TokenId> prefix, std::initializer_list<TokenId> tail) {
  prefix.insert(prefix.end(), tail);
  return prefix;
}

TEST(SchedulerWithKvPages, SharedSystemPromptIsComputedOnce) {
  MiniEngine e(64, 4, SchedulerConfig{});
  std::vector<TokenId> system;
  for (TokenId t = 0; t < 20; ++t) system.push_back(500 + t);  // 5 full pages
  for (RequestId id = 1; id <= 5; ++id) e.remember_prompt_len(id, 25);
  e.submit(1, Priority::kNormal, with_tail(system, {1, 2, 3, 4, 5}), 6);
  EXPECT_EQ(e.step().n_prefill_tokens, 25);
  for (RequestId id = 2; id <= 5; ++id) {
    const TokenId u = static_cast<TokenId>(id * 10);
    e.submit(id, Priority::kNormal, with_tail(system, {u, u + 1, u + 2, u + 3, u + 4}), 6);
  }
  const StepPlan& p = e.step();
  int prefill_items = 0;
  for (const PlanItem& it : p.items) {
    if (it.id == 1) continue;
    ++prefill_items;
    EXPECT_EQ(it.pos, 20) << "request " << it.id;  // the system prompt came from the cache
    EXPECT_EQ(it.n_tokens, 5);
  }
  EXPECT_EQ(prefill_items, 4);
  EXPECT_EQ(e.kv_.stats().prefix_hit_tokens, 80);
  EXPECT_EQ(e.kv_.stats().shared, 5);
  for (int i = 0; i < 20 && e.ended_.size() < 5; ++i) e.step();
  EXPECT_EQ(e.ended_.size(), 5u);
  const KvStats st = e.kv_.stats();
  EXPECT_EQ(st.in_use, 0);
  EXPECT_EQ(st.free + st.cached, 64);
}

TEST(SchedulerWithKvPages, RandomLoadUnderPagePressureStaysConsistentAndLeaksNothing) {
  SchedulerConfig c{.max_step_tokens = 48, .max_running = 6, .max_queued = {8, 8, 8}};
  MiniEngine e(/*n_pages=*/24, /*page_size=*/4, c);
  std::mt19937 rng(99);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const std::vector<std::vector<TokenId>> prefixes = {{1, 2, 3, 4, 5, 6, 7, 8}, {9, 9, 9, 9, 9, 9}, {}};
  RequestId next = 1;
  int64_t preempted = 0;
  std::vector<RequestId> accepted;
  for (int step = 0; step < 600; ++step) {
    if (step < 450 && uniform(0, 2) == 0) {
      std::vector<TokenId> prompt = prefixes[static_cast<size_t>(uniform(0, 2))];
      const int tail = uniform(1, 20);
      for (int i = 0; i < tail; ++i) prompt.push_back(uniform(0, 5));
      const RequestId id = next++;
      e.remember_prompt_len(id, prompt.size());
      const auto pri = static_cast<Priority>(uniform(0, 2));
      if (e.submit(id, pri, prompt, uniform(1, 20)).status == SubmitStatus::kAccepted) accepted.push_back(id);
    }
    if (uniform(0, 30) == 0 && !accepted.empty()) {
      e.sched_.cancel(accepted[static_cast<size_t>(uniform(0, static_cast<int>(accepted.size()) - 1))]);
    }
    preempted += static_cast<int64_t>(e.step().preempted.size());
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(preempted, 0);
  EXPECT_GT(e.kv_.stats().prefix_hit_tokens, 0);
  EXPECT_EQ(e.sched_.n_live(), 0u) << "work left after 150 idle steps";
  for (RequestId id : accepted) EXPECT_TRUE(e.ended_.count(id)) << "request " << id << " never ended";
  const KvStats st = e.kv_.stats();
  EXPECT_EQ(st.in_use, 0);
  EXPECT_EQ(st.n_sequences, 0);
  EXPECT_EQ(st.free + st.cached, 24);
  const SchedulerStats ss = e.sched_.stats();
  EXPECT_GT(ss.admissions[2], 0);
}

}  // namespace
}  // namespace lightboat::runtime
