#include "cli/bench_machine.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "base/error.h"

#include <time.h>

#if defined(__linux__)
#include <sched.h>
#include <sys/mman.h>
#endif

namespace lightboat::cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Per-thread results on their own cache lines: threads writing neighbouring words would make
// the line bounce between cores and slow the very thing measured.
struct alignas(64) PaddedU64 {
  uint64_t value = 0;
};

// Sums n words with sixteen independent accumulators: no add waits for the previous one and the
// compiler turns the body into wide vector loads and adds. The width matters even though memory
// is the limit: one core keeps only so many loads in flight, and wider loads move more bytes per
// load (measured on a 16-core Xeon VM, one thread: SSE2 10.5, AVX2 14, AVX-512 17 GB/s). So on
// x86-64 the function is compiled three times and the loader picks the widest the CPU runs;
// the kernels the roofline judges use those widths too.
#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
uint64_t
sum_words(const uint64_t* p, size_t n) {
  constexpr size_t kAcc = 16;
  uint64_t acc[kAcc] = {};
  size_t i = 0;
  for (; i + kAcc <= n; i += kAcc) {
    for (size_t k = 0; k < kAcc; ++k) acc[k] += p[i + k];
  }
  for (; i < n; ++i) acc[0] += p[i];
  uint64_t s = 0;
  for (uint64_t a : acc) s += a;
  return s;
}

// The same sum with the words read as kRuns runs side by side, one cache line of each in turn,
// each run asking for its lines 2 KiB (kAheadWords) ahead. One linear stream per core is not the
// fastest way to read memory: on the 2-vCPU Xeon VMs, in `lightboat bench` over 1 GiB, this read
// gave 20.4-20.5 GB/s on one thread and 29.0-31.7 on two, against 16.5-16.6 and 25.5-27.2 for
// one run (docs/performance.md, "Four streams per core"), and the interleaved decode kernels
// read that way too.
#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
uint64_t
sum_words_runs(const uint64_t* p, size_t n) {
  constexpr size_t kRuns = 8, kLine = 8;  // words per 64-byte line
  constexpr size_t kAheadWords = 2048 / sizeof(uint64_t);
  const size_t per = n / kRuns / kLine * kLine;  // whole lines per run
  uint64_t acc[kLine] = {};
  for (size_t i = 0; i < per; i += kLine) {
    for (size_t r = 0; r < kRuns; ++r) {
      const uint64_t* q = p + r * per + i;
      __builtin_prefetch(q + kAheadWords, 0, 3);  // past the buffer's end too: a prefetch never faults
      for (size_t k = 0; k < kLine; ++k) acc[k] += q[k];
    }
  }
  for (size_t i = kRuns * per; i < n; ++i) acc[0] += p[i];
  uint64_t s = 0;
  for (uint64_t a : acc) s += a;
  return s;
}

// A dependent chain of multiply, add, shift and xor (an LCG step with a mix): each iteration
// waits for the previous one, and the result feeds a volatile sink so nothing is folded away.
uint64_t spin(uint64_t iters) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (uint64_t i = 0; i < iters; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    x ^= x >> 29;
  }
  return x;
}

volatile uint64_t g_sink = 0;

double time_spin(uint64_t iters) {
  const auto t0 = Clock::now();
  g_sink = g_sink + spin(iters);
  return ms_between(t0, Clock::now());
}

