// AVX-512 (F, BW, VL) + VNNI kernels. On the 256-bit registers (AVX512VL: 32 of them, so 4 x 4
// tiles fit), vpdpbusd multiplies unsigned by signed bytes and sums groups of 4 into int32 lanes
// in one instruction. Weight quants are made unsigned by a bias (Q8_0: +128, Q4_0: its nibbles
// as stored, i.e. q - 8 + 8; Q5_0: nibble | 5th bit, q - 16 + 16), and the bias times the
// activations' block sum is subtracted up front by starting the accumulation from -bias * sum(x),
// computed once per (token, block) and shared by the tile's rows.
//
// Dense weights (F32, F16, BF16) use the full 512-bit registers: 16 fp32 lanes per FMA, fp16
// widened by vcvtph2ps, bf16 by a 16-bit shift, and a tile of kDenseRows x kDenseTokens
// accumulators out of the 32 zmm registers. The activation quantizers are in avx512_quantize.cpp,
// attention in avx512_attention.cpp; everything else comes from the AVX2 table.
// GCC 12's 512-bit intrinsics pass _mm512_undefined_ps() as the unused merge source, which its
// -Wuninitialized then reports from inside the header.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/aligned_buffer.h"
#include "kernels/gemm_driver.h"
#include "kernels/isa_tables.h"
#include "kernels/prefetch.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

struct Q8_0Biased {
  static constexpr size_t kBytes = kQ8_0Bytes;
  static constexpr char kBias = static_cast<char>(0x80);  // 128 as an unsigned byte
  static __m256i quants(const std::byte* b) { return _mm256_xor_si256(load256(b + 2), _mm256_set1_epi8(kBias)); }
};

struct Q4_0Biased {
  static constexpr size_t kBytes = kQ4_0Bytes;
  static constexpr char kBias = 8;
  static __m256i quants(const std::byte* b) { return nibbles(b + 2); }
};

struct Q5_0Biased {  // q = nibble | 5th bit << 4, stored q - 16 + 16
  static constexpr size_t kBytes = kQ5_0Bytes;
  static constexpr char kBias = 16;
  static __m256i quants(const std::byte* b) { return _mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)); }
};

template <typename Weights>
struct VnniKernel {
  template <int R, int T>
  static void tile(const GemmArgs& a, int64_t r0, int64_t t0) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const std::byte* wr[R];
    const std::byte* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = a.w_row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = a.x_row(t0 + t);
    const __m256i bias = _mm256_set1_epi8(Weights::kBias);
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
        const __m256i start = _mm256_sub_epi32(_mm256_setzero_si256(),
                                               _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, xq));
        for (int r = 0; r < R; ++r) {
          const __m256 s = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(start, wq[r], xq));
          acc[r][t] = _mm256_fmadd_ps(s, _mm256_set1_ps(wd[r] * xd), acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) a.out(r0 + r, t0 + t) = hsum(acc[r][t]);
  }
};

// 16 elements of a dense row widened to fp32; load_tail reads only the first `count` (< 16) and
// zeroes the other lanes (masked loads never touch, so never fault on, the bytes past the row).
struct F32Elems16 {
  static constexpr size_t kSize = 4;
  static __m512 load(const std::byte* p) { return _mm512_loadu_ps(p); }
  static __m512 load_tail(const std::byte* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};

struct F16Elems16 {
  static constexpr size_t kSize = 2;
  static __m512 load(const std::byte* p) { return _mm512_cvtph_ps(load256(p)); }
  static __m512 load_tail(const std::byte* p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  }
};

struct BF16Elems16 {  // bf16 is the high half of an fp32: widening is a shift
  static constexpr size_t kSize = 2;
  static __m512 widen(__m256i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)); }
  static __m512 load(const std::byte* p) { return widen(load256(p)); }
  static __m512 load_tail(const std::byte* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};

