// Software prefetch of the weight stream, for the gemm kernels of every ISA.
//
// Decoding reads every weight once per token straight from memory, so its speed is the number of
// cache-line misses a core keeps in flight. The kernels do a dozen instructions per 32-weight
// block, so the out-of-order window covers only a few hundred bytes ahead of the loads, and the
// hardware prefetchers stop at each 4 KiB page edge. Measured on the 2-vCPU Xeon VMs (SmolLM2-135M
// Q8_0 shapes, all of one token's matrices, cold): 5.5 GB/s on one thread without prefetch,
// against 15.8 GB/s for a plain streaming read of the same machine. Asking for the line a fixed
// distance ahead of the block being used keeps that distance in flight on every row stream. Rows
// of a tile are adjacent in memory, so the distance runs past the tile into the next rows, and at
// the end of a matrix into whatever follows it: a prefetch never faults, so that is harmless.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lightboat::kernels {

#ifndef LIGHTBOAT_PREFETCH_BYTES
#define LIGHTBOAT_PREFETCH_BYTES 8192
#endif
#ifndef LIGHTBOAT_PREFETCH_LOCALITY
#define LIGHTBOAT_PREFETCH_LOCALITY 3
#endif

// Bytes ahead of the current weight block (see docs/performance.md for the sweep that chose it).
inline constexpr size_t kWeightPrefetchBytes = LIGHTBOAT_PREFETCH_BYTES;

// Short rows: the 16-row decode kernels (x86/amx_decode.cpp, amx_k.cpp, amx_q6_k.cpp) walk a
// tile of 16 rows column-wise, so each row is a stream of its own. When a row is short (a
// 2048-wide Q4_0 row is 1152 bytes, a 576-wide Q8_0 row 612) those streams are too short for the
// hardware prefetchers, and a per-row distance ahead reaches the next tile only late in each row.
// There the kernels ask instead for the next tile's bytes in address order, as many per step as
// the step reads: one linear stream exactly a tile ahead, into L2 (into L1 it did less well, and
// worse than before once a tile passes ~20 KB: it evicts the tile being read). Measured per
// matrix inside decoding with `lightboat bench --profile`, one thread: Llama-3.2-1B Q4_0's
// 2048-wide matrices 8.9-10.4 -> 11.7-12.5 GB/s, SmolLM2-135M Q8_0's 576-wide ones 9.1-10.5 ->
// 11.8-13.4 (docs/performance.md has the table). The limit admits rows up to 2304 bytes: 2048-wide
// rows of every type, and 3072- and 4096-wide Q4_0 / Q4_K ones, which were not measured (no such
// model here). 8192-wide rows (72 KB tiles) were slower linear (11.4-13.0 -> 11.0-11.4), so longer
// rows keep the per-row distance. The rows must lie end to end (row bytes = the stride).
inline constexpr size_t kLinearPrefetchMaxRowBytes = 2304;
inline constexpr int kLinearPrefetchLocality = 2;  // prefetcht1 on x86: into L2

// Whether a 16-row kernel over rows of row_len bytes, row_stride apart, takes the linear stream.
inline bool linear_prefetch_rows(size_t row_len, size_t row_stride) {
  return row_len == row_stride && row_len <= kLinearPrefetchMaxRowBytes;
}

// Prefetches the cache line holding p, for reading, kLocality as __builtin_prefetch's (3: into
// L1, prefetcht0 / PRFM PLDL1KEEP; 2: into L2, prefetcht1 / PLDL2KEEP; 1: prefetcht2 / PLDL3KEEP;
// 0: non-temporal). On x86-64 and AArch64 it is an asm statement, not __builtin_prefetch: GCC 12
// finds a helper whose only effects are builtin prefetches "looping const" (ipa-pure-const) and,
// since C++ loops are assumed to finish, deletes calls to it that it has not inlined first. That
// once removed every prefetch of prefetch_lines' loop from the three 16-row kernels, through a
// small wrapper, with all tests passing (per-matrix GB/s of Llama-3.2-1B Q4_K_M 10.4-14.3 ->
// 6.3-11.1). A volatile asm is a side effect no pass may delete. Its operand is an address ("p"),
// not a memory operand: with "m" the kernels spilled half as many vectors again to the stack.
// tests/kernels/prefetch_instructions.cmake checks that the kernel objects keep their prefetches.
template <int kLocality = LIGHTBOAT_PREFETCH_LOCALITY>
[[gnu::always_inline]] inline void prefetch_line(const void* p) {
  static_assert(kLocality >= 0 && kLocality <= 3);
#if defined(__x86_64__)
  if constexpr (kLocality == 3) {
    asm volatile("prefetcht0 %a0" : : "p"(p));
  } else if constexpr (kLocality == 2) {
    asm volatile("prefetcht1 %a0" : : "p"(p));
  } else if constexpr (kLocality == 1) {
    asm volatile("prefetcht2 %a0" : : "p"(p));
  } else {
    asm volatile("prefetchnta %a0" : : "p"(p));
  }
#elif defined(__aarch64__)
  if constexpr (kLocality == 3) {
    asm volatile("prfm pldl1keep, %a0" : : "p"(p));
  } else if constexpr (kLocality == 2) {
    asm volatile("prfm pldl2keep, %a0" : : "p"(p));
  } else if constexpr (kLocality == 1) {
    asm volatile("prfm pldl3keep, %a0" : : "p"(p));
  } else {
    asm volatile("prfm pldl1strm, %a0" : : "p"(p));
  }
#else
  __builtin_prefetch(p, 0, kLocality);
#endif
}

// Prefetches the 64-byte lines whose first byte lies in [p, p + n), so that over consecutive
// spans each line is asked for once. A span holds ceil(n / 64) or one fewer such lines; the last
// is chosen without a branch (a repeat of the first when absent), which a data-dependent branch
// mispredicted.
template <int kLocality = LIGHTBOAT_PREFETCH_LOCALITY>
[[gnu::always_inline]] inline void prefetch_lines(const std::byte* p, size_t n) {
  const size_t skip = (0 - reinterpret_cast<uintptr_t>(p)) & 63;  // to the next line's start
  prefetch_line<kLocality>(p + skip);
  for (size_t o = 64; o < n; o += 64) prefetch_line<kLocality>(p + (skip + o < n ? skip + o : skip));
}

// Prefetches the cache line kWeightPrefetchBytes after p, for reading.
[[gnu::always_inline]] inline void prefetch_weights(const std::byte* p) {
  prefetch_line(p + kWeightPrefetchBytes);
}

}  // namespace lightboat::kernels
