// How fast one core streams memory while it computes: the experiment behind docs/performance.md's
// "Instructions per line and one core's stream". x86-64 with AVX-512 (BW, VNNI, VBMI) and GFNI
// only, and not part of the build (it measures this machine, not Lightboat). Build and run:
//
//   g++ -O2 -march=sapphirerapids -pthread bench/experiments/stream_work.cpp -o /tmp/stream_work
//   /tmp/stream_work        # one thread
//   /tmp/stream_work 2      # two threads, each over its half
//
// A 1 GiB arena on transparent huge pages (past the last-level cache of the VMs measured), read:
//  - linearly, with K VPDPBUSD per 64-byte line on independent accumulators, and with or without
//    a software prefetch some distance ahead (T0: into L1, T1: into L2, NTA);
//  - as 16-row tiles of 1152-byte rows walked column-wise, 64 bytes of each row per step, the
//    next tile prefetched linearly into L2 (the decode kernels' order, kernels/prefetch.h);
//  - the same walk with the Q4_0 decode step's own instructions (x86/amx_decode.cpp): 72-byte
//    steps, loads at b and b + 8, VPERMT2B, AND, GF2P8AFFINEQB, two VPDPBUSD, the pack / madd
//    reduction of four rows.
// Prints GB/s, the best of two passes, for three rounds.
//
// GCC 12's 512-bit reductions: the same -Wuninitialized false positive as in src/kernels/x86.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

double gbps(size_t bytes, Clock::time_point t0) {
  return static_cast<double>(bytes) / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9;
}

void sink(__m512i v) {
  static volatile int s = 0;
  s = s + _mm512_reduce_add_epi32(v);
}

template <int kHint>
inline void prefetch(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), static_cast<_mm_hint>(kHint));
}

// Linear: K VPDPBUSD per line, prefetch kHint kAhead bytes on (kAhead = 0: none).
template <int K, int kHint, size_t kAhead>
double linear(const uint8_t* p, size_t n) {
  __m512i a[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  const __m512i x = _mm512_set1_epi8(3);
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n; i += 256) {
#pragma GCC unroll 4
    for (int l = 0; l < 4; ++l) {
      if constexpr (kAhead > 0) prefetch<kHint>(p + i + kAhead + 64 * l);
      const __m512i v = _mm512_load_si512(p + i + 64 * l);
      a[l] = _mm512_add_epi32(a[l], v);
#pragma GCC unroll 8
      for (int k = 0; k < K; ++k) a[l] = _mm512_dpbusd_epi32(a[l], v, x);
    }
  }
  const double r = gbps(n, t0);
  sink(_mm512_add_epi32(_mm512_add_epi32(a[0], a[1]), _mm512_add_epi32(a[2], a[3])));
  return r;
}

constexpr size_t kRow = 1152;         // a 2048-wide Q4_0 row
constexpr size_t kTile = 16 * kRow;   // 16 rows

// 16-row tiles walked column-wise, K VPDPBUSD per line, the next tile prefetched linearly into L2.
template <int K>
double tiles(const uint8_t* p, size_t n) {
  __m512i acc[16];
  for (auto& a : acc) a = _mm512_setzero_si512();
  const __m512i x = _mm512_set1_epi8(3);
  const auto t0 = Clock::now();
  for (size_t t = 0; t + kTile <= n; t += kTile) {
    const uint8_t* w = p + t;
    for (size_t s = 0; s < kRow; s += 64) {
#pragma GCC unroll 16
      for (int l = 0; l < 16; ++l) prefetch<_MM_HINT_T1>(w + kTile + s * 16 + 64 * l);
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) {
        const __m512i v = _mm512_loadu_si512(w + j * kRow + s);
        acc[j] = _mm512_add_epi32(acc[j], v);
#pragma GCC unroll 8
        for (int k = 0; k < K; ++k) acc[j] = _mm512_dpbusd_epi32(acc[j], v, x);
      }
    }
  }
  const double r = gbps(n, t0);
  __m512i s = acc[0];
  for (int j = 1; j < 16; ++j) s = _mm512_add_epi32(s, acc[j]);
  sink(s);
  return r;
}

