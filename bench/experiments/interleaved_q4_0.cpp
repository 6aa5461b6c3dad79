// How fast a Q4_0 decode kernel streams when 16 rows are stored interleaved: the experiment behind
// docs/performance.md's "A row-interleaved Q4_0 layout". x86-64 with AVX-512 (BW, VNNI, FP16
// conversions) only, and not part of the build (it measures a layout Lightboat does not use yet).
// Build and run:
//
//   g++ -O2 -march=sapphirerapids -pthread bench/experiments/interleaved_q4_0.cpp -o /tmp/interleaved
//   /tmp/interleaved        # one thread
//   /tmp/interleaved 2      # two threads, each over its half
//
// Beside it, in the same minute, `lightboat bench -m llama-3.2-1b-Q4_0.gguf -p none -n 32 -t 1 -r 2
// --bw-mib 256 --profile` gives the shipped kernel's GB/s on the same 2048-wide Q4_0 matrices.
//
// The layout: per group of 16 rows and per 32-column block, the 16 rows' fp16 scales (32 bytes),
// then 4 x 64 bytes of nibbles in which 32-bit lane r holds row r: byte j of vector i has weight
// 8i + j in its low nibble and 8i + 4 + j in its high one. A group is 16 x 18 bytes per block,
// exactly the bytes of its 16 GGUF rows, so row offsets and sizes stay those of the file. Each
// vector's low or high nibbles are then one row of an AMX "VNNI" B tile, and one VPDPBUSD with a
// broadcast activation dword adds 4 products into every row's lane: no scale gathers, no
// transposes, no reduction across lanes. Per block: 5 loads, 8 nibble operations, 8 VPDPBUSD,
// and 4 fp32 operations for 16 rows.
//
// The kernel is checked against a scalar Q4_0 dot product of the same rows before timing. Timing
// reads a 1 GiB arena on transparent huge pages (past the last-level cache of the VMs measured),
// as 2048-wide matrices, without a software prefetch and with prefetcht1 4 KiB or 18 KiB ahead;
// the probe is a plain streaming read. Prints GB/s, the best of three passes, for three rounds.
//
// GCC 12's 512-bit reductions: the same -Wuninitialized false positive as in src/kernels/x86.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <sys/mman.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kCols = 2048, kBlocks = kCols / 32;
constexpr size_t kBlockBytes = 16 * 18;  // one block of 16 rows
constexpr size_t kGroupBytes = size_t{kBlocks} * kBlockBytes;

// Q8_0 activations: quants, the block scales, and 8 x the sum of each block's quants (Q4_0's
// offset of 8 taken out once per block instead of per weight).
struct Activations {
  int8_t q[kCols];
  float d[kBlocks];
  int32_t sum8[kBlocks];
};

template <size_t kAhead>
__attribute__((noinline)) void matvec(const uint8_t* w, int groups, const Activations& x, float* y) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (int g = 0; g < groups; ++g) {
    const uint8_t* gw = w + static_cast<size_t>(g) * kGroupBytes;
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int b = 0; b < kBlocks; b += 2) {
#pragma GCC unroll 2
      for (int u = 0; u < 2; ++u) {
        const uint8_t* p = gw + static_cast<size_t>(b + u) * kBlockBytes;
        if constexpr (kAhead > 0) {
#pragma GCC unroll 5
          for (int l = 0; l < 5; ++l) _mm_prefetch(reinterpret_cast<const char*>(p + kAhead + 64 * l), _MM_HINT_T1);
        }
        const auto* xd = reinterpret_cast<const int32_t*>(x.q + 32 * (b + u));
        const __m512 scales = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
          const __m512i q = _mm512_loadu_si512(p + 32 + 64 * i);
          s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(q, low), _mm512_set1_epi32(xd[2 * i]));
          s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(q, 4), low), _mm512_set1_epi32(xd[2 * i + 1]));
        }
        const __m512i s = _mm512_sub_epi32(_mm512_add_epi32(s0, s1), _mm512_set1_epi32(x.sum8[b + u]));
        acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(scales, _mm512_set1_ps(x.d[b + u])), acc[u]);
      }
    }
    _mm512_storeu_ps(y + 16 * g, _mm512_add_ps(acc[0], acc[1]));
  }
}

// 16 GGUF Q4_0 rows (per block: fp16 d, then 16 bytes, byte j = weight j | weight j + 16 << 4)
// into one group of the layout above.
void interleave(const uint8_t* rows, uint8_t* group) {
  const size_t row_bytes = kBlocks * 18;
  for (int b = 0; b < kBlocks; ++b) {
    uint8_t* out = group + static_cast<size_t>(b) * kBlockBytes;
    for (int r = 0; r < 16; ++r) {
      const uint8_t* block = rows + r * row_bytes + b * 18;
      std::memcpy(out + 2 * r, block, 2);
      uint8_t q[32];
      for (int j = 0; j < 16; ++j) q[j] = block[2 + j] & 15, q[j + 16] = block[2 + j] >> 4;
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) out[32 + 64 * i + 4 * r + j] = static_cast<uint8_t>(q[8 * i + j] | q[8 * i + 4 + j] << 4);
      }
    }
  }
}

