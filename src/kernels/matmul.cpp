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

}  // namespace

void MatmulScratch::reserve(int64_t n_tokens, int64_t max_cols) {
  size_t need = static_cast<size_t>(n_tokens * max_cols * kMaxBytesPerElement);
  if (bytes_.size() < need) bytes_.resize(need);
}

void matmul(const tensor::MatrixView& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, MatmulScratch& scratch, ThreadPool& pool) {
  const DType act_type = reference::vec_dot_type(w.type);
  const size_t act_row_bytes = tensor::row_bytes(act_type, w.n_cols);
  scratch.reserve(n_tokens, w.n_cols);
  std::byte* act = scratch.data();  // [n_tokens, act_row_bytes]

  // Quantize each token's activations once; every output row reuses them.
  pool.parallel_for(n_tokens, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      reference::quantize_row(act_type, x + t * x_stride, act + t * act_row_bytes, w.n_cols);
    }
  });

  pool.parallel_for(w.n_rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t t = 0; t < n_tokens; ++t) {
      const std::byte* xa = act + t * act_row_bytes;
      float* yt = y + t * y_stride;
      for (int64_t r = r0; r < r1; ++r) {
        yt[r] = reference::vec_dot(w.type, w.n_cols, w.row(r), xa);
      }
    }
  });
}

void get_row(const tensor::MatrixView& w, int64_t index, float* out) {
  reference::dequantize_row(w.type, w.row(index), out, w.n_cols);
}

void load_vector(const tensor::VectorView& v, float* out) {
  reference::dequantize_row(v.type, v.data, out, v.n);
}

}  // namespace lightboat::kernels
