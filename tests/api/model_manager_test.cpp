// ModelManager (include/lightboat/model_manager.h) over real fixture models: loading on first
// use, the memory budget with LRU eviction, leases that pin a version, hot update with rollback,
// refresh of re-pointed names, keep-alive expiry, concurrent first use.
#include "lightboat/model_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "fixtures.h"

namespace lightboat {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A name → (path, version) table the tests re-point at will.
class Table {
 public:
  void set(const std::string& name, const fs::path& path, const std::string& version) {
    std::lock_guard lk(mu_);
    map_[name] = {path.string(), version};
  }
  ModelResolver resolver() {
    return [this](const std::string& name) {
      std::lock_guard lk(mu_);
      auto it = map_.find(name);
      check(it != map_.end(), ErrorKind::kNotFound, "unknown model " + name);
      ++resolves_;
      return it->second;
    };
  }

 private:
  std::mutex mu_;
  std::map<std::string, ModelSource> map_;
  std::atomic<int> resolves_{0};
};

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

fs::path stories(const std::string& type) {
  return testing::fixtures_dir() / "stories260K" / ("stories260K-" + type + ".gguf");
}

ModelManagerOptions options(Table& t) {
  ModelManagerOptions o;
  o.resolver = t.resolver();
  o.engine.threads = 1;
  o.engine.n_ctx = 256;
  o.engine.kv_cache_bytes = 1 << 20;  // fixed, so every model's memory is weights + 1 MiB
  return o;
}

// Generates greedily on a leased model; returns the text.
std::string generate(const ModelLease& l, const std::string& prompt) {
  struct Sink final : TokenSink {
    std::promise<Completion> done;
    void on_text(const std::string&, int32_t) override {}
    void on_done(const Completion& c) override { done.set_value(c); }
  };
  auto sink = std::make_shared<Sink>();
  auto fut = sink->done.get_future();
  GenerateRequest r{.prompt = prompt, .max_tokens = 8};
  r.sampling.temperature = 0.0f;
  EXPECT_EQ(l.engine().submit(std::move(r), sink).status, SubmitStatus::kAccepted);
  const Completion c = fut.get();
  EXPECT_NE(c.finish_reason, FinishReason::kError) << c.error;
  return c.text;
}

const ModelStatus* find(const std::vector<ModelStatus>& v, const std::string& name) {
  for (const ModelStatus& s : v) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TEST(ModelManager, LoadsOnFirstUseOnce) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("stories", stories("Q8_0"), "v1");
  ModelManager m(options(t));
  EXPECT_TRUE(m.list().empty());
  ModelLease a = m.acquire("stories");
  ModelLease b = m.acquire("stories");
  EXPECT_EQ(&a.engine(), &b.engine());
  EXPECT_EQ(a.version(), "v1");
  EXPECT_FALSE(generate(a, "Once upon a time").empty());
  const auto list = m.list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].state, ModelState::kReady);
  EXPECT_EQ(list[0].in_use, 2);
  EXPECT_EQ(m.stats().loads, 1);
  EXPECT_GT(m.stats().memory_bytes, 1 << 20);
}

TEST(ModelManager, UnknownNamesAndBrokenFilesAreErrorsNotCrashes) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  const fs::path garbage = fs::temp_directory_path() / "lightboat_mm_garbage.gguf";
  write_file(garbage, "not a gguf at all");
  t.set("broken", garbage, "v1");
  ModelManager m(options(t));
  try {
    m.acquire("nope");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
  EXPECT_THROW(m.acquire("broken"), Error);
  EXPECT_EQ(find(m.list(), "broken")->state, ModelState::kFailed);
  EXPECT_EQ(m.stats().load_failures, 2);
  fs::remove(garbage);
}

