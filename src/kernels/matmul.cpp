#include "kernels/matmul.h"

#include <algorithm>
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

// Below this much work (weight bytes x tokens, i.e. a few microseconds for one core) the matmul
// runs on the calling thread: waking the pool and waiting for it would cost as much as it saves
// (the small projections of tiny models; the K/V projections of small ones).
constexpr size_t kParallelWorkBytes = size_t{64} << 10;

}  // namespace

void MatmulScratch::reserve(int64_t n_tokens, int64_t max_cols) {
  size_t need = static_cast<size_t>(n_tokens * max_cols * kMaxBytesPerElement);
  if (bytes_.size() < need) bytes_.resize(need);
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
  scratch.reserve(n_tokens, w.n_cols);
  std::byte* act = scratch.data();  // [n_tokens, act_row_bytes]

  // Quantize each token's activations once; every output row reuses them.
  auto quantize_tokens = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) quantize(x + t * x_stride, act + t * act_row_bytes, w.n_cols);
  };
  if (n_tokens * w.n_cols < kParallelQuantizeElems) {
    quantize_tokens(0, n_tokens);
  } else {
    pool.parallel_for(n_tokens, 1, quantize_tokens);
  }

  auto rows = [&](int64_t r0, int64_t r1) {
    gemm(w.n_cols, w.row(r0), w.row_bytes, r1 - r0, act, act_row_bytes, n_tokens, y + r0, y_stride);
  };
  if (w.row_bytes * static_cast<size_t>(w.n_rows * n_tokens) < kParallelWorkBytes) {
    rows(0, w.n_rows);
  } else {
    pool.parallel_for(w.n_rows, kRowGrain, rows);
  }
}

void get_row(const tensor::MatrixView& w, int64_t index, float* out) {
  reference::dequantize_row(w.type, w.row(index), out, w.n_cols);
}

void load_vector(const tensor::VectorView& v, float* out) {
  reference::dequantize_row(v.type, v.data, out, v.n);
}

}  // namespace lightboat::kernels