void prepare(Activations& x, int seed) {
  std::srand(seed);
  for (int k = 0; k < kCols; ++k) x.q[k] = static_cast<int8_t>(std::rand() % 255 - 127);
  for (int b = 0; b < kBlocks; ++b) {
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += x.q[32 * b + j];
    x.d[b] = 0.02f, x.sum8[b] = 8 * sum;
  }
}

// The kernel against a scalar Q4_0 dot product of 16 random rows; returns the largest relative error.
double check() {
  std::vector<uint8_t> rows(16 * kBlocks * 18), group(kGroupBytes);
  for (auto& b : rows) b = static_cast<uint8_t>(std::rand());
  for (int r = 0; r < 16; ++r) {
    for (int b = 0; b < kBlocks; ++b) {
      const _Float16 d = static_cast<_Float16>(0.01f * static_cast<float>(1 + (r + b) % 7));
      std::memcpy(&rows[(r * kBlocks + b) * 18], &d, 2);
    }
  }
  interleave(rows.data(), group.data());
  static Activations x;
  prepare(x, 1);
  float y[16];
  matvec<0>(group.data(), 1, x, y);
  double worst = 0;
  for (int r = 0; r < 16; ++r) {
    double ref = 0;
    for (int b = 0; b < kBlocks; ++b) {
      const uint8_t* block = &rows[(r * kBlocks + b) * 18];
      _Float16 d;
      std::memcpy(&d, block, 2);
      int s = 0;
      for (int j = 0; j < 16; ++j) {
        s += ((block[2 + j] & 15) - 8) * x.q[32 * b + j] + ((block[2 + j] >> 4) - 8) * x.q[32 * b + j + 16];
      }
      ref += static_cast<double>(static_cast<float>(d)) * x.d[b] * s;
    }
    worst = std::fmax(worst, std::fabs(ref - y[r]) / (std::fabs(ref) + 1e-3));
  }
  return worst;
}

void probe(const uint8_t* p, size_t n) {
  __m512i a[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  for (size_t i = 0; i < n; i += 256) {
    for (int l = 0; l < 4; ++l) a[l] = _mm512_add_epi32(a[l], _mm512_load_si512(p + i + 64 * l));
  }
  static volatile int sink = 0;
  sink = sink + _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a[0], a[1]), _mm512_add_epi32(a[2], a[3])));
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 && std::atoi(argv[1]) == 2 ? 2 : 1;
  const double error = check();
  std::printf("largest relative error against the scalar dot product: %.1e\n", error);
  if (error > 1e-4) return 1;
  constexpr size_t kArena = size_t{1} << 30;
  auto* arena = static_cast<uint8_t*>(std::aligned_alloc(size_t{2} << 20, kArena));
  if (arena == nullptr) return 1;
  madvise(arena, kArena, MADV_HUGEPAGE);
  for (size_t i = 0; i < kArena; i += 2) arena[i] = static_cast<uint8_t>(i * 7), arena[i + 1] = 0x3c;  // fp16 ~1
  const int groups = static_cast<int>(kArena / kGroupBytes);
  static Activations x;
  prepare(x, 2);
  std::vector<float> y(static_cast<size_t>(groups) * 16);
  using Run = void (*)(const uint8_t*, int, const Activations&, float*);
  struct Test {
    const char* name;
    Run run;
  };
  const Test tests[] = {
      {"probe (streaming read)", nullptr},
      {"interleaved Q4_0, no prefetch", matvec<0>},
      {"interleaved Q4_0, T1 4 KiB ahead", matvec<4096>},
      {"interleaved Q4_0, T1 18 KiB ahead", matvec<18432>},
  };
  auto part = [&](const Test& t, int half) {
    const size_t bytes = threads == 2 ? kArena / 2 : kArena;
    const uint8_t* p = arena + static_cast<size_t>(half) * bytes;
    if (t.run == nullptr) {
      probe(p, bytes);
    } else {
      t.run(p, static_cast<int>(bytes / kGroupBytes), x, y.data() + static_cast<size_t>(half) * (groups / 2) * 16);
    }
  };
  for (int round = 0; round < 3; ++round) {
    for (const Test& t : tests) {
      double best = 0;
      for (int pass = 0; pass < 3; ++pass) {
        const auto t0 = Clock::now();
        if (threads == 2) {
          std::thread other([&] { part(t, 1); });
          part(t, 0);
          other.join();
        } else {
          part(t, 0);
        }
        best = std::fmax(best, static_cast<double>(kArena) / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9);
      }
      std::printf("%-40s %5.1f GB/s\n", t.name, best);
    }
    std::printf("\n");
  }
  return 0;
}
