// Q4_0x16 and Q8_0x16, Q4_0 and Q8_0 stored 16 rows interleaved (tensor/interleave.h): the layouts
// round-trip and put each quant where the header says; the reference gemms of the types equal the
// file types' dot products on the rows they came from; and, where the CPU has AMX, the AMX table's
// two gemms of each (the VNNI one for 1..4 tokens, the tiles for batches) give the same bits as its
// Q4_0 / Q8_0 gemms on the original rows, directly and through matmul with threads; get_row reads
// their rows back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

constexpr size_t kQ4_0Bytes = 18;
constexpr size_t kQ8_0Bytes = 34;

std::vector<std::byte> rows_of(DType type, int64_t n, int64_t n_rows, uint32_t seed) {
  return test_util::quantized_rows(type, n * n_rows, seed);
}

std::vector<uint8_t> rows_bytes(const std::vector<std::byte>& rows) {
  std::vector<uint8_t> out(rows.size());
  std::memcpy(out.data(), rows.data(), rows.size());
  return out;
}

std::vector<std::byte> q4_0_rows(int64_t n, int64_t n_rows, uint32_t seed) {
  return rows_of(DType::kQ4_0, n, n_rows, seed);
}

DType file_type(DType layout) {
  return layout == DType::kQ4_0x16 ? DType::kQ4_0 : layout == DType::kQ8_0x16 ? DType::kQ8_0 : DType::kF16;
}

// The file type's rows interleaved into `layout` (Q4_0x16, Q8_0x16 or F16x16).
std::vector<std::byte> interleaved(DType layout, const std::vector<std::byte>& rows, int64_t n, int64_t n_rows) {
  return test_util::interleaved_rows(file_type(layout), rows, n, n_rows);
}

std::vector<std::byte> interleaved(const std::vector<std::byte>& rows, int64_t n, int64_t n_rows) {
  return interleaved(DType::kQ4_0x16, rows, n, n_rows);
}

// sum_e |w[r][e] x[t][e]| of row r of wf and token t of xf (n elements each): the scale of the
// fp32 rounding error of their dot product.
double abs_dot(const std::vector<float>& wf, const std::vector<float>& xf, int64_t n, int64_t r, int64_t t) {
  double sum = 0.0;
  for (int64_t e = 0; e < n; ++e) {
    sum += std::fabs(static_cast<double>(wf[static_cast<size_t>(r * n + e)]) * xf[static_cast<size_t>(t * n + e)]);
  }
  return sum;
}

int quant(const std::byte* q4_0_block, int k) {  // element k of a Q4_0 block, 0..15
  const auto b = static_cast<uint8_t>(q4_0_block[2 + (k & 15)]);
  return k < 16 ? b & 15 : b >> 4;
}

TEST(Q4_0x16, InterleavingPutsEachQuantWhereTheLayoutSaysAndRoundTrips) {
  const int64_t n = 96, n_rows = 48, nb = n / 32;
  const size_t row_bytes = tensor::row_bytes(DType::kQ4_0, n);
  const auto rows = q4_0_rows(n, n_rows, 1);
  const auto inter = interleaved(rows, n, n_rows);
  EXPECT_EQ(tensor::row_bytes(DType::kQ4_0x16, n), row_bytes);
  for (int64_t g = 0; g < n_rows / 16; ++g) {
    const std::byte* group = inter.data() + static_cast<size_t>(g * 16) * row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      const std::byte* out = group + static_cast<size_t>(b) * tensor::kQ4_0x16BlockBytes;
      std::byte back[16 * kQ4_0Bytes];
      tensor::deinterleave_q4_0_block(group, b, back);
      for (int r = 0; r < 16; ++r) {
        const std::byte* block = rows.data() + static_cast<size_t>(g * 16 + r) * row_bytes + b * kQ4_0Bytes;
        ASSERT_EQ(std::memcmp(back + r * kQ4_0Bytes, block, kQ4_0Bytes), 0) << "g=" << g << " b=" << b << " r=" << r;
        ASSERT_EQ(std::memcmp(out + 2 * r, block, 2), 0) << "scale of row " << r;
        for (int i = 0; i < 4; ++i) {
          for (int j = 0; j < 4; ++j) {
            const auto v = static_cast<uint8_t>(out[32 + 64 * i + 4 * r + j]);
            ASSERT_EQ(v & 15, quant(block, 8 * i + j)) << "g=" << g << " b=" << b << " r=" << r << " i=" << i;
            ASSERT_EQ(v >> 4, quant(block, 8 * i + 4 + j)) << "g=" << g << " b=" << b << " r=" << r << " i=" << i;
          }
        }
      }
    }
  }
  std::vector<std::byte> dst(rows.size());
  EXPECT_THROW(tensor::interleave_q4_0(rows.data(), row_bytes, 15, n, dst.data()), Error);
}

