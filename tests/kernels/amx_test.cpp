// The AMX-INT8 packed gemms (kernels/x86/amx.cpp, amx_k.cpp, amx_q6_k.cpp) against the scalar
// reference: Q8_0, Q4_0, Q5_0, Q4_K and Q6_K weights, row and token counts on and off the 16-row /
// 16-token tiles and past the 128-token chunk, row ranges that start inside a matrix (as matmul's
// threads call them), packing split across threads, misaligned activation rows, and bit-identical
// to the table's VNNI gemm (so a token's outputs do not depend on its batch); then matmul through
// the AMX table against the AVX-512 one and a token alone against the same token in a batch.
// Skipped, saying why, where the CPU or the OS does not offer AMX.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "amx_util.h"
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

constexpr DType kTypes[] = {DType::kQ8_0, DType::kQ4_0, DType::kQ5_0, DType::kQ4_K, DType::kQ6_K};

bool is_k_quant(DType t) {
  return t == DType::kQ4_K || t == DType::kQ6_K;
}

// A row length of about `n` elements that `type` can hold: K-quants take multiples of 256.
int64_t cols(DType type, int64_t n) {
  return is_k_quant(type) ? (n + 255) / 256 * 256 : n;
}

struct Case {
  DType type;
  int64_t n, n_rows, n_tokens;
  size_t misalign;  // bytes the activation rows start past an aligned address
};

std::string describe(const Case& c) {
  return std::string(tensor::dtype_name(c.type)) + " n=" + std::to_string(c.n) + " rows=" + std::to_string(c.n_rows) +
         " tokens=" + std::to_string(c.n_tokens) + " misalign=" + std::to_string(c.misalign);
}

// Runs the table's packed gemm on rows [r_split, n_rows) and [0, r_split) separately (two
// "threads"), packing tokens [0, t_split) and [t_split, n_tokens) separately too, and checks every
// output against the reference dot product within fp32 summation-order tolerance; outputs past
// n_rows must stay untouched.
void check(const Case& c, int64_t r_split, int64_t t_split) {
  const KernelTable& k = kernel_table(Isa::kAmx);
  const DType act = reference::vec_dot_type(c.type);
  ASSERT_NE(k.packed_gemm[dtype_slot(c.type)], nullptr);
  ASSERT_NE(k.pack_activations[dtype_slot(act)], nullptr);
  const auto w =
      reference::test_util::quantize(c.type, random_row(c.n * c.n_rows, static_cast<uint32_t>(c.n + c.n_rows)));
  const auto x = reference::test_util::quantize(act, random_row(c.n * c.n_tokens, static_cast<uint32_t>(c.n_tokens)));
  const size_t wrb = tensor::row_bytes(c.type, c.n), xrb = tensor::row_bytes(act, c.n);
  std::vector<std::byte> x_buf(x.size() + 64);
  std::byte* x_rows = x_buf.data() + c.misalign;
  std::memcpy(x_rows, x.data(), x.size());

  MatmulScratch scratch;
  scratch.reserve(c.n_tokens, c.n, k);
  const PackedActivations packed{
      .n = c.n, .rows = x_rows, .row_bytes = xrb, .n_tokens = c.n_tokens, .packed = scratch.packed(c.n_tokens, c.n)};
  k.pack_activations[dtype_slot(act)](packed, 0, t_split);
  k.pack_activations[dtype_slot(act)](packed, t_split, c.n_tokens);

  const int64_t y_stride = c.n_rows + 3;
  std::vector<float> y(static_cast<size_t>(c.n_tokens * y_stride), -12345.0f);
  const auto* wb = reinterpret_cast<const std::byte*>(w.data());
  const PackedGemmFn gemm = k.packed_gemm[dtype_slot(c.type)];
  gemm(packed, wb + static_cast<size_t>(r_split) * wrb, wrb, c.n_rows - r_split, y.data() + r_split, y_stride);
  gemm(packed, wb, wrb, r_split, y.data(), y_stride);

  // The table's VNNI gemm (decode, small batches) adds in the tiles' order: bit-identical.
  std::vector<float> y_vnni(y.size(), -12345.0f);
  k.gemm[dtype_slot(c.type)](c.n, wb, wrb, c.n_rows, x_rows, xrb, c.n_tokens, y_vnni.data(), y_stride);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], y_vnni[i]) << describe(c) << " at " << i << ": paths differ";

  const auto wf = reference::test_util::dequantize(c.type, w, c.n * c.n_rows);
  const auto xf = reference::test_util::dequantize(act, x, c.n * c.n_tokens);
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    for (int64_t r = 0; r < y_stride; ++r) {
      const float got = y[static_cast<size_t>(t * y_stride + r)];
      if (r >= c.n_rows) {
        ASSERT_EQ(got, -12345.0f) << describe(c) << ": wrote past its rows";
        continue;
      }
      const float want = reference::vec_dot(c.type, c.n, w.data() + r * wrb, x.data() + t * xrb);
      double abs_sum = 0.0;  // the tolerance's scale: sum of |w_i x_i|
      for (int64_t i = 0; i < c.n; ++i) {
        abs_sum +=
            std::fabs(static_cast<double>(wf[static_cast<size_t>(r * c.n + i)]) * xf[static_cast<size_t>(t * c.n + i)]);
      }
      ASSERT_NEAR(got, want, 1e-5 * abs_sum + 1e-30) << describe(c) << " r=" << r << " t=" << t;
    }
  }
}

