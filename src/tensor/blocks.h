// Quantization block layouts, byte for byte as in llama.cpp's ggml-common.h. Scales are stored as
// IEEE half (uint16_t bits) unless noted. QK = elements per block.
#pragma once

#include <cstdint>

namespace lightboat::tensor {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK_K = 256;      // super-block size of the K-quants
inline constexpr int kKScaleSize = 12; // bytes of packed 6-bit scales and mins in Q4_K / Q5_K

// x = d * (q - 8), q in 0..15; qs[j] holds element j (low nibble) and j+16 (high nibble).
struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK4_0 / 2]; };
// x = d * q + m, q in 0..15.
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[kQK4_1 / 2]; };
// x = d * (q - 16), q 5 bits: low nibble in qs, 5th bit of element j in bit j of qh.
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK5_0 / 2]; };
// x = d * q + m, q 5 bits.
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[kQK5_1 / 2]; };
// x = d * q.
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK8_0]; };
// x = d * q; s = d * sum(q) (used by Q4_1 / Q5_1 dot products).
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[kQK8_1]; };
// 8 sub-blocks of 32; 6-bit scale and min per sub-block packed in scales[12];
// x = d * scale * q - dmin * min, q 4 bits.
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[kKScaleSize]; uint8_t qs[kQK_K / 2]; };
// As Q4_K with a 5th bit per element in qh.
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[kKScaleSize]; uint8_t qh[kQK_K / 8]; uint8_t qs[kQK_K / 2]; };
// 16 sub-blocks of 16; x = d * scales[i] * (q - 32), q 6 bits: low 4 in ql, high 2 in qh.
struct BlockQ6_K { uint8_t ql[kQK_K / 2]; uint8_t qh[kQK_K / 4]; int8_t scales[kQK_K / 16]; uint16_t d; };
// Activation block for K-quant dot products: float scale, bsums = sums of each 16 quants.
struct BlockQ8_K { float d; int8_t qs[kQK_K]; int16_t bsums[kQK_K / 16]; };

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace lightboat::tensor
