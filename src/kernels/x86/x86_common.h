// Helpers for the x86 kernel units (each compiled with at least -mavx2 -mfma -mf16c). Everything
// is in an anonymous namespace on purpose: each unit gets its own copy compiled with its own
// flags, so no wide-instruction copy can be picked by the linker for another unit.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lightboat::kernels::detail {
namespace {

// Block sizes in bytes (tensor/blocks.h): offsets below are ggml's layouts.
constexpr size_t kQ8_0Bytes = 34;  // d (fp16) | qs[32]
constexpr size_t kQ4_0Bytes = 18;  // d (fp16) | qs[16]
constexpr size_t kQ4_1Bytes = 20;  // d | m (fp16) | qs[16]
constexpr size_t kQ5_0Bytes = 22;  // d | qh[4] | qs[16]
constexpr size_t kQ5_1Bytes = 24;  // d | m | qh[4] | qs[16]
constexpr size_t kQ8_1Bytes = 36;  // d | s = d * sum(q) (fp16) | qs[32]
constexpr size_t kQ8_KBytes = 292; // d (fp32) | qs[256] | bsums[16] (int16)
constexpr size_t kQ8_KQs = 4;      // where a Q8_K block's qs start
constexpr size_t kQ8_KBsums = 260;  // and its bsums
constexpr size_t kQ4_KBytes = 144; // d | dmin | scales[12] | qs[128]
constexpr size_t kQ5_KBytes = 176; // d | dmin | scales[12] | qh[32] | qs[128]
constexpr size_t kQ6_KBytes = 210; // ql[128] | qh[64] | scales[16] (int8) | d
constexpr int64_t kQK = 32;
constexpr int64_t kQKK = 256;

inline uint16_t load_u16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline float load_f32(const std::byte* p) {
  float v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline float half_at(const std::byte* p) { return _cvtsh_ss(load_u16(p)); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline __m256i load256(const std::byte* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i load128(const std::byte* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// Sum of the 32 products of two int8 vectors, as 8 int32 lanes (4 products each). x must avoid
// -128 (our activation quantizers never produce it); w may be anything: |w| <= 128 as an
// unsigned byte, so each pair sum of maddubs stays within int16 (2 * 128 * 127).
inline __m256i dot_i8(__m256i w, __m256i x) {
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// The 4-bit quants of a Q4_0 / Q4_1 / Q5_0 / Q5_1 block as 32 bytes 0..15 in element order:
// qs[j] holds element j in its low nibble and element j + 16 in its high nibble.
inline __m256i nibbles(const std::byte* qs) {
  const __m128i q = load128(qs);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
}

// Q4_0 quants of one block as 32 signed bytes (q - 8) in element order.
inline __m256i unpack_q4_0(const std::byte* qs) { return _mm256_sub_epi8(nibbles(qs), _mm256_set1_epi8(8)); }

// The 5th bits of a Q5_0 / Q5_1 block as 32 bytes in element order: 0x10 where bit j of the
// 32-bit little-endian qh is set, else 0. Byte j takes qh's byte j / 8 (a shuffle within each
// 128-bit lane of the broadcast word) and tests bit j % 8 of it.
inline __m256i fifth_bits(const std::byte* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof(bits));
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
}

// The 6-bit scales and mins of a Q4_K / Q5_K block (see reference unpack_scale_min): bytes 0..3
// hold scales 0..3 (low 6 bits), bytes 4..7 mins 0..3, bytes 8..11 the low nibbles of scales and
// mins 4..7, whose top 2 bits ride in bits 6..7 of bytes 0..3 (scales) and 4..7 (mins).
inline void unpack_scales_mins(const std::byte* packed, uint8_t* scales, uint8_t* mins) {
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

// The 8 mins of a Q4_K / Q5_K block laid out against Q8_K's 16 bsums (min j covers bsums 2j and
// 2j + 1), as int16.
inline __m256i mins_for_bsums(const uint8_t* mins) {
  int64_t m8;
  std::memcpy(&m8, mins, 8);
  const __m128i m = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(m8));
  return _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));
}

// roundf (nearest, ties away from zero) of each lane, exactly: truncate, then step away from zero
// when the dropped fraction is at least one half (the fraction is exact for |v| < 2^23).
inline __m256 round_half_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 frac = _mm256_andnot_ps(sign_mask, _mm256_sub_ps(v, t));
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(sign_mask, v));
  const __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
  return _mm256_add_ps(t, step);
}

// Packs 4 x 8 int32 lanes (values in int8 range) into 32 int8 in order.
inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);  // per 128-bit lane: a0..3 b0..3 | a4..7 b4..7
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);  // a0..3 b0..3 c0..3 d0..3 | a4..7 b4..7 ...
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline float abs_max(const float* x, int64_t n) {
  __m256 m = _mm256_setzero_ps();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace lightboat::kernels::detail
