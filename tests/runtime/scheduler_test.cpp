// Scheduler policy on a fake clock and a page-counting KV port: priority order, EDF, weighted
// round-robin shares, no starvation, chunked prefill, deadlines, the bounded queue, cancellation.
// Preemption and the real KvPages are in scheduler_kv_test.cpp.
#include "runtime/scheduler.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "base/error.h"
#include "fake_kv.h"

namespace lightboat::runtime {
namespace {

using namespace std::chrono_literals;
using testing::contains;
using testing::Harness;

constexpr Priority kHigh = Priority::kHigh;
constexpr Priority kNormal = Priority::kNormal;
constexpr Priority kLow = Priority::kLow;

// One admission per step: one slot, and every request is a single sampled token.
SchedulerConfig one_at_a_time() {
  return {.max_running = 1, .max_queued = {4000, 4000, 4000}};
}

// The policy without its latency shaping (step 4 of scheduler.h): every running request is in
// every step, and every step may hold max_step_tokens. For tests of the other rules.
SchedulerConfig unshaped(SchedulerConfig c = {}) {
  c.class_step_tokens = {0, 0, 0};
  c.max_deferred_steps = 0;
  return c;
}

std::vector<RequestId> admission_order(Harness& h, int steps) {
  std::vector<RequestId> order;
  for (int i = 0; i < steps; ++i) {
    const StepPlan& p = h.step();
    order.insert(order.end(), p.admitted.begin(), p.admitted.end());
  }
  return order;
}

TEST(Scheduler, HigherClassesAreAdmittedFirst) {
  Harness h(one_at_a_time());
  ASSERT_EQ(h.submit(1, kLow, 1, 1).status, SubmitStatus::kAccepted);
  ASSERT_EQ(h.submit(2, kNormal, 1, 1).status, SubmitStatus::kAccepted);
  ASSERT_EQ(h.submit(3, kHigh, 1, 1).status, SubmitStatus::kAccepted);
  EXPECT_EQ(admission_order(h, 4), (std::vector<RequestId>{3, 2, 1}));
  EXPECT_EQ(h.ended.size(), 3u);
  EXPECT_EQ(h.ended[1], EndReason::kMaxTokens);
  EXPECT_EQ(h.kv.n_open(), 0u);
}

TEST(Scheduler, BatchItemsFollowRank) {
  Harness h(unshaped());
  h.submit(1, kLow, 10, 5);
  h.submit(2, kNormal, 10, 5);
  h.submit(3, kHigh, 10, 5);
  const StepPlan& p = h.step();
  ASSERT_EQ(p.items.size(), 3u);
  EXPECT_EQ(p.items[0].id, 3u);
  EXPECT_EQ(p.items[1].id, 2u);
  EXPECT_EQ(p.items[2].id, 1u);
  for (const PlanItem& it : p.items) {
    EXPECT_EQ(it.pos, 0);
    EXPECT_EQ(it.n_tokens, 10);
    EXPECT_TRUE(it.samples);
  }
  EXPECT_EQ(p.n_prefill_tokens, 30);
  const StepPlan& q = h.step();  // now all three decode
  EXPECT_EQ(q.n_decode_tokens, 3);
  EXPECT_EQ(q.items[0].pos, 10);
}

TEST(Scheduler, EarliestDeadlineFirstInsideAClassThenFifo) {
  Harness h(one_at_a_time());
  const TimePoint t = h.clock.now();
  h.submit(1, kNormal, 1, 1, t + 30s);
  h.submit(2, kNormal, 1, 1, t + 10s);
  h.submit(3, kNormal, 1, 1);
  h.submit(4, kNormal, 1, 1, t + 20s);
  h.submit(5, kNormal, 1, 1);
  EXPECT_EQ(admission_order(h, 6), (std::vector<RequestId>{2, 4, 1, 3, 5}));
}

TEST(Scheduler, WeightedRoundRobinSharesWhenAllClassesAreBacklogged) {
  Harness h(one_at_a_time());  // weights 8:4:1
  RequestId id = 0;
  for (int i = 0; i < 1000; ++i) {
    for (Priority p : {kHigh, kNormal, kLow}) ASSERT_EQ(h.submit(++id, p, 1, 1).status, SubmitStatus::kAccepted);
  }
  admission_order(h, 1300);
  const SchedulerStats st = h.sched.stats();
  EXPECT_NEAR(st.admissions[0], 800, 1);
  EXPECT_NEAR(st.admissions[1], 400, 1);
  EXPECT_NEAR(st.admissions[2], 100, 1);
  // And in every window of 13 consecutive admissions, low gets exactly one.
}

TEST(Scheduler, ConfiguredWeightsAreHonoured) {
  SchedulerConfig c = one_at_a_time();
  c.class_weights = {3, 2, 1};
  Harness h(c);
  RequestId id = 0;
  for (int i = 0; i < 400; ++i) {
    for (Priority p : {kHigh, kNormal, kLow}) h.submit(++id, p, 1, 1);
  }
  admission_order(h, 600);
  const SchedulerStats st = h.sched.stats();
  EXPECT_NEAR(st.admissions[0], 300, 1);
  EXPECT_NEAR(st.admissions[1], 200, 1);
  EXPECT_NEAR(st.admissions[2], 100, 1);
}

TEST(Scheduler, LowPriorityIsNotStarvedByAFloodOfHigh) {
  Harness h(one_at_a_time());
  RequestId id = 1000;
  for (RequestId low = 1; low <= 50; ++low) h.submit(low, kLow, 1, 1);
  int first_low_step = -1;
  for (int step = 0; step < 450; ++step) {
    h.submit(++id, kHigh, 1, 1);  // more high arrives than can be served
    h.submit(++id, kHigh, 1, 1);
    const StepPlan& p = h.step();
    for (RequestId a : p.admitted) {
      if (a <= 50 && first_low_step < 0) first_low_step = step;
    }
  }
  ASSERT_GE(first_low_step, 0);
  EXPECT_LE(first_low_step, 9);  // only high and low backlogged: low's share is 1/9
  const SchedulerStats st = h.sched.stats();
  EXPECT_NEAR(st.admissions[2], 50, 1);  // 450 admissions / 9
  EXPECT_EQ(h.ended[1], EndReason::kMaxTokens);
}

TEST(Scheduler, ChunkedPrefillRespectsTheBudgetAndKeepsDecodesInEveryStep) {
  Harness h(SchedulerConfig{.max_step_tokens = 64, .max_running = 8});
  for (RequestId id = 1; id <= 3; ++id) h.submit(id, kNormal, 1, 100);
  h.step();  // the three one-token prompts sample their first token
  h.submit(9, kNormal, 200, 10);
  int32_t pos = 0;
  int steps = 0;
  for (bool done = false; !done; ++steps) {
    const StepPlan& p = h.step();
    EXPECT_EQ(p.n_decode_tokens, 3);
    EXPECT_LE(p.n_decode_tokens + p.n_prefill_tokens, 64);
    int32_t total = 0;
    for (const PlanItem& it : p.items) total += it.n_tokens;
    EXPECT_EQ(total, p.n_decode_tokens + p.n_prefill_tokens);
    for (const PlanItem& it : p.items) {
      if (it.id != 9) continue;
      EXPECT_EQ(it.pos, pos);
      EXPECT_EQ(it.n_tokens, std::min(61, 200 - pos));
      pos += it.n_tokens;
      EXPECT_EQ(it.samples, pos == 200);
      done = it.samples;
    }
    ASSERT_LT(steps, 10);
  }
  EXPECT_EQ(steps, 4);  // 61 + 61 + 61 + 17
  const StepPlan& p = h.step();
  EXPECT_EQ(p.n_decode_tokens, 4);
  EXPECT_EQ(p.n_prefill_tokens, 0);
}

TEST(Scheduler, PrefillBudgetGoesToHigherClassesFirst) {
  Harness h(unshaped({.max_step_tokens = 256}));
  h.submit(1, kLow, 1000, 4);
  EXPECT_EQ(h.step().n_prefill_tokens, 256);
  h.submit(2, kHigh, 100, 4);
  const StepPlan& p = h.step();
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_EQ(p.items[0].id, 2u);
  EXPECT_EQ(p.items[0].n_tokens, 100);
  EXPECT_EQ(p.items[1].id, 1u);
  EXPECT_EQ(p.items[1].pos, 256);
  EXPECT_EQ(p.items[1].n_tokens, 156);
}

TEST(SchedulerLatency, LowerClassesSitOutWhileAHigherClassPrefills) {
  Harness h(SchedulerConfig{.max_step_tokens = 256});
  h.submit(1, kLow, 10, 100);
  h.submit(2, kLow, 10, 100);
  h.step();  // both prefill
  EXPECT_EQ(h.step().n_decode_tokens, 2);
  h.submit(3, kHigh, 100, 4);
  const StepPlan& p = h.step();  // the high's prefill runs alone: as fast as on an idle engine
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].id, 3u);
  EXPECT_EQ(p.items[0].n_tokens, 100);
  EXPECT_EQ(p.n_decode_tokens, 0);
  EXPECT_EQ(h.step().n_decode_tokens, 3);  // then everyone decodes together again
  EXPECT_EQ(h.sched.find(1)->n_generated, 3);
}

