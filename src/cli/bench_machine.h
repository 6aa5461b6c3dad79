// Measurements of the machine itself for `lightboat bench`: the memory read bandwidth the
// roofline divides by, a spin-loop probe that tells whether the CPUs were slowed (shared vCPUs,
// throttling) during a run, and the process's peak resident memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/thread_pool.h"

namespace lightboat::cli {

struct BandwidthResult {
  double best_gbps = 0;         // 1e9 bytes/s of the fastest read
  double median_gbps = 0;       // over the passes, each pass's faster read
  double linear_best_gbps = 0;  // the fastest read of each slice as one run
  double runs_best_gbps = 0;    // the fastest read of each slice as 8 runs side by side
  size_t buffer_bytes = 0;      // bytes read per read
  int passes = 0;
};

// Allocates `bytes` (rounded down to whole 64-byte lines, at least one), touches every page, then
// reads the whole buffer twice per pass, `passes` times, with all threads of `pool`: each thread
// a contiguous slice, summed with independent vector accumulators so the loads, not the adds,
// limit it; once as one linear run, once as 8 runs side by side (one line of each in turn,
// prefetched ahead), in alternating order. A read is timed from the dispatch to the last thread's
// finish; the best read is best_gbps, and median_gbps is the median over the passes of each
// pass's faster read. The buffer is freed on return.
// Throws Error(kInvalidArgument) for bytes == 0 or passes < 1.
BandwidthResult measure_read_bandwidth(ThreadPool& pool, size_t bytes, int passes);

// The CPU probe: a fixed chain of dependent integer operations (no memory traffic), so its time
// depends only on how much of a core each thread gets and at what clock.
class SpinProbe {
 public:
  // Sizes the loop to take about target_ms on one thread of an otherwise idle process, and keeps
  // that time as the solo reference.
  explicit SpinProbe(double target_ms = 20.0);

  // Runs the fixed loop on every thread of `pool` at once; returns each thread's time (ms),
  // indexed by thread, and remembers the result under `label` ("before", "after pp512", ...).
  const std::vector<double>& check(ThreadPool& pool, const std::string& label);

  struct Check {
    std::string label;
    std::vector<double> ms;      // [n_threads] wall time, ms
    std::vector<double> cpu_ms;  // [n_threads] CPU time the thread got meanwhile, ms (-1: unknown)
    std::vector<int> cpu;        // [n_threads] CPU the thread finished on (-1: unknown)
  };
  uint64_t iterations() const { return iters_; }
  double solo_ms() const { return solo_ms_; }
  const std::vector<Check>& checks() const { return checks_; }

  // Ratios over the checks so far (1.0 when there is nothing to compare):
  double after_before() const;   // slowest thread of the last check / slowest of the first
  double max_spread() const;     // largest slowest/fastest ratio among the threads of one check
  double worst_vs_best() const;  // slowest thread time of any check / fastest of any check
  double vs_solo() const;        // slowest thread time of any check / the solo reference

  // When a probe is slow enough to call the machine degraded. The threads of a check run side
  // by side, so between checks 1.3x means lost CPU time. Against the solo reference the limit is
  // higher: one busy core may turbo above several (on bare metal up to ~1.3x), while two threads
  // sharing one core take 2x.
  struct Limits {
    double ratio = 1.3;       // after_before, max_spread, worst_vs_best
    double solo_ratio = 1.5;  // vs_solo
  };
  // Whether any ratio exceeds its limit, and a sentence naming which ones did.
  bool degraded(const Limits& limits, std::string* reason) const;

 private:
  // Why the slowest probe was slow: waiting for a CPU, or running slowly on one.
  std::string slowest_diagnosis() const;

  uint64_t iters_ = 0;
  double solo_ms_ = 0;
  std::vector<Check> checks_;
};

// Peak resident set size of this process in bytes (getrusage ru_maxrss).
uint64_t peak_rss_bytes();

// Lowers the kernel's peak-RSS mark to the current RSS (Linux: "5" into /proc/self/clear_refs),
// so a buffer already freed (the bandwidth one) no longer counts. Returns false where unsupported.
bool reset_peak_rss();

}  // namespace lightboat::cli