TEST(Q8_0x16, InterleavingPutsEachQuantWhereTheLayoutSaysAndRoundTrips) {
  const int64_t n = 96, n_rows = 32, nb = n / 32;
  const size_t row_bytes = tensor::row_bytes(DType::kQ8_0, n);
  const auto rows = rows_of(DType::kQ8_0, n, n_rows, 4);
  const auto inter = interleaved(DType::kQ8_0x16, rows, n, n_rows);
  EXPECT_EQ(tensor::row_bytes(DType::kQ8_0x16, n), row_bytes);
  for (int64_t g = 0; g < n_rows / 16; ++g) {
    const std::byte* group = inter.data() + static_cast<size_t>(g * 16) * row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      const std::byte* out = group + static_cast<size_t>(b) * tensor::kQ8_0x16BlockBytes;
      std::byte back[16 * kQ8_0Bytes];
      tensor::deinterleave_q8_0_block(group, b, back);
      for (int r = 0; r < 16; ++r) {
        const std::byte* block = rows.data() + static_cast<size_t>(g * 16 + r) * row_bytes + b * kQ8_0Bytes;
        ASSERT_EQ(std::memcmp(back + r * kQ8_0Bytes, block, kQ8_0Bytes), 0) << "g=" << g << " b=" << b << " r=" << r;
        ASSERT_EQ(std::memcmp(out + 2 * r, block, 2), 0) << "scale of row " << r;
        for (int k = 0; k < 32; ++k) {  // element k: vector k / 4, byte k % 4 of lane r, plus 128
          ASSERT_EQ(static_cast<int>(static_cast<uint8_t>(out[32 + 64 * (k / 4) + 4 * r + k % 4])),
                    static_cast<int>(static_cast<int8_t>(block[2 + k])) + 128)
              << "g=" << g << " b=" << b << " r=" << r << " k=" << k;
        }
      }
    }
  }
  std::vector<std::byte> dst(rows.size());
  EXPECT_THROW(tensor::interleave_q8_0(rows.data(), row_bytes, 8, n, dst.data()), Error);
}

TEST(Interleaved, TypesAreNotFileTypes) {
  for (DType t : {DType::kQ4_0x16, DType::kQ8_0x16, DType::kF16x16}) {
    EXPECT_FALSE(tensor::dtype_from_id(static_cast<uint32_t>(t)).has_value());
  }
  EXPECT_EQ(tensor::dtype_name(DType::kQ4_0x16), "Q4_0x16");
  EXPECT_EQ(tensor::dtype_name(DType::kQ8_0x16), "Q8_0x16");
  EXPECT_EQ(tensor::dtype_name(DType::kF16x16), "F16x16");
}

