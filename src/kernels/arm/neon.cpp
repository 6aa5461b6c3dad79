// ARMv8.2-A NEON kernels with the dotprod (sdot) and fp16 extensions: activation quantizers
// (bit-identical to the reference: vrndaq is roundf, vrndnq is ggml's nearest_int for the values
// quantizers see), int8 dot products for Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 and the K-quants, and F32 /
// F16 dot products.
// Gemm is the shared row/token blocking driver over 1 x 1 tiles (no register blocking yet).
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/gemm_driver.h"
#include "kernels/isa_tables.h"
#include "kernels/prefetch.h"

namespace lightboat::kernels::detail {
namespace {

constexpr size_t kQ8_0Bytes = 34;
constexpr size_t kQ4_0Bytes = 18;
constexpr size_t kQ4_1Bytes = 20;  // d | m | qs[16]
constexpr size_t kQ5_0Bytes = 22;  // d | qh[4] | qs[16]
constexpr size_t kQ5_1Bytes = 24;  // d | m | qh[4] | qs[16]
constexpr size_t kQ8_1Bytes = 36;  // d | s = d * sum(q) | qs[32]
constexpr size_t kQ8_KBytes = 292;
constexpr size_t kQ4_KBytes = 144;
constexpr size_t kQ5_KBytes = 176;
constexpr size_t kQ6_KBytes = 210;
constexpr int64_t kQK = 32;
constexpr int64_t kQKK = 256;

const int8_t* i8(const std::byte* p) { return reinterpret_cast<const int8_t*>(p); }
const uint8_t* u8(const std::byte* p) { return reinterpret_cast<const uint8_t*>(p); }

float half_at(const std::byte* p) {
  __fp16 h;
  std::memcpy(&h, p, sizeof(h));
  return static_cast<float>(h);
}

float f32_at(const std::byte* p) {
  float v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

float abs_max(const float* x, int64_t n) {
  float32x4_t m = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < n; i += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + i)));
  return vmaxvq_f32(m);
}

// 16 int32 (int8-range) -> 16 int8.
int8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
  const int16x8_t cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
  return vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd));
}

void quantize_q8_0(const float* x, void* y, int64_t n) {
  auto* out = static_cast<std::byte*>(y);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    const float d = abs_max(xb, kQK) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32x4_t q[8];
    for (int k = 0; k < 8; ++k) q[k] = vcvtq_s32_f32(vrndaq_f32(vmulq_n_f32(vld1q_f32(xb + 4 * k), id)));
    std::byte* b = out + static_cast<size_t>(i) * kQ8_0Bytes;
    const __fp16 dh = static_cast<__fp16>(d);
    std::memcpy(b, &dh, sizeof(dh));
    vst1q_s8(reinterpret_cast<int8_t*>(b + 2), narrow16(q[0], q[1], q[2], q[3]));
    vst1q_s8(reinterpret_cast<int8_t*>(b + 18), narrow16(q[4], q[5], q[6], q[7]));
  }
}

void quantize_q8_k(const float* x, void* y, int64_t n) {
  auto* out = static_cast<std::byte*>(y);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float* xb = x + i * kQKK;
    std::byte* b = out + static_cast<size_t>(i) * kQ8_KBytes;
    const float amax = abs_max(xb, kQKK);
    if (amax == 0.0f) {
      std::memset(b, 0, kQ8_KBytes);
      continue;
    }
    int first = 0;
    while (first < kQKK && !(xb[first] == amax || xb[first] == -amax)) ++first;
    const float iscale = -127.0f / xb[first];
    int16_t bsums[16];
    for (int g = 0; g < 16; ++g) {
      int32x4_t q[4];
      for (int k = 0; k < 4; ++k) {
        const float32x4_t v = vmulq_n_f32(vld1q_f32(xb + 16 * g + 4 * k), iscale);
        q[k] = vminq_s32(vcvtq_s32_f32(vrndnq_f32(v)), vdupq_n_s32(127));
      }
      bsums[g] = static_cast<int16_t>(vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]))));
      vst1q_s8(reinterpret_cast<int8_t*>(b + 4 + 16 * g), narrow16(q[0], q[1], q[2], q[3]));
    }
    const float d = 1.0f / iscale;
    std::memcpy(b, &d, sizeof(d));
    std::memcpy(b + 4 + kQKK, bsums, sizeof(bsums));
  }
}

void quantize_f16(const float* x, void* y, int64_t n) {
  auto* out = static_cast<std::byte*>(y);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float16x4_t h = vcvt_f16_f32(vld1q_f32(x + i));
    std::memcpy(out + 2 * i, &h, sizeof(h));
  }
  for (; i < n; ++i) {
    const __fp16 h = static_cast<__fp16>(x[i]);
    std::memcpy(out + 2 * i, &h, sizeof(h));
  }
}

