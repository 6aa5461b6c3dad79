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

namespace lightboat::kernels {

#ifndef LIGHTBOAT_PREFETCH_BYTES
#define LIGHTBOAT_PREFETCH_BYTES 8192
#endif
#ifndef LIGHTBOAT_PREFETCH_LOCALITY
#define LIGHTBOAT_PREFETCH_LOCALITY 3
#endif

// Bytes ahead of the current weight block (see docs/performance.md for the sweep that chose it).
inline constexpr size_t kWeightPrefetchBytes = LIGHTBOAT_PREFETCH_BYTES;

// Prefetches the cache line kWeightPrefetchBytes after p, for reading (GCC/Clang builtin: prefetcht0
// on x86, PRFM PLDL1KEEP on ARM).
inline void prefetch_weights(const std::byte* p) {
  __builtin_prefetch(p + kWeightPrefetchBytes, 0, LIGHTBOAT_PREFETCH_LOCALITY);
}

}  // namespace lightboat::kernels
