// How fast threads read memory as one linear run each or as several runs side by side: the
// experiment behind docs/performance.md's "Four streams per core". x86-64 with AVX-512F only, and
// not part of the build (it measures this machine, not Lightboat). Build and run:
//
//   g++ -O2 -march=native -pthread bench/experiments/read_runs.cpp -o /tmp/read_runs
//   /tmp/read_runs        # one thread
//   /tmp/read_runs 2      # two threads, each over its half
//
// A 1 GiB arena on transparent huge pages (past the last-level cache of the VMs measured). Each
// thread splits its half into S runs of equal length and reads one 256-byte step of each run in
// turn (S = 1: a plain linear read), with no software prefetch, with prefetcht0 ("pf=3") or with
// prefetcht1 ("pf=2") d bytes ahead in each run. Prints GB/s, the best of three passes, for two
// rounds of every setting.
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

template <int S>
uint64_t sum_runs(const char* p, size_t n, int pf, size_t dist) {
  const size_t per = n / S / 256 * 256;
  __m512i acc[4] = {};
  for (size_t o = 0; o < per; o += 256) {
    for (int s = 0; s < S; ++s) {
      const char* q = p + s * per + o;
      if (pf == 3) {
        for (int l = 0; l < 4; ++l) _mm_prefetch(q + dist + 64 * l, _MM_HINT_T0);
      } else if (pf == 2) {
        for (int l = 0; l < 4; ++l) _mm_prefetch(q + dist + 64 * l, _MM_HINT_T1);
      }
      for (int l = 0; l < 4; ++l) acc[l] = _mm512_add_epi64(acc[l], _mm512_load_si512(q + 64 * l));
    }
  }
  const __m512i a = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(a));
}

uint64_t run(int s, const char* p, size_t n, int pf, size_t d) {
  switch (s) {
    case 1:
      return sum_runs<1>(p, n, pf, d);
    case 2:
      return sum_runs<2>(p, n, pf, d);
    case 4:
      return sum_runs<4>(p, n, pf, d);
    case 8:
      return sum_runs<8>(p, n, pf, d);
    case 16:
      return sum_runs<16>(p, n, pf, d);
    default:
      return 0;
  }
}

volatile uint64_t g_sink;

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const size_t n = size_t{1} << 30;
  char* m = static_cast<char*>(std::aligned_alloc(size_t{1} << 21, n));
  if (m == nullptr) return 1;
  madvise(m, n, MADV_HUGEPAGE);
  std::memset(m, 1, n);
  struct Setting {
    int s, pf;
    size_t d;
  };
  const Setting settings[] = {{1, 0, 0},    {1, 3, 2048}, {1, 2, 18432}, {2, 0, 0},  {4, 0, 0},   {4, 3, 2048},
                              {4, 3, 4096}, {8, 0, 0},    {8, 3, 2048},  {16, 0, 0}, {4, 2, 4096}};
  for (int round = 0; round < 2; ++round) {
    for (const Setting& c : settings) {
      double best = 0;
      for (int pass = 0; pass < 3; ++pass) {
        const auto t0 = Clock::now();
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
          pool.emplace_back([&, t] { g_sink = g_sink + run(c.s, m + n / threads * t, n / threads, c.pf, c.d); });
        }
        for (auto& th : pool) th.join();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        best = std::max(best, static_cast<double>(n) / s / 1e9);
      }
      std::printf("threads=%d S=%d pf=%d d=%zu: %.1f GB/s\n", threads, c.s, c.pf, c.d, best);
    }
  }
  std::free(m);
  return 0;
}