TEST(ModelManager, BudgetEvictsTheLeastRecentlyUsedIdleModelAndIsNeverExceeded) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  const std::vector<std::string> names{"q8", "q4", "f32"};
  t.set("q8", stories("Q8_0"), "a");
  t.set("q4", stories("Q4_0"), "b");
  t.set("f32", stories("F32"), "c");
  std::map<std::string, int64_t> bytes;
  {
    ModelManager probe(options(t));
    for (const auto& n : names) {
      const EngineStats st = probe.acquire(n).engine().stats();
      bytes[n] = st.weight_bytes + st.kv_cache_bytes;
    }
  }
  // Room for the two largest, not for all three.
  ModelManagerOptions o = options(t);
  // Budgets are file sizes in practice; the first load of a file is estimated from its size.
  const int64_t kv = 1 << 20;
  o.memory_budget_bytes =
      static_cast<int64_t>(fs::file_size(stories("F32")) + fs::file_size(stories("Q8_0"))) + 2 * kv + 4096;
  ASSERT_LT(o.memory_budget_bytes, bytes["f32"] + bytes["q8"] + bytes["q4"]);
  ModelManager m(o);
  for (int round = 0; round < 3; ++round) {
    for (const auto& n : names) {
      ModelLease l = m.acquire(n);
      EXPECT_FALSE(generate(l, "Once").empty());
      EXPECT_LE(m.stats().memory_bytes, o.memory_budget_bytes) << "round " << round << " model " << n;
    }
  }
  // Round-robin over three with room for two: every acquire after the first two evicts one.
  EXPECT_EQ(m.stats().evictions, 7);
  EXPECT_EQ(m.stats().loads, 9);
  int loaded = 0;
  for (const auto& s : m.list()) loaded += s.state == ModelState::kReady ? 1 : 0;
  EXPECT_EQ(loaded, 2);
}

TEST(ModelManager, AModelInUseIsNeverEvicted) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("q8", stories("Q8_0"), "a");
  t.set("f32", stories("F32"), "c");
  ModelManagerOptions o = options(t);
  int64_t f32 = 0;
  {
    ModelManager probe(options(t));
    const EngineStats st = probe.acquire("f32").engine().stats();
    f32 = st.weight_bytes + st.kv_cache_bytes;
  }
  o.memory_budget_bytes =
      std::max<int64_t>(f32, static_cast<int64_t>(fs::file_size(stories("F32"))) + (1 << 20)) + 4096;  // one at a time
  ModelManager m(o);
  ModelLease held = m.acquire("f32");
  try {
    m.acquire("q8");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("memory budget"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(generate(held, "Once").empty());  // still there, still working
  held = ModelLease();
  EXPECT_FALSE(generate(m.acquire("q8"), "Once").empty());  // now it may go
  EXPECT_EQ(m.stats().evictions, 1);
}

TEST(ModelManager, HotUpdateSwitchesNewRequestsWhileOldOnesFinish) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("story", stories("F32"), "v1");
  ModelManager m(options(t));
  ModelLease old = m.acquire("story");
  t.set("story", stories("Q8_0"), "v2");
  EXPECT_EQ(m.refresh(), 1);  // the name now points elsewhere
  ModelLease fresh = m.acquire("story");
  EXPECT_EQ(fresh.version(), "v2");
  EXPECT_EQ(old.version(), "v1");
  EXPECT_NE(&old.engine(), &fresh.engine());
  EXPECT_FALSE(generate(old, "Once upon").empty());  // the request in flight finishes on v1
  EXPECT_FALSE(generate(fresh, "Once upon").empty());
  EXPECT_EQ(m.stats().updates, 1);
  const int64_t both = m.stats().memory_bytes;
  old = ModelLease();  // v1's last lease: it is released
  EXPECT_LT(m.stats().memory_bytes, both);
  EXPECT_EQ(m.refresh(), 0);  // nothing changed since
}

TEST(ModelManager, ABrokenUpdateRollsBackToTheServingVersion) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("story", stories("Q8_0"), "v1");
  ModelManager m(options(t));
  EXPECT_FALSE(generate(m.acquire("story"), "Once").empty());
  const fs::path truncated = fs::temp_directory_path() / "lightboat_mm_truncated.gguf";
  {
    std::ifstream in(stories("Q8_0"), std::ios::binary);
    std::string head(4096, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    write_file(truncated, head);
  }
  t.set("story", truncated, "v2");
  EXPECT_THROW(m.reload("story"), Error);
  EXPECT_EQ(m.refresh(), 0);  // tried again, failed again, recorded
  ModelLease l = m.acquire("story");
  EXPECT_EQ(l.version(), "v1");
  EXPECT_FALSE(generate(l, "Once").empty());
  const std::vector<ModelStatus> list = m.list();
  const ModelStatus* s = find(list, "story");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state, ModelState::kReady);
  EXPECT_NE(s->error.find("previous version kept"), std::string::npos) << s->error;
  EXPECT_EQ(m.stats().update_failures, 2);  // reload(), then refresh() trying again
  fs::remove(truncated);
}

