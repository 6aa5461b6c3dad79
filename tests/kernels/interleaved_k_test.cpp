// Q4_Kx16, Q4_K stored 16 rows interleaved (tensor/interleave.h): the layout round-trips and puts
// each byte where the header says; its reference gemm is Q4_K's dot product on the original rows;
// and, where the CPU has AMX, the AMX table's two gemms of it (the VNNI one for 1..4 tokens, the
// tiles for batches) give the bits of its Q4_K gemm on the original rows, directly and through
// matmul with threads; get_row reads its rows back.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "amx_util.h"
#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/reference/reference.h"
#include "matmul_util.h"
#include "reference_util.h"
#include "tensor/dtype.h"
#include "tensor/interleave.h"
#include "tensor/view.h"

namespace lightboat::kernels {
namespace {

using reference::test_util::random_row;
using tensor::DType;

constexpr size_t kQ4_KBytes = 144;

// n_rows rows of n elements of random values quantized to `type` (Q4_K weights, Q8_K tokens).
std::vector<std::byte> quantized(DType type, int64_t n, int64_t n_rows, uint32_t seed) {
  return test_util::quantized_rows(type, n * n_rows, seed);
}

std::vector<std::byte> q4_k_rows(int64_t n, int64_t n_rows, uint32_t seed) {
  return quantized(DType::kQ4_K, n, n_rows, seed);
}

std::vector<std::byte> interleaved(const std::vector<std::byte>& rows, int64_t n, int64_t n_rows) {
  return test_util::interleaved_rows(DType::kQ4_K, rows, n, n_rows);
}

std::vector<std::byte> q8_k(int64_t n, int64_t n_tokens, uint32_t seed) {
  return quantized(DType::kQ8_K, n, n_tokens, seed);
}

TEST(Q4_Kx16, InterleavingPutsEachByteWhereTheLayoutSaysAndRoundTrips) {
  const int64_t n = 512, n_rows = 32, nb = n / 256;
  const size_t row_bytes = tensor::row_bytes(DType::kQ4_K, n);
  const auto rows = q4_k_rows(n, n_rows, 1);
  const auto inter = interleaved(rows, n, n_rows);
  EXPECT_EQ(tensor::row_bytes(DType::kQ4_Kx16, n), row_bytes);
  for (int64_t g = 0; g < n_rows / 16; ++g) {
    const std::byte* group = inter.data() + static_cast<size_t>(g * 16) * row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      const std::byte* out = group + static_cast<size_t>(b) * tensor::kQ4_Kx16BlockBytes;
      std::byte back[16 * kQ4_KBytes];
      tensor::deinterleave_q4_k_block(group, b, back);
      for (int r = 0; r < 16; ++r) {
        const std::byte* block = rows.data() + static_cast<size_t>(g * 16 + r) * row_bytes + b * kQ4_KBytes;
        ASSERT_EQ(std::memcmp(back + r * kQ4_KBytes, block, kQ4_KBytes), 0) << "g=" << g << " b=" << b << " r=" << r;
        ASSERT_EQ(std::memcmp(out + 2 * r, block, 2), 0) << "d of row " << r;
        ASSERT_EQ(std::memcmp(out + 32 + 2 * r, block + 2, 2), 0) << "dmin of row " << r;
        for (int k = 0; k < 3; ++k) {
          ASSERT_EQ(std::memcmp(out + tensor::kQ4_Kx16ScalesOffset + 64 * k + 4 * r, block + 4 + 4 * k, 4), 0)
              << "scale bytes " << 4 * k << " of row " << r;
        }
        for (int i = 0; i < 32; ++i) {
          ASSERT_EQ(std::memcmp(out + tensor::kQ4_Kx16QuantsOffset + 64 * i + 4 * r, block + 16 + 4 * i, 4), 0)
              << "quant bytes " << 4 * i << " of row " << r;
        }
      }
    }
  }
  std::vector<std::byte> dst(rows.size());
  EXPECT_THROW(tensor::interleave_q4_k(rows.data(), row_bytes, 15, n, dst.data()), Error);
  EXPECT_THROW(tensor::interleave_q4_k(rows.data(), row_bytes, 16, 96, dst.data()), Error);
  EXPECT_FALSE(tensor::dtype_from_id(static_cast<uint32_t>(DType::kQ4_Kx16)).has_value());
  EXPECT_EQ(tensor::dtype_name(DType::kQ4_Kx16), "Q4_Kx16");
}

// The scalar reference of Q4_Kx16 is vec_dot of Q4_K on the original rows, exactly.
TEST(Q4_Kx16, ReferenceGemmIsTheQ4_KDotProduct) {
  const int64_t n = 768, n_rows = 32, n_tokens = 3;
  const auto rows = q4_k_rows(n, n_rows, 2);
  const auto inter = interleaved(rows, n, n_rows);
  const auto x = q8_k(n, n_tokens, 3);
  const size_t wrb = tensor::row_bytes(DType::kQ4_K, n), xrb = tensor::row_bytes(DType::kQ8_K, n);
  std::vector<float> y(static_cast<size_t>(n_rows * n_tokens));
  const GemmFn gemm = gemm_fn(kernel_table(Isa::kScalar), DType::kQ4_Kx16);
  gemm(n, inter.data(), wrb, n_rows, x.data(), xrb, n_tokens, y.data(), n_rows);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_rows; ++r) {
      ASSERT_EQ(y[static_cast<size_t>(t * n_rows + r)],
                reference::vec_dot(DType::kQ4_K, n, rows.data() + r * wrb, x.data() + t * xrb))
          << "r=" << r << " t=" << t;
    }
  }
  EXPECT_THROW(gemm(n, inter.data(), wrb, 15, x.data(), xrb, 1, y.data(), n_rows), Error);
}