TEST(SchedulerLatency, SittingOutIsBoundedSoLowerClassesKeepMoving) {
  // A 1000-token high prompt in 64-token chunks: 16 steps of prefill. The lows (one decoding,
  // one prefilling) sit out at most 2 steps in a row, then ride along.
  Harness h(SchedulerConfig{.max_step_tokens = 64, .max_running = 8, .max_deferred_steps = 2});
  h.submit(1, kLow, 8, 100);
  h.step();
  h.submit(2, kHigh, 1000, 1);
  h.submit(3, kLow, 200, 1);
  int since_decode = 0, since_prefill = 0, high_steps = 0;
  while (h.sched.find(2)) {
    const StepPlan& p = h.step();
    ++high_steps;
    ASSERT_LT(high_steps, 40);
    const bool low_decoded = std::any_of(p.items.begin(), p.items.end(), [](const PlanItem& i) { return i.id == 1; });
    const bool low_prefilled = std::any_of(p.items.begin(), p.items.end(), [](const PlanItem& i) { return i.id == 3; });
    since_decode = low_decoded ? 0 : since_decode + 1;
    const bool low_running = h.sched.find(3) && h.sched.find(3)->phase == RequestPhase::kRunning;
    since_prefill = low_prefilled || !low_running ? 0 : since_prefill + 1;
    EXPECT_LE(since_decode, 2) << "step " << high_steps;
    EXPECT_LE(since_prefill, 2) << "step " << high_steps;
  }
  EXPECT_GE(high_steps, 16);
  EXPECT_LE(high_steps, 20);  // riding along costs the high a few tokens of budget, no more
}

