// Activation quantizers on AVX-512 F/BW: Q8_0 (the activations of Q4_0 / Q5_0 / Q8_0 weights)
// and Q8_K (of the K-quants), bit-identical to the reference (reference/quants_32.cpp,
// quants_k.cpp) as the AVX2 table's are, 16 lanes at a time.
//
// Q8_0 takes 16 blocks (512 floats) at once: their 16 absolute maxima come out of one
// transposing tree (30 shuffles and 15 max for 16 blocks, where a block on its own needs a
// 5-step horizontal max), and d, 1/d and fp16(d) are one vector operation each for the 16.
// Q8_K's 16 bsums of a block come out of the same tree with adds.
//
// GCC 12's 512-bit intrinsics pass an undefined register as the unused merge source, which its
// -Wuninitialized flags once inlined (a known false positive); silenced for this unit only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/isa_tables.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

// Lane i = op over the 16 lanes of v[i], for i < 16: per 128-bit lane, pairs of dwords, then
// quads, then the four 128-bit lanes of four vectors folded twice. op must be associative and
// commutative on the values at hand (max of floats, adds of int32): the tree's order is not
// the lanes' order.
template <typename Op>
__m512i transpose_reduce(const __m512i* v, Op op) {
  __m512i q[4];
  for (int i = 0; i < 4; ++i) {
    const __m512i* a = v + 4 * i;
    const __m512i ab = op(_mm512_unpacklo_epi32(a[0], a[1]), _mm512_unpackhi_epi32(a[0], a[1]));
    const __m512i cd = op(_mm512_unpacklo_epi32(a[2], a[3]), _mm512_unpackhi_epi32(a[2], a[3]));
    q[i] = op(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
  }
  auto halve = [&](__m512i x, __m512i y) {  // 128-bit lanes (x.0 op x.1, x.2 op x.3, y.0 op y.1, y.2 op y.3)
    return op(_mm512_shuffle_i32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_i32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  };
  return halve(halve(q[0], q[1]), halve(q[2], q[3]));
}

inline __m512i max_f32(__m512i a, __m512i b) {
  return _mm512_castps_si512(_mm512_max_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b)));
}

inline __m512i add_i32(__m512i a, __m512i b) {
  return _mm512_add_epi32(a, b);
}

// roundf(v) (ties away from zero) as int32, for |v| < 2^23: the truncation, plus ±1 where the
// fraction is at least a half (the AVX2 table's round_half_away).
inline __m512i round_half_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(static_cast<int>(0x80000000u)));
  const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)), sign));
  return _mm512_cvtps_epi32(_mm512_mask_add_ps(t, up, t, one));
}

// The 32 quants of one Q8_0 block (x * id rounded) at q.
inline void q8_0_quants(const float* x, float id, std::byte* q) {
  const __m512 vid = _mm512_set1_ps(id);
  for (int k = 0; k < 2; ++k) {
    const __m128i b = _mm512_cvtsepi32_epi8(round_half_away(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * k), vid)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * k), b);
  }
}

inline __m512 abs_max_32(const float* x) {
  return _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x)), _mm512_abs_ps(_mm512_loadu_ps(x + 16)));
}

// Q8_0: d = amax / 127, id = d != 0 ? 1 / d : 0, q = roundf(x * id), as the reference.
void quantize_q8_0(const float* x, void* y, int64_t n) {
  auto* out = static_cast<std::byte*>(y);
  const int64_t nb = n / kQK;
  int64_t i = 0;
  for (; i + 16 <= nb; i += 16) {  // 16 blocks: lane b of each vector below is block i + b
    const float* xg = x + i * kQK;
    __m512i m[16];
    for (int b = 0; b < 16; ++b) m[b] = _mm512_castps_si512(abs_max_32(xg + kQK * b));
    const __m512 d = _mm512_div_ps(_mm512_castsi512_ps(transpose_reduce(m, max_f32)), _mm512_set1_ps(127.0f));
    const __mmask16 nonzero = _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ);  // d != 0, NaN too
    alignas(64) float id[16];
    alignas(32) uint16_t dh[16];
    _mm512_store_ps(id, _mm512_maskz_div_ps(nonzero, _mm512_set1_ps(1.0f), d));
    _mm256_store_si256(reinterpret_cast<__m256i*>(dh),
                       _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (int b = 0; b < 16; ++b) {
      std::byte* blk = out + static_cast<size_t>(i + b) * kQ8_0Bytes;
      std::memcpy(blk, &dh[b], sizeof(uint16_t));
      q8_0_quants(xg + kQK * b, id[b], blk + 2);
    }
  }
  for (; i < nb; ++i) {  // the last blocks one at a time (same operations per block)
    const float* xb = x + i * kQK;
    const float d = _mm512_reduce_max_ps(abs_max_32(xb)) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    std::byte* blk = out + static_cast<size_t>(i) * kQ8_0Bytes;
    std::memcpy(blk, &dh, sizeof(dh));
    q8_0_quants(xb, id, blk + 2);
  }
}

// Q8_K: the signed extreme (the first one on ties) maps to -127; q = min(127, round_even(x *
// iscale)); bsums per 16; d = 1 / iscale, as the reference.
void quantize_q8_k(const float* x, void* y, int64_t n) {
  auto* out = static_cast<std::byte*>(y);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float* xb = x + i * kQKK;
    std::byte* b = out + static_cast<size_t>(i) * kQ8_KBytes;
    __m512 a[16];
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < 16; ++j) {
      a[j] = _mm512_abs_ps(_mm512_loadu_ps(xb + 16 * j));
      m = _mm512_max_ps(m, a[j]);
    }
    const float amax = _mm512_reduce_max_ps(m);
    if (amax == 0.0f) {
      std::memset(b, 0, kQ8_KBytes);
      continue;
    }
    int first = 0;
    for (int j = 0; j < 16; ++j) {
      const __mmask16 hits = _mm512_cmp_ps_mask(a[j], _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (hits != 0) {
        first = 16 * j + __builtin_ctz(static_cast<unsigned>(hits));
        break;
      }
    }
    const float iscale = -127.0f / xb[first];
    const __m512 vs = _mm512_set1_ps(iscale);
    __m512i q[16];
    for (int j = 0; j < 16; ++j) {
      const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * j), vs),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q[j] = _mm512_min_epi32(_mm512_cvtps_epi32(r), _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(b + kQ8_KQs + 16 * j), _mm512_cvtsepi32_epi8(q[j]));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b + kQ8_KBsums),
                        _mm512_cvtepi32_epi16(transpose_reduce(q, add_i32)));
    const float d = 1.0f / iscale;
    std::memcpy(b, &d, sizeof(d));
  }
}

}  // namespace

void add_avx512_quantizers(KernelTable& t) {
  t.quantize_row[dtype_slot(DType::kQ8_0)] = quantize_q8_0;
  t.quantize_row[dtype_slot(DType::kQ8_K)] = quantize_q8_k;
}

}  // namespace lightboat::kernels::detail
