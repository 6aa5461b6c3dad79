// The pieces of bench/engine_bench.cpp (the engine benchmark of issue 5) that are not one of its
// three measurements: options, requests and their outcomes, prompt text, CPU share, summaries.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lightboat/engine.h"

namespace lightboat::engine_bench {

using Clock = std::chrono::steady_clock;

inline double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Args {
  std::string model;
  int threads = 0;
  int64_t n_ctx = 1024;
  int64_t kv_mib = 0;  // 0 = the engine's default (room for 4 full sequences)
  int64_t step_tokens = 256;
  int64_t max_running = 16;
  int reps = 3;
  int idle_s = 0;
  std::string part = "all";
  bool json = false;
  bool verbose = false;  // per-request lines of the priority test on stderr
  // concurrency
  std::vector<int> streams{1, 2, 4, 8};
  int64_t tokens = 64;
  int prompt_words = 8;  // each stream's distinct prompt (about 2.5 tokens a word on SmolLM2's vocabulary)
  // priority
  int unloaded = 8;         // high requests measured alone first
  int highs = 12;           // high requests during the flood
  int lows = 24;            // low requests flooding the queue
  int high_words = 12;      // a short command (~30 tokens)
  int low_words = 48;       // a batch job's text (~110 tokens)
  int64_t high_tokens = 8;  // a short answer (a voice command)
  int64_t low_tokens = 32;
  int high_gap_ms = 100;  // pause between one high's completion and the next high
  // prefix
  int sys_tokens = 500;
};

// The options of argv; prints the usage and exits (status 2) on a bad one.
Args parse(int argc, char** argv);

// Counts outstanding requests of a group so the caller can wait for all of them.
class Group {
 public:
  void add() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++pending_;
  }
  void done() {
    std::lock_guard<std::mutex> lock(mutex_);
    --pending_;
    cv_.notify_all();
  }
  int pending() {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending_;
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return pending_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int pending_ = 0;
};

// One request's outcome: the engine's Completion and when on_done arrived (bench clock).
class Sink final : public lightboat::TokenSink {
 public:
  explicit Sink(Group& group) : group_(group) {}
  void on_text(const std::string&, int32_t) override {}
  void on_done(const Completion& c) override {
    completion = c;
    done_at = Clock::now();
    group_.done();  // last: the waiter may read the fields once pending reaches 0
  }
  Completion completion;
  Clock::time_point done_at;

 private:
  Group& group_;
};

// Submits one greedy request; exits on refusal (a benchmark with refused requests measures nothing).
std::shared_ptr<Sink> submit(Engine& engine, Group& group, std::string prompt, int64_t max_tokens, Priority p);

// Deterministic English-like text, distinct per seed from its first word on (so no two prompts
// share a KV page unless meant to).
std::string words(uint64_t seed, int n);

// Sleeps --idle seconds (shared vCPUs run at full speed only in bursts after idling).
void idle(const Args& a);

// How much CPU the process got while a measurement ran: CPU seconds over wall seconds, per
// compute thread. Well under 1 means our threads waited for a CPU (the machine was shared) or
// idled between steps; the 1-minute load average at the start says how busy the machine was.
class CpuMeter {
 public:
  explicit CpuMeter(int threads);
  double share() const;
  double load() const { return load_; }

 private:
  static double cpu_s();
  int threads_;
  Clock::time_point start_;
  double cpu_;
  double load_ = -1;
};

inline uint64_t g_seed = 1;  // a fresh prompt seed for every request of the run

struct Summary {
  double median = 0, min = 0, max = 0;
};
Summary summarize(std::vector<double> v);
// Nearest-rank percentile (q in (0, 1]): with fewer than 100 samples p99 is the maximum.
double percentile(std::vector<double> v, double q);
std::string json_string(const std::string& s);
std::string json_summary(const Summary& s);

}  // namespace lightboat::engine_bench
