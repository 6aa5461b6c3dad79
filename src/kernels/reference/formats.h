// Internal to the reference kernels: one function per block format and direction, dispatched by
// reference.cpp. Every function works on whole blocks: nb = number of blocks, x/y hold nb * QK
// floats. Blocks are read and written through memcpy (load_block / store_block), so `void*`
// arguments may point anywhere (mmap'd file data, misaligned test buffers).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tensor/blocks.h"
#include "tensor/dtype.h"

namespace lightboat::kernels::reference::detail {

using tensor::BlockQ4_0;
using tensor::BlockQ4_1;
using tensor::BlockQ4_K;
using tensor::BlockQ5_0;
using tensor::BlockQ5_1;
using tensor::BlockQ5_K;
using tensor::BlockQ6_K;
using tensor::BlockQ8_0;
using tensor::BlockQ8_1;
using tensor::BlockQ8_K;
using tensor::fp16_to_fp32;
using tensor::fp32_to_fp16;
using tensor::kQK4_0;
using tensor::kQK4_1;
using tensor::kQK5_0;
using tensor::kQK5_1;
using tensor::kQK8_0;
using tensor::kQK8_1;
using tensor::kQK_K;

template <typename Block>
inline Block load_block(const void* base, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const std::byte*>(base) + static_cast<size_t>(i) * sizeof(Block),
              sizeof(Block));
  return b;
}

template <typename Block>
inline void store_block(void* base, int64_t i, const Block& b) {
  std::memcpy(static_cast<std::byte*>(base) + static_cast<size_t>(i) * sizeof(Block), &b,
              sizeof(Block));
}

inline float half(uint16_t h) { return fp16_to_fp32(h); }

// Round to nearest, ties to even, as ggml's nearest_int: adding 1.5 * 2^23 pushes the integer part
// of v into the low mantissa bits, where the fp32 adder has already rounded it. Exact for
// |v| <= 2^22 - 1; defined (if meaningless) for anything else, including NaN, which keeps
// quantizers free of undefined float-to-int casts on garbage input.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;  // 1.5 * 2^23
  const int32_t bits = std::bit_cast<int32_t>(shifted);
  return (bits & 0x007fffff) - 0x00400000;
}

// --- 32-element formats (quants_32.cpp) ---
void quantize_q4_0(const float* x, void* y, int64_t nb);
void quantize_q4_1(const float* x, void* y, int64_t nb);
void quantize_q5_0(const float* x, void* y, int64_t nb);
void quantize_q5_1(const float* x, void* y, int64_t nb);
void quantize_q8_0(const float* x, void* y, int64_t nb);
void quantize_q8_1(const float* x, void* y, int64_t nb);
void dequantize_q4_0(const void* x, float* y, int64_t nb);
void dequantize_q4_1(const void* x, float* y, int64_t nb);
void dequantize_q5_0(const void* x, float* y, int64_t nb);
void dequantize_q5_1(const void* x, float* y, int64_t nb);
void dequantize_q8_0(const void* x, float* y, int64_t nb);
void dequantize_q8_1(const void* x, float* y, int64_t nb);
float dot_q4_0_q8_0(const void* w, const void* x, int64_t nb);
float dot_q4_1_q8_1(const void* w, const void* x, int64_t nb);
float dot_q5_0_q8_0(const void* w, const void* x, int64_t nb);
float dot_q5_1_q8_1(const void* w, const void* x, int64_t nb);
float dot_q8_0_q8_0(const void* w, const void* x, int64_t nb);

// --- K-quants: layouts, dequantization, Q8_K and dot products (quants_k.cpp) ---
// The 6-bit scale and min of sub-block j (0..7) packed in a Q4_K / Q5_K block's scales[12]:
//   j < 4:  scale = scales[j] & 63,                 min = scales[j+4] & 63
//   j >= 4: scale = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
//           min   = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4
// i.e. bytes 0..7 hold the low 6 bits of scales 0..3 and mins 0..3, bytes 8..11 hold the low 4
// bits of scales/mins 4..7, and the top 2 bits of those ride in bits 6..7 of bytes 0..7.
void unpack_scale_min(int j, const uint8_t* scales, uint8_t* scale, uint8_t* min);
void pack_scale_min(int j, uint8_t scale, uint8_t min, uint8_t* scales);

void quantize_q8_k(const float* x, void* y, int64_t nb);
void dequantize_q4_k(const void* x, float* y, int64_t nb);
void dequantize_q5_k(const void* x, float* y, int64_t nb);
void dequantize_q6_k(const void* x, float* y, int64_t nb);
void dequantize_q8_k(const void* x, float* y, int64_t nb);
float dot_q4_k_q8_k(const void* w, const void* x, int64_t nb);
float dot_q5_k_q8_k(const void* w, const void* x, int64_t nb);
float dot_q6_k_q8_k(const void* w, const void* x, int64_t nb);

// --- K-quant weight quantizers (quantize_k.cpp) ---
void quantize_q4_k(const float* x, void* y, int64_t nb);
void quantize_q5_k(const float* x, void* y, int64_t nb);
void quantize_q6_k(const float* x, void* y, int64_t nb);

}  // namespace lightboat::kernels::reference::detail