TEST(Interleaved, ReferenceGemmsEqualTheFileTypesDotProducts) {
  for (DType layout : {DType::kQ4_0x16, DType::kQ8_0x16}) {
    const DType type = file_type(layout);
    const int64_t n = 160, n_rows = 32, n_tokens = 3;
    const auto rows = rows_of(type, n, n_rows, 2);
    const auto inter = interleaved(layout, rows, n, n_rows);
    const auto x = reference::test_util::quantize(DType::kQ8_0, random_row(n * n_tokens, 3));
    const size_t wrb = tensor::row_bytes(type, n), xrb = tensor::row_bytes(DType::kQ8_0, n);
    std::vector<float> y(static_cast<size_t>(n_rows * n_tokens));
    const auto* xb = reinterpret_cast<const std::byte*>(x.data());
    const GemmFn gemm = gemm_fn(kernel_table(Isa::kScalar), layout);
    gemm(n, inter.data(), wrb, n_rows, xb, xrb, n_tokens, y.data(), n_rows);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < n_rows; ++r) {
        const float want = reference::vec_dot(type, n, rows.data() + r * wrb, xb + t * xrb);
        ASSERT_NEAR(y[static_cast<size_t>(t * n_rows + r)], want, 1e-5f * (std::fabs(want) + 1.0f))
            << tensor::dtype_name(layout) << " r=" << r;
      }
    }
    EXPECT_THROW(gemm(n, inter.data(), wrb, 15, xb, xrb, 1, y.data(), n_rows), Error);
  }
}

// Both AMX gemms of Q4_0x16 against the AMX table's VNNI gemm of Q4_0 on the original rows (which
// adds in the tiles' order): the same integers and the same fp32 steps, so the same bits. Column
// counts past 16384 take the VNNI kernel's column segments; row ranges start inside the matrix.
TEST(Interleaved, AmxGemmsGiveTheBitsOfTheFileTypesGemms) {
  LIGHTBOAT_REQUIRE_AMX();
  const KernelTable& k = kernel_table(Isa::kAmx);
  ASSERT_TRUE(k.interleaves());
  int cases = 0;
  for (DType layout : {DType::kQ4_0x16, DType::kQ8_0x16}) {
    const DType type = file_type(layout);
    ASSERT_NE(k.gemm[dtype_slot(layout)], nullptr);
    ASSERT_NE(k.packed_gemm[dtype_slot(layout)], nullptr);
    for (int64_t n : {32, 96, 2048, 16384 + 96}) {
      // 160 rows: the call on rows [16, 160) reads 9 groups as 4 runs of 2 side by side, then 1.
      for (int64_t n_rows : {16, 48, 160}) {
        const auto rows = rows_of(type, n, n_rows, static_cast<uint32_t>(n + n_rows));
        const auto inter = interleaved(layout, rows, n, n_rows);
        const size_t wrb = tensor::row_bytes(type, n), xrb = tensor::row_bytes(DType::kQ8_0, n);
        for (int64_t n_tokens : {1, 2, 3, 4, 5, 8, 9, 17, 40}) {
          if (n > 4096 && n_tokens > 5) continue;  // (slow and nothing new)
          const auto x = reference::test_util::quantize(DType::kQ8_0, random_row(n * n_tokens, 5));
          const auto* xb = reinterpret_cast<const std::byte*>(x.data());
          const int64_t y_stride = n_rows + 3;
          std::vector<float> want(static_cast<size_t>(n_tokens * y_stride), -1.0f);
          std::vector<float> vnni(want.size(), -1.0f), tiles(want.size(), -1.0f);
          k.gemm[dtype_slot(type)](n, rows.data(), wrb, n_rows, xb, xrb, n_tokens, want.data(), y_stride);
          // Rows [16, n_rows) first, then [0, 16): two "threads".
          const int64_t split = n_rows > 16 ? 16 : 0;
          const GemmFn gemm = k.gemm[dtype_slot(layout)];
          gemm(n, inter.data() + split * wrb, wrb, n_rows - split, xb, xrb, n_tokens, vnni.data() + split, y_stride);
          gemm(n, inter.data(), wrb, split, xb, xrb, n_tokens, vnni.data(), y_stride);

          MatmulScratch scratch;
          scratch.reserve(n_tokens, n, k);
          const PackedActivations packed{
              .n = n, .rows = xb, .row_bytes = xrb, .n_tokens = n_tokens, .packed = scratch.packed(n_tokens, n)};
          k.pack_activations[dtype_slot(DType::kQ8_0)](packed, 0, n_tokens);
          const PackedGemmFn packed_gemm = k.packed_gemm[dtype_slot(layout)];
          packed_gemm(packed, inter.data() + split * wrb, wrb, n_rows - split, tiles.data() + split, y_stride);
          packed_gemm(packed, inter.data(), wrb, split, tiles.data(), y_stride);
          for (size_t i = 0; i < want.size(); ++i) {
            ASSERT_EQ(vnni[i], want[i]) << tensor::dtype_name(layout) << " VNNI n=" << n << " rows=" << n_rows
                                        << " tokens=" << n_tokens << " at " << i;
            ASSERT_EQ(tiles[i], want[i]) << tensor::dtype_name(layout) << " tiles n=" << n << " rows=" << n_rows
                                         << " tokens=" << n_tokens << " at " << i;
          }
          // And against the scalar reference of the interleaved type itself, within fp32
          // summation-order tolerance (1e-5 of the sum of |w_i x_i|).
          std::vector<float> ref(static_cast<size_t>(n_tokens * n_rows));
          gemm_fn(kernel_table(Isa::kScalar), layout)(n, inter.data(), wrb, n_rows, xb, xrb, n_tokens, ref.data(),
                                                      n_rows);
          const auto wf = reference::test_util::dequantize(type, rows_bytes(rows), n * n_rows);
          const auto xf = reference::test_util::dequantize(DType::kQ8_0, x, n * n_tokens);
          for (int64_t t = 0; t < n_tokens; ++t) {
            for (int64_t r = 0; r < n_rows; ++r) {
              const double abs_sum = abs_dot(wf, xf, n, r, t);
              ASSERT_NEAR(vnni[static_cast<size_t>(t * y_stride + r)], ref[static_cast<size_t>(t * n_rows + r)],
                          1e-5 * abs_sum + 1e-30)
                  << tensor::dtype_name(layout) << " vs the scalar reference, n=" << n << " r=" << r << " t=" << t;
            }
          }
          ++cases;
        }
      }
    }
    const auto rows = rows_of(type, 64, 16, 9);
    std::vector<float> y(32);
    EXPECT_THROW(k.gemm[dtype_slot(layout)](64, rows.data(), 36, 15, nullptr, 0, 1, y.data(), 16), Error);
  }
  std::printf("%d shapes checked\n", cases);
}