TEST(Amx, PackedGemmMatchesTheReferenceOnTileEdges) {
  LIGHTBOAT_REQUIRE_AMX();
  int cases = 0;
  for (DType type : kTypes) {
    for (int64_t n : is_k_quant(type) ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 96, 160, 192, 256}) {
      for (int64_t n_rows : {1, 15, 16, 17, 31, 32, 33, 48, 50}) {
        for (int64_t n_tokens : {1, 2, 5, 8, 9, 15, 16, 17, 31, 32, 33, 40}) {
          const Case c{type, n, n_rows, n_tokens, static_cast<size_t>(cases % 5)};
          // Split rows on a 16-row boundary where there is one (matmul's grain is 32), tokens on
          // a token tile.
          check(c, n_rows >= 32 ? 16 : 0, n_tokens > 16 ? 16 : n_tokens);
          if (HasFatalFailure()) return;
          ++cases;
        }
      }
    }
  }
  std::printf("%d shapes checked\n", cases);
}

TEST(Amx, PackedGemmMatchesTheReferenceAcrossTokenChunks) {
  LIGHTBOAT_REQUIRE_AMX();
  for (DType type : kTypes) {
    check({type, cols(type, 64), 40, 150, 3}, 32, 128);  // 10 token tiles: a chunk of 8, then 2 (the last padded)
    check({type, cols(type, 128), 64, 129, 1}, 0, 64);
  }
}

// Blocks at the extremes of int8 (Q8_0 weights of -127 and 127 against activations of ±127 in
// all 32 lanes) and all-zero blocks: the int32 tile sums must not saturate or lose a sign, and
// the VNNI gemm must give the same bits.
TEST(Amx, PackedGemmHandlesExtremeBlocks) {
  LIGHTBOAT_REQUIRE_AMX();
  const int64_t n_rows = 16, n_tokens = 16;
  for (DType type : kTypes) {
    const int64_t n = cols(type, 192);  // Q8_0 / Q4_0 / Q5_0: a whole 4-block group and a part of one
    const DType act = reference::vec_dot_type(type);
    std::vector<float> wf(static_cast<size_t>(n * n_rows)), xf(static_cast<size_t>(n * n_tokens));
    for (size_t i = 0; i < wf.size(); ++i) wf[i] = (i / 32) % 3 == 2 ? 0.0f : ((i / 64) % 2 == 0 ? 127.0f : -127.0f);
    for (size_t i = 0; i < xf.size(); ++i) xf[i] = (i / 64) % 2 == 0 ? -127.0f : 127.0f;
    const auto w = reference::test_util::quantize(type, wf);
    const auto x = reference::test_util::quantize(act, xf);
    const size_t wrb = tensor::row_bytes(type, n), xrb = tensor::row_bytes(act, n);
    MatmulScratch scratch;
    scratch.reserve(n_tokens, n, kernel_table(Isa::kAmx));
    const KernelTable& k = kernel_table(Isa::kAmx);
    const PackedActivations packed{.n = n,
                                   .rows = reinterpret_cast<const std::byte*>(x.data()),
                                   .row_bytes = xrb,
                                   .n_tokens = n_tokens,
                                   .packed = scratch.packed(n_tokens, n)};
    k.pack_activations[dtype_slot(act)](packed, 0, n_tokens);
    std::vector<float> y(static_cast<size_t>(n_rows * n_tokens));
    k.packed_gemm[dtype_slot(type)](packed, reinterpret_cast<const std::byte*>(w.data()), wrb, n_rows, y.data(),
                                    n_rows);
    // The VNNI gemm's narrower intermediates (Q6_K and Q4_K: int16 lanes of 4 products) must not saturate
    // either: the same bits as the tiles, for 1 to 4 tokens at a time.
    std::vector<float> y_vnni(y.size());
    k.gemm[dtype_slot(type)](n, reinterpret_cast<const std::byte*>(w.data()), wrb, n_rows,
                             reinterpret_cast<const std::byte*>(x.data()), xrb, n_tokens, y_vnni.data(), n_rows);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], y_vnni[i]) << tensor::dtype_name(type) << " at " << i;
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < n_rows; ++r) {
        const float want = reference::vec_dot(type, n, w.data() + r * wrb, x.data() + t * xrb);
        ASSERT_NEAR(y[static_cast<size_t>(t * n_rows + r)], want, 1e-5 * std::fabs(want) + 1e-6)
            << tensor::dtype_name(type) << " r=" << r << " t=" << t;
      }
    }
  }
}

