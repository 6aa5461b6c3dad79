// AMX-INT8 gemm for Q6_K weights with Q8_K activations (packed by amx_k.cpp's pack_q8_k, layout
// in amx_common.h; the table's design is in amx.cpp).
//
// A Q6_K super-block of one row is x_e = d * sc_g * v_e over 16 sub-blocks g of 16 elements,
// with int8 sc_g and v_e = q_e - 32 in -32..31. Against Q8_K (d_x, int8 q_x) its dot product is
// exactly d * d_x * S with the integer S = sum_e sc_g v_e q_x,e. sc_g v_e does not fit in int8,
// so both factors are split around zero: v = 8 vh + vl (vl in -4..3, vh in -4..4) and
// sc = 8 sh + sl (sl in -4..3, sh in -16..16), and
//   sc v = vl sl + 8 (vl sh + vh sl) + 64 vh sh,
// three terms within int8 (|.| <= 16, 80, 64). They are three A tiles per 64-element chunk (the
// per-sub-block scales live in A, so the chunk's four sub-blocks share a tile), summed in three C
// tiles over a whole super-block (12 TDPBSSD per 16 x 16), then S = C0 + 8 C1 + 64 C2 (|S| < 2^28)
// and one fp32 step per super-block: acc = fma(float(S), d * d_x, acc). (Splits at 0..7 / 0..15
// need four terms: 16 TDPBSSD, about 6% slower.) The VNNI kernels below form the same S another
// way (unsigned q, the -32 through Q8_K's bsums) and take the same fp32 step, so a token's
// outputs are bit-identical alone or in a batch.
//
// GCC 12's 512-bit intrinsics: the same -Wuninitialized false positive as in amx.cpp.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm_driver.h"
#include "kernels/prefetch.h"
#include "kernels/x86/amx_common.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

constexpr size_t kXQs = 4;  // Q8_K: d (fp32) | qs[256] | bsums[16] (int16)
constexpr size_t kXBsums = 260;
constexpr size_t kWQh = 128;  // Q6_K: ql[128] | qh[64] | scales[16] (int8) | d (fp16)
constexpr size_t kWScales = 192;
constexpr size_t kWD = 208;

// Tile registers: C 0..2 (the three terms, in the order above), A 3..5 (the same), B 6; all
// 16 x 64 bytes.
TileConfig make_config() {
  TileConfig c;
  for (int t = 0; t < 7; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  return c;
}

// The unsigned quants (0..63) of one super-block in 8 groups of 32 elements: group 4h + k is
// elements 128h + 32k .. + 31 (sub-blocks 8h + 2k and 8h + 2k + 1); low 4 bits from ql (low or
// high nibbles), top 2 from bits 2k of qh (kernels/reference/quants_k.cpp has the layout).
inline void unpack_q6_k(const std::byte* b, __m256i* q) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  for (int h = 0; h < 2; ++h) {
    const __m256i qh = load256(b + kWQh + 32 * h);
    const __m256i ql0 = load256(b + 64 * h);
    const __m256i ql1 = load256(b + 64 * h + 32);
    const __m256i lows[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                             _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                             _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
    for (int k = 0; k < 4; ++k) {
      const __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2);
      q[4 * h + k] = _mm256_or_si256(lows[k], _mm256_slli_epi16(top, 4));
    }
  }
}

// The A tiles of one super-block of 16 rows: [product][chunk][row][64 bytes]; chunk c holds
// groups 2c and 2c + 1.
struct Q6Tiles {
  alignas(64) int8_t a[3][kKChunks][kTile * 64];
  alignas(64) float d[kTile];
};

