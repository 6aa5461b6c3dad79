// AVX2 + FMA + F16C kernels: activation quantizers (bit-identical to the reference), Q8_0 / Q4_0 /
// Q5_0 / Q4_1 / Q5_1 and F32 / F16 / BF16 dot products and register-blocked gemm. K-quants are in avx2_k.cpp.
#include "kernels/gemm_driver.h"
#include "kernels/isa_tables.h"
#include "kernels/prefetch.h"
#include "kernels/x86/avx2_k.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

// --- activation quantizers ---

// Q8_0: d = amax / 127, q = roundf(x / d), as reference quantize_q8_0 (same fp32 operations).
void quantize_q8_0(const float* x, void* y, int64_t n) {
  auto* out = static_cast<std::byte*>(y);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    const float d = abs_max(xb, kQK) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      q[k] = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(_mm256_loadu_ps(xb + 8 * k), vid)));
    }
    const uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    std::byte* b = out + static_cast<size_t>(i) * kQ8_0Bytes;
    std::memcpy(b, &dh, sizeof(dh));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b + 2), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
  }
}

// Q8_K: the signed extreme (first one on ties) maps to -127; q = min(127, round_even(x * iscale)).
void quantize_q8_k(const float* x, void* y, int64_t n) {
  auto* out = static_cast<std::byte*>(y);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float* xb = x + i * kQKK;
    std::byte* b = out + static_cast<size_t>(i) * kQ8_KBytes;
    const float amax = abs_max(xb, kQKK);
    if (amax == 0.0f) {
      std::memset(b, 0, kQ8_KBytes);
      continue;
    }
    int first = 0;
    for (int j = 0; j < kQKK; j += 8) {
      const __m256 a = _mm256_and_ps(_mm256_loadu_ps(xb + j), abs_mask);
      const int hits = _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (hits != 0) {
        first = j + __builtin_ctz(static_cast<unsigned>(hits));
        break;
      }
    }
    const float iscale = -127.0f / xb[first];
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i max_q = _mm256_set1_epi32(127);
    int16_t bsums[16];
    for (int g = 0; g < 8; ++g) {  // 32 elements per step
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xb + 32 * g + 8 * k), vs);
        const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(r), max_q);
      }
      bsums[2 * g] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(q[0], q[1])));
      bsums[2 * g + 1] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(q[2], q[3])));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(b + 4 + 32 * g), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
    }
    const float d = 1.0f / iscale;
    std::memcpy(b, &d, sizeof(d));
    std::memcpy(b + 4 + kQKK, bsums, sizeof(bsums));
  }
}

void quantize_f16(const float* x, void* y, int64_t n) {
  auto* out = static_cast<std::byte*>(y);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), h);
  }
  for (; i < n; ++i) {
    const uint16_t h = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
    std::memcpy(out + 2 * i, &h, sizeof(h));
  }
}

// fp32 -> bf16 rounding to nearest even, NaNs made quiet (tensor::fp32_to_bf16's rule).
uint16_t bf16_scalar(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void quantize_bf16(const float* x, void* y, int64_t n) {
  auto* out = static_cast<std::byte*>(y);
  int64_t i = 0;
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i inf = _mm256_set1_epi32(0x7f800000);
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
    const __m256i r = _mm256_blendv_epi8(rounded, quiet, is_nan);
    // 8 values of 16 bits in the low halves of the 32-bit lanes: pack (values < 65536, unsigned).
    const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), packed);
  }
  for (; i < n; ++i) {
    const uint16_t h = bf16_scalar(x[i]);
    std::memcpy(out + 2 * i, &h, sizeof(h));
  }
}

// --- Q8_0 / Q4_0 weights with Q8_0 activations ---

struct Q8_0Weights {
  static constexpr size_t kBytes = kQ8_0Bytes;
  static __m256i quants(const std::byte* b) { return load256(b + 2); }
};

