// K-quant super-blocks (256 elements): bit layouts of Q4_K, Q5_K, Q6_K, dequantization, the Q8_K
// activation quantizer, and the K-quant dot products, all following llama.cpp's reference code
// operation for operation.
//
// Layouts (element e = 0..255 of a super-block):
//   Q4_K  8 sub-blocks of 32, each with a 6-bit scale sc and 6-bit min m (see unpack_scale_min);
//         x = (d * sc) * q - (dmin * m), q in 0..15. Elements come in 4 chunks of 64: chunk c
//         uses bytes qs[32c .. 32c+32); element 64c + l is the low nibble of qs[32c + l] and
//         element 64c + 32 + l the high nibble (so chunk c spans sub-blocks 2c and 2c + 1).
//   Q5_K  as Q4_K, q in 0..31; the 5th bit of element 64c + l is bit 2c of qh[l], that of
//         element 64c + 32 + l is bit 2c + 1 of qh[l].
//   Q6_K  16 sub-blocks of 16 with int8 scales; x = (d * scales[e / 16]) * (q - 32), q in 0..63.
//         Two halves of 128: in half h, with l = 0..31, the low 4 bits of element 128h + l + 32k
//         (k = 0..3) are: k=0 low nibble of ql[64h + l], k=1 low nibble of ql[64h + 32 + l],
//         k=2 high nibble of ql[64h + l], k=3 high nibble of ql[64h + 32 + l]; the top 2 bits are
//         bits 2k..2k+1 of qh[32h + l].
//   Q8_K  x = d * q with fp32 d, q in -127..127; bsums[g] = sum of
//         q over elements 16g .. 16g + 15, used to apply Q4_K / Q5_K mins per sub-block.
#include <algorithm>
#include <cmath>

#include "kernels/reference/formats.h"

namespace lightboat::kernels::reference::detail {
namespace {

// Quants of one super-block, unpacked to one value per element (weights' raw unsigned q; Q6_K
// already minus 32).
struct Unpacked {
  int8_t q[kQK_K];
};

Unpacked unpack_q4_k(const BlockQ4_K& b) {
  Unpacked u;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      u.q[64 * c + l] = static_cast<int8_t>(b.qs[32 * c + l] & 0x0f);
      u.q[64 * c + 32 + l] = static_cast<int8_t>(b.qs[32 * c + l] >> 4);
    }
  }
  return u;
}

Unpacked unpack_q5_k(const BlockQ5_K& b) {
  Unpacked u;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int hi0 = (b.qh[l] >> (2 * c)) & 1;
      const int hi1 = (b.qh[l] >> (2 * c + 1)) & 1;
      u.q[64 * c + l] = static_cast<int8_t>((b.qs[32 * c + l] & 0x0f) | (hi0 << 4));
      u.q[64 * c + 32 + l] = static_cast<int8_t>((b.qs[32 * c + l] >> 4) | (hi1 << 4));
    }
  }
  return u;
}

