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
// way (unsigned q against the activations, the -32 through per-token sums of 4 activations, the
// scales by vpdpwssd) and take the same fp32 step, so a token's outputs are bit-identical alone
// or in a batch.
//
// GCC 12's 512-bit intrinsics: the same -Wuninitialized false positive as in amx.cpp.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <array>
#include <cstring>

#include "kernels/gemm_driver.h"
#include "kernels/prefetch.h"
#include "kernels/x86/amx_common.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

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
//
// Decode streams the weights once per token, so these must keep up with memory (~15 GB/s on one
// thread: ~14 super-blocks of 210 bytes per microsecond). Per row and super-block, in 512-bit
// registers:
//   * unpack: the 256 unsigned quants (0..63) in element order in 4 registers (q[c] = elements
//     64c .. 64c + 63). ql's 64 bytes of half h are elements 128h .. +63 in their low nibbles and
//     128h + 64 .. +127 in their high ones; qh's 32 bytes of half h, broadcast to both 256-bit
//     halves, give element 128h + 32k + j its top bits at bits 2k of byte j (the upper half
//     shifted right by 2 so that bits 0-1 / 4-5 serve both nibbles). Three shifts, an and and two
//     bit-selects (vpternlog) per half.
//   * products: vpdpbusd of q (unsigned) with the activations, accumulated onto -32 * (the sum of
//     the same 4 activations), precomputed per token: lane = sum of 4 (q - 32) x, |.| <= 4 * 32 *
//     128 = 2^14, so two registers pack to int16 without saturation (vpackssdw).
//   * scales: vpdpwssd of those int16 lanes with the sub-block's scale (each int16 lane comes from
//     4 elements of one 16-element sub-block), two per super-block, into 16 int32 lanes whose sum
//     is the exact S. The int16 scales per lane are a vpshufb of the 16 scale bytes into the high
//     byte, then an arithmetic shift right by 8.
// Sixteen rows at a time share one reduction of their S (lane = row, reduce_16_rows) and one fp32
// step for all 16: acc = fma(float(S), d_w * d_x, acc), as the tiles take it. The previous kernel
// (256-bit maddubs / madd, one row at a time, bsums for the -32) against this one, one thread, CPU
// time on the shared 2-vCPU VM (kernels_bench, medians of 5 interleaved): a cache-resident 512 x
// 2048 matrix 62 -> 26 us; 16384 x 2048 at 1, 2, 4 tokens 2.29 -> 1.17, 4.28 -> 1.56, 4.69 ->
// 2.41 ms. Past the cache (262144 x 2048) software prefetch is worth 60 -> 40 ms.

// The unsigned quants of one super-block, q[c] = elements 64c .. 64c + 63.
inline void unpack_q6_k_512(const std::byte* b, __m512i* q) {
  const __m512i m0f = _mm512_set1_epi8(0x0f);
  const __m512i m33 = _mm512_set1_epi8(0x33);
  constexpr __mmask32 kUpperWords = 0xffff0000u;
  for (int h = 0; h < 2; ++h) {
    const __m512i ql = _mm512_loadu_si512(b + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(load256(b + kWQh + 32 * h));
    // Byte j of either 256-bit half: top bits of its low-nibble element at bits 0-1, of its
    // high-nibble element at bits 4-5.
    const __m512i top = _mm512_and_si512(_mm512_mask_srli_epi16(qh, kUpperWords, qh, 2), m33);
    // 0xe4: bits where m0f is set from the first operand, the others from the second.
    q[2 * h] = _mm512_ternarylogic_epi32(ql, _mm512_slli_epi16(top, 4), m0f, 0xe4);
    q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), top, m0f, 0xe4);
  }
}

// The super-block's 16 scales as int16 against pack(d[0], d[1]) and pack(d[2], d[3]) below: in
// 128-bit lane m, words 0..3 scale sub-block m (resp. 8 + m) and words 4..7 sub-block 4 + m (12 + m).
inline void scales_q6_k_512(const std::byte* b, __m512i* s) {
  const __m512i sc = _mm512_broadcast_i32x4(load128(b + kWScales));
  // Word w of lane m of s[j]: its high byte takes scale 8j + m (w < 4) or 8j + 4 + m, its low
  // byte is zeroed (an index with the top bit set).
  alignas(64) static constexpr std::array<std::array<int8_t, 64>, 2> kIdx = [] {
    std::array<std::array<int8_t, 64>, 2> t{};
    for (int j = 0; j < 2; ++j) {
      for (int i = 0; i < 32; ++i) {  // word i = 8m + w
        t[j][2 * i] = -1;
        t[j][2 * i + 1] = static_cast<int8_t>(8 * j + i / 8 + (i % 8 < 4 ? 0 : 4));
      }
    }
    return t;
  }();
  for (int j = 0; j < 2; ++j) {
    s[j] = _mm512_srai_epi16(_mm512_shuffle_epi8(sc, _mm512_load_si512(kIdx[j].data())), 8);
  }
}