TEST(SchedulerLatency, StepsOfOnlyLowPriorityWorkAreSmall) {
  Harness h(SchedulerConfig{.max_step_tokens = 256, .class_step_tokens = {0, 0, 32}});
  h.submit(1, kLow, 1000, 4);
  EXPECT_EQ(h.step().n_prefill_tokens, 32);  // background: a high arriving now waits little
  h.submit(2, kNormal, 1000, 4);
  const StepPlan& p = h.step();  // normal work present: full steps, normal first
  EXPECT_EQ(p.n_prefill_tokens, 256);
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].id, 2u);
}

TEST(SchedulerLatency, DecodesAreNeverCutAndPrefillKeepsAQuarterOfTheCap) {
  Harness h(SchedulerConfig{.max_step_tokens = 256, .max_running = 48, .class_step_tokens = {0, 0, 32}});
  for (RequestId id = 1; id <= 40; ++id) h.submit(id, kLow, 1, 100);
  h.step();  // 40 one-token prompts in one step (their sampled tokens come from the prefill)
  h.submit(100, kLow, 500, 4);
  const StepPlan& p = h.step();
  EXPECT_EQ(p.n_decode_tokens, 40);
  EXPECT_EQ(p.n_prefill_tokens, 8);  // 32 / 4
}

TEST(Scheduler, RefusesDeadlinesThatCannotBeMet) {
  Harness h(SchedulerConfig{});
  const TimePoint t = h.clock.now();
  // Without measurements only a deadline already past is refused.
  EXPECT_EQ(h.submit(1, kHigh, 500, 10, t).status, SubmitStatus::kDeadlineUnmeetable);
  EXPECT_EQ(h.submit(2, kHigh, 500, 10, t + 1ms).status, SubmitStatus::kAccepted);
  // 1000 prefill tokens/s, 50 ms between decoded tokens: 500 + 10 tokens take 0.5 + 9 * 0.05 s.
  h.sched.observe_step({.n_prefill_tokens = 100, .n_decode_tokens = 0, .elapsed = 100ms});
  h.sched.observe_step({.n_prefill_tokens = 0, .n_decode_tokens = 4, .elapsed = 50ms});
  const SubmitResult r = h.submit(3, kHigh, 500, 10, t + 900ms);
  EXPECT_EQ(r.status, SubmitStatus::kDeadlineUnmeetable);
  EXPECT_NEAR(std::chrono::duration<double>(r.estimated).count(), 0.95, 1e-6);
  EXPECT_EQ(h.submit(4, kHigh, 500, 10, t + 1s).status, SubmitStatus::kAccepted);
  EXPECT_EQ(h.submit(5, kHigh, 500, 10).status, SubmitStatus::kAccepted);  // no deadline
  const SchedulerStats st = h.sched.stats();
  EXPECT_EQ(st.refused_deadline, 2);
  EXPECT_DOUBLE_EQ(st.prefill_tokens_per_s, 1000.0);
  EXPECT_DOUBLE_EQ(st.decode_interval_s, 0.05);
  EXPECT_FALSE(h.sched.find(3).has_value());
}