// Through matmul (a pool of two, row chunks of 16 and 32, above and below the tiles' threshold).
TEST(Interleaved, MatmulGivesTheBitsOfTheFileTypes) {
  LIGHTBOAT_REQUIRE_AMX();
  const KernelTable& k = kernel_table(Isa::kAmx);
  ThreadPool pool(2);
  MatmulScratch scratch;
  for (DType layout : {DType::kQ4_0x16, DType::kQ8_0x16}) {
    const DType type = file_type(layout);
    const int64_t n = 576, n_rows = 1536;
    const auto rows = rows_of(type, n, n_rows, 31);
    const auto inter = interleaved(layout, rows, n, n_rows);
    const size_t wrb = tensor::row_bytes(type, n);
    const tensor::MatrixView file{.type = type, .n_cols = n, .n_rows = n_rows, .row_bytes = wrb, .data = rows.data()};
    tensor::MatrixView view = file;
    view.type = layout;
    view.data = inter.data();
    for (int64_t n_tokens : {int64_t{1}, int64_t{3}, k.packed_min_tokens, int64_t{77}}) {
      const auto x = random_row(n * n_tokens, 32);
      std::vector<float> got(static_cast<size_t>(n_rows * n_tokens)), want(got.size());
      matmul(k, file, x.data(), n, n_tokens, want.data(), n_rows, scratch, pool);
      matmul(k, view, x.data(), n, n_tokens, got.data(), n_rows, scratch, pool);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], want[i]) << tensor::dtype_name(layout) << " tokens=" << n_tokens << " at " << i;
      }
    }
  }
}

