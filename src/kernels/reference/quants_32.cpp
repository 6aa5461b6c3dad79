// The 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1 (weights) and Q8_0, Q8_1 (activations,
// also a weight format for Q8_0). Arithmetic follows llama.cpp's reference quantizers and scalar
// dot products operation for operation, so results are bit-identical to them (when both are
// compiled without fused multiply-add contraction).
//
// Element order inside a block: the nibble formats split the block in halves. Byte qs[j]
// (j = 0..15) holds element j in its low nibble and element j + 16 in its high nibble. The 5-bit
// formats keep the 5th bit of element j in bit j of the little-endian 32-bit word qh.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "kernels/reference/formats.h"

namespace lightboat::kernels::reference::detail {
namespace {

constexpr int kHalf = 16;  // elements per half block

uint32_t load_qh(const uint8_t (&qh)[4]) {
  uint32_t v;
  std::memcpy(&v, qh, sizeof(v));  // little-endian word, as ggml reads it
  return v;
}

// Largest magnitude in xb[0..32), returned with its sign (the first such element wins ties).
float signed_absmax(const float* xb) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(xb[j])) {
      amax = std::fabs(xb[j]);
      max = xb[j];
    }
  }
  return max;
}

void min_max(const float* xb, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (xb[j] < *min) *min = xb[j];
    if (xb[j] > *max) *max = xb[j];
  }
}

// Float to int truncating toward zero, as C's (int8_t)/(uint8_t) casts do for in-range values.
int trunc_int(float v) { return static_cast<int>(v); }

}  // namespace

// Q4_0: x = d * (q - 8). The signed extreme maps to q = 0, i.e. d = max / -8, which uses the
// asymmetric range [-8, 7] fully on the side of the extreme. q = trunc(x / d + 8.5), clamped to 15.
void quantize_q4_0(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK4_0;
    const float d = signed_absmax(xb) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kHalf; ++j) {
      const float v0 = xb[j] * id;
      const float v1 = xb[j + kHalf] * id;
      const int q0 = std::min(15, trunc_int(v0 + 8.5f));
      const int q1 = std::min(15, trunc_int(v1 + 8.5f));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(y, i, b);
  }
}

// Q4_1: x = d * q + m with m = block minimum, d = (max - min) / 15, q = trunc((x - m) / d + 0.5).
void quantize_q4_1(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK4_1;
    float min, max;
    min_max(xb, &min, &max);
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(min);
    for (int j = 0; j < kHalf; ++j) {
      const float v0 = (xb[j] - min) * id;
      const float v1 = (xb[j + kHalf] - min) * id;
      const int q0 = std::min(15, trunc_int(v0 + 0.5f));
      const int q1 = std::min(15, trunc_int(v1 + 0.5f));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(y, i, b);
  }
}

// Q5_0: x = d * (q - 16), d = max / -16, q = trunc(x / d + 16.5) clamped to 31.
void quantize_q5_0(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK5_0;
    const float d = signed_absmax(xb) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_0 b;
    b.d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const float v0 = xb[j] * id;
      const float v1 = xb[j + kHalf] * id;
      const int q0 = std::min(31, trunc_int(v0 + 16.5f));
      const int q1 = std::min(31, trunc_int(v1 + 16.5f));
      b.qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kHalf);
    }
    std::memcpy(b.qh, &qh, sizeof(qh));
    store_block(y, i, b);
  }
}

// Q5_1: x = d * q + m, d = (max - min) / 31, q = trunc((x - m) / d + 0.5) (llama.cpp does not
// clamp here; the fit guarantees q <= 31).
void quantize_q5_1(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK5_1;
    float min, max;
    min_max(xb, &min, &max);
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const float v0 = (xb[j] - min) * id;
      const float v1 = (xb[j + kHalf] - min) * id;
      const int q0 = static_cast<uint8_t>(trunc_int(v0 + 0.5f));
      const int q1 = static_cast<uint8_t>(trunc_int(v1 + 0.5f));
      b.qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kHalf);
    }
    std::memcpy(b.qh, &qh, sizeof(qh));
    store_block(y, i, b);
  }
}

// Q8_0: x = d * q, d = max|x| / 127, q = roundf(x / d) (ties away from zero), in [-127, 127].
void quantize_q8_0(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK8_0;
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) b.qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
    store_block(y, i, b);
  }
}

// Q8_1: as Q8_0, plus s = fp16(d * sum(q)), which lets the Q4_1 / Q5_1 dot products apply the
// weights' offset m to the whole block at once: sum((d_w q_w + m) d_x q_x) =
// d_w d_x sum(q_w q_x) + m s.
void quantize_q8_1(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK8_1;
    float amax = 0.0f;
    for (int j = 0; j < kQK8_1; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_1 b;
    b.d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK8_1; ++j) {
      b.qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
      sum += b.qs[j];
    }
    b.s = fp32_to_fp16(static_cast<float>(sum) * d);
    store_block(y, i, b);
  }
}

