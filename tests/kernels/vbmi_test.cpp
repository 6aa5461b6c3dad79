// The VBMI table (x86/vbmi.cpp: AVX-512 plus the VNNI kernels that need VBMI and GFNI, for CPUs
// without AMX such as Zen 4): its gemms serve decode and batches alike, batches cut into blocks
// that stay in L2 (in_l2_blocks). So a token's outputs must be the same bits alone or in any
// batch, through every token chunk, row block and token group (8, 4, then 2 or 3); the interleaved
// layouts must give the bits of their file types; and everything must agree with the scalar
// reference. Skipped where the CPU lacks AVX512-VBMI or GFNI.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/reference/reference.h"
#include "matmul_util.h"
#include "reference_util.h"
#include "tensor/dtype.h"
#include "tensor/view.h"

namespace lightboat::kernels {
namespace {

using reference::test_util::random_row;
using tensor::DType;

#define LIGHTBOAT_REQUIRE_VBMI()                                                                   \
  do {                                                                                             \
    if (!isa_available(Isa::kAvx512Vbmi)) {                                                        \
      GTEST_SKIP() << "the VBMI table is not available here (no AVX512-VBMI or GFNI, or not x86)"; \
    }                                                                                              \
  } while (false)

std::vector<float> dequantized(DType type, const std::vector<std::byte>& q, int64_t n) {
  std::vector<uint8_t> bytes(q.size());
  std::memcpy(bytes.data(), q.data(), q.size());
  return reference::test_util::dequantize(type, bytes, n);
}

// 8192 columns: activation chunks of 16 tokens (Q8_0: 192 KiB / 8704 bytes, Q8_K: / 9344 bytes,
// rounded down to 8), so 30 tokens take 16 + 14 and 27 take 16 + 11: the interleaved kernel's
// groups of 8, then 4 and 2, or 3; the row-major ones' groups of 4, then 2 or 3. 167 rows: row
// blocks of 128 and 39, the last 7 rows past the last 16 (the interleaved layouts take the first
// 160). Outputs go to rows of 170 floats, whose last 3 must stay untouched. So every piece of the
// blocking is crossed.
TEST(Vbmi, ATokenAloneEqualsTheSameTokenInABatchAndTheLayoutsTheirFileTypes) {
  LIGHTBOAT_REQUIRE_VBMI();
  const KernelTable& k = kernel_table(Isa::kAvx512Vbmi);
  const KernelTable& scalar = kernel_table(Isa::kScalar);
  const int64_t n = 8192, n_rows = 167, n_inter = 160, y_stride = n_rows + 3;
  constexpr float kUntouched = -12345.0f;
  int checked = 0;
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kQ5_0, DType::kQ4_K, DType::kQ6_K}) {
    for (int64_t n_tokens : {int64_t{30}, int64_t{27}}) {
      const DType act = reference::vec_dot_type(type);
      const auto rows = test_util::quantized_rows(type, n * n_rows, 41 + static_cast<uint32_t>(type));
      const auto x = test_util::quantized_rows(act, n * n_tokens, 42 + static_cast<uint32_t>(n_tokens));
      const size_t wrb = tensor::row_bytes(type, n), xrb = tensor::row_bytes(act, n);
      const DType layout = tensor::interleaving_of(type).type;                 // (itself where none)
      const auto inter = test_util::interleaved_rows(type, rows, n, n_inter);  // (reads the first 160 rows)
      const auto wf = dequantized(type, rows, n * n_rows), xf = dequantized(act, x, n * n_tokens);
      std::vector<float> batch(static_cast<size_t>(n_tokens * y_stride), kUntouched), batch_inter(batch);
      gemm_fn(k, type)(n, rows.data(), wrb, n_rows, x.data(), xrb, n_tokens, batch.data(), y_stride);
      gemm_fn(k, layout)(n, inter.data(), wrb, n_inter, x.data(), xrb, n_tokens, batch_inter.data(), y_stride);
      std::vector<float> alone(static_cast<size_t>(n_rows)), alone_inter(alone.size());
      const std::string name = std::string(tensor::dtype_name(type)) + " tokens=" + std::to_string(n_tokens);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const std::byte* xt = x.data() + static_cast<size_t>(t) * xrb;
        gemm_fn(k, type)(n, rows.data(), wrb, n_rows, xt, xrb, 1, alone.data(), n_rows);
        gemm_fn(k, layout)(n, inter.data(), wrb, n_inter, xt, xrb, 1, alone_inter.data(), n_rows);
        for (int64_t r = n_rows; r < y_stride; ++r) {
          ASSERT_EQ(batch[static_cast<size_t>(t * y_stride + r)], kUntouched) << name << " wrote past its rows";
        }
        for (int64_t r = 0; r < n_rows; ++r) {
          const float got = batch[static_cast<size_t>(t * y_stride + r)];
          ASSERT_EQ(got, alone[static_cast<size_t>(r)]) << name << " t=" << t << " r=" << r;
          if (r < n_inter) {
            ASSERT_EQ(batch_inter[static_cast<size_t>(t * y_stride + r)], got)
                << name << " interleaved, t=" << t << " r=" << r;
            ASSERT_EQ(alone_inter[static_cast<size_t>(r)], got) << name << " interleaved alone, t=" << t << " r=" << r;
          } else {
            ASSERT_EQ(batch_inter[static_cast<size_t>(t * y_stride + r)], kUntouched) << name << " interleaved";
          }
          // And the scalar reference, within fp32 summation-order tolerance (1e-5 of the sum of
          // |w_i x_i|).
          const float want = vec_dot_fn(scalar, type)(n, rows.data() + static_cast<size_t>(r) * wrb, xt);
          double abs_sum = 0.0;
          for (int64_t e = 0; e < n; ++e) {
            abs_sum +=
                std::fabs(static_cast<double>(wf[static_cast<size_t>(r * n + e)]) * xf[static_cast<size_t>(t * n + e)]);
          }
          ASSERT_NEAR(got, want, 1e-5 * abs_sum) << name << " vs the reference, t=" << t << " r=" << r;
          ++checked;
        }
      }
    }
  }
  std::printf("%d outputs checked\n", checked);
}