TEST(Scheduler, RatesAreExponentialMovingAverages) {
  Harness h(SchedulerConfig{.rate_alpha = 0.5, .prior_prefill_tokens_per_s = 100.0});
  h.sched.observe_step({.n_prefill_tokens = 300, .n_decode_tokens = 2, .elapsed = 1s});
  SchedulerStats st = h.sched.stats();
  EXPECT_DOUBLE_EQ(st.prefill_tokens_per_s, 200.0);  // 0.5 * 100 + 0.5 * 300
  EXPECT_DOUBLE_EQ(st.decode_interval_s, 1.0);       // first measurement taken as is
  h.sched.observe_step({.n_prefill_tokens = 0, .n_decode_tokens = 2, .elapsed = 500ms});
  st = h.sched.stats();
  EXPECT_DOUBLE_EQ(st.prefill_tokens_per_s, 200.0);
  EXPECT_DOUBLE_EQ(st.decode_interval_s, 0.75);
}

TEST(Scheduler, RunningRequestPastItsDeadlineEndsAndFreesItsPages) {
  Harness h(unshaped());
  h.submit(1, kHigh, 10, 100, h.clock.now() + 1s);
  h.submit(2, kNormal, 10, 100);
  h.step();
  EXPECT_TRUE(h.kv.is_open(1));
  h.clock.advance(500ms);
  EXPECT_EQ(h.step().n_decode_tokens, 2);
  h.clock.advance(600ms);
  const StepPlan& p = h.step();
  ASSERT_EQ(p.ended.size(), 1u);
  EXPECT_EQ(p.ended[0].id, 1u);
  EXPECT_EQ(p.ended[0].reason, EndReason::kDeadlineExceeded);
  EXPECT_FALSE(h.kv.is_open(1));
  EXPECT_EQ(p.n_decode_tokens, 1);
  EXPECT_EQ(h.sched.stats().deadline_exceeded, 1);
}

TEST(Scheduler, QueuedRequestPastItsDeadlineEnds) {
  Harness h(one_at_a_time());
  h.submit(1, kNormal, 10, 100);
  h.submit(2, kNormal, 10, 100, h.clock.now() + 1s);  // EDF puts it first...
  h.submit(3, kNormal, 10, 100, h.clock.now() + 2s);
  EXPECT_EQ(h.step().admitted, std::vector<RequestId>{2});
  h.clock.advance(1500ms);
  const StepPlan& p = h.step();  // ...2 expires running, 3 is admitted in its place
  ASSERT_EQ(p.ended.size(), 1u);
  EXPECT_EQ(p.ended[0].id, 2u);
  EXPECT_EQ(p.admitted, std::vector<RequestId>{3});
  h.clock.advance(1s);
  const StepPlan& q = h.step();  // 3 expires running; 1 (no deadline) is admitted
  ASSERT_EQ(q.ended.size(), 1u);
  EXPECT_EQ(q.ended[0].reason, EndReason::kDeadlineExceeded);
  EXPECT_EQ(q.admitted, std::vector<RequestId>{1});

  // Expiry while waiting: 4 never gets the slot that 1 holds.
  h.submit(4, kNormal, 10, 100, h.clock.now() + 1s);
  EXPECT_TRUE(h.step().admitted.empty());
  h.clock.advance(2s);
  const StepPlan& r = h.step();
  ASSERT_EQ(r.ended.size(), 1u);
  EXPECT_EQ(r.ended[0].id, 4u);
  EXPECT_EQ(r.ended[0].reason, EndReason::kDeadlineExceeded);
  EXPECT_EQ(h.kv.opens, 3);  // 4 never held pages
}