void unpack_tiles(const std::byte* w, size_t row_bytes, int64_t i, Q6Tiles& t) {
  for (int r = 0; r < kTile; ++r) {
    const std::byte* b = w + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(i) * kQ6_KBytes;
    t.d[r] = half_at(b + kWD);
    int16_t sl[16], sh[16];
    for (int g = 0; g < 16; ++g) {
      const int sc = static_cast<int8_t>(b[kWScales + static_cast<size_t>(g)]);
      sh[g] = static_cast<int16_t>((sc + 4) >> 3);  // arithmetic: floor
      sl[g] = static_cast<int16_t>(sc - 8 * sh[g]);
    }
    __m256i q[8];
    unpack_q6_k(b, q);
    for (int k = 0; k < 8; ++k) {  // group k: sub-blocks 2k (low 16 lanes) and 2k + 1
      const __m512i v = _mm512_sub_epi16(_mm512_cvtepu8_epi16(q[k]), _mm512_set1_epi16(32));
      const __m512i vh = _mm512_srai_epi16(_mm512_add_epi16(v, _mm512_set1_epi16(4)), 3);
      const __m512i vl = _mm512_sub_epi16(v, _mm512_slli_epi16(vh, 3));
      const __m512i s_lo = _mm512_inserti64x4(_mm512_set1_epi16(sl[2 * k]), _mm256_set1_epi16(sl[2 * k + 1]), 1);
      const __m512i s_hi = _mm512_inserti64x4(_mm512_set1_epi16(sh[2 * k]), _mm256_set1_epi16(sh[2 * k + 1]), 1);
      const size_t o = static_cast<size_t>(64 * r + 32 * (k % 2));
      const __m512i p[3] = {_mm512_mullo_epi16(vl, s_lo),
                            _mm512_add_epi16(_mm512_mullo_epi16(vl, s_hi), _mm512_mullo_epi16(vh, s_lo)),
                            _mm512_mullo_epi16(vh, s_hi)};
      for (int j = 0; j < 3; ++j) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(t.a[j][k / 2] + o), _mm512_cvtepi16_epi8(p[j]));
      }
    }
  }
}

// Rows [r0, r0 + 16) x token tiles [tile0, tile1) (at most kChunkTiles).
void row_tile(const Call& c, int64_t r0, int64_t tile0, int64_t tile1) {
  alignas(64) float acc[kChunkTiles][kTile * kTile];  // [token tile][row][token]
  alignas(64) int32_t sums[3][kTile * kTile];         // C 0..2 stored
  alignas(64) Q6Tiles a;
  std::memset(acc, 0, sizeof(acc[0]) * static_cast<size_t>(tile1 - tile0));  // only the chunk's token tiles
  const std::byte* w = c.w + static_cast<size_t>(r0) * c.w_row_bytes;
  for (int64_t i = 0; i < c.nb; ++i) {
    unpack_tiles(w, c.w_row_bytes, i, a);
    for (int64_t tt = tile0; tt < tile1; ++tt) {
      const std::byte* rec = c.x.packed + static_cast<size_t>(tt * c.nb + i) * kKRecordBytes;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      for (int ch = 0; ch < kKChunks; ++ch) {
        _tile_loadd(6, rec + ch * kKChunkBytes, 64);
        _tile_loadd(3, a.a[0][ch], 64);
        _tile_loadd(4, a.a[1][ch], 64);
        _tile_loadd(5, a.a[2][ch], 64);
        _tile_dpbssd(0, 3, 6);
        _tile_dpbssd(1, 4, 6);
        _tile_dpbssd(2, 5, 6);
      }
      _tile_stored(0, sums[0], 64);
      _tile_stored(1, sums[1], 64);
      _tile_stored(2, sums[2], 64);
      const __m512 dx = _mm512_load_ps(rec + kKChunks * kKChunkBytes);
      float* s = acc[tt - tile0];
      for (int m = 0; m < kTile; ++m) {
        __m512i v = _mm512_load_si512(sums[0] + kTile * m);
        v = _mm512_add_epi32(v, _mm512_slli_epi32(_mm512_load_si512(sums[1] + kTile * m), 3));
        v = _mm512_add_epi32(v, _mm512_slli_epi32(_mm512_load_si512(sums[2] + kTile * m), 6));
        const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(a.d[m]), dx);
        _mm512_store_ps(s + kTile * m, _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), scale, _mm512_load_ps(s + kTile * m)));
      }
    }
  }
  for (int64_t tt = tile0; tt < tile1; ++tt) {
    const int64_t valid = c.x.n_tokens - tt * kTile < kTile ? c.x.n_tokens - tt * kTile : kTile;
    const float* s = acc[tt - tile0];
    for (int64_t t = 0; t < valid; ++t) {
      float* out = c.y + (tt * kTile + t) * c.y_stride + r0;
      for (int m = 0; m < kTile; ++m) out[m] = s[kTile * m + t];
    }
  }
}

