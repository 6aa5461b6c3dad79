#include "kernels/matmul.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "base/error.h"
#include "kernels/matmul_profile.h"
#include "kernels/reference/reference.h"
#include "tensor/blocks.h"
#include "tensor/interleave.h"

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

// Work (weight bytes x tokens) per chunk of a decode row pass (no tiles), for passes big enough to
// take more than the pool's default 4 chunks per thread (up to 16). Llama-3.2-1B Q4_0 decode on
// two threads, an instrumented pool counting from the first thread to find no chunk left to the
// call's end: one thread idled 8.9-11.1% of the matmul calls' time at 4 chunks per thread,
// 3.2-3.4% at 16.
constexpr size_t kChunkWorkBytes = size_t{512} << 10;
constexpr int64_t kMaxDecodeChunksPerThread = 16;
// Up to this many tokens a pass is decode (the decode kernels' token group). A batch gemm without
// tiles prepares each token's activations once per call and blocks its rows for L2 in blocks of at
// least 128 rows (x86/amx_common.h, in_l2_blocks), so its chunks keep at least that many rows: a
// review found Llama-3.2-1B's 2048 FFN-down rows cut into 64-row calls on two threads.
constexpr int64_t kDecodeTokens = 4;
constexpr int64_t kBatchChunkRows = 128;

static_assert(kMaxMatmulTargets <= std::tuple_size_v<decltype(MatmulShape::types)>, "a profiled call's types fit");

}  // namespace

// Scratch layout: [quantized activations: n_tokens x max_cols x kMaxBytesPerElement bytes]
// [up to 64 bytes to align][packed activations, for tables with packed gemms: n_tokens rounded up
// to kPackedTokenTile, x max_cols / 32 (rounded up) x kPackedMaxBytesPerBlock bytes].
size_t MatmulScratch::packed_offset(int64_t n_tokens, int64_t max_cols) {
  return static_cast<size_t>(n_tokens * max_cols * kMaxBytesPerElement);
}

void MatmulScratch::reserve(int64_t n_tokens, int64_t max_cols) { reserve(n_tokens, max_cols, active_kernels()); }

void MatmulScratch::reserve(int64_t n_tokens, int64_t max_cols, const KernelTable& kernels) {
  reserve_packed(n_tokens, max_cols, kernels.packed_min_tokens > 0 ? kPackedMaxBytesPerBlock : 0);
}

void MatmulScratch::reserve(int64_t n_tokens, int64_t max_cols, const KernelTable& kernels, DType weight_type) {
  const int64_t own = kernels.packed_bytes_per_block[dtype_slot(weight_type)];
  reserve_packed(n_tokens, max_cols,
                 kernels.packed_min_tokens > 0 ? (own > kPackedMaxBytesPerBlock ? own : kPackedMaxBytesPerBlock) : 0);
}