// --- dot products (one row, one token) ---

float dot_q8_0(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const std::byte*>(wv);
  const auto* x = static_cast<const std::byte*>(xv);
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const std::byte* bw = w + static_cast<size_t>(i) * kQ8_0Bytes;
    const std::byte* bx = x + static_cast<size_t>(i) * kQ8_0Bytes;
    prefetch_weights(bw);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), vld1q_s8(i8(bw + 2)), vld1q_s8(i8(bx + 2)));
    s = vdotq_s32(s, vld1q_s8(i8(bw + 18)), vld1q_s8(i8(bx + 18)));
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), half_at(bw) * half_at(bx));
  }
  return vaddvq_f32(acc);
}

float dot_q4_0(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const std::byte*>(wv);
  const auto* x = static_cast<const std::byte*>(xv);
  float32x4_t acc = vdupq_n_f32(0.0f);
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  const int8x16_t eight = vdupq_n_s8(8);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const std::byte* bw = w + static_cast<size_t>(i) * kQ4_0Bytes;
    const std::byte* bx = x + static_cast<size_t>(i) * kQ8_0Bytes;
    prefetch_weights(bw);
    const uint8x16_t q = vld1q_u8(u8(bw + 2));
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), eight);
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(i8(bx + 2)));
    s = vdotq_s32(s, hi, vld1q_s8(i8(bx + 18)));
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), half_at(bw) * half_at(bx));
  }
  return vaddvq_f32(acc);
}

// The 5th bits of a Q5_0 / Q5_1 block: 0x10 in byte j where bit j of the 32-bit qh is set, for
// elements 0..15 (lo) and 16..31 (hi). Each byte takes qh's byte j / 8 and tests bit j % 8.
void fifth_bits(const std::byte* qh, uint8x16_t& lo, uint8x16_t& hi) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof(bits));
  const uint8x16_t word = vreinterpretq_u8_u32(vdupq_n_u32(bits));
  static constexpr uint8_t kLo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  static constexpr uint8_t kHi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  static constexpr uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit);
  const uint8x16_t sixteen = vdupq_n_u8(0x10);
  lo = vandq_u8(vtstq_u8(vqtbl1q_u8(word, vld1q_u8(kLo)), bit), sixteen);
  hi = vandq_u8(vtstq_u8(vqtbl1q_u8(word, vld1q_u8(kHi)), bit), sixteen);
}

float dot_q5_0(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const std::byte*>(wv);
  const auto* x = static_cast<const std::byte*>(xv);
  float32x4_t acc = vdupq_n_f32(0.0f);
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  const int8x16_t sixteen = vdupq_n_s8(16);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const std::byte* bw = w + static_cast<size_t>(i) * kQ5_0Bytes;
    const std::byte* bx = x + static_cast<size_t>(i) * kQ8_0Bytes;
    prefetch_weights(bw);
    uint8x16_t h_lo, h_hi;
    fifth_bits(bw + 2, h_lo, h_hi);
    const uint8x16_t q = vld1q_u8(u8(bw + 6));
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q, m4), h_lo)), sixteen);
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q, 4), h_hi)), sixteen);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(i8(bx + 2)));
    s = vdotq_s32(s, hi, vld1q_s8(i8(bx + 18)));
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), half_at(bw) * half_at(bx));
  }
  return vaddvq_f32(acc);
}

// Q4_1 (kFiveBit = false) and Q5_1 with Q8_1 activations: d_w * d_x * sum(q_w q_x) + m_w * s_x
// per block (the quants are unsigned, at most 31, so they are valid int8 for sdot).
template <bool kFiveBit>
float dot_q_1(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const std::byte*>(wv);
  const auto* x = static_cast<const std::byte*>(xv);
  constexpr size_t kBytes = kFiveBit ? kQ5_1Bytes : kQ4_1Bytes;
  constexpr size_t kQs = kFiveBit ? 8 : 4;
  float32x4_t acc = vdupq_n_f32(0.0f);
  float offset = 0.0f;
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const std::byte* bw = w + static_cast<size_t>(i) * kBytes;
    const std::byte* bx = x + static_cast<size_t>(i) * kQ8_1Bytes;
    prefetch_weights(bw);
    const uint8x16_t q = vld1q_u8(u8(bw + kQs));
    uint8x16_t lo = vandq_u8(q, m4);
    uint8x16_t hi = vshrq_n_u8(q, 4);
    if constexpr (kFiveBit) {
      uint8x16_t h_lo, h_hi;
      fifth_bits(bw + 4, h_lo, h_hi);
      lo = vorrq_u8(lo, h_lo);
      hi = vorrq_u8(hi, h_hi);
    }
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(lo), vld1q_s8(i8(bx + 4)));
    s = vdotq_s32(s, vreinterpretq_s8_u8(hi), vld1q_s8(i8(bx + 20)));
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), half_at(bw) * half_at(bx));
    offset += half_at(bw + 2) * half_at(bx + 2);
  }
  return vaddvq_f32(acc) + offset;
}

