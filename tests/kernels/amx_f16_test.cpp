// The AMX-BF16 gemm for F16 weights (kernels/x86/amx_f16.cpp) against the scalar reference: row
// counts on and off the 16-row tiles, token counts on and off the 16-token tiles and across its
// token chunks, row lengths that are not multiples of the 32-element k-step, row ranges split as
// matmul's threads call them, packing split across threads, misaligned activation rows; exact
// products at the extremes of the fp16 range; then matmul through the AMX table against the
// AVX-512 one, below and above the F16 threshold.
//
// Tolerance: the kernel splits each fp16 value exactly into two bf16 parts, so each output is an
// fp32 sum of 4n exact products accumulated with round-to-nearest (the file comment of
// amx_f16.cpp): |y - exact| <= 4n u sum|w_i x_i| with u = 2^-24, and the reference's own
// rounding adds u |exact|. The checks use (4n + 1) u sum|w_i x_i|.
// Skipped, saying why, where the CPU or the OS offers no AMX-BF16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/reference/reference.h"
#include "reference_util.h"
#include "tensor/dtype.h"
#include "tensor/view.h"

namespace lightboat::kernels {
namespace {

using reference::test_util::random_row;
using tensor::DType;

bool amx_bf16_here() {
  return isa_available(Isa::kAmx) && kernel_table(Isa::kAmx).packed_gemm[dtype_slot(DType::kF16)] != nullptr;
}

#define LIGHTBOAT_REQUIRE_AMX_BF16()                                                                   \
  do {                                                                                                 \
    if (!amx_bf16_here()) {                                                                            \
      GTEST_SKIP() << "AMX-BF16 not available here (CPU without AMX-TILE/AMX-INT8/AMX-BF16, non-x86 " \
                      "build, or the OS refused the tile state)";                                     \
    }                                                                                                  \
  } while (false)

constexpr double kUnit = 0x1p-24;  // fp32 unit roundoff

// The stated bound for one output of n products whose |w_i x_i| sum to abs_sum.
double bound(int64_t n, double abs_sum) { return static_cast<double>(4 * n + 1) * kUnit * abs_sum; }

struct Case {
  int64_t n, n_rows, n_tokens;
  size_t misalign;  // bytes the activation rows start past an aligned address
};

std::string describe(const Case& c) {
  return "n=" + std::to_string(c.n) + " rows=" + std::to_string(c.n_rows) + " tokens=" + std::to_string(c.n_tokens) +
         " misalign=" + std::to_string(c.misalign);
}

std::vector<uint16_t> to_f16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = tensor::fp32_to_fp16(v[i]);
  return out;
}

// Packs tokens [0, t_split) and [t_split, n_tokens) separately, runs the packed gemm on rows
// [r_split, n_rows) and [0, r_split) separately (two "threads"), and checks every output against
// the reference within bound(); outputs past n_rows stay untouched. Returns the largest error
// seen as a fraction of the bound.
double check(const Case& c, const std::vector<uint16_t>& w, const std::vector<uint16_t>& x, int64_t r_split,
             int64_t t_split) {
  const KernelTable& k = kernel_table(Isa::kAmx);
  const size_t slot = dtype_slot(DType::kF16);
  const size_t row_bytes = static_cast<size_t>(c.n) * 2;
  std::vector<std::byte> x_buf(x.size() * 2 + 64);
  std::byte* x_rows = x_buf.data() + c.misalign;
  std::memcpy(x_rows, x.data(), x.size() * 2);

  MatmulScratch scratch;
  scratch.reserve(c.n_tokens, c.n, k, DType::kF16);
  const PackedActivations packed{.n = c.n,
                                 .rows = x_rows,
                                 .row_bytes = row_bytes,
                                 .n_tokens = c.n_tokens,
                                 .packed = scratch.packed(c.n_tokens, c.n)};
  k.pack_activations[slot](packed, 0, t_split);
  k.pack_activations[slot](packed, t_split, c.n_tokens);

  const int64_t y_stride = c.n_rows + 3;
  std::vector<float> y(static_cast<size_t>(c.n_tokens * y_stride), -12345.0f);
  const auto* wb = reinterpret_cast<const std::byte*>(w.data());
  k.packed_gemm[slot](packed, wb + static_cast<size_t>(r_split) * row_bytes, row_bytes, c.n_rows - r_split,
                      y.data() + r_split, y_stride);
  k.packed_gemm[slot](packed, wb, row_bytes, r_split, y.data(), y_stride);

  double worst = 0.0;
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    const uint16_t* xt = x.data() + t * c.n;
    for (int64_t r = 0; r < y_stride; ++r) {
      const float got = y[static_cast<size_t>(t * y_stride + r)];
      if (r >= c.n_rows) {
        EXPECT_EQ(got, -12345.0f) << describe(c) << ": wrote past its rows";
        if (got != -12345.0f) return 1e30;
        continue;
      }
      const uint16_t* wr = w.data() + r * c.n;
      const float want = reference::vec_dot(DType::kF16, c.n, wr, xt);
      double abs_sum = 0.0;
      for (int64_t i = 0; i < c.n; ++i) {
        abs_sum += std::fabs(static_cast<double>(tensor::fp16_to_fp32(wr[i])) * tensor::fp16_to_fp32(xt[i]));
      }
      const double err = std::fabs(static_cast<double>(got) - want), allowed = bound(c.n, abs_sum);
      EXPECT_LE(err, allowed) << describe(c) << " r=" << r << " t=" << t << " got " << got << " want " << want;
      if (err > allowed) return 1e30;
      if (allowed > 0.0) worst = std::max(worst, err / allowed);
    }
  }
  return worst;
}