// ---- VNNI kernels in the tiles' order of additions ----

// Row r x tokens [t0, t0 + T): per super-block the exact S (maddubs of the unsigned quants, madd
// by the scales, minus 32 * sum_g sc_g bsums_g), then acc = fma(float(S), d * d_x, acc).
template <int T>
void exact_row(const GemmArgs& a, int64_t r, int64_t t0) {
  __m128 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm_setzero_ps();
  const std::byte* w = a.w_row(r);
  for (int64_t i = 0; i < a.n / kQKK; ++i) {
    const std::byte* b = w + static_cast<size_t>(i) * kQ6_KBytes;
    for (size_t o = 0; o < kQ6_KBytes; o += 64) prefetch_weights(b + o);
    int8_t sc[16];
    std::memcpy(sc, b + kWScales, sizeof(sc));
    const __m256i scales16 = _mm256_cvtepi8_epi16(load128(b + kWScales));
    __m256i q[8];
    unpack_q6_k(b, q);
    const float d = half_at(b + kWD);
    for (int t = 0; t < T; ++t) {
      const std::byte* xb = a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes;
      __m256i isum = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
        const __m256i sv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
        // maddubs pairs stay within int16 (2 * 63 * 128); madd by the scale gives int32.
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], load256(xb + kXQs + 32 * k)), sv));
      }
      const __m256i corr = _mm256_madd_epi16(scales16, load256(xb + kXBsums));
      const int s = hsum_i32(_mm256_sub_epi32(isum, _mm256_slli_epi32(corr, 5)));
      acc[t] = _mm_fmadd_ss(_mm_set_ss(static_cast<float>(s)), _mm_set_ss(d * load_f32(xb)), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) a.out(r, t0 + t) = _mm_cvtss_f32(acc[t]);
}

float exact_vec_dot(int64_t n, const void* w, const void* x) {
  float y = 0.0f;
  const GemmArgs a{n, static_cast<const std::byte*>(w), 0, static_cast<const std::byte*>(x), 0, &y, 1};
  exact_row<1>(a, 0, 0);
  return y;
}

void exact_gemm(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  const GemmArgs a{n, w, w_row_bytes, x, x_row_bytes, y, y_stride};
  for (int64_t r = 0; r < n_rows; ++r) {
    int64_t t = 0;
    for (; t + 4 <= n_tokens; t += 4) exact_row<4>(a, r, t);
    for (; t < n_tokens; ++t) exact_row<1>(a, r, t);
  }
}

void packed_gemm(const PackedActivations& x, const std::byte* w, size_t w_row_bytes, int64_t n_rows, float* y,
                 int64_t y_stride) {
  static const TileConfig config = make_config();
  run_packed(
      config, Call{x, w, w_row_bytes, y, y_stride, x.n / kQKK}, n_rows,
      [](const Call& c, int64_t n_full, int64_t tile0, int64_t tile1) {
        for (int64_t r = 0; r < n_full; r += kTile) row_tile(c, r, tile0, tile1);
      },
      [&](int64_t first) {  // the last rows of a matrix whose row count is not a multiple of 16
        exact_gemm(x.n, w + static_cast<size_t>(first) * w_row_bytes, w_row_bytes, n_rows - first, x.rows, x.row_bytes,
                   x.n_tokens, y + first, y_stride);
      });
}

}  // namespace

void add_amx_q6_k(KernelTable& t) {
  const size_t q6_k = dtype_slot(DType::kQ6_K);
  t.vec_dot[q6_k] = exact_vec_dot;
  t.gemm[q6_k] = exact_gemm;
  t.packed_gemm[q6_k] = packed_gemm;
}

}  // namespace lightboat::kernels::detail