// CPU time of the calling thread (ms), -1 where the clock is missing. Beside wall time it tells
// a thread that waited for a CPU (shared with another thread) from one that ran slowly.
double thread_cpu_ms() {
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

int current_cpu() {
#if defined(__linux__)
  return sched_getcpu();
#else
  return -1;
#endif
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

BandwidthResult measure_read_bandwidth(ThreadPool& pool, size_t bytes, int passes) {
  check(bytes > 0, ErrorKind::kInvalidArgument, "bandwidth buffer size must be positive");
  check(passes >= 1, ErrorKind::kInvalidArgument, "bandwidth passes must be at least 1");
  // 2 MiB alignment lets the kernel back the buffer with huge pages (fewer TLB misses).
  constexpr size_t kAlign = size_t{2} << 20;
  const size_t n_bytes = std::max<size_t>(64, bytes / 64 * 64);
  const size_t alloc_bytes = (n_bytes + kAlign - 1) / kAlign * kAlign;
  std::unique_ptr<void, FreeDeleter> mem(std::aligned_alloc(kAlign, alloc_bytes));
  check(mem != nullptr, ErrorKind::kInternal,
        "cannot allocate the " + std::to_string(alloc_bytes >> 20) + " MiB bandwidth buffer");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(mem.get(), alloc_bytes, MADV_HUGEPAGE);  // a hint; failure only costs speed
#endif
  auto* words = static_cast<uint64_t*>(mem.get());  // [n_words]
  const size_t n_words = n_bytes / sizeof(uint64_t);
  const int n_threads = pool.size();
  // Each thread owns one contiguous slice, whole cache lines, for touching and for reading.
  auto slice = [&](int64_t t, size_t* begin, size_t* end) {
    const size_t lines = n_words / 8;
    *begin = lines * static_cast<size_t>(t) / static_cast<size_t>(n_threads) * 8;
    *end = lines * static_cast<size_t>(t + 1) / static_cast<size_t>(n_threads) * 8;
  };
  pool.parallel_for(n_threads, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      size_t lo = 0, hi = 0;
      slice(t, &lo, &hi);
      for (size_t i = lo; i < hi; ++i) words[i] = i;  // real data: no shared zero page
    }
  });

  std::vector<PaddedU64> sums(static_cast<size_t>(n_threads));
  // One timed read of the whole buffer, each thread's slice as one run or as several.
  auto read_gbps = [&](bool runs) {
    const auto t0 = Clock::now();
    pool.parallel_for(n_threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        size_t lo = 0, hi = 0;
        slice(t, &lo, &hi);
        sums[static_cast<size_t>(t)].value +=
            runs ? sum_words_runs(words + lo, hi - lo) : sum_words(words + lo, hi - lo);
      }
    });
    const double s = ms_between(t0, Clock::now()) / 1000.0;
    return static_cast<double>(n_words * sizeof(uint64_t)) / std::max(s, 1e-9) / 1e9;
  };
  BandwidthResult r;
  std::vector<double> gbps;  // per pass, the faster of its two reads
  for (int pass = 0; pass < passes; ++pass) {
    // Which read goes first alternates, so neither always follows the other.
    const bool runs_first = pass % 2 == 1;
    const double first = read_gbps(runs_first);
    const double second = read_gbps(!runs_first);
    const double linear = runs_first ? second : first;
    const double runs = runs_first ? first : second;
    r.linear_best_gbps = std::max(r.linear_best_gbps, linear);
    r.runs_best_gbps = std::max(r.runs_best_gbps, runs);
    gbps.push_back(std::max(linear, runs));
  }
  uint64_t total = 0;
  for (const auto& s : sums) total += s.value;
  g_sink = g_sink + total;

  r.buffer_bytes = n_words * sizeof(uint64_t);
  r.passes = passes;
  r.best_gbps = *std::max_element(gbps.begin(), gbps.end());
  std::sort(gbps.begin(), gbps.end());
  r.median_gbps = gbps[gbps.size() / 2];
  return r;
}

SpinProbe::SpinProbe(double target_ms) {
  // Grow a trial until it is long enough to time well, then scale it to the target.
  uint64_t trial = 1 << 16;
  double ms = time_spin(trial);
  while (ms < 2.0 && trial < (uint64_t{1} << 40)) {
    trial *= 4;
    ms = time_spin(trial);
  }
  iters_ = std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(trial) * target_ms / std::max(ms, 1e-6)));
  // The solo reference: best of three, so one preemption does not make it look slow.
  solo_ms_ = time_spin(iters_);
  for (int i = 0; i < 2; ++i) solo_ms_ = std::min(solo_ms_, time_spin(iters_));
}

