// AVX2 K-quant dot products (Q4_K, Q5_K, Q6_K weights with Q8_K activations). Per super-block
// the weighted integer sum  sum_j scale_j * sum_{e in j} q_e x_e  is formed exactly in int32
// lanes (maddubs: unsigned weight quants x signed activations; madd: x sub-block scale), then
// scaled once by d_w * d_x in fp32. Weight offsets (Q4_K/Q5_K mins, Q6_K's -32) are applied
// through the activations' 16-element sums (Q8_K bsums), exactly as well.
#include "kernels/x86/avx2_k.h"

#include "kernels/gemm_driver.h"
#include "kernels/prefetch.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

// Q4_K and Q5_K: 4 chunks of 64 elements; chunk c = sub-blocks 2c (low nibbles / bit 2c of qh)
// and 2c + 1 (high nibbles / bit 2c + 1).
template <bool kFiveBit>
struct KMinsKernel {
  static constexpr size_t kBytes = kFiveBit ? kQ5_KBytes : kQ4_KBytes;
  static constexpr size_t kQs = kFiveBit ? 48 : 16;

  template <int T>
  static void row(const GemmArgs& a, int64_t r, int64_t t0) {
    __m256 acc[T];
    const std::byte* xt[T];
    for (int t = 0; t < T; ++t) {
      acc[t] = _mm256_setzero_ps();
      xt[t] = a.x_row(t0 + t);
    }
    const std::byte* w = a.w_row(r);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const int64_t nb = a.n / kQKK;
    for (int64_t i = 0; i < nb; ++i) {
      const std::byte* b = w + static_cast<size_t>(i) * kBytes;
      for (size_t o = 0; o < kBytes; o += 64) prefetch_weights(b + o);
      const float d = half_at(b);
      const float dmin = half_at(b + 2);
      uint8_t sc[8], mn[8];
      unpack_scales_mins(b + 4, sc, mn);
      const __m256i mins16 = mins_for_bsums(mn);
      __m256i hbits = kFiveBit ? load256(b + 16) : _mm256_setzero_si256();
      __m256i isum[T];
      for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i q = load256(b + kQs + 32 * c);
        __m256i lo = _mm256_and_si256(q, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if constexpr (kFiveBit) {
          const __m256i one = _mm256_set1_epi8(1);
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hbits, one), 4));
          hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(hbits, _mm256_add_epi8(one, one)), 3));
          hbits = _mm256_srli_epi16(hbits, 2);
        }
        const __m256i s_lo = _mm256_set1_epi16(sc[2 * c]);
        const __m256i s_hi = _mm256_set1_epi16(sc[2 * c + 1]);
        for (int t = 0; t < T; ++t) {
          const std::byte* xq = xt[t] + static_cast<size_t>(i) * kQ8_KBytes + kQ8_KQs + 64 * c;
          const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(xq)), s_lo);
          const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(xq + 32)), s_hi);
          isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(p_lo, p_hi));
        }
      }
      for (int t = 0; t < T; ++t) {
        const std::byte* xb = xt[t] + static_cast<size_t>(i) * kQ8_KBytes;
        const float dx = load_f32(xb);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * dx), acc[t]);
        const __m256i m = _mm256_madd_epi16(mins16, load256(xb + kQ8_KBsums));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(-dmin * dx), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) a.out(r, t0 + t) = hsum(acc[t]);
  }

  template <int R, int T>
  static void tile(const GemmArgs& a, int64_t r0, int64_t t0) {
    for (int r = 0; r < R; ++r) row<T>(a, r0 + r, t0);
  }
};

// Q6_K: 2 halves of 128; in half h the 32-element group k (sub-blocks 8h + 2k and 8h + 2k + 1)
// takes its low 4 bits from ql (low or high nibbles) and its top 2 bits from bits 2k of qh.
// Quants are used unsigned (0..63); the -32 comes back as 32 * sum_g scale_g * bsums_g.
struct Q6KKernel {
  template <int T>
  static void row(const GemmArgs& a, int64_t r, int64_t t0) {
    __m256 acc[T];
    const std::byte* xt[T];
    for (int t = 0; t < T; ++t) {
      acc[t] = _mm256_setzero_ps();
      xt[t] = a.x_row(t0 + t);
    }
    const std::byte* w = a.w_row(r);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m2 = _mm256_set1_epi8(0x03);
    const int64_t nb = a.n / kQKK;
    for (int64_t i = 0; i < nb; ++i) {
      const std::byte* b = w + static_cast<size_t>(i) * kQ6_KBytes;
      for (size_t o = 0; o < kQ6_KBytes; o += 64) prefetch_weights(b + o);
      int8_t sc[16];
      std::memcpy(sc, b + 192, sizeof(sc));
      const float d = half_at(b + 208);
      const __m256i scales16 = _mm256_cvtepi8_epi16(load128(b + 192));
      __m256i isum[T];
      for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const __m256i qh = load256(b + 128 + 32 * h);
        const __m256i ql0 = load256(b + 64 * h);
        const __m256i ql1 = load256(b + 64 * h + 32);
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
        __m256i sv[4];
        for (int k = 0; k < 4; ++k) {
          sv[k] = _mm256_set_m128i(_mm_set1_epi16(sc[8 * h + 2 * k + 1]), _mm_set1_epi16(sc[8 * h + 2 * k]));
        }
        for (int t = 0; t < T; ++t) {
          const std::byte* xq = xt[t] + static_cast<size_t>(i) * kQ8_KBytes + kQ8_KQs + 128 * h;
          for (int k = 0; k < 4; ++k) {
            const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], load256(xq + 32 * k)), sv[k]);
            isum[t] = _mm256_add_epi32(isum[t], p);
          }
        }
      }
      for (int t = 0; t < T; ++t) {
        const std::byte* xb = xt[t] + static_cast<size_t>(i) * kQ8_KBytes;
        const __m256i corr = _mm256_madd_epi16(scales16, load256(xb + kQ8_KBsums));
        const __m256i s = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(corr, 5));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * load_f32(xb)), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) a.out(r, t0 + t) = hsum(acc[t]);
  }

  template <int R, int T>
  static void tile(const GemmArgs& a, int64_t r0, int64_t t0) {
    for (int r = 0; r < R; ++r) row<T>(a, r0 + r, t0);
  }
};

template <typename Kernel>
void set_weight(KernelTable& t, DType type) {
  t.vec_dot[dtype_slot(type)] = vec_dot_by_tile<Kernel>;
  t.gemm[dtype_slot(type)] = gemm_tiled<Kernel, 1, 4>;
}

}  // namespace

void add_avx2_k_quants(KernelTable& t) {
  set_weight<KMinsKernel<false>>(t, DType::kQ4_K);
  set_weight<KMinsKernel<true>>(t, DType::kQ5_K);
  set_weight<Q6KKernel>(t, DType::kQ6_K);
}

}  // namespace lightboat::kernels::detail