// Dense dot products, R rows x T tokens. Every output's fp32 sum runs in the same order whatever
// the tile shape: lane j of its accumulator takes elements j, j + 16, ..., the tail (n % 16
// elements, zero-padded) is one more FMA into the same lanes, then a fixed-order lane reduction.
// So a token's outputs are bit-identical alone (decode, T = 1) or in a batch, and vec_dot (the
// 1 x 1 tile) equals the gemm bit for bit.
template <typename Elems, bool kPrefetch = true>
struct Dense16Kernel {
  template <int R, int T>
  static void tile(const GemmArgs& a, int64_t r0, int64_t t0) {
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    const std::byte* wr[R];
    const std::byte* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = a.w_row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = a.x_row(t0 + t);
    int64_t i = 0;
    for (; i + 16 <= a.n; i += 16) {
      const size_t off = static_cast<size_t>(i) * Elems::kSize;
      __m512 wv[R];
      for (int r = 0; r < R; ++r) {
        if constexpr (kPrefetch) prefetch_weights(wr[r] + off);
        wv[r] = Elems::load(wr[r] + off);
      }
      for (int t = 0; t < T; ++t) {
        const __m512 xv = Elems::load(xt[t] + off);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
    if (i < a.n) {
      const auto m = static_cast<__mmask16>((1u << (a.n - i)) - 1u);
      const size_t off = static_cast<size_t>(i) * Elems::kSize;
      __m512 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = Elems::load_tail(wr[r] + off, m);
      for (int t = 0; t < T; ++t) {
        const __m512 xv = Elems::load_tail(xt[t] + off, m);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) a.out(r0 + r, t0 + t) = _mm512_reduce_add_ps(acc[r][t]);
  }
};

#ifndef LIGHTBOAT_DENSE_ROWS
#define LIGHTBOAT_DENSE_ROWS 6
#endif
#ifndef LIGHTBOAT_DENSE_TOKENS
#define LIGHTBOAT_DENSE_TOKENS 4
#endif
// 32 zmm registers: R x T accumulators + R weight vectors + 1 activation vector.
constexpr int kDenseRows = LIGHTBOAT_DENSE_ROWS;
constexpr int kDenseTokens = LIGHTBOAT_DENSE_TOKENS;
static_assert(kDenseRows * kDenseTokens + kDenseRows + 1 <= 32, "dense tile exceeds the zmm registers");

// The tile of rr <= R rows and tt <= T tokens, for the remainders of a range: gemm_tiled would
// take them one row or one token at a time, which at 6 rows per tile and 16-row thread grains
// (matmul.cpp) would be a quarter of the rows. Tile shape never changes an output's bits.
template <typename Kernel, int R, int T>
void tile_rows_up_to(const GemmArgs& a, int64_t r0, int64_t t0, int64_t rr) {
  if constexpr (R > 1) {
    if (rr < R) return tile_rows_up_to<Kernel, R - 1, T>(a, r0, t0, rr);
  }
  Kernel::template tile<R, T>(a, r0, t0);
}

template <typename Kernel, int R, int T>
void tile_up_to(const GemmArgs& a, int64_t r0, int64_t t0, int64_t rr, int64_t tt) {
  if constexpr (T > 1) {
    if (tt < T) return tile_up_to<Kernel, R, T - 1>(a, r0, t0, rr, tt);
  }
  tile_rows_up_to<Kernel, R, T>(a, r0, t0, rr);
}

// gemm_tiled's loop nest (token chunks that stay in L2, row groups whose weights stay in L1)
// with remainder tiles as wide as what is left.
template <typename Kernel, int R, int T>
void dense_loop(const GemmArgs& a, int64_t n_rows, int64_t n_tokens) {
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
    const int64_t t1 = t0 + kTokenChunk < n_tokens ? t0 + kTokenChunk : n_tokens;
    for (int64_t r = 0; r < n_rows; r += R) {
      const int64_t rr = n_rows - r < R ? n_rows - r : R;
      for (int64_t t = t0; t < t1; t += T) tile_up_to<Kernel, R, T>(a, r, t, rr, t1 - t < T ? t1 - t : T);
    }
  }
}

// rows x n elements (row stride src_row_bytes) widened to fp32 at dst [rows, n].
template <typename Elems, bool kPrefetch>
void widen_rows(const std::byte* src, size_t src_row_bytes, int64_t rows, int64_t n, float* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const std::byte* s = src + static_cast<size_t>(r) * src_row_bytes;
    float* d = dst + r * n;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      if constexpr (kPrefetch) prefetch_weights(s + static_cast<size_t>(i) * Elems::kSize);
      _mm512_storeu_ps(d + i, Elems::load(s + static_cast<size_t>(i) * Elems::kSize));
    }
    if (i < n) {
      const auto m = static_cast<__mmask16>((1u << (n - i)) - 1u);
      _mm512_mask_storeu_ps(d + i, m, Elems::load_tail(s + static_cast<size_t>(i) * Elems::kSize, m));
    }
  }
}