const std::vector<double>& SpinProbe::check(ThreadPool& pool, const std::string& label) {
  // One cache line per thread: the wall and CPU time of its loop and the CPU it ended on.
  struct alignas(64) Slot {
    double ms = 0, cpu_ms = -1;
    int cpu = -1;
  };
  std::vector<Slot> slots(static_cast<size_t>(pool.size()));
  pool.parallel_for(pool.size(), 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      Slot& s = slots[static_cast<size_t>(t)];
      const double cpu0 = thread_cpu_ms();
      s.ms = time_spin(iters_);
      s.cpu_ms = cpu0 < 0 ? -1 : thread_cpu_ms() - cpu0;
      s.cpu = current_cpu();
    }
  });
  Check c{.label = label, .ms = {}, .cpu_ms = {}, .cpu = {}};
  for (const Slot& s : slots) {
    c.ms.push_back(s.ms);
    c.cpu_ms.push_back(s.cpu_ms);
    c.cpu.push_back(s.cpu);
  }
  checks_.push_back(std::move(c));
  return checks_.back().ms;
}

double SpinProbe::after_before() const {
  if (checks_.size() < 2) return 1.0;
  const auto& first = checks_.front().ms;
  const auto& last = checks_.back().ms;
  return *std::max_element(last.begin(), last.end()) / *std::max_element(first.begin(), first.end());
}

double SpinProbe::max_spread() const {
  double worst = 1.0;
  for (const auto& c : checks_) {
    const auto [lo, hi] = std::minmax_element(c.ms.begin(), c.ms.end());
    worst = std::max(worst, *hi / std::max(*lo, 1e-9));
  }
  return worst;
}

double SpinProbe::worst_vs_best() const {
  double best = 0, worst = 0;
  for (const auto& c : checks_) {
    for (double m : c.ms) {
      best = best == 0 ? m : std::min(best, m);
      worst = std::max(worst, m);
    }
  }
  return best > 0 ? worst / best : 1.0;
}

double SpinProbe::vs_solo() const {
  double worst = 0;
  for (const auto& c : checks_) {
    for (double m : c.ms) worst = std::max(worst, m);
  }
  return worst > 0 ? worst / std::max(solo_ms_, 1e-9) : 1.0;
}

bool SpinProbe::degraded(const Limits& limits, std::string* reason) const {
  std::string why;
  auto note = [&](const char* what, double ratio, double limit) {
    if (ratio <= limit) return;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s%s %.2fx (limit %.2fx)", why.empty() ? "" : ", ", what, ratio, limit);
    why += buf;
  };
  note("CPU probe after/before", after_before(), limits.ratio);
  note("spread between threads", max_spread(), limits.ratio);
  note("slowest probe vs fastest", worst_vs_best(), limits.ratio);
  note("slowest probe vs one thread alone", vs_solo(), limits.solo_ratio);
  if (!why.empty()) why += "; " + slowest_diagnosis();
  if (reason) *reason = why;
  return !why.empty();
}

std::string SpinProbe::slowest_diagnosis() const {
  const Check* slow = nullptr;
  size_t thread = 0;
  for (const auto& c : checks_) {
    for (size_t t = 0; t < c.ms.size(); ++t) {
      if (!slow || c.ms[t] > slow->ms[thread]) slow = &c, thread = t;
    }
  }
  if (!slow || slow->cpu_ms[thread] < 0) return "no per-thread CPU time to say why";
  // Below ~90% of the wall time on a CPU, the thread waited for one; at ~100% it ran but slowly.
  const double share = slow->cpu_ms[thread] / std::max(slow->ms[thread], 1e-9);
  char buf[256];
  std::snprintf(buf, sizeof buf, "the slowest probe ('%s', thread %zu, %.1f ms) ran %.0f%% of its time on a CPU: %s",
                slow->label.c_str(), thread, slow->ms[thread], 100.0 * share,
                share < 0.9 ? "it waited for a CPU (other work, or threads sharing one)"
                            : "it had its CPU but ran slowly (lower clock, or the host sharing the core)");
  return buf;
}

uint64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
#if defined(__APPLE__)
  return static_cast<uint64_t>(usage.ru_maxrss);  // bytes on macOS
#else
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // KiB on Linux
#endif
}

bool reset_peak_rss() {
#if defined(__linux__)
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
#else
  return false;
#endif
}

}  // namespace lightboat::cli