TEST(Scheduler, BoundedQueueRefusesWithRetryAfterFromTheAdmissionRate) {
  SchedulerConfig c = one_at_a_time();
  c.max_queued = {2, 2, 2};
  Harness h(c);
  EXPECT_EQ(h.submit(1, kLow, 1, 1).status, SubmitStatus::kAccepted);
  EXPECT_EQ(h.submit(2, kLow, 1, 1).status, SubmitStatus::kAccepted);
  SubmitResult r = h.submit(3, kLow, 1, 1);
  EXPECT_EQ(r.status, SubmitStatus::kOverloaded);
  EXPECT_EQ(r.retry_after, std::chrono::duration_cast<Duration>(1s));   // nothing measured yet
  EXPECT_EQ(h.submit(4, kHigh, 1, 1).status, SubmitStatus::kAccepted);  // its own bound
  EXPECT_EQ(h.sched.stats().refused_overloaded, 1);

  // Keep the low queue full, one admission per 100 ms step.
  RequestId id = 100;
  for (int i = 0; i < 60; ++i) {
    while (h.submit(++id, kLow, 1, 1).status == SubmitStatus::kAccepted) {
    }
    h.step();
    h.clock.advance(100ms);
  }
  EXPECT_NEAR(h.sched.stats().admission_interval_s, 0.1, 1e-9);
  while ((r = h.submit(++id, kLow, 1, 1)).status == SubmitStatus::kAccepted) {
  }
  ASSERT_EQ(r.status, SubmitStatus::kOverloaded);
  EXPECT_NEAR(std::chrono::duration<double>(r.retry_after).count(), 0.1, 1e-6);
  // With high backlogged too, low's share is 1/9: a slot frees nine times slower.
  h.submit(++id, kHigh, 1, 1);
  h.submit(++id, kHigh, 1, 1);
  r = h.submit(++id, kLow, 1, 1);
  ASSERT_EQ(r.status, SubmitStatus::kOverloaded);
  EXPECT_NEAR(std::chrono::duration<double>(r.retry_after).count(), 0.9, 1e-6);
}

TEST(Scheduler, RefusesRequestsLargerThanTheWholeCache) {
  Harness h(SchedulerConfig{}, /*total_pages=*/8, /*page_size=*/16);
  EXPECT_EQ(h.submit(1, kNormal, 100, 28).status, SubmitStatus::kAccepted);  // 128 tokens = 8 pages
  EXPECT_EQ(h.submit(2, kNormal, 100, 29).status, SubmitStatus::kTooLarge);
  EXPECT_EQ(h.sched.stats().refused_too_large, 1);
}

TEST(Scheduler, CancelledRequestsLeaveAtTheNextPlan) {
  Harness h(one_at_a_time());
  h.submit(1, kNormal, 10, 100);
  h.submit(2, kNormal, 10, 100);
  h.step();
  ASSERT_TRUE(h.kv.is_open(1));
  EXPECT_TRUE(h.sched.cancel(2));  // queued
  EXPECT_TRUE(h.sched.cancel(1));  // running
  EXPECT_TRUE(h.sched.cancel(1));  // twice is fine
  EXPECT_FALSE(h.sched.cancel(77));
  EXPECT_TRUE(h.sched.find(1)->cancelled);
  EXPECT_TRUE(h.kv.is_open(1));  // pages go at the plan, on the engine's thread
  const StepPlan& p = h.step();
  EXPECT_TRUE(p.items.empty());
  ASSERT_EQ(p.ended.size(), 2u);
  EXPECT_EQ(h.ended[1], EndReason::kCancelled);
  EXPECT_EQ(h.ended[2], EndReason::kCancelled);
  EXPECT_EQ(h.kv.n_open(), 0u);
  EXPECT_EQ(h.sched.n_live(), 0u);
  EXPECT_EQ(h.sched.stats().cancelled, 2);
}