Unpacked unpack_q6_k(const BlockQ6_K& b) {
  Unpacked u;
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* q = u.q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      q[l + 0] = static_cast<int8_t>(((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
      q[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
      q[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      q[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
  return u;
}

// Q4_K and Q5_K share everything but the unpacking: x = (d * sc_j) * q - (dmin * m_j).
template <typename Block>
void dequantize_with_mins(const Block& b, const Unpacked& u, float* y) {
  const float d = half(b.d);
  const float dmin = half(b.dmin);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min(j, b.scales, &sc, &m);
    const float scale = d * static_cast<float>(sc);
    const float offset = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) y[32 * j + l] = scale * static_cast<float>(u.q[32 * j + l]) - offset;
  }
}

// The K-quant dot product of ggml's scalar code: per super-block, integer products are
// accumulated into 8 int32 lanes (lane = element index mod 8) weighted by the sub-block scale;
// each lane is then scaled by d_w * d_x into 8 fp32 lane sums that run across all super-blocks,
// and only summed at the very end. The mins of Q4_K / Q5_K are applied per super-block through
// the activations' 16-element sums: sum(m_j * dmin * d_x * q_x) = dmin * d_x * sum_g(bsums_g * m_g/2).
// `sub` is the sub-block size (32 for Q4_K / Q5_K, 16 for Q6_K) and `scales` its scales.
struct LaneSums {
  float lane[8] = {};
  float total = 0.0f;  // receives the mins corrections as they come, then the lanes

  void add_block(const Unpacked& u, const int8_t* qx, const int* scales, int sub, float d) {
    int32_t acc[8] = {};
    for (int e = 0; e < kQK_K; ++e) {
      const int product = static_cast<int16_t>(qx[e] * u.q[e]);  // fits in int16, as in ggml
      acc[e % 8] += scales[e / sub] * product;
    }
    for (int l = 0; l < 8; ++l) lane[l] += d * static_cast<float>(acc[l]);
  }

  float finish() {
    for (int l = 0; l < 8; ++l) total += lane[l];
    return total;
  }
};

template <typename Block, Unpacked (*kUnpack)(const Block&)>
float dot_with_mins(const void* w, const void* x, int64_t nb) {
  LaneSums sums;
  for (int64_t i = 0; i < nb; ++i) {
    const auto bw = load_block<Block>(w, i);
    const auto bx = load_block<BlockQ8_K>(x, i);
    int scales[8];
    int mins_sum = 0;  // sum over 16-element groups of bsums * min of the enclosing sub-block
    int mins[8];
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      unpack_scale_min(j, bw.scales, &sc, &m);
      scales[j] = sc;
      mins[j] = m;
    }
    for (int g = 0; g < kQK_K / 16; ++g) mins_sum += bx.bsums[g] * mins[g / 2];
    sums.add_block(kUnpack(bw), bx.qs, scales, 32, half(bw.d) * bx.d);
    const float dmin = half(bw.dmin) * bx.d;
    sums.total -= dmin * static_cast<float>(mins_sum);
  }
  return sums.finish();
}

}  // namespace

void unpack_scale_min(int j, const uint8_t* scales, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// Inverse of unpack_scale_min for 6-bit scale and min; scales[] must start zeroed and sub-blocks
// 0..3 must be packed before 4..7 (those OR their top bits into bytes 0..7).
void pack_scale_min(int j, uint8_t scale, uint8_t min, uint8_t* scales) {
  if (j < 4) {
    scales[j] = scale;
    scales[j + 4] = min;
  } else {
    scales[j + 4] = static_cast<uint8_t>((scale & 0x0f) | ((min & 0x0f) << 4));
    scales[j - 4] |= static_cast<uint8_t>((scale >> 4) << 6);
    scales[j] |= static_cast<uint8_t>((min >> 4) << 6);
  }
}

// Q8_K: d is the signed extreme over -127, so the extreme itself becomes -127 exactly; the sign
// choice is llama.cpp's (it suits its IQ kernels) and is kept for bit equality. An all-zero block
// gets d = 0 and zero quants (and zero bsums, which llama.cpp leaves unset).
void quantize_q8_k(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK_K;
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    BlockQ8_K b{};
    if (amax != 0.0f) {
      const float iscale = -127.0f / max;
      for (int j = 0; j < kQK_K; ++j) {
        b.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * xb[j])));
      }
      for (int g = 0; g < kQK_K / 16; ++g) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += b.qs[16 * g + l];
        b.bsums[g] = static_cast<int16_t>(sum);
      }
      b.d = 1.0f / iscale;
    }
    store_block(y, i, b);
  }
}

void dequantize_q4_k(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ4_K>(x, i);
    dequantize_with_mins(b, unpack_q4_k(b), y + i * kQK_K);
  }
}

void dequantize_q5_k(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ5_K>(x, i);
    dequantize_with_mins(b, unpack_q5_k(b), y + i * kQK_K);
  }
}

void dequantize_q6_k(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ6_K>(x, i);
    const Unpacked u = unpack_q6_k(b);
    const float d = half(b.d);
    float* yb = y + i * kQK_K;
    for (int e = 0; e < kQK_K; ++e) {
      yb[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>(u.q[e]);
    }
  }
}

void dequantize_q8_k(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ8_K>(x, i);
    for (int j = 0; j < kQK_K; ++j) y[i * kQK_K + j] = b.d * static_cast<float>(b.qs[j]);
  }
}

float dot_q4_k_q8_k(const void* w, const void* x, int64_t nb) {
  return dot_with_mins<BlockQ4_K, unpack_q4_k>(w, x, nb);
}

float dot_q5_k_q8_k(const void* w, const void* x, int64_t nb) {
  return dot_with_mins<BlockQ5_K, unpack_q5_k>(w, x, nb);
}

float dot_q6_k_q8_k(const void* w, const void* x, int64_t nb) {
  LaneSums sums;
  for (int64_t i = 0; i < nb; ++i) {
    const auto bw = load_block<BlockQ6_K>(w, i);
    const auto bx = load_block<BlockQ8_K>(x, i);
    int scales[16];
    for (int j = 0; j < 16; ++j) scales[j] = bw.scales[j];
    sums.add_block(unpack_q6_k(bw), bx.qs, scales, 16, half(bw.d) * bx.d);
  }
  return sums.finish();
}

}  // namespace lightboat::kernels::reference::detail
