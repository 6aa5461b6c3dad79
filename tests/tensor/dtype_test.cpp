// The dtype table and the fp16 / bf16 conversions. The conversions are checked exhaustively over
// all 65536 half and bfloat16 values, on every rounding tie, and (where the compiler has
// _Float16) against the compiler's own IEEE conversion on a sweep of fp32 bit patterns.
#include "tensor/dtype.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "base/error.h"
#include "tensor/blocks.h"

namespace lightboat::tensor {
namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }
bool is_half_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0; }
bool is_bf16_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x007f) != 0; }

TEST(DTypeTest, TraitsMatchGgml) {
  struct Row {
    DType type;
    uint32_t id;
    const char* name;
    int64_t elems;
    size_t bytes;
    bool quantized;
  };
  const Row rows[] = {
      {DType::kF32, 0, "F32", 1, 4, false},      {DType::kF16, 1, "F16", 1, 2, false},
      {DType::kQ4_0, 2, "Q4_0", 32, 18, true},   {DType::kQ4_1, 3, "Q4_1", 32, 20, true},
      {DType::kQ5_0, 6, "Q5_0", 32, 22, true},   {DType::kQ5_1, 7, "Q5_1", 32, 24, true},
      {DType::kQ8_0, 8, "Q8_0", 32, 34, true},   {DType::kQ8_1, 9, "Q8_1", 32, 36, true},
      {DType::kQ4_K, 12, "Q4_K", 256, 144, true}, {DType::kQ5_K, 13, "Q5_K", 256, 176, true},
      {DType::kQ6_K, 14, "Q6_K", 256, 210, true}, {DType::kQ8_K, 15, "Q8_K", 256, 292, true},
      {DType::kBF16, 30, "BF16", 1, 2, false},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.name);
    const DTypeTraits& t = dtype_traits(r.type);
    EXPECT_EQ(t.name, r.name);
    EXPECT_EQ(dtype_name(r.type), r.name);
    EXPECT_EQ(t.block_elems, r.elems);
    EXPECT_EQ(t.block_bytes, r.bytes);
    EXPECT_EQ(t.is_quantized, r.quantized);
    ASSERT_TRUE(dtype_from_id(r.id).has_value());
    EXPECT_EQ(*dtype_from_id(r.id), r.type);
  }
  EXPECT_EQ(row_bytes(DType::kQ4_K, 4096), 16u * 144u);
  EXPECT_EQ(row_bytes(DType::kF16, 7), 14u);
  EXPECT_EQ(row_bytes(DType::kQ8_0, 64), 68u);
}

TEST(DTypeTest, UnsupportedIdsAreRejected) {
  // 4 and 5 were Q4_2/Q4_3 (removed), 10/11 are Q2_K/Q3_K and 16+ are IQ types we do not run.
  for (uint32_t id : {4u, 5u, 10u, 11u, 16u, 29u, 31u, 32u, 39u, 1000u, 0xffffffffu}) {
    EXPECT_FALSE(dtype_from_id(id).has_value()) << id;
  }
  try {
    (void)dtype_traits(static_cast<DType>(10));
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("10"), std::string::npos);
  }
}

// fp16 -> fp32 for every half value against an independent formula.
TEST(Fp16Test, ToFp32AllValues) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    const float f = fp16_to_fp32(hh);
    const int exp = (h >> 10) & 0x1f;
    const int mant = h & 0x3ff;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (exp == 0x1f) {
      if (mant == 0) {
        EXPECT_TRUE(std::isinf(f)) << h;
        EXPECT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
      } else {
        ASSERT_TRUE(std::isnan(f)) << h;
        EXPECT_EQ(bits(f) & 0x00400000u, 0x00400000u) << "NaN not quiet: " << h;
        EXPECT_EQ((bits(f) >> 13) & 0x1ffu, static_cast<uint32_t>(mant) & 0x1ffu) << "payload " << h;
        EXPECT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
      }
      continue;
    }
    const double expected = exp == 0 ? sign * std::ldexp(mant, -24)
                                     : sign * std::ldexp(1024 + mant, exp - 25);
    EXPECT_EQ(static_cast<double>(f), expected) << h;
    EXPECT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;  // -0 stays -0
  }
}