TEST(Scheduler, ReprioritizedQueuedRequestsKeepTheirArrivalOrderInTheNewClass) {
  Harness h(one_at_a_time());
  h.submit(1, kLow, 1, 1);
  h.submit(2, kNormal, 1, 1);
  h.submit(3, kLow, 1, 1);
  EXPECT_TRUE(h.sched.reprioritize(3, kNormal));
  EXPECT_TRUE(h.sched.reprioritize(1, kNormal));
  EXPECT_TRUE(h.sched.reprioritize(2, kNormal));  // same class: nothing moves
  EXPECT_FALSE(h.sched.reprioritize(77, kHigh));
  EXPECT_EQ(h.sched.find(1)->priority, kNormal);
  EXPECT_EQ(h.sched.stats().queued[static_cast<size_t>(kLow)], 0);
  EXPECT_EQ(h.sched.stats().queued[static_cast<size_t>(kNormal)], 3);
  EXPECT_EQ(admission_order(h, 4), (std::vector<RequestId>{1, 2, 3}));
}

TEST(Scheduler, ReprioritizedRunningRequestIsRankedByItsNewClass) {
  // As in SchedulerPreemption.HigherClassPreemptsLowerWhenPagesAreShort, but the low request
  // was raised to high first: the newcomer may not preempt it and waits instead.
  Harness h(SchedulerConfig{}, /*total_pages=*/10, /*page_size=*/4);
  h.submit(1, kLow, 30, 8);
  EXPECT_EQ(h.step().admitted, std::vector<RequestId>{1});
  EXPECT_TRUE(h.sched.reprioritize(1, kHigh));
  EXPECT_EQ(h.sched.find(1)->phase, RequestPhase::kRunning);
  h.submit(2, kHigh, 12, 4);
  const StepPlan& p = h.step();
  EXPECT_TRUE(p.preempted.empty());
  EXPECT_TRUE(p.admitted.empty());
  EXPECT_EQ(h.sched.stats().running[static_cast<size_t>(kHigh)], 1);
  // Lowered again, it is the lower class and gives way.
  EXPECT_TRUE(h.sched.reprioritize(1, kLow));
  const StepPlan& q = h.step();
  EXPECT_EQ(q.preempted, std::vector<RequestId>{1});
  EXPECT_EQ(q.admitted, std::vector<RequestId>{2});
}

TEST(Scheduler, FinishEndsARequestAtOnce) {
  Harness h(one_at_a_time());
  h.submit(1, kNormal, 10, 100);
  h.submit(2, kNormal, 10, 100);
  h.submit(3, kNormal, 10, 100);
  h.step();
  EXPECT_TRUE(h.sched.finish(1));  // e.g. EOS
  EXPECT_FALSE(h.kv.is_open(1));
  EXPECT_TRUE(h.sched.finish(3));  // queued
  EXPECT_FALSE(h.sched.finish(1));
  const StepPlan& p = h.step();
  EXPECT_TRUE(p.ended.empty());
  EXPECT_EQ(p.admitted, std::vector<RequestId>{2});
  EXPECT_EQ(h.sched.n_live(), 1u);
}

TEST(Scheduler, MaxNewTokensEndsTheRequest) {
  Harness h(SchedulerConfig{});
  h.submit(1, kNormal, 5, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h.step().items.size(), 1u);
  EXPECT_EQ(h.sched.find(1)->n_generated, 3);
  const StepPlan& p = h.step();
  EXPECT_TRUE(p.items.empty());
  EXPECT_EQ(h.ended[1], EndReason::kMaxTokens);
  EXPECT_EQ(h.kv.n_open(), 0u);
}

TEST(Scheduler, RejectsBadRequestsAndConfigs) {
  Harness h(SchedulerConfig{});
  EXPECT_THROW(h.submit(1, kNormal, 0, 1), Error);
  EXPECT_THROW(h.submit(1, kNormal, 1, 0), Error);
  h.submit(1, kNormal, 1, 1);
  EXPECT_THROW(h.submit(1, kNormal, 1, 1), Error);  // duplicate id
  FakeClock clock;
  testing::FakeKv kv(8, 16);
  EXPECT_THROW(Scheduler(SchedulerConfig{.max_step_tokens = 64, .max_running = 64}, clock, kv), Error);
  EXPECT_THROW(Scheduler(SchedulerConfig{.class_weights = {1, 0, 1}}, clock, kv), Error);
  EXPECT_THROW(Scheduler(SchedulerConfig{.rate_alpha = 0.0}, clock, kv), Error);
}

}  // namespace
}  // namespace lightboat::runtime