// Sum of 32 products q[0..32) * x[0..32) (two int8x16 halves each).
int32_t dot32(int8x16_t q0, int8x16_t q1, const std::byte* x) {
  const int32x4_t s = vdotq_s32(vdotq_s32(vdupq_n_s32(0), q0, vld1q_s8(i8(x))), q1, vld1q_s8(i8(x + 16)));
  return vaddvq_s32(s);
}

void unpack_scales_mins(const std::byte* packed, uint8_t* scales, uint8_t* mins) {
  uint32_t s[3];
  std::memcpy(s, packed, sizeof(s));
  const uint32_t sc_lo = s[0] & 0x3f3f3f3fu;
  const uint32_t mn_lo = s[1] & 0x3f3f3f3fu;
  const uint32_t sc_hi = (s[2] & 0x0f0f0f0fu) | (((s[0] >> 6) & 0x03030303u) << 4);
  const uint32_t mn_hi = ((s[2] >> 4) & 0x0f0f0f0fu) | (((s[1] >> 6) & 0x03030303u) << 4);
  std::memcpy(scales, &sc_lo, 4);
  std::memcpy(scales + 4, &sc_hi, 4);
  std::memcpy(mins, &mn_lo, 4);
  std::memcpy(mins + 4, &mn_hi, 4);
}

// Q4_K (kFiveBit = false) and Q5_K: exact integer sums per super-block, then one fp32 scaling.
template <bool kFiveBit>
float dot_k_mins(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const std::byte*>(wv);
  const auto* x = static_cast<const std::byte*>(xv);
  constexpr size_t kBytes = kFiveBit ? kQ5_KBytes : kQ4_KBytes;
  constexpr size_t kQs = kFiveBit ? 48 : 16;
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const std::byte* b = w + static_cast<size_t>(i) * kBytes;
    const std::byte* bx = x + static_cast<size_t>(i) * kQ8_KBytes;
    for (size_t o = 0; o < kBytes; o += 64) prefetch_weights(b + o);
    uint8_t sc[8], mn[8];
    unpack_scales_mins(b + 4, sc, mn);
    int16_t bsums[16];
    std::memcpy(bsums, bx + 260, sizeof(bsums));
    int32_t mins_sum = 0;
    for (int g = 0; g < 16; ++g) mins_sum += bsums[g] * mn[g / 2];
    uint8x16_t h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
    if constexpr (kFiveBit) {
      h0 = vld1q_u8(u8(b + 16));
      h1 = vld1q_u8(u8(b + 32));
    }
    int32_t isum = 0;
    for (int c = 0; c < 4; ++c) {
      const uint8x16_t q0 = vld1q_u8(u8(b + kQs + 32 * c));
      const uint8x16_t q1 = vld1q_u8(u8(b + kQs + 32 * c + 16));
      uint8x16_t lo0 = vandq_u8(q0, m4), lo1 = vandq_u8(q1, m4);
      uint8x16_t hi0 = vshrq_n_u8(q0, 4), hi1 = vshrq_n_u8(q1, 4);
      if constexpr (kFiveBit) {
        const uint8x16_t one = vdupq_n_u8(1);
        lo0 = vorrq_u8(lo0, vshlq_n_u8(vandq_u8(h0, one), 4));
        lo1 = vorrq_u8(lo1, vshlq_n_u8(vandq_u8(h1, one), 4));
        hi0 = vorrq_u8(hi0, vshlq_n_u8(vandq_u8(vshrq_n_u8(h0, 1), one), 4));
        hi1 = vorrq_u8(hi1, vshlq_n_u8(vandq_u8(vshrq_n_u8(h1, 1), one), 4));
        h0 = vshrq_n_u8(h0, 2);
        h1 = vshrq_n_u8(h1, 2);
      }
      const std::byte* xq = bx + 4 + 64 * c;
      isum += sc[2 * c] * dot32(vreinterpretq_s8_u8(lo0), vreinterpretq_s8_u8(lo1), xq);
      isum += sc[2 * c + 1] * dot32(vreinterpretq_s8_u8(hi0), vreinterpretq_s8_u8(hi1), xq + 32);
    }
    const float dx = f32_at(bx);
    sum += half_at(b) * dx * static_cast<float>(isum) - half_at(b + 2) * dx * static_cast<float>(mins_sum);
  }
  return sum;
}