double check_random(const Case& c, int64_t r_split, int64_t t_split) {
  const auto w = to_f16(random_row(c.n * c.n_rows, static_cast<uint32_t>(c.n + c.n_rows)));
  const auto x = to_f16(random_row(c.n * c.n_tokens, static_cast<uint32_t>(c.n_tokens + 7)));
  return check(c, w, x, r_split, t_split);
}

TEST(AmxF16, PackedGemmMatchesTheReferenceOnTileEdges) {
  LIGHTBOAT_REQUIRE_AMX_BF16();
  int cases = 0;
  double worst = 0.0;
  for (int64_t n : {1, 17, 32, 33, 75, 96, 577}) {
    for (int64_t n_rows : {1, 15, 16, 17, 31, 32, 33, 48, 50}) {
      for (int64_t n_tokens : {1, 2, 15, 16, 17, 31, 32, 33, 40}) {
        const Case c{n, n_rows, n_tokens, static_cast<size_t>(2 * (cases % 5))};
        // Rows split on a 16-row boundary where there is one (matmul's grain is 32), tokens on a tile.
        worst = std::max(worst, check_random(c, n_rows >= 32 ? 16 : 0, n_tokens > 16 ? 16 : n_tokens));
        if (HasFailure()) return;
        ++cases;
      }
    }
  }
  std::printf("%d shapes checked; largest error %.3g of the bound\n", cases, worst);
}

// Token counts past one chunk (the chunk holds up to 1.5 MiB of packed activations: 42 token
// tiles at n = 576, 15 at n = 1600), the last tile padded.
TEST(AmxF16, PackedGemmMatchesTheReferenceAcrossTokenChunks) {
  LIGHTBOAT_REQUIRE_AMX_BF16();
  check_random({576, 64, 800, 0}, 32, 304);  // 50 token tiles: two chunks of 25
  if (HasFailure()) return;
  check_random({1600, 48, 300, 2}, 16, 96);  // 19 token tiles: two chunks of 10 and 9
}

// The four part products are all there and exact: w = x = 1 + 2^-10 (hi 1, lo 2^-10) gives
// w x = 1 + 2^-9 + 2^-20, which a sum without lo x lo would miss; sums of up to 4 such products
// are exact in fp32, so the tiles must return the reference's bits. Likewise fp16's smallest
// subnormals (products of 2^-48, never flushed) and its largest values, with mixed signs.
TEST(AmxF16, ExactProductsAtTheEdgesOfFp16) {
  LIGHTBOAT_REQUIRE_AMX_BF16();
  const float kOnePlus = 1.0f + 0x1p-10f;
  struct Values {
    float w, x;
  };
  for (Values v : {Values{kOnePlus, kOnePlus}, Values{0x1p-24f, 0x1p-24f}, Values{3 * 0x1p-24f, -0x1p-14f},
                   Values{65504.0f, -65504.0f}, Values{-0.0f, 2.0f}}) {
    for (int64_t n : {1, 2, 4}) {
      const int64_t n_rows = 17, n_tokens = 18;
      std::vector<float> wf(static_cast<size_t>(n * n_rows)), xf(static_cast<size_t>(n * n_tokens));
      for (size_t i = 0; i < wf.size(); ++i) wf[i] = i % 3 == 2 ? -v.w : v.w;
      for (size_t i = 0; i < xf.size(); ++i) xf[i] = v.x;
      const auto w = to_f16(wf), x = to_f16(xf);
      const Case c{n, n_rows, n_tokens, 0};
      const KernelTable& k = kernel_table(Isa::kAmx);
      MatmulScratch scratch;
      scratch.reserve(n_tokens, n, k, DType::kF16);
      const PackedActivations packed{.n = n,
                                     .rows = reinterpret_cast<const std::byte*>(x.data()),
                                     .row_bytes = static_cast<size_t>(n) * 2,
                                     .n_tokens = n_tokens,
                                     .packed = scratch.packed(n_tokens, n)};
      k.pack_activations[dtype_slot(DType::kF16)](packed, 0, n_tokens);
      std::vector<float> y(static_cast<size_t>(n_rows * n_tokens));
      k.packed_gemm[dtype_slot(DType::kF16)](packed, reinterpret_cast<const std::byte*>(w.data()),
                                             static_cast<size_t>(n) * 2, n_rows, y.data(), n_rows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < 16; ++r) {  // the tile rows (row 16 is the AVX-512 remainder)
          const float want = reference::vec_dot(DType::kF16, n, w.data() + r * n, x.data() + t * n);
          ASSERT_EQ(y[static_cast<size_t>(t * n_rows + r)], want)
              << describe(c) << " w=" << v.w << " x=" << v.x << " r=" << r << " t=" << t;
        }
      }
    }
  }
}