// get_row of an interleaved matrix (a tied embedding table) gives every row as the file's layout
// does, in any kernel table (get_row is portable code).
TEST(Interleaved, GetRowGivesTheFileTypesRows) {
  for (DType layout : {DType::kQ4_0x16, DType::kQ8_0x16, DType::kF16x16}) {
    const DType type = file_type(layout);
    const int64_t n = layout == DType::kF16x16 ? 75 : 96, n_rows = 48;
    const auto rows = rows_of(type, n, n_rows, 51);
    const auto inter = interleaved(layout, rows, n, n_rows);
    const tensor::MatrixView file{
        .type = type, .n_cols = n, .n_rows = n_rows, .row_bytes = tensor::row_bytes(type, n), .data = rows.data()};
    tensor::MatrixView view = file;
    view.type = layout;
    view.data = inter.data();
    std::vector<float> want(static_cast<size_t>(n)), got(want.size());
    for (int64_t r = 0; r < n_rows; ++r) {
      get_row(file, r, want.data());
      get_row(view, r, got.data());
      ASSERT_EQ(got, want) << tensor::dtype_name(layout) << " row " << r;
    }
  }
}

// ---- F16x16: F16 stored 16 rows interleaved, column by column ----

TEST(F16x16, InterleavingPutsEachElementWhereTheLayoutSaysAndRoundTrips) {
  const int64_t n = 35, n_rows = 32;
  const size_t row_bytes = tensor::row_bytes(DType::kF16, n);
  const auto rows = rows_of(DType::kF16, n, n_rows, 7);
  const auto inter = interleaved(DType::kF16x16, rows, n, n_rows);
  EXPECT_EQ(tensor::row_bytes(DType::kF16x16, n), row_bytes);
  for (int64_t g = 0; g < n_rows / 16; ++g) {
    const std::byte* group = inter.data() + static_cast<size_t>(g * 16) * row_bytes;
    for (int r = 0; r < 16; ++r) {
      const std::byte* row = rows.data() + static_cast<size_t>(g * 16 + r) * row_bytes;
      for (int64_t c = 0; c < n; ++c) {
        ASSERT_EQ(std::memcmp(group + 32 * c + 2 * r, row + 2 * c, 2), 0) << "g=" << g << " r=" << r << " c=" << c;
      }
      std::byte back[40];
      tensor::deinterleave_f16_row(group, 3, 20, r, back);
      EXPECT_EQ(std::memcmp(back, row + 6, 40), 0) << "g=" << g << " r=" << r;
    }
  }
  std::vector<std::byte> dst(rows.size());
  EXPECT_THROW(tensor::interleave_f16(rows.data(), row_bytes, 8, n, dst.data()), Error);
}

// The scalar reference of F16x16 is vec_dot of F16 on the original rows, exactly.
TEST(F16x16, ReferenceGemmIsTheF16DotProduct) {
  const int64_t n = 77, n_rows = 32, n_tokens = 3;
  const auto rows = rows_of(DType::kF16, n, n_rows, 8);
  const auto inter = interleaved(DType::kF16x16, rows, n, n_rows);
  const auto x = reference::test_util::quantize(DType::kF16, random_row(n * n_tokens, 9));
  const size_t rb = tensor::row_bytes(DType::kF16, n);
  const auto* xb = reinterpret_cast<const std::byte*>(x.data());
  std::vector<float> y(static_cast<size_t>(n_rows * n_tokens));
  const GemmFn gemm = gemm_fn(kernel_table(Isa::kScalar), DType::kF16x16);
  gemm(n, inter.data(), rb, n_rows, xb, rb, n_tokens, y.data(), n_rows);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_rows; ++r) {
      ASSERT_EQ(y[static_cast<size_t>(t * n_rows + r)],
                reference::vec_dot(DType::kF16, n, rows.data() + r * rb, xb + t * rb))
          << "r=" << r << " t=" << t;
    }
  }
  EXPECT_THROW(gemm(n, inter.data(), rb, 15, xb, rb, 1, y.data(), n_rows), Error);
}

