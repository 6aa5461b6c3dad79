// Hand-built blocks with known contents: each test writes the bytes of a block the way llama.cpp
// lays them out (ggml-common.h), dequantizes, and compares every element with a value computed
// here from the layout description, plus a few values worked out by hand. A wrong nibble order,
// bit position or scale packing fails here even when a quantize/dequantize pair agrees with itself.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/reference/reference.h"
#include "tensor/blocks.h"

namespace lightboat::kernels::reference {
namespace {

using namespace lightboat::tensor;  // NOLINT: the block structs, on every line

template <typename Block>
std::vector<float> decode(DType type, const Block& b, int n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(type, &b, y.data(), n);
  return y;
}

template <typename Block>
std::vector<uint8_t> encode(DType type, const std::vector<float>& x) {
  std::vector<uint8_t> out(sizeof(Block) * (x.size() / dtype_traits(type).block_elems));
  quantize_row(type, x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

template <typename Block>
std::vector<uint8_t> bytes_of(const Block& b) {
  std::vector<uint8_t> v(sizeof(b));
  std::memcpy(v.data(), &b, sizeof(b));
  return v;
}

constexpr uint16_t kHalfOne = 0x3c00, kHalfHalf = 0x3800, kHalfQuarter = 0x3400;
constexpr uint16_t kHalfTwo = 0x4000, kHalfMinusOne = 0xbc00;

TEST(ReferenceLayout, Q4_0) {
  BlockQ4_0 b;
  b.d = kHalfOne;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = decode(DType::kQ4_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], j - 8) << j;          // low nibble: element j
    EXPECT_EQ(y[j + 16], 7 - j) << j;     // high nibble: element j + 16
  }
  EXPECT_EQ(y[0], -8.0f);
  EXPECT_EQ(y[31], -8.0f);
  // The block holds -8 (q = 0) as its extreme, so re-quantizing its values gives it back exactly.
  EXPECT_EQ(encode<BlockQ4_0>(DType::kQ4_0, y), bytes_of(b));
}

TEST(ReferenceLayout, Q4_1) {
  BlockQ4_1 b;
  b.d = kHalfHalf;
  b.m = kHalfMinusOne;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = decode(DType::kQ4_1, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 1.0f) << j;
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j) - 1.0f) << j;
  }
}

// qh bytes {0x55, 0x55, 0xaa, 0xaa}: as a little-endian word, bit j (j < 16) is set for even j
// (5th bit of element j) and bit j + 16 for odd j (5th bit of element j + 16).
constexpr uint8_t kQh[4] = {0x55, 0x55, 0xaa, 0xaa};

TEST(ReferenceLayout, Q5_0) {
  BlockQ5_0 b;
  b.d = kHalfTwo;
  std::memcpy(b.qh, kQh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = decode(DType::kQ5_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    const int q0 = j | (j % 2 == 0 ? 16 : 0);
    const int q1 = (15 - j) | (j % 2 == 1 ? 16 : 0);
    EXPECT_EQ(y[j], 2.0f * (q0 - 16)) << j;
    EXPECT_EQ(y[j + 16], 2.0f * (q1 - 16)) << j;
  }
  EXPECT_EQ(y[0], 0.0f);    // q = 0 | 16
  EXPECT_EQ(y[1], -30.0f);  // q = 1
  EXPECT_EQ(y[16], -2.0f);  // q = 15
  EXPECT_EQ(y[17], 28.0f);  // q = 14 | 16
}

TEST(ReferenceLayout, Q5_1) {
  BlockQ5_1 b;
  b.d = kHalfOne;
  b.m = kHalfHalf;
  std::memcpy(b.qh, kQh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = decode(DType::kQ5_1, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j | (j % 2 == 0 ? 16 : 0)) + 0.5f) << j;
    EXPECT_EQ(y[j + 16], ((15 - j) | (j % 2 == 1 ? 16 : 0)) + 0.5f) << j;
  }
}

TEST(ReferenceLayout, Q8_0AndQ8_1) {
  BlockQ8_0 b;
  b.d = kHalfQuarter;
  BlockQ8_1 b1;
  b1.d = kHalfQuarter;
  b1.s = 0;
  for (int j = 0; j < 32; ++j) b.qs[j] = b1.qs[j] = static_cast<int8_t>(j - 16);
  const auto y = decode(DType::kQ8_0, b, 32);
  const auto y1 = decode(DType::kQ8_1, b1, 32);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(y[j], (j - 16) * 0.25f) << j;
    EXPECT_EQ(y1[j], (j - 16) * 0.25f) << j;
  }
  // With q = 127 present and d = 1, re-quantizing reproduces the block exactly.
  b.d = kHalfOne;
  b.qs[5] = 127;
  EXPECT_EQ(encode<BlockQ8_0>(DType::kQ8_0, decode(DType::kQ8_0, b, 32)), bytes_of(b));
}

// Q4_K / Q5_K scale bytes for sub-block scales {1,2,3,4,17,33,50,63} and mins
// {0,5,10,63,16,31,47,62}, packed by hand:
//   bytes 0..3  = scale j (j<4) | (scale j+4 >> 4) << 6  -> 0x41 0x82 0xc3 0xc4
//   bytes 4..7  = min j (j<4)   | (min j+4 >> 4) << 6    -> 0x40 0x45 0x8a 0xff
//   bytes 8..11 = (scale j+4 & 15) | (min j+4 & 15) << 4 -> 0x01 0xf1 0xf2 0xef
constexpr uint8_t kKScales[12] = {0x41, 0x82, 0xc3, 0xc4, 0x40, 0x45,
                                  0x8a, 0xff, 0x01, 0xf1, 0xf2, 0xef};