// -32 * (sum of each 4 consecutive activations) of super-block i of a token, per vpdpbusd lane.
inline void offsets_q8_k(const std::byte* xb, __m512i* c) {
  const __m512i k32 = _mm512_set1_epi8(32);
  for (int k = 0; k < 4; ++k) {
    c[k] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), k32,
                                                                        _mm512_loadu_si512(xb + kQ8_KQs + 64 * k)));
  }
}

// 16 int32 lanes summing to the exact S of one row and super-block against one token.
inline __m512i row_sums(const __m512i* q, const __m512i* s, const std::byte* xb, const __m512i* c) {
  __m512i d[4];
  for (int k = 0; k < 4; ++k) d[k] = _mm512_dpbusd_epi32(c[k], q[k], _mm512_loadu_si512(xb + kQ8_KQs + 64 * k));
  const __m512i lo = _mm512_madd_epi16(_mm512_packs_epi32(d[0], d[1]), s[0]);
  return _mm512_dpwssd_epi32(lo, _mm512_packs_epi32(d[2], d[3]), s[1]);
}

// The lines that start within a super-block (3 or 4 of them; kernels/prefetch.h).
template <int kLocality = LIGHTBOAT_PREFETCH_LOCALITY>
inline void prefetch_super_block(const std::byte* p) {
  prefetch_lines<kLocality>(p, kQ6_KBytes);
}

// Rows [r0, r0 + 16) x tokens [t0, t0 + T) (T <= 4).
template <int T, bool kStrided = false>
void exact_16_rows(const GemmArgs& a, int64_t r0, int64_t t0) {
  const int64_t nb = a.n / kQKK;
  // d of each row sits in the last 2 bytes of a super-block; gather the 4 bytes ending there.
  const __m512i lane_rows = _mm512_add_epi32(
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
                         _mm512_set1_epi32(static_cast<int>(a.w_row_bytes))),
      _mm512_set1_epi32(static_cast<int>(kWD) - 2));
  // Super-blocks are consumed 16 rows at a time, so "ahead" in consumption order is the same row
  // kAhead super-blocks on, or past the row's end the next 16 rows' first ones. Short rows take
  // the next 16 rows in address order instead (kLinearPrefetchMaxRowBytes, kernels/prefetch.h):
  // super-block i of row j asks for the (16 i + j)-th super-block of the next 16 rows.
  constexpr int64_t kAhead =
      (static_cast<int64_t>(kWeightPrefetchBytes) + kTile * static_cast<int64_t>(kQ6_KBytes) - 1) /
      (kTile * static_cast<int64_t>(kQ6_KBytes));
  const std::byte* w = a.w_row(r0);
  const bool linear = !kStrided && linear_prefetch_rows(static_cast<size_t>(nb) * kQ6_KBytes, a.w_row_bytes);
  // (strided tiles never read next_rows: their rows lie kTile strides apart, not end to end)
  const std::byte* next_rows = linear ? w + static_cast<size_t>(kTile) * a.w_row_bytes : w;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const std::byte* wb = w + static_cast<size_t>(i) * kQ6_KBytes;
    const std::byte* linear_pf = linear ? next_rows + static_cast<size_t>(i * kTile) * kQ6_KBytes : wb;
    const ptrdiff_t ahead = static_cast<ptrdiff_t>(kAhead * kQ6_KBytes) +
                            (!kStrided && i + kAhead >= nb ? static_cast<ptrdiff_t>(kTile * a.w_row_bytes) -
                                                                 static_cast<ptrdiff_t>(nb * kQ6_KBytes)
                                                           : 0);
    __m512i c[T][4];
    for (int t = 0; t < T; ++t) offsets_q8_k(a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes, c[t]);
    __m512i d[T][8];  // reduce_16_rows' input: rows 2p (lanes 0..7) and 2p + 1 (lanes 8..15)
    for (int p = 0; p < 8; ++p) {
      __m512i rs[2][T];
      for (int j = 0; j < 2; ++j) {
        const std::byte* b = wb + static_cast<size_t>(2 * p + j) * a.w_row_bytes;
        if (linear) {
          prefetch_super_block<kLinearPrefetchLocality>(linear_pf + static_cast<size_t>(2 * p + j) * kQ6_KBytes);
        } else {
          prefetch_super_block(b + ahead);
        }
        __m512i q[4], s[2];
        unpack_q6_k_512(b, q);
        scales_q6_k_512(b, s);
        for (int t = 0; t < T; ++t) {
          rs[j][t] = row_sums(q, s, a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes, c[t]);
        }
      }
      for (int t = 0; t < T; ++t) {
        d[t][p] = _mm512_add_epi32(_mm512_shuffle_i32x4(rs[0][t], rs[1][t], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_i32x4(rs[0][t], rs[1][t], _MM_SHUFFLE(3, 2, 3, 2)));
      }
    }
    const __m512i dbits = _mm512_i32gather_epi32(lane_rows, wb, 1);
    const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dbits, 16)));
    for (int t = 0; t < T; ++t) {
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(load_f32(a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes)));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(reduce_16_rows(d[t])), scale, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    alignas(64) float out[16];
    _mm512_store_ps(out, acc[t]);
    for (int l = 0; l < 16; ++l) a.out(r0 + kRowOfLane[l], t0 + t) = out[l];
  }
}