// The AMX table's two gemms of F16x16 (FMA for 1..4 tokens a group, the AMX-BF16 tiles for
// batches, where the CPU has AMX-BF16), directly and through matmul with a pool: within fp32
// rounding of the reference, |y - ref| <= 4n 2^-24 sum |w x| for the tiles (amx_f16.cpp) and
// n 2^-24 sum |w x| for the FMA kernel. Column counts cover a partial tile step and the kernel's
// segments; token counts its 1..4-token groups and its batches below the tiles (5..15).
TEST(F16x16, AmxGemmsAgreeWithTheReference) {
  LIGHTBOAT_REQUIRE_AMX();
  const KernelTable& k = kernel_table(Isa::kAmx);
  ASSERT_NE(k.gemm[dtype_slot(DType::kF16x16)], nullptr);
  const PackedGemmFn packed_gemm = k.packed_gemm[dtype_slot(DType::kF16x16)];
  if (packed_gemm == nullptr) std::printf("no AMX-BF16: the tiles are not checked\n");
  ThreadPool pool(2);
  int cases = 0;
  for (int64_t n : {16, 35, 576, 8192 + 40}) {
    for (int64_t n_rows : {16, 48, 160}) {  // 160: one token reads rows [16, 160) as 4 runs, then 1 group
      const auto rows = rows_of(DType::kF16, n, n_rows, static_cast<uint32_t>(n + n_rows));
      const auto inter = interleaved(DType::kF16x16, rows, n, n_rows);
      const size_t rb = tensor::row_bytes(DType::kF16, n);
      const auto wf = reference::test_util::dequantize(DType::kF16, rows_bytes(rows), n * n_rows);
      for (int64_t n_tokens : {1, 2, 3, 4, 5, 11, 16, 17, 40}) {
        if (n > 4096 && n_tokens > 5 && n_tokens != 11 && n_tokens != 17) continue;  // (slow and nothing new)
        const auto xs = random_row(n * n_tokens, 10);
        const auto x = reference::test_util::quantize(DType::kF16, xs);
        const auto* xb = reinterpret_cast<const std::byte*>(x.data());
        const auto xf = reference::test_util::dequantize(DType::kF16, x, n * n_tokens);
        const int64_t y_stride = n_rows + 3;
        std::vector<float> ref(static_cast<size_t>(n_tokens * y_stride));
        gemm_fn(kernel_table(Isa::kScalar), DType::kF16x16)(n, inter.data(), rb, n_rows, xb, rb, n_tokens, ref.data(),
                                                            y_stride);
        std::vector<std::vector<float>> got;
        std::vector<float> y(ref.size(), -1.0f);
        const int64_t split = n_rows > 16 ? 16 : 0;  // rows [16, n_rows) first, then [0, 16): two "threads"
        const GemmFn gemm = k.gemm[dtype_slot(DType::kF16x16)];
        gemm(n, inter.data() + split * rb, rb, n_rows - split, xb, rb, n_tokens, y.data() + split, y_stride);
        gemm(n, inter.data(), rb, split, xb, rb, n_tokens, y.data(), y_stride);
        got.push_back(y);
        MatmulScratch scratch;
        if (packed_gemm != nullptr) {
          scratch.reserve(n_tokens, n, k, DType::kF16x16);
          const PackedActivations packed{
              .n = n, .rows = xb, .row_bytes = rb, .n_tokens = n_tokens, .packed = scratch.packed(n_tokens, n)};
          k.pack_activations[dtype_slot(DType::kF16)](packed, 0, n_tokens);
          std::fill(y.begin(), y.end(), -1.0f);
          packed_gemm(packed, inter.data() + split * rb, rb, n_rows - split, y.data() + split, y_stride);
          packed_gemm(packed, inter.data(), rb, split, y.data(), y_stride);
          got.push_back(y);
        }
        const tensor::MatrixView view{
            .type = DType::kF16x16, .n_cols = n, .n_rows = n_rows, .row_bytes = rb, .data = inter.data()};
        std::fill(y.begin(), y.end(), -1.0f);
        matmul(k, view, xs.data(), n, n_tokens, y.data(), y_stride, scratch, pool);
        got.push_back(y);
        for (int64_t t = 0; t < n_tokens; ++t) {
          for (int64_t r = 0; r < n_rows; ++r) {
            const double abs_sum = abs_dot(wf, xf, n, r, t);
            const auto i = static_cast<size_t>(t * y_stride + r);
            for (size_t v = 0; v < got.size(); ++v) {
              // The FMA kernel (the first result, and matmul's below the tiles' threshold) keeps
              // to n 2^-24: losing even a few columns' products would show.
              const bool matmul_tiles = n_tokens >= k.packed_min_tokens_of[dtype_slot(DType::kF16x16)];
              const bool tiles = packed_gemm != nullptr && (v == 1 || (v == 2 && matmul_tiles));
              const double bound = (tiles ? 4.0 : 1.0) * static_cast<double>(n) * 0x1p-24 * abs_sum + 1e-30;
              ASSERT_NEAR(got[v][i], ref[i], bound) << "path " << v << " n=" << n << " rows=" << n_rows
                                                    << " tokens=" << n_tokens << " r=" << r << " t=" << t;
            }
          }
        }
        ++cases;
      }
    }
  }
  std::printf("%d shapes checked\n", cases);
}