// Both AMX gemms of Q4_Kx16 against the AMX table's gemm of Q4_K on the original rows: the same
// integers S and M and the same two fp32 steps per super-block, so the same bits. 160 rows: the
// call on rows [16, 160) reads 9 groups as 4 runs of 2 side by side, then 1 alone.
TEST(Q4_Kx16, AmxGemmsGiveTheBitsOfQ4_K) {
  LIGHTBOAT_REQUIRE_AMX();
  const KernelTable& k = kernel_table(Isa::kAmx);
  ASSERT_NE(k.gemm[dtype_slot(DType::kQ4_Kx16)], nullptr);
  ASSERT_NE(k.packed_gemm[dtype_slot(DType::kQ4_Kx16)], nullptr);
  int cases = 0;
  for (int64_t n : {256, 2048, 8192}) {
    for (int64_t n_rows : {16, 48, 160}) {
      const auto rows = q4_k_rows(n, n_rows, static_cast<uint32_t>(n + n_rows));
      const auto inter = interleaved(rows, n, n_rows);
      const size_t wrb = tensor::row_bytes(DType::kQ4_K, n), xrb = tensor::row_bytes(DType::kQ8_K, n);
      for (int64_t n_tokens : {1, 2, 3, 4, 5, 17, 40}) {
        if (n > 4096 && n_tokens > 5) continue;  // (slow and nothing new)
        const auto x = q8_k(n, n_tokens, 5);
        const int64_t y_stride = n_rows + 3;
        std::vector<float> want(static_cast<size_t>(n_tokens * y_stride), -1.0f);
        std::vector<float> vnni(want.size(), -1.0f), tiles(want.size(), -1.0f);
        k.gemm[dtype_slot(DType::kQ4_K)](n, rows.data(), wrb, n_rows, x.data(), xrb, n_tokens, want.data(), y_stride);
        // Rows [16, n_rows) first, then [0, 16): two "threads".
        const int64_t split = n_rows > 16 ? 16 : 0;
        const GemmFn gemm = k.gemm[dtype_slot(DType::kQ4_Kx16)];
        gemm(n, inter.data() + split * wrb, wrb, n_rows - split, x.data(), xrb, n_tokens, vnni.data() + split,
             y_stride);
        gemm(n, inter.data(), wrb, split, x.data(), xrb, n_tokens, vnni.data(), y_stride);

        MatmulScratch scratch;
        scratch.reserve(n_tokens, n, k);
        const PackedActivations packed{
            .n = n, .rows = x.data(), .row_bytes = xrb, .n_tokens = n_tokens, .packed = scratch.packed(n_tokens, n)};
        k.pack_activations[dtype_slot(DType::kQ8_K)](packed, 0, n_tokens);
        const PackedGemmFn packed_gemm = k.packed_gemm[dtype_slot(DType::kQ4_Kx16)];
        packed_gemm(packed, inter.data() + split * wrb, wrb, n_rows - split, tiles.data() + split, y_stride);
        packed_gemm(packed, inter.data(), wrb, split, tiles.data(), y_stride);
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_EQ(vnni[i], want[i]) << "VNNI n=" << n << " rows=" << n_rows << " tokens=" << n_tokens << " at " << i;
          ASSERT_EQ(tiles[i], want[i]) << "tiles n=" << n << " rows=" << n_rows << " tokens=" << n_tokens << " at "
                                       << i;
        }
        ++cases;
      }
    }
  }
  const auto rows = q4_k_rows(256, 16, 9);
  std::vector<float> y(32);
  EXPECT_THROW(k.gemm[dtype_slot(DType::kQ4_Kx16)](256, rows.data(), kQ4_KBytes, 15, nullptr, 0, 1, y.data(), 16),
               Error);
  std::printf("%d shapes checked\n", cases);
}