// Below this many tokens the half-precision gemm converts as it goes (decode: each weight is used
// once, so widening it into a buffer first would only add a store and a load).
constexpr int64_t kWidenMinTokens = 4;

// The gemm for weights of Elems. Half-precision batches are widened to fp32 first: the chunk's
// activations once, each row group's weights once per chunk (R x n floats, in L1), so the inner
// loop is FMAs from fp32 loads, with no vcvtph2ps competing for the FMA ports. The products
// and their order are those of the direct kernel (widening is exact), so the bits are the same.
template <typename Elems, int R, int T>
void dense_gemm(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  const GemmArgs a{n, w, w_row_bytes, x, x_row_bytes, y, y_stride};
  if constexpr (Elems::kSize == 4) {
    dense_loop<Dense16Kernel<Elems>, R, T>(a, n_rows, n_tokens);
  } else {
    thread_local AlignedBuffer x_scratch, w_scratch;
    const int64_t tc_max = n_tokens < kTokenChunk ? n_tokens : kTokenChunk;
    float* xs = n_tokens >= kWidenMinTokens ? x_scratch.get_floats(static_cast<size_t>(tc_max * n)) : nullptr;
    float* ws = xs != nullptr ? w_scratch.get_floats(static_cast<size_t>(R * n)) : nullptr;
    if (ws == nullptr) return dense_loop<Dense16Kernel<Elems>, R, T>(a, n_rows, n_tokens);
    const size_t f_row_bytes = static_cast<size_t>(n) * sizeof(float);
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
      const int64_t tc = n_tokens - t0 < kTokenChunk ? n_tokens - t0 : kTokenChunk;
      widen_rows<Elems, false>(a.x_row(t0), x_row_bytes, tc, n, xs);
      for (int64_t r = 0; r < n_rows; r += R) {
        const int64_t rr = n_rows - r < R ? n_rows - r : R;
        widen_rows<Elems, true>(a.w_row(r), w_row_bytes, rr, n, ws);
        const GemmArgs b{n, reinterpret_cast<const std::byte*>(ws), f_row_bytes,
                         reinterpret_cast<const std::byte*>(xs), f_row_bytes, y + t0 * y_stride + r, y_stride};
        for (int64_t t = 0; t < tc; t += T)
          tile_up_to<Dense16Kernel<F32Elems16, false>, R, T>(b, 0, t, rr, tc - t < T ? tc - t : T);
      }
    }
  }
}

template <typename Elems>
void set_dense(KernelTable& t, DType type) {
  t.vec_dot[dtype_slot(type)] = vec_dot_by_tile<Dense16Kernel<Elems>>;
  t.gemm[dtype_slot(type)] = dense_gemm<Elems, kDenseRows, kDenseTokens>;
}

template <typename Kernel>
void set_weight(KernelTable& t, DType type) {
  t.vec_dot[dtype_slot(type)] = vec_dot_by_tile<Kernel>;
  t.gemm[dtype_slot(type)] = gemm_tiled<Kernel, 4, 4>;
}

KernelTable make_table() {
  KernelTable t = avx2_table();
  t.isa = Isa::kAvx512;
  set_weight<VnniKernel<Q8_0Biased>>(t, DType::kQ8_0);
  set_weight<VnniKernel<Q4_0Biased>>(t, DType::kQ4_0);
  set_weight<VnniKernel<Q5_0Biased>>(t, DType::kQ5_0);
  set_dense<F32Elems16>(t, DType::kF32);
  set_dense<F16Elems16>(t, DType::kF16);
  set_dense<BF16Elems16>(t, DType::kBF16);
  add_avx512_attention(t);
  add_avx512_quantizers(t);
  return t;
}

}  // namespace

const KernelTable& avx512_table() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace lightboat::kernels::detail