float dot_q6_k(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const std::byte*>(wv);
  const auto* x = static_cast<const std::byte*>(xv);
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  const uint8x16_t m2 = vdupq_n_u8(0x03);
  const int8x16_t m32 = vdupq_n_s8(32);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const std::byte* b = w + static_cast<size_t>(i) * kQ6_KBytes;
    const std::byte* bx = x + static_cast<size_t>(i) * kQ8_KBytes;
    for (size_t o = 0; o < kQ6_KBytes; o += 64) prefetch_weights(b + o);
    int8_t sc[16];
    std::memcpy(sc, b + 192, sizeof(sc));
    int32_t isum = 0;
    for (int h = 0; h < 2; ++h) {
      for (int part = 0; part < 2; ++part) {  // l = 0..15 and 16..31
        const size_t o = 16 * static_cast<size_t>(part);
        const uint8x16_t qh = vld1q_u8(u8(b + 128 + 32 * h + o));
        const uint8x16_t ql0 = vld1q_u8(u8(b + 64 * h + o));
        const uint8x16_t ql1 = vld1q_u8(u8(b + 64 * h + 32 + o));
        int8x16_t q[4];
        q[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(ql0, m4), vshlq_n_u8(vandq_u8(qh, m2), 4)));
        q[1] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(ql1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), m2), 4)));
        q[2] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(ql0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), m2), 4)));
        q[3] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(ql1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4)));
        for (int k = 0; k < 4; ++k) {
          // Elements 128h + 32k + o .. +16: one 16-element sub-block, scale 8h + 2k + part.
          const int8x16_t xq = vld1q_s8(i8(bx + 4 + 128 * h + 32 * k + o));
          const int32_t s = vaddvq_s32(vdotq_s32(vdupq_n_s32(0), vsubq_s8(q[k], m32), xq));
          isum += sc[8 * h + 2 * k + part] * s;
        }
      }
    }
    sum += half_at(b + 208) * f32_at(bx) * static_cast<float>(isum);
  }
  return sum;
}

float dot_f32(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const float*>(wv);
  const auto* x = static_cast<const float*>(xv);
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    prefetch_weights(reinterpret_cast<const std::byte*>(w + i));
    acc0 = vfmaq_f32(acc0, vld1q_f32(w + i), vld1q_f32(x + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += w[i] * x[i];
  return vaddvq_f32(vaddq_f32(acc0, acc1)) + tail;
}

float dot_f16(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const __fp16*>(wv);
  const auto* x = static_cast<const __fp16*>(xv);
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    prefetch_weights(reinterpret_cast<const std::byte*>(w + i));
    const float16x8_t wh = vld1q_f16(w + i);
    const float16x8_t xh = vld1q_f16(x + i);
    acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vget_low_f16(wh)), vcvt_f32_f16(vget_low_f16(xh)));
    acc1 = vfmaq_f32(acc1, vcvt_high_f32_f16(wh), vcvt_high_f32_f16(xh));
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += static_cast<float>(w[i]) * static_cast<float>(x[i]);
  return vaddvq_f32(vaddq_f32(acc0, acc1)) + tail;
}

// Gemm over 1 x 1 tiles of a dot product (the driver still blocks tokens for the cache).
template <VecDotFn kDot>
struct DotKernel {
  template <int R, int T>
  static void tile(const GemmArgs& a, int64_t r0, int64_t t0) {
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) a.out(r0 + r, t0 + t) = kDot(a.n, a.w_row(r0 + r), a.x_row(t0 + t));
  }
};

template <VecDotFn kDot>
void set_weight(KernelTable& t, DType type) {
  t.vec_dot[dtype_slot(type)] = kDot;
  t.gemm[dtype_slot(type)] = gemm_tiled<DotKernel<kDot>, 4, 1>;
}

KernelTable make_table() {
  KernelTable t;
  t.isa = Isa::kNeon;
  t.quantize_row[dtype_slot(DType::kQ8_0)] = quantize_q8_0;
  t.quantize_row[dtype_slot(DType::kQ8_K)] = quantize_q8_k;
  t.quantize_row[dtype_slot(DType::kF16)] = quantize_f16;
  set_weight<dot_q8_0>(t, DType::kQ8_0);
  set_weight<dot_q4_0>(t, DType::kQ4_0);
  set_weight<dot_q5_0>(t, DType::kQ5_0);
  set_weight<dot_q_1<false>>(t, DType::kQ4_1);
  set_weight<dot_q_1<true>>(t, DType::kQ5_1);
  set_weight<dot_k_mins<false>>(t, DType::kQ4_K);
  set_weight<dot_k_mins<true>>(t, DType::kQ5_K);
  set_weight<dot_q6_k>(t, DType::kQ6_K);
  set_weight<dot_f32>(t, DType::kF32);
  set_weight<dot_f16>(t, DType::kF16);
  add_neon_attention(t);
  return t;
}

}  // namespace

const KernelTable& neon_table() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace lightboat::kernels::detail