// The same walk with the Q4_0 step's instructions (72 bytes of each row per step).
double q4_0_steps(const uint8_t* p, size_t n) {
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  const __m512i x = _mm512_set1_epi8(3), idx = _mm512_set1_epi8(5), low = _mm512_set1_epi8(15);
  const __m512i high = _mm512_set1_epi64(0x1020408000000000), ones = _mm512_set1_epi16(1);
  const auto t0 = Clock::now();
  for (size_t t = 0; t + kTile <= n; t += kTile) {
    const uint8_t* w = p + t;
    for (size_t s = 0; s + 72 <= kRow; s += 72) {
      const auto u = reinterpret_cast<uintptr_t>(w + kTile + s * 16);
      const auto* first = reinterpret_cast<const uint8_t*>((u + 63) & ~uintptr_t{63});
#pragma GCC unroll 18
      for (int l = 0; l < 18; ++l) prefetch<_MM_HINT_T1>(first + 64 * l);
      __m512i d[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) {
        const uint8_t* b = w + j * kRow + s;
        const __m512i q = _mm512_permutex2var_epi8(_mm512_loadu_si512(b), idx, _mm512_loadu_si512(b + 8));
        const __m512i lo = _mm512_and_si512(q, low), hi = _mm512_gf2p8affine_epi64_epi8(q, high, 0);
        d[j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(x, lo, x), hi, x);
      }
      for (int q = 0; q < 4; ++q) {
        const __m512i p01 = _mm512_madd_epi16(_mm512_packs_epi32(d[4 * q], d[4 * q + 1]), ones);
        const __m512i p23 = _mm512_madd_epi16(_mm512_packs_epi32(d[4 * q + 2], d[4 * q + 3]), ones);
        acc[q] = _mm512_add_epi32(acc[q], _mm512_madd_epi16(_mm512_packs_epi32(p01, p23), ones));
      }
    }
  }
  const double r = gbps(n, t0);
  sink(_mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3])));
  return r;
}

struct Test {
  const char* name;
  double (*run)(const uint8_t*, size_t);
};

constexpr Test kTests[] = {
    {"linear, K=0, no prefetch (the probe's pattern)", linear<0, 0, 0>},
    {"linear, K=4, no prefetch", linear<4, 0, 0>},
    {"linear, K=8, no prefetch", linear<8, 0, 0>},
    {"linear, K=4, T1 4 KB ahead", linear<4, _MM_HINT_T1, 4096>},
    {"linear, K=4, T1 18 KB ahead", linear<4, _MM_HINT_T1, 18432>},
    {"linear, K=4, T1 72 KB ahead", linear<4, _MM_HINT_T1, 73728>},
    {"linear, K=4, T1 144 KB ahead", linear<4, _MM_HINT_T1, 147456>},
    {"linear, K=4, T0 18 KB ahead", linear<4, _MM_HINT_T0, 18432>},
    {"linear, K=4, NTA 2 KB ahead", linear<4, _MM_HINT_NTA, 2048>},
    {"linear, K=8, T1 18 KB ahead", linear<8, _MM_HINT_T1, 18432>},
    {"16-row tiles, K=4, next tile into L2", tiles<4>},
    {"16-row tiles, the Q4_0 step", q4_0_steps},
};

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 && std::atoi(argv[1]) == 2 ? 2 : 1;
  constexpr size_t kArena = size_t{1} << 30;
  auto* arena = static_cast<uint8_t*>(std::aligned_alloc(size_t{2} << 20, kArena));
  if (arena == nullptr) return 1;
  madvise(arena, kArena, MADV_HUGEPAGE);
  std::memset(arena, 1, kArena);
  for (int round = 0; round < 3; ++round) {
    for (const Test& t : kTests) {
      double best = 0;
      for (int pass = 0; pass < 2; ++pass) {
        double g[2] = {0, 0};
        if (threads == 2) {
          std::thread other([&] { g[1] = t.run(arena + kArena / 2, kArena / 2); });
          g[0] = t.run(arena, kArena / 2);
          other.join();
        } else {
          g[0] = t.run(arena, kArena);
        }
        if (g[0] + g[1] > best) best = g[0] + g[1];
      }
      std::printf("%-50s %5.1f GB/s\n", t.name, best);
    }
    std::printf("\n");
  }
  return 0;
}