struct Q4_0Weights {
  static constexpr size_t kBytes = kQ4_0Bytes;
  static __m256i quants(const std::byte* b) { return unpack_q4_0(b + 2); }
};

struct Q5_0Weights {  // q - 16, q = nibble | 5th bit << 4
  static constexpr size_t kBytes = kQ5_0Bytes;
  static __m256i quants(const std::byte* b) {
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)), _mm256_set1_epi8(16));
  }
};

// Per block: the integer dot of 32 quants in 8 int32 lanes, scaled by d_w * d_x into 8 fp32
// lane accumulators per (row, token).
template <typename Weights>
struct Quant32Kernel {
  template <int R, int T>
  static void tile(const GemmArgs& a, int64_t r0, int64_t t0) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const std::byte* wr[R];
    const std::byte* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = a.w_row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = a.x_row(t0 + t);
    const int64_t nb = a.n / kQK;
    for (int64_t i = 0; i < nb; ++i) {
      __m256i wq[R];
      float wd[R];
      for (int r = 0; r < R; ++r) {
        const std::byte* b = wr[r] + static_cast<size_t>(i) * Weights::kBytes;
        prefetch_weights(b);
        wq[r] = Weights::quants(b);
        wd[r] = half_at(b);
      }
      for (int t = 0; t < T; ++t) {
        const std::byte* b = xt[t] + static_cast<size_t>(i) * kQ8_0Bytes;
        const __m256i xq = load256(b + 2);
        const float xd = half_at(b);
        for (int r = 0; r < R; ++r) {
          const __m256 s = _mm256_cvtepi32_ps(dot_i8(wq[r], xq));
          acc[r][t] = _mm256_fmadd_ps(s, _mm256_set1_ps(wd[r] * xd), acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) a.out(r0 + r, t0 + t) = hsum(acc[r][t]);
  }
};

// --- Q4_1 / Q5_1 weights (x = d * q + m) with Q8_1 activations (d_x, s_x = d_x * sum(q_x)) ---

struct Q4_1Weights {
  static constexpr size_t kBytes = kQ4_1Bytes;
  static __m256i quants(const std::byte* b) { return nibbles(b + 4); }
};

struct Q5_1Weights {
  static constexpr size_t kBytes = kQ5_1Bytes;
  static __m256i quants(const std::byte* b) { return _mm256_or_si256(nibbles(b + 8), fifth_bits(b + 4)); }
};

// Per block: d_w * d_x * (integer dot of the unsigned weight quants with the signed activation
// quants, maddubs: at most 2 * 31 * 127 per 16-bit pair) into 8 fp32 lanes, and m_w * s_x (the
// minimum times the activations' sum) into one fp32 sum per output.
template <typename Weights>
struct Quant32MinKernel {
  template <int R, int T>
  static void tile(const GemmArgs& a, int64_t r0, int64_t t0) {
    __m256 acc[R][T];
    float offset[R][T];
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm256_setzero_ps();
        offset[r][t] = 0.0f;
      }
    }
    const std::byte* wr[R];
    const std::byte* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = a.w_row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = a.x_row(t0 + t);
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t nb = a.n / kQK;
    for (int64_t i = 0; i < nb; ++i) {
      __m256i wq[R];
      float wd[R], wm[R];
      for (int r = 0; r < R; ++r) {
        const std::byte* b = wr[r] + static_cast<size_t>(i) * Weights::kBytes;
        prefetch_weights(b);
        wq[r] = Weights::quants(b);
        wd[r] = half_at(b);
        wm[r] = half_at(b + 2);
      }
      for (int t = 0; t < T; ++t) {
        const std::byte* b = xt[t] + static_cast<size_t>(i) * kQ8_1Bytes;
        const __m256i xq = load256(b + 4);
        const float xd = half_at(b);
        const float xs = half_at(b + 2);
        for (int r = 0; r < R; ++r) {
          const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], xq), ones));
          acc[r][t] = _mm256_fmadd_ps(s, _mm256_set1_ps(wd[r] * xd), acc[r][t]);
          offset[r][t] += wm[r] * xs;
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) a.out(r0 + r, t0 + t) = hsum(acc[r][t]) + offset[r][t];
  }
};

