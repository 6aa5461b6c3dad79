// AMX-INT8 gemm for Q4_K weights with Q8_K activations: the K-quant part of the AMX table
// (x86/amx.cpp has the design it shares: activations packed once per matmul call, 16 x 16 token
// tiles, VNNI kernels in the tiles' order below packed_min_tokens).
//
// A Q4_K super-block of one row is x_e = (d * sc_j) * q_e - (dmin * m_j) for the 32 elements e
// of sub-block j, with 6-bit sc_j, m_j and 4-bit q_e. Against Q8_K activations (d_x, int8 q_x)
// its dot product is exactly
//   d * d_x * S - dmin * d_x * M,  S = sum_j sc_j sum_{e in j} q_e q_x,e,  M = sum_j m_j sum_{e in j} q_x,e
// with S and M integers. The tiles form S without leaving the tile unit for a whole super-block:
// sc_j = 8 hi + lo (lo, hi < 8) makes q * lo and q * hi int8 (<= 105), so the A tiles are q * lo
// and q * hi, each 16 rows x one 64-element chunk (two sub-blocks: the scales live in A, so
// sub-blocks may share a tile), summed over the 4 chunks into C tiles lo and hi: S = lo + 8 hi.
// M, 8 products per output, is left to vpdpwssd in the epilogue (pairs of 6-bit mins against the
// pairs of sub-block sums that pack_q8_k stores per token). Two token tiles share each A load:
// per super-block and 16 x 32 outputs, 16 TDPBSSD, four tile stores and per output the fp32 steps
//   acc = fma(float(S), d * d_x, acc);  acc = fnmadd(float(M), dmin * d_x, acc).
// (Mins as a third A tile of m_j repeated, 12 TDPBSSD per 16 x 16, measured no faster.)
// The VNNI kernels compute the same S and M (integers: any order) and apply the same two fp32
// operations per super-block, so a token's outputs are bit-identical alone or in a batch.
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
constexpr size_t kWScales = 4;  // Q4_K: d | dmin (fp16) | scales[12] | qs[128]
constexpr size_t kWQs = 16;
constexpr int kChunks = kKChunks;
constexpr size_t kChunkBytes = kKChunkBytes;
constexpr size_t kRecordBytes = kKRecordBytes;

// Tile registers: C 0..3 (q * lo and q * hi of token tile 0, the same of token tile 1), A 4..5
// (q * lo, q * hi), B 6..7 (token tiles 0, 1); all 16 x 64 bytes.
TileConfig make_config() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  return c;
}

// Packed activations: for token tile tt and super-block i, a record at (tt * nb + i) *
// kRecordBytes: chunk c's B (row k = quants 64c + 4k .. 64c + 4k + 3 of the 16 tokens, 4 bytes
// each), c = 0..3, then d_x of the 16 tokens. Padded tokens are zero.
void pack_q8_k(const PackedActivations& x, int64_t t0, int64_t t1) {
  const int64_t nb = x.n / kQKK;
  const __m512i rows = row_offsets(x.row_bytes);
  for (int64_t tt = t0 / kTile; tt * kTile < t1; ++tt) {
    const int64_t valid = x.n_tokens - tt * kTile < kTile ? x.n_tokens - tt * kTile : kTile;
    const auto mask = static_cast<__mmask16>((1u << valid) - 1u);
    const std::byte* base = x.rows + static_cast<size_t>(tt * kTile) * x.row_bytes;
    for (int64_t i = 0; i < nb; ++i) {
      const std::byte* block = base + static_cast<size_t>(i) * kQ8_KBytes;
      std::byte* rec = x.packed + static_cast<size_t>(tt * nb + i) * kRecordBytes;
      // Chunk c's row k sits at 64 (16c + k) and reads quants 4 (16c + k): one flat loop.
      for (int k = 0; k < kQKK / 4; ++k) {
        const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, rows, block + kXQs + 4 * k, 1);
        _mm512_store_si512(rec + 64 * k, g);
      }
      const __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, rows, block, 1);
      _mm512_store_si512(rec + kKDxOffset, d);
      int16_t pairs[4][kTile][2] = {};  // [p][token]: sub-block sums 2p, 2p + 1
      for (int64_t t = 0; t < valid; ++t) {
        int16_t bsums[16];
        std::memcpy(bsums, block + static_cast<size_t>(t) * x.row_bytes + kXBsums, sizeof(bsums));
        for (int j = 0; j < 8; ++j) pairs[j / 2][t][j % 2] = static_cast<int16_t>(bsums[2 * j] + bsums[2 * j + 1]);
      }
      std::memcpy(rec + kKSumsOffset, pairs, sizeof(pairs));
    }
  }
}