// F16x16 sums in its own order (x86/amx_interleaved.cpp: 16 rows in the lanes, four accumulators
// by column mod 4, segments of 8192 columns), not F16's, so its batches are checked against its own
// tokens alone. Its batch groups: 5 tokens run as 4 + 1, 11 as 6 + 4 + 1, 30 as five 6s at 583
// columns, and at 8232 (in_l2_blocks' chunks of 8 tokens there) as 6 + 2 per chunk. 583 columns
// end 3 past a multiple of 4; 8232 take two segments. Outputs past the rows stay untouched, and
// each is within the FMA kernel's fp32 summation of the scalar reference (n 2^-24 of the sum of
// |w_i x_i|).
TEST(Vbmi, F16x16ATokenAloneEqualsTheSameTokenInABatch) {
  LIGHTBOAT_REQUIRE_VBMI();
  const GemmFn gemm = gemm_fn(kernel_table(Isa::kAvx512Vbmi), DType::kF16x16);
  const GemmFn reference = gemm_fn(kernel_table(Isa::kScalar), DType::kF16x16);
  constexpr float kUntouched = -12345.0f;
  for (int64_t n : {int64_t{583}, int64_t{8192 + 40}}) {
    const int64_t n_rows = 48, y_stride = n_rows + 3;
    const auto rows = test_util::quantized_rows(DType::kF16, n * n_rows, 61);
    const auto inter = test_util::interleaved_rows(DType::kF16, rows, n, n_rows);
    const size_t rb = tensor::row_bytes(DType::kF16, n);
    const auto wf = dequantized(DType::kF16, rows, n * n_rows);
    for (int64_t n_tokens : {int64_t{5}, int64_t{11}, int64_t{30}}) {
      const auto x = test_util::quantized_rows(DType::kF16, n * n_tokens, 62 + static_cast<uint32_t>(n_tokens));
      const auto xf = dequantized(DType::kF16, x, n * n_tokens);
      std::vector<float> want(static_cast<size_t>(n_tokens * n_rows));
      reference(n, inter.data(), rb, n_rows, x.data(), rb, n_tokens, want.data(), n_rows);
      std::vector<float> batch(static_cast<size_t>(n_tokens * y_stride), kUntouched),
          alone(static_cast<size_t>(n_rows));
      gemm(n, inter.data(), rb, n_rows, x.data(), rb, n_tokens, batch.data(), y_stride);
      for (int64_t t = 0; t < n_tokens; ++t) {
        gemm(n, inter.data(), rb, n_rows, x.data() + static_cast<size_t>(t) * rb, rb, 1, alone.data(), n_rows);
        for (int64_t r = 0; r < y_stride; ++r) {
          const float got = batch[static_cast<size_t>(t * y_stride + r)];
          ASSERT_EQ(got, r < n_rows ? alone[static_cast<size_t>(r)] : kUntouched)
              << "n=" << n << " tokens=" << n_tokens << " t=" << t << " r=" << r;
          if (r >= n_rows) continue;
          double abs_sum = 0.0;
          for (int64_t e = 0; e < n; ++e) {
            abs_sum +=
                std::fabs(static_cast<double>(wf[static_cast<size_t>(r * n + e)]) * xf[static_cast<size_t>(t * n + e)]);
          }
          ASSERT_NEAR(got, want[static_cast<size_t>(t * n_rows + r)], static_cast<double>(n) * 0x1p-24 * abs_sum)
              << "vs the reference, n=" << n << " tokens=" << n_tokens << " t=" << t << " r=" << r;
        }
      }
    }
  }
}