// --- F32 / F16 / BF16: 8 elements per step, the same format on both sides ---

struct F32Elems {
  static constexpr size_t kSize = 4;
  static __m256 load8(const std::byte* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static float load1(const std::byte* p) { return load_f32(p); }
};

struct F16Elems {
  static constexpr size_t kSize = 2;
  static __m256 load8(const std::byte* p) { return _mm256_cvtph_ps(load128(p)); }
  static float load1(const std::byte* p) { return _cvtsh_ss(load_u16(p)); }
};

struct BF16Elems {
  static constexpr size_t kSize = 2;
  static __m256 load8(const std::byte* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
  }
  static float load1(const std::byte* p) {
    const uint32_t u = static_cast<uint32_t>(load_u16(p)) << 16;
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
  }
};

template <typename Elems>
struct DenseKernel {
  template <int R, int T>
  static void tile(const GemmArgs& a, int64_t r0, int64_t t0) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const std::byte* wr[R];
    const std::byte* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = a.w_row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = a.x_row(t0 + t);
    int64_t i = 0;
    for (; i + 8 <= a.n; i += 8) {
      const size_t off = static_cast<size_t>(i) * Elems::kSize;
      __m256 wv[R];
      for (int r = 0; r < R; ++r) {
        prefetch_weights(wr[r] + off);
        wv[r] = Elems::load8(wr[r] + off);
      }
      for (int t = 0; t < T; ++t) {
        const __m256 xv = Elems::load8(xt[t] + off);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) {
        float tail = 0.0f;
        for (int64_t j = i; j < a.n; ++j) {
          const size_t off = static_cast<size_t>(j) * Elems::kSize;
          tail += Elems::load1(wr[r] + off) * Elems::load1(xt[t] + off);
        }
        a.out(r0 + r, t0 + t) = hsum(acc[r][t]) + tail;
      }
    }
  }
};

// 16 ymm registers: 2 rows x 4 tokens of accumulators leaves room for the operands.
template <typename Kernel>
void set_weight(KernelTable& t, DType type) {
  t.vec_dot[dtype_slot(type)] = vec_dot_by_tile<Kernel>;
  t.gemm[dtype_slot(type)] = gemm_tiled<Kernel, 2, 4>;
}

KernelTable make_table() {
  KernelTable t;
  t.isa = Isa::kAvx2;
  t.quantize_row[dtype_slot(DType::kQ8_0)] = quantize_q8_0;
  t.quantize_row[dtype_slot(DType::kQ8_K)] = quantize_q8_k;
  t.quantize_row[dtype_slot(DType::kF16)] = quantize_f16;
  t.quantize_row[dtype_slot(DType::kBF16)] = quantize_bf16;
  set_weight<Quant32Kernel<Q8_0Weights>>(t, DType::kQ8_0);
  set_weight<Quant32Kernel<Q4_0Weights>>(t, DType::kQ4_0);
  set_weight<Quant32Kernel<Q5_0Weights>>(t, DType::kQ5_0);
  set_weight<Quant32MinKernel<Q4_1Weights>>(t, DType::kQ4_1);
  set_weight<Quant32MinKernel<Q5_1Weights>>(t, DType::kQ5_1);
  set_weight<DenseKernel<F32Elems>>(t, DType::kF32);
  set_weight<DenseKernel<F16Elems>>(t, DType::kF16);
  set_weight<DenseKernel<BF16Elems>>(t, DType::kBF16);
  add_avx2_k_quants(t);
  add_avx2_attention(t);
  return t;
}

}  // namespace

const KernelTable& avx2_table() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace lightboat::kernels::detail