// Row r x tokens [t0, t0 + T) (the rows past the last 16, and vec_dot).
template <int T>
void exact_row(const GemmArgs& a, int64_t r, int64_t t0) {
  __m128 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm_setzero_ps();
  const std::byte* w = a.w_row(r);
  for (int64_t i = 0; i < a.n / kQKK; ++i) {
    const std::byte* b = w + static_cast<size_t>(i) * kQ6_KBytes;
    prefetch_super_block(b + kWeightPrefetchBytes);
    __m512i q[4], s[2];
    unpack_q6_k_512(b, q);
    scales_q6_k_512(b, s);
    const float d = half_at(b + kWD);
    for (int t = 0; t < T; ++t) {
      const std::byte* xb = a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes;
      __m512i c[4];
      offsets_q8_k(xb, c);
      const int sum = _mm512_reduce_add_epi32(row_sums(q, s, xb, c));
      acc[t] = _mm_fmadd_ss(_mm_set_ss(static_cast<float>(sum)), _mm_set_ss(d * load_f32(xb)), acc[t]);
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

// Rows [r, r + R) (R = 16, or 1 past the last 16) x all tokens, in groups of 4 (then 3, 2 or 1):
// each group unpacks the rows' weights once (from L1 / L2 after the first group).
template <int R>
void exact_row_group(const GemmArgs& a, int64_t r, int64_t n_tokens) {
  auto run = [&]<int T>(int64_t t) {
    if constexpr (R == kTile) {
      exact_16_rows<T>(a, r, t);
    } else {
      exact_row<T>(a, r, t);
    }
  };
  int64_t t = 0;
  for (; t + 4 <= n_tokens; t += 4) run.template operator()<4>(t);
  switch (n_tokens - t) {
    case 3:
      run.template operator()<3>(t);
      break;
    case 2:
      run.template operator()<2>(t);
      break;
    case 1:
      run.template operator()<1>(t);
      break;
    default:
      break;
  }
}

void exact_gemm(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  const GemmArgs a{n, w, w_row_bytes, x, x_row_bytes, y, y_stride};
  const size_t row_len = static_cast<size_t>(n / kQKK) * kQ6_KBytes;
  const int64_t per = n_rows / kTile;
  // (the kernel gathers each row's d at 32-bit offsets up to 15 strides of per rows)
  const bool offsets_fit = static_cast<uint64_t>(per) * w_row_bytes * kTile < (uint64_t{1} << 31);
  if (n_tokens == 1 && linear_prefetch_rows(row_len, w_row_bytes) && per >= 2 && offsets_fit) {
    // One token over short rows that lie end to end: tile k takes rows k + j per (j = 0..15), so each
    // lane walks its own stretch of per rows in address order, and the tile reads 16 streams, each
    // prefetched kAhead super-blocks ahead along its stretch (exact_16_rows' kStrided), as long
    // rows are read. Tiles of 16 adjacent rows (the loop below) read one stream, prefetched into
    // L2 a tile ahead (kLinearPrefetchMaxRowBytes): on Llama-3.2-1B's 2048-wide Q6_K output
    // matrix 11.2-11.4 GB/s on one thread against 15.7-16.5 this way, 22.3-22.6 against
    // 28.6-30.9 on two (docs/performance.md, "Sixteen streams for short rows"). Same bits: each
    // lane's sums are its row's alone.
    alignas(64) float out[kTile];
    for (int64_t k = 0; k < per; ++k) {
      const GemmArgs tile{
          n, w + static_cast<size_t>(k) * w_row_bytes, w_row_bytes * static_cast<size_t>(per), x, x_row_bytes, out, 1};
      exact_16_rows<1, true>(tile, 0, 0);
      for (int j = 0; j < kTile; ++j) y[k + j * per] = out[j];
    }
    for (int64_t r = per * kTile; r < n_rows; ++r) exact_row_group<1>(a, r, n_tokens);
    return;
  }
  int64_t r = 0;
  for (; r + kTile <= n_rows; r += kTile) exact_row_group<kTile>(a, r, n_tokens);
  for (; r < n_rows; ++r) exact_row_group<1>(a, r, n_tokens);
}

void packed_gemm(const PackedActivations& x, const std::byte* w, size_t w_row_bytes, int64_t n_rows, float* y,
                 int64_t y_stride) {
  static const TileConfig config = make_config();
  packed_gemm_16<row_tile, exact_gemm>(config, x.n / kQKK, x, w, w_row_bytes, n_rows, y, y_stride);
}

}  // namespace

void add_vbmi_q6_k(KernelTable& t) {
  const size_t q6_k = dtype_slot(DType::kQ6_K);
  t.vec_dot[q6_k] = exact_vec_dot;
  t.gemm[q6_k] = in_l2_blocks<exact_gemm>;
}

void add_amx_q6_k(KernelTable& t) {
  t.packed_gemm[dtype_slot(DType::kQ6_K)] = packed_gemm;
}

}  // namespace lightboat::kernels::detail