// q * s for q = 0..15, for each s = 0..7 (a pshufb table per part of a 6-bit scale).
alignas(16) constexpr uint8_t kTimes[8][16] = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                                               {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                                               {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30},
                                               {0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45},
                                               {0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60},
                                               {0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75},
                                               {0, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60, 66, 72, 78, 84, 90},
                                               {0, 7, 14, 21, 28, 35, 42, 49, 56, 63, 70, 77, 84, 91, 98, 105}};

inline __m256i times(unsigned s, __m256i q) {
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(kTimes[s]))),
                             q);
}

inline void store256(int8_t* p, __m256i v) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(p), v);
}

// The A tiles of super-block i of 16 weight rows (from w, row_bytes apart), chunk by chunk.
struct KTiles {
  alignas(64) int8_t lo[kChunks][kTile * 64];  // q * (sc & 7)
  alignas(64) int8_t hi[kChunks][kTile * 64];  // q * (sc >> 3)
  alignas(64) int32_t mins[kTile][4];          // m of sub-blocks 2p (low half) and 2p + 1, per row
  alignas(64) float d[kTile];
  alignas(64) float dmin[kTile];
};

void unpack_tiles(const std::byte* w, size_t row_bytes, int64_t i, KTiles& a) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int r = 0; r < kTile; ++r) {
    const std::byte* b = w + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(i) * kQ4_KBytes;
    a.d[r] = half_at(b);
    a.dmin[r] = half_at(b + 2);
    uint8_t sc[8], mn[8];
    unpack_scales_mins(b + kWScales, sc, mn);
    for (int c = 0; c < kChunks; ++c) {
      const __m256i q = load256(b + kWQs + 32 * c);
      const __m256i q0 = _mm256_and_si256(q, m4);                        // sub-block 2c
      const __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);  // sub-block 2c + 1
      const size_t o = static_cast<size_t>(64 * r);
      store256(a.lo[c] + o, times(sc[2 * c] & 7u, q0));
      store256(a.lo[c] + o + 32, times(sc[2 * c + 1] & 7u, q1));
      store256(a.hi[c] + o, times(sc[2 * c] >> 3, q0));
      store256(a.hi[c] + o + 32, times(sc[2 * c + 1] >> 3, q1));
      a.mins[r][c] = static_cast<int32_t>(mn[2 * c] | (static_cast<uint32_t>(mn[2 * c + 1]) << 16));
    }
  }
}

// acc[m][t] += float(S) * d[m] * d_x[t] - float(M) * dmin[m] * d_x[t] for a 16 x 16 tile, with
// S = lo + 8 hi (the C tiles stored) and M = sum_j m_j[m] * bs_j[t] from the record's sums.
inline void epilogue(const int32_t* lo, const int32_t* hi, const std::byte* rec, const KTiles& a, float* acc) {
  const __m512 dx = _mm512_load_ps(rec + kKDxOffset);
  __m512i bs[4];
  for (int p = 0; p < 4; ++p) bs[p] = _mm512_load_si512(rec + kKSumsOffset + 64 * p);
  for (int m = 0; m < kTile; ++m) {
    __m512i mi = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p) mi = _mm512_dpwssd_epi32(mi, _mm512_set1_epi32(a.mins[m][p]), bs[p]);
    const __m512i s =
        _mm512_add_epi32(_mm512_load_si512(lo + kTile * m), _mm512_slli_epi32(_mm512_load_si512(hi + kTile * m), 3));
    __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(_mm512_set1_ps(a.d[m]), dx),
                               _mm512_load_ps(acc + kTile * m));
    v = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mi), _mm512_mul_ps(_mm512_set1_ps(a.dmin[m]), dx), v);
    _mm512_store_ps(acc + kTile * m, v);
  }
}