// Through matmul (a pool of two, row chunks of 16 and more, above and below the tiles' threshold).
TEST(Q4_Kx16, MatmulGivesTheBitsOfQ4_K) {
  LIGHTBOAT_REQUIRE_AMX();
  const KernelTable& k = kernel_table(Isa::kAmx);
  ThreadPool pool(2);
  MatmulScratch scratch;
  const int64_t n = 2048, n_rows = 1536;
  const auto rows = q4_k_rows(n, n_rows, 31);
  const auto inter = interleaved(rows, n, n_rows);
  const size_t wrb = tensor::row_bytes(DType::kQ4_K, n);
  const tensor::MatrixView file{
      .type = DType::kQ4_K, .n_cols = n, .n_rows = n_rows, .row_bytes = wrb, .data = rows.data()};
  tensor::MatrixView view = file;
  view.type = DType::kQ4_Kx16;
  view.data = inter.data();
  for (int64_t n_tokens : {int64_t{1}, int64_t{3}, k.packed_min_tokens, int64_t{77}}) {
    const auto x = random_row(n * n_tokens, 32);
    std::vector<float> got(static_cast<size_t>(n_rows * n_tokens)), want(got.size());
    matmul(k, file, x.data(), n, n_tokens, want.data(), n_rows, scratch, pool);
    matmul(k, view, x.data(), n, n_tokens, got.data(), n_rows, scratch, pool);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "tokens=" << n_tokens << " at " << i;
  }
}

// get_row of a Q4_Kx16 matrix gives every row as Q4_K does, in any kernel table.
TEST(Q4_Kx16, GetRowGivesTheRowsOfQ4_K) {
  const int64_t n = 512, n_rows = 48;
  const auto rows = q4_k_rows(n, n_rows, 51);
  const auto inter = interleaved(rows, n, n_rows);
  const tensor::MatrixView file{.type = DType::kQ4_K,
                                .n_cols = n,
                                .n_rows = n_rows,
                                .row_bytes = tensor::row_bytes(DType::kQ4_K, n),
                                .data = rows.data()};
  tensor::MatrixView view = file;
  view.type = DType::kQ4_Kx16;
  view.data = inter.data();
  std::vector<float> want(static_cast<size_t>(n)), got(want.size());
  for (int64_t r = 0; r < n_rows; ++r) {
    get_row(file, r, want.data());
    get_row(view, r, got.data());
    ASSERT_EQ(got, want) << "row " << r;
  }
}

}  // namespace
}  // namespace lightboat::kernels