TEST(ModelManager, KeepAliveUnloadsIdleModelsOnly) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("idle", stories("Q8_0"), "a");
  t.set("busy", stories("Q4_0"), "b");
  ModelManagerOptions o = options(t);
  o.keep_alive = 100ms;
  ModelManager m(o);
  m.acquire("idle");
  ModelLease busy = m.acquire("busy");
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(find(m.list(), "idle")->state, ModelState::kUnloaded);
  EXPECT_EQ(find(m.list(), "busy")->state, ModelState::kReady);
  EXPECT_EQ(m.stats().expirations, 1);
  EXPECT_FALSE(generate(m.acquire("idle"), "Once").empty());  // loads again on use
  EXPECT_EQ(find(m.list(), "idle")->loads, 2);
}

// Polls `cond` for up to `limit`; returns whether it became true.
template <typename Cond>
bool eventually(Cond cond, std::chrono::milliseconds limit = 3000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

TEST(KeepAlive, ParsesOllamaDurations) {
  EXPECT_EQ(parse_keep_alive("5m", "k"), 300000ms);
  EXPECT_EQ(parse_keep_alive("30s", "k"), 30000ms);
  EXPECT_EQ(parse_keep_alive("1h", "k"), 3600000ms);
  EXPECT_EQ(parse_keep_alive("1h30m", "k"), 5400000ms);
  EXPECT_EQ(parse_keep_alive("1.5s", "k"), 1500ms);
  EXPECT_EQ(parse_keep_alive("250ms", "k"), 250ms);
  EXPECT_EQ(parse_keep_alive("300", "k"), 300000ms);  // a bare number is seconds
  EXPECT_EQ(parse_keep_alive("0", "k"), 0ms);
  EXPECT_EQ(parse_keep_alive("-1", "k"), kKeepForever);  // any negative value: forever
  EXPECT_EQ(parse_keep_alive("-5m", "k"), kKeepForever);
  EXPECT_EQ(keep_alive_from_seconds(2.5, "k"), 2500ms);
  EXPECT_EQ(keep_alive_from_seconds(-1, "k"), kKeepForever);
  for (const char* bad : {"", "abc", "5x", "m", "1h 30m", "5m3", "1..2s", "--1", "."}) {
    try {
      parse_keep_alive(bad, "keep_alive");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("keep_alive"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(keep_alive_from_seconds(std::nan(""), "k"), Error);
  EXPECT_EQ(format_keep_alive(kKeepForever), "forever");
  EXPECT_EQ(format_keep_alive(0ms), "0s");
  EXPECT_EQ(format_keep_alive(300000ms), "5m0s");
  EXPECT_EQ(format_keep_alive(5400000ms), "1h30m0s");
  EXPECT_EQ(format_keep_alive(1500ms), "1.5s");
}

TEST(ModelManager, KeepAliveZeroUnloadsRightAfterRelease) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("story", stories("Q8_0"), "a");
  ModelManager m(options(t));  // server default: forever
  {
    ModelLease l = m.acquire("story");
    m.set_keep_alive("story", 0ms);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(find(m.list(), "story")->state, ModelState::kReady) << "a leased model is never unloaded";
    EXPECT_FALSE(find(m.list(), "story")->expires_at.has_value());
    EXPECT_FALSE(generate(l, "Once").empty());
  }
  const auto released = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return find(m.list(), "story")->state == ModelState::kUnloaded; }));
  EXPECT_LT(std::chrono::steady_clock::now() - released, 1000ms) << "the release wakes the reaper";
  EXPECT_EQ(m.stats().expirations, 1);
  EXPECT_EQ(find(m.list(), "story")->keep_alive, 0ms) << "the latest request's value sticks";
}