TEST(Fp16Test, RoundTripsEveryNonNanHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    if (is_half_nan(hh)) continue;
    EXPECT_EQ(fp32_to_fp16(fp16_to_fp32(hh)), hh) << h;
  }
}

// For every pair of adjacent finite halves a < b (both signs, subnormals included): the exact
// midpoint rounds to the one with an even mantissa, and one fp32 ulp either side of it rounds to
// the nearer one.
TEST(Fp16Test, TiesRoundToEven) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t h = 0; h < 0x7bff; ++h) {
      const auto lo = static_cast<uint16_t>(sign | h);
      const auto hi = static_cast<uint16_t>(sign | (h + 1));
      const float a = fp16_to_fp32(lo);
      const float b = fp16_to_fp32(hi);
      const float mid = (a + b) / 2;  // exact: halves have 11 significant bits
      ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(a) + b) / 2);
      const uint16_t even = (h & 1) == 0 ? lo : hi;
      EXPECT_EQ(fp32_to_fp16(mid), even) << h;
      // The fp32 neighbours of the midpoint (one step toward a and one toward b).
      EXPECT_EQ(fp32_to_fp16(std::nextafter(mid, a)), lo) << h;
      EXPECT_EQ(fp32_to_fp16(std::nextafter(mid, b)), hi) << h;
    }
  }
}

TEST(Fp16Test, EdgeCases) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);                    // largest half
  EXPECT_EQ(fp32_to_fp16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);                    // the tie goes to infinity
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(0x1p-14f), 0x0400);                    // smallest normal
  EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001);                    // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);                    // tie: rounds to even (zero)
  EXPECT_EQ(fp32_to_fp16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(-0x1.8p-24f), 0x8002);                 // 1.5 ulp: tie to even 2
  EXPECT_EQ(fp32_to_fp16(0x1.ff8p-15f), 0x03ff);                // largest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1.ffcp-15f), 0x0400);                // its tie with 2^-14 -> normal
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::denorm_min()), 0x8000);
  // Every NaN becomes the canonical quiet NaN with its sign, as ggml's portable conversion does.
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()), 0x7e00);
  EXPECT_EQ(fp32_to_fp16(from_bits(0x7f800001u)), 0x7e00);
  EXPECT_EQ(fp32_to_fp16(from_bits(0xffc12345u)), 0xfe00);
}

#if defined(__FLT16_MAX__)
// The compiler's _Float16 conversion is IEEE round-to-nearest-even: compare on ~1M fp32 bit
// patterns spread over the whole range, plus 1M random ones.
TEST(Fp16Test, MatchesCompilerFloat16) {
  std::mt19937 rng(1234);
  auto check_one = [](uint32_t u) {
    const float f = from_bits(u);
    if (std::isnan(f)) return;
    const auto expected = std::bit_cast<uint16_t>(static_cast<_Float16>(f));
    ASSERT_EQ(fp32_to_fp16(f), expected) << std::hex << u;
  };
  for (uint64_t u = 0; u <= 0xffffffffu; u += 4093) check_one(static_cast<uint32_t>(u));
  for (int i = 0; i < 1000000; ++i) check_one(rng());
}
#endif

TEST(Bf16Test, RoundTripsEveryNonNanValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    const float f = bf16_to_fp32(hh);
    EXPECT_EQ(bits(f), h << 16) << h;
    if (is_bf16_nan(hh)) continue;
    EXPECT_EQ(fp32_to_bf16(f), hh) << h;
  }
}

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // tie, 0x3f80 is even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie, 0x3f81 is odd
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808001u)), 0x3f81);  // just above the tie
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f807fffu)), 0x3f80);  // just below
  EXPECT_EQ(fp32_to_bf16(from_bits(0xbf818000u)), 0xbf82);  // negative tie
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to infinity
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  // Subnormals are kept (current ggml), rounded like everything else.
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00018000u)), 0x0002);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00008000u)), 0x0000);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00010001u)), 0x0001);
  // NaNs keep the top of their payload and are forced quiet (bit 6).
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f800001u)), 0x7fc0);
  EXPECT_EQ(fp32_to_bf16(from_bits(0xffa12345u)), 0xffe1);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()), 0x7fc0);
}

}  // namespace
}  // namespace lightboat::tensor