// Q6_K super-blocks at the extremes of every factor (quants 0 and 63, i.e. -32 and 31, scales
// -128 and 127) against activations of -127 and 127, written as raw blocks: the VNNI gemm's
// int16 lanes (4 products each) and int32 sums must stay exact, for 16-row groups and single
// rows, 1 to 4 tokens at a time, bit-identical to the tiles and close to the reference.
TEST(Amx, Q6KGemmHandlesExtremeSuperBlocks) {
  LIGHTBOAT_REQUIRE_AMX();
  const KernelTable& k = kernel_table(Isa::kAmx);
  const int64_t n = 512, n_rows = 35, n_tokens = 7, nb = n / 256;
  const size_t wrb = tensor::row_bytes(DType::kQ6_K, n), xrb = tensor::row_bytes(DType::kQ8_K, n);
  std::vector<std::byte> w(wrb * static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t i = 0; i < nb; ++i) {
      std::byte* b = w.data() + static_cast<size_t>(r) * wrb + static_cast<size_t>(i) * 210;
      const bool top = (r + i) % 2 == 0;  // quants all 63, else all 0
      std::memset(b, top ? 0xff : 0x00, 192);  // ql[128] | qh[64]
      for (int g = 0; g < 16; ++g) b[192 + g] = static_cast<std::byte>((r / 2 + g) % 2 == 0 ? 0x80 : 0x7f);
      b[208] = std::byte{0x00};  // d = 1.0 (fp16 0x3c00, little-endian)
      b[209] = std::byte{0x3c};
    }
  }
  std::vector<float> xf(static_cast<size_t>(n * n_tokens));
  for (size_t i = 0; i < xf.size(); ++i) xf[i] = (i / 512 + i / 128) % 2 == 0 ? -127.0f : 127.0f;
  const auto x = reference::test_util::quantize(DType::kQ8_K, xf);
  const auto* xb = reinterpret_cast<const std::byte*>(x.data());

  MatmulScratch scratch;
  scratch.reserve(n_tokens, n, k);
  const PackedActivations packed{.n = n, .rows = xb, .row_bytes = xrb, .n_tokens = n_tokens,
                                 .packed = scratch.packed(n_tokens, n)};
  k.pack_activations[dtype_slot(DType::kQ8_K)](packed, 0, n_tokens);
  std::vector<float> y_tiles(static_cast<size_t>(n_rows * n_tokens)), y_vnni(y_tiles.size());
  k.packed_gemm[dtype_slot(DType::kQ6_K)](packed, w.data(), wrb, n_rows, y_tiles.data(), n_rows);
  k.gemm[dtype_slot(DType::kQ6_K)](n, w.data(), wrb, n_rows, xb, xrb, n_tokens, y_vnni.data(), n_rows);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_rows; ++r) {
      const size_t o = static_cast<size_t>(t * n_rows + r);
      ASSERT_EQ(y_vnni[o], y_tiles[o]) << "r=" << r << " t=" << t;
      const float want = reference::vec_dot(DType::kQ6_K, n, w.data() + r * wrb, xb + t * xrb);
      ASSERT_NEAR(y_vnni[o], want, 1e-6 * std::fabs(want) + 1e-3) << "r=" << r << " t=" << t;
      ASSERT_EQ(k.vec_dot[dtype_slot(DType::kQ6_K)](n, w.data() + r * wrb, xb + t * xrb), y_vnni[o]);
    }
  }
}