// matmul_shared over an interleaved matrix and one whose rows are not whole groups of 16, in either
// order: the same bits as each alone (the pass's row cuts must fall on the interleaved one's groups).
TEST(Interleaved, SharedPassWithAnUnalignedMatrixGivesTheSameBits) {
  LIGHTBOAT_REQUIRE_AMX();
  const KernelTable& k = kernel_table(Isa::kAmx);
  ThreadPool pool(2);
  MatmulScratch scratch;
  const int64_t n = 2048, odd_rows = 24, rows = 512;
  const auto odd = rows_of(DType::kQ4_0, n, odd_rows, 41);
  const auto file = rows_of(DType::kQ4_0, n, rows, 42);
  const auto inter = interleaved(file, n, rows);
  const size_t wrb = tensor::row_bytes(DType::kQ4_0, n);
  const tensor::MatrixView odd_view{
      .type = DType::kQ4_0, .n_cols = n, .n_rows = odd_rows, .row_bytes = wrb, .data = odd.data()};
  const tensor::MatrixView file_view{
      .type = DType::kQ4_0, .n_cols = n, .n_rows = rows, .row_bytes = wrb, .data = file.data()};
  tensor::MatrixView inter_view = file_view;
  inter_view.type = DType::kQ4_0x16;
  inter_view.data = inter.data();
  for (int64_t n_tokens : {int64_t{1}, int64_t{40}}) {
    const auto x = random_row(n * n_tokens, 43);
    std::vector<float> want_odd(static_cast<size_t>(odd_rows * n_tokens)), want(static_cast<size_t>(rows * n_tokens));
    matmul(k, odd_view, x.data(), n, n_tokens, want_odd.data(), odd_rows, scratch, pool);
    matmul(k, file_view, x.data(), n, n_tokens, want.data(), rows, scratch, pool);
    for (bool odd_first : {true, false}) {
      std::vector<float> got_odd(want_odd.size()), got(want.size());
      const MatmulTarget a{odd_view, got_odd.data(), odd_rows}, b{inter_view, got.data(), rows};
      const MatmulTarget targets[2] = {odd_first ? a : b, odd_first ? b : a};
      matmul_shared(k, targets, x.data(), n, n_tokens, scratch, pool);
      EXPECT_EQ(got_odd, want_odd) << "tokens=" << n_tokens << " odd first: " << odd_first;
      EXPECT_EQ(got, want) << "tokens=" << n_tokens << " odd first: " << odd_first;
    }
  }
}

}  // namespace
}  // namespace lightboat::kernels