TEST(ModelManager, NegativeKeepAliveNeverExpires) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("kept", stories("Q8_0"), "a");
  t.set("other", stories("Q4_0"), "b");
  ModelManagerOptions o = options(t);
  o.keep_alive = 50ms;
  ModelManager m(o);
  {
    ModelLease l = m.acquire("kept");
    m.set_keep_alive("kept", kKeepForever);
  }
  m.acquire("other");
  EXPECT_TRUE(eventually([&] { return find(m.list(), "other")->state == ModelState::kUnloaded; }));
  std::this_thread::sleep_for(300ms);
  const std::vector<ModelStatus> now = m.list();
  const ModelStatus* kept = find(now, "kept");
  EXPECT_EQ(kept->state, ModelState::kReady);
  EXPECT_EQ(kept->keep_alive, kKeepForever);
  EXPECT_FALSE(kept->expires_at.has_value());
  EXPECT_EQ(m.stats().expirations, 1);
}

TEST(ModelManager, PerModelKeepAliveBeatsTheDefaultAndRequestsBeatBoth) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("pinned", stories("Q8_0"), "a");
  t.set("quick", stories("Q4_0"), "b");
  t.set("plain", stories("F32"), "c");
  ModelManagerOptions o = options(t);
  o.keep_alive = 10s;
  o.model_keep_alive = {{"pinned", kKeepForever}, {"quick", 0ms}};
  ModelManager m(o);
  const auto before = std::chrono::system_clock::now();
  for (const char* name : {"pinned", "quick", "plain"}) m.acquire(name);
  EXPECT_TRUE(eventually([&] { return find(m.list(), "quick")->state == ModelState::kUnloaded; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(find(m.list(), "pinned")->state, ModelState::kReady);
  const std::vector<ModelStatus> now = m.list();
  const ModelStatus* plain = find(now, "plain");
  ASSERT_EQ(plain->state, ModelState::kReady);
  EXPECT_EQ(plain->keep_alive, 10s);
  ASSERT_TRUE(plain->expires_at.has_value());  // idle: about 10 s after its release
  EXPECT_GT(*plain->expires_at, before + 9s);
  EXPECT_LT(*plain->expires_at, std::chrono::system_clock::now() + 11s);
  // A request's value beats the per-model one.
  {
    ModelLease l = m.acquire("pinned");
    m.set_keep_alive("pinned", 0ms);
  }
  EXPECT_TRUE(eventually([&] { return find(m.list(), "pinned")->state == ModelState::kUnloaded; }));
  EXPECT_EQ(m.stats().expirations, 2);
}

TEST(ModelManager, OnChangeHearsLoadsAndExpiries) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("story", stories("Q8_0"), "a");
  std::mutex mu;
  std::vector<std::vector<std::string>> seen;  // the ready models of each call
  ModelManagerOptions o = options(t);
  o.on_change = [&](const std::vector<ModelStatus>& list) {
    std::vector<std::string> ready;
    for (const ModelStatus& s : list) {
      if (s.state == ModelState::kReady) ready.push_back(s.name + "@" + s.version);
    }
    std::lock_guard lk(mu);
    seen.push_back(ready);
  };
  ModelManager m(o);
  {
    ModelLease l = m.acquire("story");
    m.set_keep_alive("story", 0ms);
  }
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lk(mu);
    return seen.size() >= 2;
  }));
  std::lock_guard lk(mu);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.front(), std::vector<std::string>{"story@a"});
  EXPECT_TRUE(seen.back().empty());
}

TEST(ModelManager, ConcurrentFirstUseLoadsOnce) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Table t;
  t.set("story", stories("Q8_0"), "a");
  ModelManager m(options(t));
  std::vector<std::thread> threads;
  std::vector<Engine*> seen(4, nullptr);
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&, i] { seen[i] = &m.acquire("story").engine(); });
  }
  for (auto& th : threads) th.join();
  for (Engine* e : seen) EXPECT_EQ(e, seen[0]);
  EXPECT_EQ(m.stats().loads, 1);
}

}  // namespace
}  // namespace lightboat
