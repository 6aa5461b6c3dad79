// Test doubles for the scheduler: a KvPort that only counts pages, and a harness that plays the
// engine's part (runs every planned item, i.e. "commits" its tokens) on a FakeClock.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "runtime/clock.h"
#include "runtime/kv_port.h"
#include "runtime/scheduler.h"

namespace lightboat::runtime::testing {

// Every open request holds ceil(capacity / page_size) private pages; nothing is shared. hits[id]
// pretends the prefix cache held that many tokens at open().
class FakeKv final : public KvPort {
 public:
  FakeKv(int32_t total_pages, int32_t page_size) : total_(total_pages), page_size_(page_size) {}

  int32_t page_size() const override { return page_size_; }
  int32_t total_pages() const override { return total_; }
  int32_t available_pages() const override {
    int32_t used = 0;
    for (const auto& [id, s] : seqs_) used += s.pages;
    return total_ - used;
  }
  int32_t open(RequestId id, int32_t n_known) override {
    EXPECT_EQ(seqs_.count(id), 0u) << "request " << id << " opened twice";
    const int32_t hit = hits.count(id) ? std::min(hits[id], n_known - 1) : 0;
    // The hit's pages come from the pool too (simplest model: no sharing).
    seqs_[id] = Seq{.computed = hit, .pages = 0};
    Seq& s = seqs_[id];
    s.pages = pages_for(hit);
    ++opens;
    return hit;
  }
  int32_t pages_needed(RequestId id, int32_t n_tokens) const override {
    const Seq& s = seqs_.at(id);
    return std::max(0, pages_for(s.computed + n_tokens) - s.pages);
  }
  bool grow(RequestId id, int32_t n_tokens) override {
    const int32_t need = pages_needed(id, n_tokens);
    if (need > available_pages()) return false;
    seqs_.at(id).pages += need;
    return true;
  }
  int32_t exclusive_pages(RequestId id) const override { return seqs_.at(id).pages; }
  void close(RequestId id) override {
    EXPECT_EQ(seqs_.count(id), 1u) << "request " << id << " closed but not open";
    seqs_.erase(id);
  }

  // The engine ran an item: its tokens now have K/V, within the room grown for them.
  void commit(const PlanItem& item) {
    Seq& s = seqs_.at(item.id);
    EXPECT_EQ(s.computed, item.pos) << "request " << item.id;
    s.computed += item.n_tokens;
    EXPECT_LE(s.computed, s.pages * page_size_) << "request " << item.id << " runs past its pages";
  }
  bool is_open(RequestId id) const { return seqs_.count(id) != 0; }
  size_t n_open() const { return seqs_.size(); }

  std::map<RequestId, int32_t> hits;
  int64_t opens = 0;

 private:
  struct Seq {
    int32_t computed = 0;
    int32_t pages = 0;
  };
  int32_t pages_for(int32_t tokens) const { return (tokens + page_size_ - 1) / page_size_; }

  int32_t total_;
  int32_t page_size_;
  std::map<RequestId, Seq> seqs_;
};

struct Harness {
  explicit Harness(SchedulerConfig config, int32_t total_pages = 1024, int32_t page_size = 16)
      : kv(total_pages, page_size), sched(config, clock, kv) {}

  // One engine step: plan, then run every item. Also collects endings.
  const StepPlan& step() {
    const StepPlan& p = sched.plan();
    for (const PlanItem& item : p.items) kv.commit(item);
    for (const Ended& e : p.ended) ended[e.id] = e.reason;
    return p;
  }
  SubmitResult submit(RequestId id, Priority pri, int32_t prompt_len, int32_t max_new,
                      std::optional<TimePoint> deadline = std::nullopt) {
    return sched.submit(
        {.id = id, .priority = pri, .deadline = deadline, .prompt_len = prompt_len, .max_new_tokens = max_new});
  }

  FakeClock clock;
  FakeKv kv;
  Scheduler sched;
  std::map<RequestId, EndReason> ended;
};

inline bool contains(const std::vector<RequestId>& v, RequestId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

}  // namespace lightboat::runtime::testing
