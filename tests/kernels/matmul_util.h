// Shared by the kernel-table tests: quantized rows as bytes, the 16-row interleaved layout of a
// file type's rows (tensor/interleave.h), and the invariant every table keeps, that a token's
// matmul outputs are the same bits alone as in a batch.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "reference_util.h"
#include "tensor/dtype.h"
#include "tensor/interleave.h"
#include "tensor/view.h"

namespace lightboat::kernels::test_util {

// n random values (reference::test_util::random_row) quantized to `type`.
inline std::vector<std::byte> quantized_rows(tensor::DType type, int64_t n, uint32_t seed) {
  const auto q = reference::test_util::quantize(type, reference::test_util::random_row(n, seed));
  std::vector<std::byte> out(q.size());
  std::memcpy(out.data(), q.data(), q.size());
  return out;
}

// The first n_rows rows of n elements of `rows` (Q4_0, Q8_0, Q4_K or F16) interleaved by 16 into
// a buffer of rows' size; other types come back as they are.
inline std::vector<std::byte> interleaved_rows(tensor::DType type, const std::vector<std::byte>& rows, int64_t n,
                                               int64_t n_rows) {
  const tensor::Interleaving layout = tensor::interleaving_of(type);
  if (layout.fn == nullptr) return rows;
  std::vector<std::byte> out(rows.size());
  layout.fn(rows.data(), tensor::row_bytes(type, n), n_rows, n, out.data());
  return out;
}

// matmul of w by n_tokens tokens of x (n_cols floats each) at once, then of each token alone: the
// same bits, output by output.
inline void expect_alone_equals_batch(const KernelTable& k, const tensor::MatrixView& w, const std::vector<float>& x,
                                      int64_t n_tokens, MatmulScratch& scratch, ThreadPool& pool,
                                      const std::string& what) {
  const int64_t n_rows = w.n_rows, n_cols = w.n_cols;
  std::vector<float> batch(static_cast<size_t>(n_rows * n_tokens)), alone(static_cast<size_t>(n_rows));
  matmul(k, w, x.data(), n_cols, n_tokens, batch.data(), n_rows, scratch, pool);
  for (int64_t t = 0; t < n_tokens; ++t) {
    matmul(k, w, x.data() + t * n_cols, n_cols, 1, alone.data(), n_rows, scratch, pool);
    for (int64_t r = 0; r < n_rows; ++r) {
      ASSERT_EQ(alone[static_cast<size_t>(r)], batch[static_cast<size_t>(t * n_rows + r)])
          << what << " t=" << t << " r=" << r;
    }
  }
}

}  // namespace lightboat::kernels::test_util