// The same invariant through matmul, where a pool of two splits the rows, with the matrices bound
// as a model binds them (a row count that is not a multiple of 16 keeps the whole matrix
// row-major). 38 tokens: the interleaved kernel's groups of 8, then 4 and 2.
TEST(Vbmi, MatmulGivesATokenTheSameBitsAloneOrInABatch) {
  LIGHTBOAT_REQUIRE_VBMI();
  const KernelTable& k = kernel_table(Isa::kAvx512Vbmi);
  ThreadPool pool(2);
  MatmulScratch scratch;
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kQ5_0, DType::kQ4_K, DType::kQ6_K, DType::kF16}) {
    for (int64_t n_rows : {int64_t{77}, int64_t{320}}) {
      const int64_t n = 2048, n_tokens = 38;
      const auto rows = test_util::quantized_rows(type, n * n_rows, 51);
      const bool interleave = n_rows % 16 == 0 && k.interleave[dtype_slot(type)];
      const auto inter = interleave ? test_util::interleaved_rows(type, rows, n, n_rows) : rows;
      const tensor::MatrixView w{.type = interleave ? tensor::interleaving_of(type).type : type,
                                 .n_cols = n,
                                 .n_rows = n_rows,
                                 .row_bytes = tensor::row_bytes(type, n),
                                 .data = inter.data()};
      ASSERT_NO_FATAL_FAILURE(test_util::expect_alone_equals_batch(
          k, w, random_row(n * n_tokens, 52), n_tokens, scratch, pool,
          std::string(tensor::dtype_name(w.type)) + " rows=" + std::to_string(n_rows)));
    }
  }
}

// What the table is: the AVX-512 table's other entries, the VBMI kernels for the quantized types,
// no tiles, and interleaving of Q4_0, Q8_0, Q4_K and F16 (F16 keeps the AVX-512 gemm for rows
// that do not make whole groups of 16).
TEST(Vbmi, TableHasTheDecodeKernelsAndNoTiles) {
  LIGHTBOAT_REQUIRE_VBMI();
  const KernelTable& k = kernel_table(Isa::kAvx512Vbmi);
  const KernelTable& avx512 = kernel_table(Isa::kAvx512);
  EXPECT_EQ(k.isa, Isa::kAvx512Vbmi);
  EXPECT_EQ(isa_name(Isa::kAvx512Vbmi), "avx512vbmi");
  EXPECT_EQ(k.packed_min_tokens, 0);
  for (size_t slot = 0; slot < kDTypeSlots; ++slot) EXPECT_EQ(k.packed_gemm[slot], nullptr) << slot;
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kQ5_0, DType::kQ4_K, DType::kQ6_K}) {
    EXPECT_NE(k.gemm[dtype_slot(type)], avx512.gemm[dtype_slot(type)]) << tensor::dtype_name(type);
  }
  for (DType type : {DType::kQ4_0x16, DType::kQ8_0x16, DType::kQ4_Kx16, DType::kF16x16}) {
    EXPECT_NE(k.gemm[dtype_slot(type)], nullptr) << tensor::dtype_name(type);
  }
  EXPECT_EQ(k.gemm[dtype_slot(DType::kF16)], avx512.gemm[dtype_slot(DType::kF16)]);
  EXPECT_EQ(k.attention[dtype_slot(DType::kF16)], avx512.attention[dtype_slot(DType::kF16)]);
  EXPECT_TRUE(k.interleave[dtype_slot(DType::kQ4_0)]);
  EXPECT_TRUE(k.interleave[dtype_slot(DType::kQ8_0)]);
  EXPECT_TRUE(k.interleave[dtype_slot(DType::kQ4_K)]);
  EXPECT_TRUE(k.interleave[dtype_slot(DType::kF16)]);
  EXPECT_FALSE(avx512.interleave[dtype_slot(DType::kF16)]);
  // Q4_K rows of every width here (2048, 8192 and 16384 columns); the AMX table only up to 2048.
  for (size_t row_bytes : {size_t{1152}, size_t{4608}, size_t{9216}}) {
    EXPECT_TRUE(k.interleaves(DType::kQ4_K, row_bytes)) << row_bytes;
    EXPECT_FALSE(avx512.interleaves(DType::kQ4_K, row_bytes)) << row_bytes;
  }
  if (isa_available(Isa::kAmx)) {  // the AMX table is this one plus the tiles: the same decode kernels
    const KernelTable& amx = kernel_table(Isa::kAmx);
    EXPECT_TRUE(amx.interleaves(DType::kQ4_K, 1152));
    EXPECT_FALSE(amx.interleaves(DType::kQ4_K, 1296));  // 2304 columns
    EXPECT_TRUE(amx.interleaves(DType::kQ4_0, 4608));
    for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K, DType::kQ4_0x16, DType::kQ4_Kx16}) {
      EXPECT_EQ(amx.gemm[dtype_slot(type)], k.gemm[dtype_slot(type)]) << tensor::dtype_name(type);
    }
  }
}

}  // namespace
}  // namespace lightboat::kernels
