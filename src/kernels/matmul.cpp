#include "kernels/matmul.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/error.h"
#include "kernels/reference/reference.h"

namespace lightboat::kernels {
namespace {

using tensor::DType;

// Bytes of one activation row in the vec-dot format of any weight type; Q8_1 is the largest
// (36 bytes per 32 floats) and F32 needs 4 bytes per element, so 4 bytes per element bounds all.
constexpr int64_t kMaxBytesPerElement = 4;

// Below this many activation elements, quantizing on the calling thread is cheaper than waking
// the pool for it (a decode step quantizes one row of a few thousand floats).
constexpr int64_t kParallelQuantizeElems = int64_t{1} << 15;

// Output rows per scheduling grain: a multiple of every gemm kernel's row tile (4), and enough
// rows that a thread's chunk amortises its setup.
constexpr int64_t kRowGrain = 16;
// The same for packed (AMX) gemms, whose widest row tile is 32 rows.
constexpr int64_t kPackedRowGrain = 32;

// Below this much work (weight bytes x tokens, i.e. a few microseconds for one core) the matmul
// runs on the calling thread: waking the pool and waiting for it would cost as much as it saves
// (the small projections of tiny models; the K/V projections of small ones).
constexpr size_t kParallelWorkBytes = size_t{64} << 10;

}  // namespace

// Scratch layout: [quantized activations: n_tokens x max_cols x kMaxBytesPerElement bytes]
// [up to 64 bytes to align][packed activations, for tables with packed gemms: n_tokens rounded up
// to kPackedTokenTile, x max_cols / 32 (rounded up) x kPackedMaxBytesPerBlock bytes].
size_t MatmulScratch::packed_offset(int64_t n_tokens, int64_t max_cols) {
  return static_cast<size_t>(n_tokens * max_cols * kMaxBytesPerElement);
}

void MatmulScratch::reserve(int64_t n_tokens, int64_t max_cols) { reserve(n_tokens, max_cols, active_kernels()); }

void MatmulScratch::reserve(int64_t n_tokens, int64_t max_cols, const KernelTable& kernels) {
  size_t need = packed_offset(n_tokens, max_cols);
  if (kernels.packed_min_tokens > 0) {
    const int64_t padded = (n_tokens + kPackedTokenTile - 1) / kPackedTokenTile * kPackedTokenTile;
    const int64_t blocks = (max_cols + kPackedBlockElems - 1) / kPackedBlockElems;
    need += kPackedAlign + static_cast<size_t>(padded * blocks * kPackedMaxBytesPerBlock);
  }
  if (bytes_.size() < need) bytes_.resize(need);
}

std::byte* MatmulScratch::packed(int64_t n_tokens, int64_t max_cols) {
  const auto start = reinterpret_cast<uintptr_t>(bytes_.data() + packed_offset(n_tokens, max_cols));
  return bytes_.data() + packed_offset(n_tokens, max_cols) + (kPackedAlign - start % kPackedAlign) % kPackedAlign;
}

void matmul(const tensor::MatrixView& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, MatmulScratch& scratch, ThreadPool& pool) {
  matmul(active_kernels(), w, x, x_stride, n_tokens, y, y_stride, scratch, pool);
}

void matmul(const KernelTable& kernels, const tensor::MatrixView& w, const float* x, int64_t x_stride,
            int64_t n_tokens, float* y, int64_t y_stride, MatmulScratch& scratch, ThreadPool& pool) {
  if (n_tokens <= 0 || w.n_rows <= 0) return;
  const DType act_type = reference::vec_dot_type(w.type);
  const int64_t qk = tensor::dtype_traits(w.type).block_elems;
  if (w.n_cols % qk != 0) {  // (no message built on the hot path unless it fails)
    throw Error(ErrorKind::kInvalidArgument,
                "matmul: row of " + std::to_string(w.n_cols) + " elements is not a whole number of " +
                    std::string(tensor::dtype_name(w.type)) + " blocks");
  }
  const QuantizeRowFn quantize = quantize_row_fn(kernels, act_type);
  const GemmFn gemm = gemm_fn(kernels, w.type);
  const size_t act_row_bytes = tensor::row_bytes(act_type, w.n_cols);
  scratch.reserve(n_tokens, w.n_cols, kernels);
  std::byte* act = scratch.data();  // [n_tokens, act_row_bytes]

  // A matrix unit's gemm, when the table has one for this type and the batch is big enough.
  const PackedGemmFn packed_gemm = n_tokens >= kernels.packed_min_tokens ? kernels.packed_gemm[dtype_slot(w.type)] : nullptr;
  const PackActivationsFn pack = packed_gemm != nullptr ? kernels.pack_activations[dtype_slot(act_type)] : nullptr;
  const PackedActivations packed{.n = w.n_cols, .rows = act, .row_bytes = act_row_bytes, .n_tokens = n_tokens,
                                 .packed = pack != nullptr ? scratch.packed(n_tokens, w.n_cols) : nullptr};

  // Quantize each token's activations once; every output row reuses them. A packed gemm's layout
  // is made here too, once per call, by the thread that quantized those tokens (chunks of whole
  // token tiles).
  auto quantize_tokens = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) quantize(x + t * x_stride, act + t * act_row_bytes, w.n_cols);
    if (pack != nullptr) pack(packed, t0, t1);
  };
  if (n_tokens * w.n_cols < kParallelQuantizeElems) {
    quantize_tokens(0, n_tokens);
  } else {
    pool.parallel_for(n_tokens, pack != nullptr ? kPackedTokenTile : 1, quantize_tokens);
  }

  auto rows = [&](int64_t r0, int64_t r1) {
    if (pack != nullptr) {
      packed_gemm(packed, w.row(r0), w.row_bytes, r1 - r0, y + r0, y_stride);
    } else {
      gemm(w.n_cols, w.row(r0), w.row_bytes, r1 - r0, act, act_row_bytes, n_tokens, y + r0, y_stride);
    }
  };
  if (w.row_bytes * static_cast<size_t>(w.n_rows * n_tokens) < kParallelWorkBytes) {
    rows(0, w.n_rows);
  } else {
    pool.parallel_for(w.n_rows, pack != nullptr ? kPackedRowGrain : kRowGrain, rows);
  }
}

void get_row(const tensor::MatrixView& w, int64_t index, float* out) {
  reference::dequantize_row(w.type, w.row(index), out, w.n_cols);
}

void load_vector(const tensor::VectorView& v, float* out) {
  reference::dequantize_row(v.type, v.data, out, v.n);
}

}  // namespace lightboat::kernels
