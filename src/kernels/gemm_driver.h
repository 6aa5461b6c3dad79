// The loop nest shared by the SIMD gemm kernels (included by the ISA units only; anonymous
// namespace so each unit compiles its own copy with its own flags).
//
// Kernel::tile<R, T>(args, r0, t0) computes the R x T outputs of rows r0.. and tokens t0.. with
// R * T accumulators held in registers, loading each weight block once for T tokens and each
// activation block once for R rows. The driver walks tokens in chunks small enough for their
// activations to stay in L2 while every row of the caller's range passes over them, and within a
// chunk walks rows in groups of R (the weights of one group stay in L1 across the chunk's tokens).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lightboat::kernels::detail {
namespace {

struct GemmArgs {
  int64_t n;               // elements per row
  const std::byte* w;      // [n_rows, w_row_bytes]
  size_t w_row_bytes;
  const std::byte* x;      // [n_tokens, x_row_bytes]
  size_t x_row_bytes;
  float* y;                // [n_tokens, y_stride]
  int64_t y_stride;

  const std::byte* w_row(int64_t r) const { return w + static_cast<size_t>(r) * w_row_bytes; }
  const std::byte* x_row(int64_t t) const { return x + static_cast<size_t>(t) * x_row_bytes; }
  float& out(int64_t r, int64_t t) const { return y[t * y_stride + r]; }
};

constexpr int64_t kTokenChunk = 64;

template <typename Kernel, int R, int T>
void gemm_tiled(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows,
                const std::byte* x, size_t x_row_bytes, int64_t n_tokens, float* y,
                int64_t y_stride) {
  const GemmArgs a{n, w, w_row_bytes, x, x_row_bytes, y, y_stride};
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
    const int64_t t1 = t0 + kTokenChunk < n_tokens ? t0 + kTokenChunk : n_tokens;
    int64_t r = 0;
    for (; r + R <= n_rows; r += R) {
      int64_t t = t0;
      for (; t + T <= t1; t += T) Kernel::template tile<R, T>(a, r, t);
      for (; t < t1; ++t) Kernel::template tile<R, 1>(a, r, t);
    }
    for (; r < n_rows; ++r) {
      int64_t t = t0;
      for (; t + T <= t1; t += T) Kernel::template tile<1, T>(a, r, t);
      for (; t < t1; ++t) Kernel::template tile<1, 1>(a, r, t);
    }
  }
}

// One dot product through the 1 x 1 tile.
template <typename Kernel>
float vec_dot_by_tile(int64_t n, const void* w, const void* x) {
  float y = 0.0f;
  const GemmArgs a{n, static_cast<const std::byte*>(w), 0, static_cast<const std::byte*>(x), 0, &y, 0};
  Kernel::template tile<1, 1>(a, 0, 0);
  return y;
}

}  // namespace
}  // namespace lightboat::kernels::detail