// Rows [r0, r0 + 16) x token tiles [tile0, tile1) (at most kChunkTiles): each super-block's A
// tiles are unpacked once and multiplied with every token tile of the chunk, two at a time.
void row_tile(const Call& c, int64_t r0, int64_t tile0, int64_t tile1) {
  alignas(64) float acc[kChunkTiles][kTile * kTile];  // [token tile][row][token]
  alignas(64) int32_t sums[4][kTile * kTile];         // C 0..3 stored
  alignas(64) KTiles a;
  std::memset(acc, 0, sizeof(acc[0]) * static_cast<size_t>(tile1 - tile0));  // only the chunk's token tiles
  const std::byte* w = c.w + static_cast<size_t>(r0) * c.w_row_bytes;
  for (int64_t i = 0; i < c.nb; ++i) {
    unpack_tiles(w, c.w_row_bytes, i, a);
    auto record = [&](int64_t tt) { return c.x.packed + static_cast<size_t>(tt * c.nb + i) * kRecordBytes; };
    int64_t tt = tile0;
    for (; tt + 2 <= tile1; tt += 2) {
      const std::byte* r0b = record(tt);
      const std::byte* r1b = record(tt + 1);
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int ch = 0; ch < kChunks; ++ch) {
        _tile_loadd(4, a.lo[ch], 64);
        _tile_loadd(5, a.hi[ch], 64);
        _tile_loadd(6, r0b + ch * kChunkBytes, 64);
        _tile_loadd(7, r1b + ch * kChunkBytes, 64);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 5, 6);
        _tile_dpbssd(2, 4, 7);
        _tile_dpbssd(3, 5, 7);
      }
      _tile_stored(0, sums[0], 64);
      _tile_stored(1, sums[1], 64);
      _tile_stored(2, sums[2], 64);
      _tile_stored(3, sums[3], 64);
      epilogue(sums[0], sums[1], r0b, a, acc[tt - tile0]);
      epilogue(sums[2], sums[3], r1b, a, acc[tt + 1 - tile0]);
    }
    if (tt < tile1) {  // an odd last token tile
      const std::byte* r0b = record(tt);
      _tile_zero(0);
      _tile_zero(1);
      for (int ch = 0; ch < kChunks; ++ch) {
        _tile_loadd(4, a.lo[ch], 64);
        _tile_loadd(5, a.hi[ch], 64);
        _tile_loadd(6, r0b + ch * kChunkBytes, 64);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 5, 6);
      }
      _tile_stored(0, sums[0], 64);
      _tile_stored(1, sums[1], 64);
      epilogue(sums[0], sums[1], r0b, a, acc[tt - tile0]);
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

// Rows [r0, r0 + 16) x tokens [t0, t0 + NT): per super-block, S and M of 16 rows in lane order
// (kRowOfLane), row pair p in lanes 8p' .. (two rows per register, as reduce_16_rows wants).
template <int NT>
void exact_16_rows(const GemmArgs& a, int64_t r0, int64_t t0) {
  __m512i lane_rows = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  lane_rows = _mm512_mullo_epi32(lane_rows, _mm512_set1_epi32(static_cast<int>(a.w_row_bytes)));
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const std::byte* w = a.w_row(r0);
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  const int64_t nb = a.n / kQKK;
  for (int64_t i = 0; i < nb; ++i) {
    const size_t off = static_cast<size_t>(i) * kQ4_KBytes;
    __m512i s_part[NT][8], m_part[NT][8];
    for (int p = 0; p < 8; ++p) {
      const std::byte* b0 = w + static_cast<size_t>(2 * p) * a.w_row_bytes + off;
      const std::byte* b1 = b0 + a.w_row_bytes;
      prefetch_weights(b0);  // decode streams the weights from memory (kernels/prefetch.h)
      prefetch_weights(b0 + 128);
      prefetch_weights(b1);
      prefetch_weights(b1 + 128);
      uint8_t sc0[8], mn0[8], sc1[8], mn1[8];
      unpack_scales_mins(b0 + kWScales, sc0, mn0);
      unpack_scales_mins(b1 + kWScales, sc1, mn1);
      const __m512i mins = _mm512_inserti64x4(_mm512_castsi256_si512(mins_for_bsums(mn0)), mins_for_bsums(mn1), 1);
      __m512i s_acc[NT];
      for (int t = 0; t < NT; ++t) s_acc[t] = _mm512_setzero_si512();
      for (int c = 0; c < kChunks; ++c) {
        const __m512i q =
            _mm512_inserti64x4(_mm512_castsi256_si512(load256(b0 + kWQs + 32 * c)), load256(b1 + kWQs + 32 * c), 1);
        const __m512i q0 = _mm512_and_si512(q, m4);
        const __m512i q1 = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        const __m512i s0 = _mm512_inserti64x4(_mm512_set1_epi16(sc0[2 * c]), _mm256_set1_epi16(sc1[2 * c]), 1);
        const __m512i s1 = _mm512_inserti64x4(_mm512_set1_epi16(sc0[2 * c + 1]), _mm256_set1_epi16(sc1[2 * c + 1]), 1);
        for (int t = 0; t < NT; ++t) {
          const std::byte* xq = a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes + kXQs + 64 * c;
          const __m512i x0 = _mm512_broadcast_i64x4(load256(xq));
          const __m512i x1 = _mm512_broadcast_i64x4(load256(xq + 32));
          // maddubs pairs stay within int16 (2 * 15 * 128); madd by the scale gives int32.
          const __m512i p0 = _mm512_madd_epi16(_mm512_maddubs_epi16(q0, x0), s0);
          const __m512i p1 = _mm512_madd_epi16(_mm512_maddubs_epi16(q1, x1), s1);
          s_acc[t] = _mm512_add_epi32(s_acc[t], _mm512_add_epi32(p0, p1));
        }
      }
      for (int t = 0; t < NT; ++t) {
        const std::byte* xb = a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes;
        s_part[t][p] = s_acc[t];
        m_part[t][p] = _mm512_madd_epi16(mins, _mm512_broadcast_i64x4(load256(xb + kXBsums)));
      }
    }
    // d in the low and dmin in the high half of each row's first 4 bytes.
    const __m512i dbits = _mm512_i32gather_epi32(lane_rows, w + off, 1);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dbits));
    const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dbits, 16)));
    for (int t = 0; t < NT; ++t) {
      const __m512 dx = _mm512_set1_ps(load_f32(a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes));
      const __m512 sv = _mm512_cvtepi32_ps(reduce_16_rows(s_part[t]));
      const __m512 mv = _mm512_cvtepi32_ps(reduce_16_rows(m_part[t]));
      acc[t] = _mm512_fmadd_ps(sv, _mm512_mul_ps(d, dx), acc[t]);
      acc[t] = _mm512_fnmadd_ps(mv, _mm512_mul_ps(dmin, dx), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    alignas(64) float out[16];
    _mm512_store_ps(out, acc[t]);
    for (int l = 0; l < 16; ++l) a.out(r0 + kRowOfLane[l], t0 + t) = out[l];
  }
}