// matmul through the AMX table (packed from packed_min_tokens on, the VNNI gemm below) against
// the AVX-512 table, with a thread pool splitting rows and the packing.
TEST(Amx, MatmulAgreesWithAvx512AboveAndBelowTheThreshold) {
  LIGHTBOAT_REQUIRE_AMX();
  const KernelTable& amx = kernel_table(Isa::kAmx);
  const KernelTable& avx512 = kernel_table(Isa::kAvx512);
  ThreadPool pool(2);
  MatmulScratch scratch;
  for (DType type : kTypes) {
    const int64_t n_cols = cols(type, 576), n_rows = 200;
    const auto wq = reference::test_util::quantize(type, random_row(n_cols * n_rows, 11));
    const tensor::MatrixView w{.type = type,
                               .n_cols = n_cols,
                               .n_rows = n_rows,
                               .row_bytes = tensor::row_bytes(type, n_cols),
                               .data = reinterpret_cast<const std::byte*>(wq.data())};
    for (int64_t n_tokens : {amx.packed_min_tokens - 1, amx.packed_min_tokens, int64_t{77}}) {
      if (n_tokens < 1) continue;
      const auto x = random_row(n_cols * n_tokens, 12);
      std::vector<float> got(static_cast<size_t>(n_rows * n_tokens)), want(got.size());
      matmul(amx, w, x.data(), n_cols, n_tokens, got.data(), n_rows, scratch, pool);
      matmul(avx512, w, x.data(), n_cols, n_tokens, want.data(), n_rows, scratch, pool);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-4 * (std::fabs(want[i]) + 1.0))
            << tensor::dtype_name(type) << " tokens=" << n_tokens << " at " << i;
      }
    }
  }
}

// The invariant the model's tests rely on (chunks and batches do not change logits): a token's
// outputs are the same bits whether it is multiplied alone (VNNI) or inside a batch (tiles).
TEST(Amx, ATokenAloneEqualsTheSameTokenInABatch) {
  LIGHTBOAT_REQUIRE_AMX();
  const KernelTable& amx = kernel_table(Isa::kAmx);
  ThreadPool pool(2);
  MatmulScratch scratch;
  for (DType type : kTypes) {
    const int64_t n_cols = cols(type, 320), n_rows = 77, n_tokens = 37;
    const auto wq = reference::test_util::quantize(type, random_row(n_cols * n_rows, 21));
    const tensor::MatrixView w{.type = type,
                               .n_cols = n_cols,
                               .n_rows = n_rows,
                               .row_bytes = tensor::row_bytes(type, n_cols),
                               .data = reinterpret_cast<const std::byte*>(wq.data())};
    ASSERT_NO_FATAL_FAILURE(test_util::expect_alone_equals_batch(amx, w, random_row(n_cols * n_tokens, 22), n_tokens,
                                                                 scratch, pool, std::string(tensor::dtype_name(type))));
  }
}

TEST(Amx, ForcedIsaNamesIt) {
  LIGHTBOAT_REQUIRE_AMX();
  EXPECT_EQ(isa_name(Isa::kAmx), "amx");
  EXPECT_EQ(kernel_table(Isa::kAmx).isa, Isa::kAmx);
  EXPECT_GT(kernel_table(Isa::kAmx).packed_min_tokens, 0);
  EXPECT_EQ(kernel_table(Isa::kAvx512).packed_gemm[dtype_slot(DType::kQ8_0)], nullptr)
      << "LIGHTBOAT_ISA=avx512 must keep the VNNI path";
}

}  // namespace
}  // namespace lightboat::kernels