void MatmulScratch::reserve_packed(int64_t n_tokens, int64_t max_cols, int64_t packed_bytes_per_block) {
  size_t need = packed_offset(n_tokens, max_cols);
  if (packed_bytes_per_block > 0) {
    const int64_t padded = (n_tokens + kPackedTokenTile - 1) / kPackedTokenTile * kPackedTokenTile;
    const int64_t blocks = (max_cols + kPackedBlockElems - 1) / kPackedBlockElems;
    need += kPackedAlign + static_cast<size_t>(padded * blocks * packed_bytes_per_block);
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

namespace {

void check_blocks(const tensor::MatrixView& w) {
  const int64_t qk = tensor::dtype_traits(w.type).block_elems;
  if (w.n_cols % qk != 0) {  // (no message built on the hot path unless it fails)
    throw Error(ErrorKind::kInvalidArgument,
                "matmul: row of " + std::to_string(w.n_cols) + " elements is not a whole number of " +
                    std::string(tensor::dtype_name(w.type)) + " blocks");
  }
}

// Targets [0, n) share their activation format (act_type) and columns: the activations are
// converted (and packed, where some target's type has a packed gemm and the batch is big enough)
// once, then one parallel pass covers the rows of all targets end to end.
void matmul_group(const KernelTable& kernels, const MatmulTarget* targets, size_t n, DType act_type, const float* x,
                  int64_t x_stride, int64_t n_tokens, MatmulScratch& scratch, ThreadPool& pool) {
  const bool profiling = matmul_profile_enabled();
  const auto start = profiling ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  const int64_t n_cols = targets[0].w.n_cols;
  const QuantizeRowFn quantize = quantize_row_fn(kernels, act_type);
  const size_t act_row_bytes = tensor::row_bytes(act_type, n_cols);
  for (size_t i = 0; i < n; ++i) scratch.reserve(n_tokens, n_cols, kernels, targets[i].w.type);  // packed room per type
  std::byte* act = scratch.data();  // [n_tokens, act_row_bytes]

  // A matrix unit's gemm, per target, where the table has one for its type and the batch is big
  // enough; the layout it reads is made once for all of them.
  PackedGemmFn packed_gemm[kMaxMatmulTargets] = {};
  bool any_packed = false;
  int64_t total_rows = 0;
  size_t work = 0;  // weight bytes x tokens
  for (size_t i = 0; i < n; ++i) {
    const tensor::MatrixView& w = targets[i].w;
    const size_t slot = dtype_slot(w.type);
    const int64_t own_min = kernels.packed_min_tokens_of[slot];
    const int64_t min_tokens = own_min > 0 ? own_min : kernels.packed_min_tokens;
    if (n_tokens >= min_tokens) packed_gemm[i] = kernels.packed_gemm[slot];
    any_packed = any_packed || packed_gemm[i] != nullptr;
    total_rows += w.n_rows;
    work += w.row_bytes * static_cast<size_t>(w.n_rows * n_tokens);
  }
  const PackActivationsFn pack = any_packed ? kernels.pack_activations[dtype_slot(act_type)] : nullptr;
  const PackedActivations packed{.n = n_cols, .rows = act, .row_bytes = act_row_bytes, .n_tokens = n_tokens,
                                 .packed = pack != nullptr ? scratch.packed(n_tokens, n_cols) : nullptr};

  // Quantize each token's activations once; every output row reuses them. A packed gemm's layout
  // is made here too, once per call, by the thread that quantized those tokens (chunks of whole
  // token tiles).
  auto quantize_tokens = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) quantize(x + t * x_stride, act + t * act_row_bytes, n_cols);
    if (pack != nullptr) pack(packed, t0, t1);
  };
  if (n_tokens * n_cols < kParallelQuantizeElems) {
    quantize_tokens(0, n_tokens);
  } else {
    pool.parallel_for(n_tokens, pack != nullptr ? kPackedTokenTile : 1, quantize_tokens);
  }

  // Rows [r0, r1) of the targets laid end to end; a chunk may span two of them.
  auto rows = [&](int64_t r0, int64_t r1) {
    int64_t first = 0;  // the current target's first row in the joint numbering
    for (size_t i = 0; i < n && r0 < r1; first += targets[i].w.n_rows, ++i) {
      const MatmulTarget& o = targets[i];
      const int64_t end = first + o.w.n_rows;
      if (r0 >= end) continue;
      const int64_t a = r0 - first, b = (r1 < end ? r1 : end) - first;
      if (packed_gemm[i] != nullptr) {
        packed_gemm[i](packed, o.w.row(a), o.w.row_bytes, b - a, o.y + a, o.y_stride);
      } else {
        gemm_fn(kernels, o.w.type)(n_cols, o.w.row(a), o.w.row_bytes, b - a, act, act_row_bytes, n_tokens, o.y + a,
                                   o.y_stride);
      }
      r0 = first + b;
    }
  };
  if (work < kParallelWorkBytes) {
    rows(0, total_rows);
  } else {
    // A big pass is cut finer than the pool's default, so the call ends soon after its last chunk
    // starts (a thread that finds none left idles until then). Decode by work (kChunkWorkBytes);
    // a batch without tiles by rows, no finer than kBatchChunkRows a chunk; tile passes keep the
    // default.
    int64_t per_thread = ThreadPool::kDefaultChunksPerThread;
    if (!any_packed) {
      per_thread = n_tokens > kDecodeTokens ? total_rows / (kBatchChunkRows * pool.size())
                                            : static_cast<int64_t>(work / kChunkWorkBytes) / pool.size();
    }
    const int chunks = static_cast<int>(
        std::clamp<int64_t>(per_thread, ThreadPool::kDefaultChunksPerThread, kMaxDecodeChunksPerThread));
    pool.parallel_for(total_rows, any_packed ? kPackedRowGrain : kRowGrain, rows, chunks);
  }
  if (profiling) {
    MatmulShape shape{.n_types = n, .rows = total_rows, .cols = n_cols, .tokens = n_tokens};
    for (size_t i = 0; i < n; ++i) {
      shape.types[i] = targets[i].w.type;
      shape.weight_bytes += targets[i].w.row_bytes * static_cast<uint64_t>(targets[i].w.n_rows);
    }
    matmul_profile_record(shape, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

}  // namespace

void matmul(const KernelTable& kernels, const tensor::MatrixView& w, const float* x, int64_t x_stride,
            int64_t n_tokens, float* y, int64_t y_stride, MatmulScratch& scratch, ThreadPool& pool) {
  if (n_tokens <= 0 || w.n_rows <= 0) return;
  check_blocks(w);
  const MatmulTarget target{w, y, y_stride};
  matmul_group(kernels, &target, 1, reference::vec_dot_type(w.type), x, x_stride, n_tokens, scratch, pool);
}

void matmul_shared(std::span<const MatmulTarget> targets, const float* x, int64_t x_stride, int64_t n_tokens,
                   MatmulScratch& scratch, ThreadPool& pool) {
  matmul_shared(active_kernels(), targets, x, x_stride, n_tokens, scratch, pool);
}

void matmul_shared(const KernelTable& kernels, std::span<const MatmulTarget> targets, const float* x, int64_t x_stride,
                   int64_t n_tokens, MatmulScratch& scratch, ThreadPool& pool) {
  if (targets.size() > kMaxMatmulTargets) {
    throw Error(ErrorKind::kInvalidArgument, "matmul_shared: " + std::to_string(targets.size()) +
                                                 " matrices (at most " + std::to_string(kMaxMatmulTargets) + ")");
  }
  if (n_tokens <= 0 || targets.empty()) return;
  for (const MatmulTarget& o : targets) {
    check_blocks(o.w);
    if (o.w.n_cols != targets[0].w.n_cols) {
      throw Error(ErrorKind::kInvalidArgument, "matmul_shared: matrices of " + std::to_string(targets[0].w.n_cols) +
                                                   " and " + std::to_string(o.w.n_cols) + " columns");
    }
  }
  // Group by activation format, keeping order (a Q4_K_M layer mixes Q4_K and Q6_K: both Q8_K).
  bool done[kMaxMatmulTargets] = {};
  for (size_t i = 0; i < targets.size(); ++i) {
    if (done[i] || targets[i].w.n_rows <= 0) continue;
    const DType act_type = reference::vec_dot_type(targets[i].w.type);
    MatmulTarget group[kMaxMatmulTargets];
    size_t n = 0;
    for (size_t j = i; j < targets.size(); ++j) {
      if (!done[j] && targets[j].w.n_rows > 0 && reference::vec_dot_type(targets[j].w.type) == act_type) {
        group[n++] = targets[j];
        done[j] = true;
      }
    }
    // Matrices whose rows are not whole groups of 16 go last: the pass cuts the rows, numbered end
    // to end, at multiples of 16, and an interleaved matrix (tensor/interleave.h) must start at one.
    // (By hand: std::stable_partition takes a heap buffer, and the token loop allocates nothing.)
    MatmulTarget ordered[kMaxMatmulTargets];
    size_t k = 0;
    for (size_t pass = 0; pass < 2; ++pass) {
      for (size_t j = 0; j < n; ++j) {
        if ((group[j].w.n_rows % tensor::kInterleavedRows == 0) == (pass == 0)) ordered[k++] = group[j];
      }
    }
    matmul_group(kernels, ordered, n, act_type, x, x_stride, n_tokens, scratch, pool);
  }
}

void get_row(const tensor::MatrixView& w, int64_t index, float* out) {
  const bool q4_0 = w.type == DType::kQ4_0x16, q8_0 = w.type == DType::kQ8_0x16, f16 = w.type == DType::kF16x16;
  const bool q4_k = w.type == DType::kQ4_Kx16;
  if (!q4_0 && !q8_0 && !f16 && !q4_k) {
    reference::dequantize_row(w.type, w.row(index), out, w.n_cols);
    return;
  }
  // An interleaved matrix (a tied embedding table, tensor/interleave.h): the row is lane `lane`
  // of its group, taken back a block (32 elements; Q4_K: 256) at a time.
  const int lane = static_cast<int>(index % tensor::kInterleavedRows);
  const std::byte* group = w.row(index - lane);
  if (q4_k) {
    std::byte block[sizeof(tensor::BlockQ4_K)];
    for (int64_t c = 0; c < w.n_cols; c += tensor::kQK_K) {
      tensor::deinterleave_q4_k_row_block(group, c / tensor::kQK_K, lane, block);
      reference::dequantize_row(DType::kQ4_K, block, out + c, tensor::kQK_K);
    }
    return;
  }
  std::byte block[64];  // a Q4_0 / Q8_0 block, or 32 fp16
  static_assert(sizeof(tensor::BlockQ8_0) <= sizeof(block));
  for (int64_t c = 0; c < w.n_cols; c += 32) {
    if (q4_0) {
      tensor::deinterleave_q4_0_row_block(group, c / 32, lane, block);
      reference::dequantize_row(DType::kQ4_0, block, out + c, 32);
    } else if (q8_0) {
      tensor::deinterleave_q8_0_row_block(group, c / 32, lane, block);
      reference::dequantize_row(DType::kQ8_0, block, out + c, 32);
    } else {
      const int64_t n = w.n_cols - c < 32 ? w.n_cols - c : 32;
      tensor::deinterleave_f16_row(group, c, n, lane, block);
      reference::dequantize_row(DType::kF16, block, out + c, n);
    }
  }
}

void load_vector(const tensor::VectorView& v, float* out) {
  reference::dequantize_row(v.type, v.data, out, v.n);
}

}  // namespace lightboat::kernels