// One output, super-block by super-block (the rows past the last 16 and vec_dot).
float exact_dot(int64_t n, const std::byte* w, const std::byte* x) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m128 acc = _mm_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const std::byte* wb = w + static_cast<size_t>(i) * kQ4_KBytes;
    const std::byte* xb = x + static_cast<size_t>(i) * kQ8_KBytes;
    prefetch_weights(wb);
    prefetch_weights(wb + 128);
    uint8_t sc[8], mn[8];
    unpack_scales_mins(wb + kWScales, sc, mn);
    __m256i isum = _mm256_setzero_si256();
    for (int c = 0; c < kChunks; ++c) {
      const __m256i q = load256(wb + kWQs + 32 * c);
      const __m256i q0 = _mm256_and_si256(q, m4);
      const __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      const std::byte* xq = xb + kXQs + 64 * c;
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q0, load256(xq)), _mm256_set1_epi16(sc[2 * c]));
      const __m256i p1 =
          _mm256_madd_epi16(_mm256_maddubs_epi16(q1, load256(xq + 32)), _mm256_set1_epi16(sc[2 * c + 1]));
      isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
    }
    const int s = hsum_i32(isum);
    const int m = hsum_i32(_mm256_madd_epi16(mins_for_bsums(mn), load256(xb + kXBsums)));
    const float dx = load_f32(xb);
    const float d = half_at(wb) * dx;
    const float dmin = half_at(wb + 2) * dx;
    acc = _mm_fmadd_ss(_mm_set_ss(static_cast<float>(s)), _mm_set_ss(d), acc);
    acc = _mm_fnmadd_ss(_mm_set_ss(static_cast<float>(m)), _mm_set_ss(dmin), acc);
  }
  return _mm_cvtss_f32(acc);
}

float exact_vec_dot(int64_t n, const void* w, const void* x) {
  return exact_dot(n, static_cast<const std::byte*>(w), static_cast<const std::byte*>(x));
}

void exact_gemm(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  const GemmArgs a{n, w, w_row_bytes, x, x_row_bytes, y, y_stride};
  int64_t r = 0;
  for (; r + kTile <= n_rows; r += kTile) {
    int64_t t = 0;
    for (; t + 2 <= n_tokens; t += 2) exact_16_rows<2>(a, r, t);
    if (t < n_tokens) exact_16_rows<1>(a, r, t);
  }
  for (; r < n_rows; ++r) {
    for (int64_t t = 0; t < n_tokens; ++t) a.out(r, t) = exact_dot(n, a.w_row(r), a.x_row(t));
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

void add_amx_k_quants(KernelTable& t) {
  add_amx_q6_k(t);
  const size_t q4_k = dtype_slot(DType::kQ4_K);
  t.vec_dot[q4_k] = exact_vec_dot;
  t.gemm[q4_k] = exact_gemm;
  t.packed_gemm[q4_k] = packed_gemm;
  t.pack_activations[dtype_slot(DType::kQ8_K)] = pack_q8_k;
}

}  // namespace lightboat::kernels::detail