void dequantize_q4_0(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ4_0>(x, i);
    const float d = half(b.d);
    float* yb = y + i * kQK4_0;
    for (int j = 0; j < kHalf; ++j) {
      yb[j] = static_cast<float>((b.qs[j] & 0x0f) - 8) * d;
      yb[j + kHalf] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_1(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ4_1>(x, i);
    const float d = half(b.d);
    const float m = half(b.m);
    float* yb = y + i * kQK4_1;
    for (int j = 0; j < kHalf; ++j) {
      yb[j] = static_cast<float>(b.qs[j] & 0x0f) * d + m;
      yb[j + kHalf] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_q5_0(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ5_0>(x, i);
    const float d = half(b.d);
    const uint32_t qh = load_qh(b.qh);
    float* yb = y + i * kQK5_0;
    for (int j = 0; j < kHalf; ++j) {
      const int q0 = (b.qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
      const int q1 = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1) << 4);
      yb[j] = static_cast<float>(q0 - 16) * d;
      yb[j + kHalf] = static_cast<float>(q1 - 16) * d;
    }
  }
}

void dequantize_q5_1(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ5_1>(x, i);
    const float d = half(b.d);
    const float m = half(b.m);
    const uint32_t qh = load_qh(b.qh);
    float* yb = y + i * kQK5_1;
    for (int j = 0; j < kHalf; ++j) {
      const int q0 = (b.qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
      const int q1 = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1) << 4);
      yb[j] = static_cast<float>(q0) * d + m;
      yb[j + kHalf] = static_cast<float>(q1) * d + m;
    }
  }
}

void dequantize_q8_0(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ8_0>(x, i);
    const float d = half(b.d);
    for (int j = 0; j < kQK8_0; ++j) y[i * kQK8_0 + j] = static_cast<float>(b.qs[j]) * d;
  }
}

void dequantize_q8_1(const void* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ8_1>(x, i);
    const float d = half(b.d);
    for (int j = 0; j < kQK8_1; ++j) y[i * kQK8_1 + j] = static_cast<float>(b.qs[j]) * d;
  }
}

// Dot products: an exact integer sum of q_w * q_x per block (two half sums, as ggml), then one
// fp32 scale per block, accumulated in fp32 in block order.

float dot_q4_0_q8_0(const void* w, const void* x, int64_t nb) {
  float sum = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto bw = load_block<BlockQ4_0>(w, i);
    const auto bx = load_block<BlockQ8_0>(x, i);
    int sum0 = 0, sum1 = 0;
    for (int j = 0; j < kHalf; ++j) {
      sum0 += ((bw.qs[j] & 0x0f) - 8) * bx.qs[j];
      sum1 += ((bw.qs[j] >> 4) - 8) * bx.qs[j + kHalf];
    }
    sum += static_cast<float>(sum0 + sum1) * half(bw.d) * half(bx.d);
  }
  return sum;
}

float dot_q4_1_q8_1(const void* w, const void* x, int64_t nb) {
  float sum = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto bw = load_block<BlockQ4_1>(w, i);
    const auto bx = load_block<BlockQ8_1>(x, i);
    int sum0 = 0, sum1 = 0;
    for (int j = 0; j < kHalf; ++j) {
      sum0 += (bw.qs[j] & 0x0f) * bx.qs[j];
      sum1 += (bw.qs[j] >> 4) * bx.qs[j + kHalf];
    }
    const float scaled = (half(bw.d) * half(bx.d)) * static_cast<float>(sum0 + sum1);
    const float offset = half(bw.m) * half(bx.s);
    sum += scaled + offset;
  }
  return sum;
}

float dot_q5_0_q8_0(const void* w, const void* x, int64_t nb) {
  float sum = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto bw = load_block<BlockQ5_0>(w, i);
    const auto bx = load_block<BlockQ8_0>(x, i);
    const uint32_t qh = load_qh(bw.qh);
    int sum0 = 0, sum1 = 0;
    for (int j = 0; j < kHalf; ++j) {
      const int q0 = ((bw.qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4)) - 16;
      const int q1 = ((bw.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1) << 4)) - 16;
      sum0 += q0 * bx.qs[j];
      sum1 += q1 * bx.qs[j + kHalf];
    }
    sum += (half(bw.d) * half(bx.d)) * static_cast<float>(sum0 + sum1);
  }
  return sum;
}

float dot_q5_1_q8_1(const void* w, const void* x, int64_t nb) {
  float sum = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto bw = load_block<BlockQ5_1>(w, i);
    const auto bx = load_block<BlockQ8_1>(x, i);
    const uint32_t qh = load_qh(bw.qh);
    int sum0 = 0, sum1 = 0;
    for (int j = 0; j < kHalf; ++j) {
      const int q0 = (bw.qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
      const int q1 = (bw.qs[j] >> 4) | static_cast<int>(((qh >> (j + kHalf)) & 1) << 4);
      sum0 += q0 * bx.qs[j];
      sum1 += q1 * bx.qs[j + kHalf];
    }
    const float scaled = (half(bw.d) * half(bx.d)) * static_cast<float>(sum0 + sum1);
    const float offset = half(bw.m) * half(bx.s);
    sum += scaled + offset;
  }
  return sum;
}

float dot_q8_0_q8_0(const void* w, const void* x, int64_t nb) {
  float sum = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto bw = load_block<BlockQ8_0>(w, i);
    const auto bx = load_block<BlockQ8_0>(x, i);
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += bw.qs[j] * bx.qs[j];
    sum += static_cast<float>(sumi) * (half(bw.d) * half(bx.d));
  }
  return sum;
}

}  // namespace lightboat::kernels::reference::detail