constexpr int kSc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
constexpr int kMin[8] = {0, 5, 10, 63, 16, 31, 47, 62};

uint8_t pattern(int i, int mul, int add) { return static_cast<uint8_t>((i * mul + add) & 0xff); }

TEST(ReferenceLayout, Q4_K) {
  BlockQ4_K b;
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  std::memcpy(b.scales, kKScales, 12);
  for (int i = 0; i < 128; ++i) b.qs[i] = pattern(i, 7, 3);
  const auto y = decode(DType::kQ4_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int c = e / 64, r = e % 64;  // 64-element chunk, position inside it
    const uint8_t byte = b.qs[32 * c + r % 32];
    const int q = r < 32 ? byte & 15 : byte >> 4;
    EXPECT_EQ(y[e], 1.0f * kSc[e / 32] * q - 0.5f * kMin[e / 32]) << e;
  }
  EXPECT_EQ(y[0], 3.0f);     // qs[0] = 3: low nibble 3, scale 1, min 0
  EXPECT_EQ(y[32], -2.5f);   // high nibble of qs[0] = 0, scale 2, min 5 * 0.5
  EXPECT_EQ(y[255], 410.0f); // high nibble of qs[127] = 0x7c -> 7, scale 63, min 62 * 0.5
}

TEST(ReferenceLayout, Q5_K) {
  BlockQ5_K b;
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  std::memcpy(b.scales, kKScales, 12);
  for (int i = 0; i < 128; ++i) b.qs[i] = pattern(i, 7, 3);
  for (int i = 0; i < 32; ++i) b.qh[i] = pattern(i, 37, 11);
  const auto y = decode(DType::kQ5_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int c = e / 64, r = e % 64;
    const uint8_t byte = b.qs[32 * c + r % 32];
    const int hi_bit = 2 * c + (r < 32 ? 0 : 1);
    const int q = (r < 32 ? byte & 15 : byte >> 4) | (((b.qh[r % 32] >> hi_bit) & 1) << 4);
    EXPECT_EQ(y[e], 1.0f * kSc[e / 32] * q - 0.5f * kMin[e / 32]) << e;
  }
  EXPECT_EQ(y[0], 19.0f);   // low 3, qh[0] = 0b1011 bit 0 -> +16
  EXPECT_EQ(y[32], 29.5f);  // high nibble 0, qh[0] bit 1 -> 16; 2 * 16 - 2.5
}

TEST(ReferenceLayout, Q6_K) {
  BlockQ6_K b;
  b.d = kHalfHalf;
  for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<int8_t>(k - 8);
  for (int i = 0; i < 128; ++i) b.ql[i] = pattern(i, 13, 5);
  for (int i = 0; i < 64; ++i) b.qh[i] = pattern(i, 29, 7);
  const auto y = decode(DType::kQ6_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
    const uint8_t low_byte = b.ql[64 * h + l + 32 * (k & 1)];
    const int low = k < 2 ? low_byte & 15 : low_byte >> 4;
    const int high = (b.qh[32 * h + l] >> (2 * k)) & 3;
    EXPECT_EQ(y[e], 0.5f * b.scales[e / 16] * ((low | (high << 4)) - 32)) << e;
  }
  EXPECT_EQ(y[0], -84.0f);  // ql[0] = 5, qh[0] bits 0..1 = 3 -> q = 53 - 32 = 21; 0.5 * -8 * 21
  EXPECT_EQ(y[96], 22.0f);  // ql[32] = 0xa5 high nibble 10, qh[0] bits 6..7 = 0 -> -22; scale -2
}

TEST(ReferenceLayout, Q8_K) {
  BlockQ8_K b{};
  b.d = 0.125f;
  for (int j = 0; j < 256; ++j) b.qs[j] = static_cast<int8_t>(j - 128);
  const auto y = decode(DType::kQ8_K, b, 256);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], (j - 128) * 0.125f) << j;
}

// The K-quant dot products use the activations' bsums for the mins: with all activation quants 1
// (bsums 16, d = 1) the dot is exactly the sum of the dequantized weights.
TEST(ReferenceLayout, KQuantDotUsesBsums) {
  BlockQ8_K ones{};
  ones.d = 1.0f;
  for (int j = 0; j < 256; ++j) ones.qs[j] = 1;
  for (int g = 0; g < 16; ++g) ones.bsums[g] = 16;

  BlockQ4_K w4;
  w4.d = kHalfOne;
  w4.dmin = kHalfHalf;
  std::memcpy(w4.scales, kKScales, 12);
  for (int i = 0; i < 128; ++i) w4.qs[i] = pattern(i, 7, 3);
  BlockQ6_K w6;
  w6.d = kHalfHalf;
  for (int k = 0; k < 16; ++k) w6.scales[k] = static_cast<int8_t>(k - 8);
  for (int i = 0; i < 128; ++i) w6.ql[i] = pattern(i, 13, 5);
  for (int i = 0; i < 64; ++i) w6.qh[i] = pattern(i, 29, 7);

  double sum4 = 0.0, sum6 = 0.0;
  for (float v : decode(DType::kQ4_K, w4, 256)) sum4 += v;
  for (float v : decode(DType::kQ6_K, w6, 256)) sum6 += v;
  EXPECT_EQ(vec_dot(DType::kQ4_K, 256, &w4, &ones), sum4);
  EXPECT_EQ(vec_dot(DType::kQ6_K, 256, &w6, &ones), sum6);
}

}  // namespace
}  // namespace lightboat::kernels::reference