// matmul through the AMX table (the AVX-512 gemm below the F16 threshold, the tiles from it on)
// against the AVX-512 table, with a thread pool splitting rows and the packing: the same bits
// below the threshold, within the bound above it.
TEST(AmxF16, MatmulAgreesWithAvx512AboveAndBelowTheThreshold) {
  LIGHTBOAT_REQUIRE_AMX_BF16();
  const KernelTable& amx = kernel_table(Isa::kAmx);
  const KernelTable& avx512 = kernel_table(Isa::kAvx512);
  const int64_t threshold = amx.packed_min_tokens_of[dtype_slot(DType::kF16)];
  ASSERT_GT(threshold, 0);
  ThreadPool pool(2);
  MatmulScratch scratch;
  const int64_t n_cols = 576, n_rows = 200;
  const auto wh = to_f16(random_row(n_cols * n_rows, 11));
  const tensor::MatrixView w{.type = DType::kF16,
                             .n_cols = n_cols,
                             .n_rows = n_rows,
                             .row_bytes = static_cast<size_t>(n_cols) * 2,
                             .data = reinterpret_cast<const std::byte*>(wh.data())};
  for (int64_t n_tokens : {threshold - 1, threshold, int64_t{77}}) {
    const auto x = random_row(n_cols * n_tokens, 12);
    std::vector<float> got(static_cast<size_t>(n_rows * n_tokens)), want(got.size());
    matmul(amx, w, x.data(), n_cols, n_tokens, got.data(), n_rows, scratch, pool);
    matmul(avx512, w, x.data(), n_cols, n_tokens, want.data(), n_rows, scratch, pool);
    for (int64_t t = 0; t < n_tokens; ++t) {
      std::vector<float> xt(x.begin() + t * n_cols, x.begin() + (t + 1) * n_cols);
      const auto xh = to_f16(xt);
      for (int64_t r = 0; r < n_rows; ++r) {
        const size_t i = static_cast<size_t>(t * n_rows + r);
        if (n_tokens < threshold) {
          ASSERT_EQ(got[i], want[i]) << "tokens=" << n_tokens << " r=" << r << " t=" << t;
          continue;
        }
        double abs_sum = 0.0;
        for (int64_t e = 0; e < n_cols; ++e) {
          abs_sum += std::fabs(static_cast<double>(tensor::fp16_to_fp32(wh[static_cast<size_t>(r * n_cols + e)])) *
                               tensor::fp16_to_fp32(xh[static_cast<size_t>(e)]));
        }
        // Both are within their bound of the exact sum (the AVX-512 kernel's n-term fp32 sum: n u).
        ASSERT_NEAR(got[i], want[i], bound(n_cols, abs_sum) + static_cast<double>(n_cols) * kUnit * abs_sum)
            << "tokens=" << n_tokens << " r=" << r << " t=" << t;
      }
    }
  }
}

TEST(AmxF16, OnlyTheAmxTableHasIt) {
  LIGHTBOAT_REQUIRE_AMX_BF16();
  EXPECT_EQ(kernel_table(Isa::kAvx512).packed_gemm[dtype_slot(DType::kF16)], nullptr)
      << "LIGHTBOAT_ISA=avx512 must keep the AVX-512 dense gemm";
  EXPECT_EQ(kernel_table(Isa::kAmx).packed_bytes_per_block[dtype_slot(DType::kF16)], 4 * kPackedBlockElems);
}

}  // namespace
}  // namespace lightboat::kernels
