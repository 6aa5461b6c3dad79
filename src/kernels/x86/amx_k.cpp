// AMX-INT8 gemm for Q4_K weights (and the Q4_Kx16 layout's tiles, unpack_tiles_x16) with Q8_K activations: the K-quant
// part of the AMX table (x86/amx.cpp has the design it shares: activations packed once per matmul call, 16 x 16 token
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
#include <string>

#include "base/error.h"
#include "kernels/gemm_driver.h"
#include "kernels/prefetch.h"
#include "kernels/x86/amx_common.h"
#include "kernels/x86/x86_common.h"
#include "tensor/interleave.h"

namespace lightboat::kernels::detail {
namespace {

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
        const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, rows, block + kQ8_KQs + 4 * k, 1);
        _mm512_store_si512(rec + 64 * k, g);
      }
      const __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, rows, block, 1);
      _mm512_store_si512(rec + kKDxOffset, d);
      int16_t pairs[4][kTile][2] = {};  // [p][token]: sub-block sums 2p, 2p + 1
      for (int64_t t = 0; t < valid; ++t) {
        int16_t bsums[16];
        std::memcpy(bsums, block + static_cast<size_t>(t) * x.row_bytes + kQ8_KBsums, sizeof(bsums));
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

// Row r's 32 quant bytes of chunk c (sub-blocks 2c and 2c + 1), with its scales and mins.
inline void unpack_chunk(__m256i q, const uint8_t* sc, int r, int c, KTiles& a) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i q0 = _mm256_and_si256(q, m4);                        // sub-block 2c
  const __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);  // sub-block 2c + 1
  const size_t o = static_cast<size_t>(64 * r);
  store256(a.lo[c] + o, times(sc[2 * c] & 7u, q0));
  store256(a.lo[c] + o + 32, times(sc[2 * c + 1] & 7u, q1));
  store256(a.hi[c] + o, times(sc[2 * c] >> 3, q0));
  store256(a.hi[c] + o + 32, times(sc[2 * c + 1] >> 3, q1));
}

inline void set_mins(const uint8_t* mn, int r, KTiles& a) {
  for (int c = 0; c < kChunks; ++c) {
    a.mins[r][c] = static_cast<int32_t>(mn[2 * c] | (static_cast<uint32_t>(mn[2 * c + 1]) << 16));
  }
}

void unpack_tiles(const std::byte* w, size_t row_bytes, int64_t i, KTiles& a) {
  for (int r = 0; r < kTile; ++r) {
    const std::byte* b = w + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(i) * kQ4_KBytes;
    a.d[r] = half_at(b);
    a.dmin[r] = half_at(b + 2);
    uint8_t sc[8], mn[8];
    unpack_scales_mins(b + kWScales, sc, mn);
    set_mins(mn, r, a);
    for (int c = 0; c < kChunks; ++c) unpack_chunk(load256(b + kWQs + 32 * c), sc, r, c, a);
  }
}

// The same from a group of 16 rows of Q4_Kx16 (tensor/interleave.h; row_bytes unused): chunk c is
// 8 vectors in which lane r holds row r's quant bytes 4k..4k+3, transposed in registers (two
// unpack stages, then one VPERMT2Q per two rows) into each row's 32 bytes.
void unpack_tiles_x16(const std::byte* group, size_t /*row_bytes*/, int64_t i, KTiles& a) {
  const std::byte* p = group + static_cast<size_t>(i) * tensor::kQ4_Kx16BlockBytes;
  _mm512_store_ps(a.d, _mm512_cvtph_ps(load256(p)));
  _mm512_store_ps(a.dmin, _mm512_cvtph_ps(load256(p + 32)));
  uint8_t sc[kTile][8];
  for (int r = 0; r < kTile; ++r) {
    std::byte packed[12];
    for (int k = 0; k < 3; ++k) std::memcpy(packed + 4 * k, p + tensor::kQ4_Kx16ScalesOffset + 64 * k + 4 * r, 4);
    uint8_t mn[8];
    unpack_scales_mins(packed, sc[r], mn);
    set_mins(mn, r, a);
  }
  // Per 128-bit lane L after the two stages, u[m] holds row 4L + m's dwords 0..3 and u[4 + m]
  // its dwords 4..7.
  const __m512i lanes01 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);    // [u.L0, v.L0, u.L1, v.L1]
  const __m512i lanes23 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);  // [u.L2, v.L2, u.L3, v.L3]
  for (int c = 0; c < kChunks; ++c) {
    const std::byte* q = p + tensor::kQ4_Kx16QuantsOffset + 512 * c;
    __m512i v[8], t[8], u[8];
    for (int k = 0; k < 8; ++k) v[k] = _mm512_loadu_si512(q + 64 * k);
    for (int k = 0; k < 8; k += 2) {
      t[k] = _mm512_unpacklo_epi32(v[k], v[k + 1]);
      t[k + 1] = _mm512_unpackhi_epi32(v[k], v[k + 1]);
    }
    for (int h = 0; h < 8; h += 4) {  // dwords 0..3 (h = 0), 4..7 (h = 4)
      u[h + 0] = _mm512_unpacklo_epi64(t[h], t[h + 2]);
      u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]);
      u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);
      u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);
    }
    // u[0..3] are rows 4L + m's dwords 0..3 from t[0..3]; u[4..7] their dwords 4..7.
    for (int m = 0; m < 4; ++m) {
      const __m512i r01 = _mm512_permutex2var_epi64(u[m], lanes01, u[4 + m]);  // rows m, 4 + m
      const __m512i r23 = _mm512_permutex2var_epi64(u[m], lanes23, u[4 + m]);  // rows 8 + m, 12 + m
      unpack_chunk(_mm512_castsi512_si256(r01), sc[m], m, c, a);
      unpack_chunk(_mm512_extracti64x4_epi64(r01, 1), sc[4 + m], 4 + m, c, a);
      unpack_chunk(_mm512_castsi512_si256(r23), sc[8 + m], 8 + m, c, a);
      unpack_chunk(_mm512_extracti64x4_epi64(r23, 1), sc[12 + m], 12 + m, c, a);
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
// tiles are unpacked once (Unpack: unpack_tiles, or unpack_tiles_x16 for Q4_Kx16) and multiplied
// with every token tile of the chunk, two at a time.
template <void (*Unpack)(const std::byte*, size_t, int64_t, KTiles&)>
void row_tile(const Call& c, int64_t r0, int64_t tile0, int64_t tile1) {
  alignas(64) float acc[kChunkTiles][kTile * kTile];  // [token tile][row][token]
  alignas(64) int32_t sums[4][kTile * kTile];         // C 0..3 stored
  alignas(64) KTiles a;
  std::memset(acc, 0, sizeof(acc[0]) * static_cast<size_t>(tile1 - tile0));  // only the chunk's token tiles
  const std::byte* w = c.w + static_cast<size_t>(r0) * c.w_row_bytes;
  for (int64_t i = 0; i < c.nb; ++i) {
    Unpack(w, c.w_row_bytes, i, a);
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
//
// Decode streams every weight once per token, so the VNNI gemm must spend few vector uops per
// byte (with 512-bit code only ports 0 and 5 execute them; multiplies are port 0 only). Per
// super-block of 16 rows:
//  - the 16 headers are gathered lane = row (d, dmin, 6-bit scales and mins unpacked for all 16
//    rows with a dozen and/shift ops);
//  - a row's 128 quant bytes are two 64-byte loads; an and and a GF2P8AFFINEQB split each into
//    two registers of nibbles, each holding two sub-blocks (bytes 0..31 and 32..63: sub-blocks
//    2c / 2c + 2 for the low nibbles, 2c + 1 / 2c + 3 for the high ones), against activations
//    rearranged once per token to match;
//  - vpdpbusd gives per dword the sum of 4 products (|.| <= 4 * 15 * 128 = 7680: int16), so
//    vpackssdw packs two rows' dwords into words losslessly and one vpdpwssd per register pair
//    multiplies each by its sub-block's scale (a vpermw of the rows' scales) and accumulates:
//    per row and token 4 vpdpbusd + 2 vpdpwssd + 2 packs;
//  - a transposing add tree turns the 8 row-pair accumulators into S lane = row (kPairLaneRows);
//  - M is 4 vpdpwssd of the mins (lane = row) against the token's sub-block sums, per 16 rows.
// S and M are the same integers as the tiles', and the two fp32 steps per super-block are the
// same, in the same order.

// Lane l of the 16-row kernel's results holds row kPairLaneRows[l] (what the add tree leaves;
// lanes 4k, 4k + 1 are a row pair, which the scale table below relies on).
constexpr int kPairLaneRows[16] = {0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15};
// Where row pair p's 16 scale words sit in the table the header unpack stores (unpacklo of
// the scale dwords holds pairs 0, 1, 4, 5; unpackhi 2, 3, 6, 7).
constexpr int kPairScaleOffset[8] = {0, 16, 64, 80, 32, 48, 96, 112};  // words

// vpermw indices for the scales of a packed register pair: dword 4L + k holds row a's words
// for k < 2 and row b's for k >= 2 (vpackssdw's order), sub-block `lo` in 128-bit lanes 0..1
// and `hi` in 2..3; the table has row a's 8 scales at words 0..7 and row b's at 8..15.
inline __m512i scale_index(int lo, int hi) {
  alignas(64) int16_t idx[32];
  for (int w = 0; w < 32; ++w) idx[w] = static_cast<int16_t>((w % 8 < 4 ? 0 : 8) + (w < 16 ? lo : hi));
  return _mm512_load_si512(idx);
}

// Sums dwords 2m + 1 and 2m of each 128-bit lane pair-wise across a and b: per lane
// [a0 + a1, a2 + a3, b0 + b1, b2 + b3] (vshufps moves the integer bits untouched).
inline __m512i add_pairs(__m512i a, __m512i b) {
  const __m512 fa = _mm512_castsi512_ps(a), fb = _mm512_castsi512_ps(b);
  return _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0))),
                          _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1))));
}

// 128-bit lanes: [a.L0 + a.L1, a.L2 + a.L3, b.L0 + b.L1, b.L2 + b.L3].
inline __m512i add_lanes(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

// S of 16 rows, lane l = row kPairLaneRows[l], from the row pairs' accumulators (pair p: rows
// 2p, 2p + 1; in each 128-bit lane dwords 0..1 belong to row 2p, 2..3 to row 2p + 1).
inline __m512i reduce_pairs(const __m512i* acc) {
  const __m512i s0 = add_lanes(acc[0], acc[1]), s1 = add_lanes(acc[2], acc[3]);
  const __m512i s2 = add_lanes(acc[4], acc[5]), s3 = add_lanes(acc[6], acc[7]);
  return add_lanes(add_pairs(s0, s1), add_pairs(s2, s3));
}

// One token's activations for a super-block, in the nibble registers' order, and its fp32 and
// min terms.
struct TokenBlock {
  __m512i x[4];   // [x 0..31 | x 64..95], [32..63 | 96..127], then the same + 128
  __m512i bs[4];  // int16 pairs (b0, b2), (b1, b3), (b4, b6), (b5, b7): b_j = sub-block j's sum
  __m512 dx;
};

inline void load_token(const std::byte* xb, TokenBlock& t) {
  const std::byte* q = xb + kQ8_KQs;
  for (int k = 0; k < 4; ++k) {
    const std::byte* lo = q + 128 * (k / 2) + 32 * (k % 2);
    t.x[k] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(lo)), load256(lo + 64), 1);
  }
  k_sum_pairs(xb + kQ8_KBsums, t.bs);
  t.dx = _mm512_set1_ps(load_f32(xb));
}

// The high nibble of every byte, moved to the low nibble (the rest zero), in one GF2P8AFFINEQB
// (the bit matrix picks bits 4..7 into 0..3) instead of a shift (port 0 only) and an and.
inline __m512i high_nibbles(__m512i q) {
  return _mm512_gf2p8affine_epi64_epi8(q, _mm512_set1_epi64(0x1020408000000000), 0);
}

// Super-blocks ahead that the 16-row kernel prefetches. It walks the weights column-wise
// (super-block i of 16 rows, then i + 1), so a fixed byte distance would land sometimes in the
// rows being read and sometimes far beyond; a distance in its own order of reads is even.
constexpr int64_t kPrefetchBlocks = 4;

// The quants of one row's super-block at b, and a prefetch of the lines whose first byte lies in
// the super-block at pf (so each 64-byte line is asked for once).
struct RowQuants {
  __m512i lo0, hi0, lo1, hi1;  // sub-blocks 0|2, 1|3, 4|6, 5|7 (see load_token)
};

// Short rows (kLinearPrefetchMaxRowBytes, kernels/prefetch.h) prefetch into L2, the next 16 rows
// in address order (see exact_16_rows).
inline RowQuants row_quants(const std::byte* b, const std::byte* pf, bool linear) {
  if (linear) {
    prefetch_lines<kLinearPrefetchLocality>(pf, kQ4_KBytes);
  } else {
    prefetch_lines(pf, kQ4_KBytes);
  }
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i q0 = _mm512_loadu_si512(b + kWQs), q1 = _mm512_loadu_si512(b + kWQs + 64);
  return {_mm512_and_si512(q0, m4), high_nibbles(q0), _mm512_and_si512(q1, m4), high_nibbles(q1)};
}

inline __m512i dot4(__m512i q, __m512i x) {
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, x);
}

// Rows [r0, r0 + 16) x tokens [t0, t0 + NT): S and M per super-block lane = row, then the
// tiles' two fp32 steps.
template <int NT>
void exact_16_rows(const GemmArgs& a, int64_t r0, int64_t t0) {
  __m512i lane_rows = _mm512_loadu_si512(kPairLaneRows);
  lane_rows = _mm512_mullo_epi32(lane_rows, _mm512_set1_epi32(static_cast<int>(a.w_row_bytes)));
  const __m512i idx[4] = {scale_index(0, 2), scale_index(1, 3), scale_index(4, 6), scale_index(5, 7)};
  const std::byte* w = a.w_row(r0);
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  const int64_t nb = a.n / kQKK;
  const bool linear = linear_prefetch_rows(static_cast<size_t>(nb) * kQ4_KBytes, a.w_row_bytes);
  for (int64_t i = 0; i < nb; ++i) {
    const size_t off = static_cast<size_t>(i) * kQ4_KBytes;
    // Headers lane = row: d | dmin, then the 12 scale bytes (see unpack_scales_mins).
    const __m512i h0 = _mm512_i32gather_epi32(lane_rows, w + off, 1);
    const __m512i h1 = _mm512_i32gather_epi32(lane_rows, w + off + 4, 1);
    const __m512i h2 = _mm512_i32gather_epi32(lane_rows, w + off + 8, 1);
    const __m512i h3 = _mm512_i32gather_epi32(lane_rows, w + off + 12, 1);
    const KScalesMins sm = unpack_k_scales_mins(h1, h2, h3);
    // Each row pair's 16 scales as words, for vpermw (kPairScaleOffset).
    alignas(64) int16_t scales[128 + 32];
    const __m512i sl = _mm512_unpacklo_epi32(sm.sc_lo, sm.sc_hi), sh = _mm512_unpackhi_epi32(sm.sc_lo, sm.sc_hi);
    _mm512_store_si512(scales, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(sl)));
    _mm512_store_si512(scales + 32, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(sl, 1)));
    _mm512_store_si512(scales + 64, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(sh)));
    _mm512_store_si512(scales + 96, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(sh, 1)));
    _mm512_store_si512(scales + 128, _mm512_setzero_si512());  // past the last pair's 16 words
    const __m512i* mins = sm.min_pairs;                        // against TokenBlock::bs

    TokenBlock tok[NT];
    for (int t = 0; t < NT; ++t) load_token(a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes, tok[t]);

    // These rows kPrefetchBlocks on, or past their ends the next 16 rows' first blocks; short
    // rows: the next 16 rows' (16 i + j)-th super-block for row j.
    const int64_t ahead = nb < kPrefetchBlocks ? nb : kPrefetchBlocks;
    const std::byte* next_rows = w + static_cast<size_t>(kTile) * a.w_row_bytes;
    const std::byte* pf = linear ? next_rows + static_cast<size_t>(i * kTile) * kQ4_KBytes
                          : i + ahead < nb ? w + off + static_cast<size_t>(ahead) * kQ4_KBytes
                                           : next_rows + static_cast<size_t>(i + ahead - nb) * kQ4_KBytes;
    const size_t pf_stride = linear ? kQ4_KBytes : a.w_row_bytes;
    __m512i pair_acc[NT][8];
    for (int p = 0; p < 8; ++p) {
      const size_t ra = static_cast<size_t>(2 * p) * a.w_row_bytes;
      const std::byte* pfa = pf + static_cast<size_t>(2 * p) * pf_stride;
      const RowQuants qa = row_quants(w + ra + off, pfa, linear);
      const RowQuants qb = row_quants(w + ra + a.w_row_bytes + off, pfa + pf_stride, linear);
      const int16_t* table = scales + kPairScaleOffset[p];
      __m512i sc[4];
      for (int k = 0; k < 4; ++k) sc[k] = _mm512_permutexvar_epi16(idx[k], _mm512_loadu_si512(table));
      for (int t = 0; t < NT; ++t) {
        __m512i s = _mm512_madd_epi16(_mm512_packs_epi32(dot4(qa.lo0, tok[t].x[0]), dot4(qb.lo0, tok[t].x[0])), sc[0]);
        s = _mm512_dpwssd_epi32(s, _mm512_packs_epi32(dot4(qa.hi0, tok[t].x[1]), dot4(qb.hi0, tok[t].x[1])), sc[1]);
        s = _mm512_dpwssd_epi32(s, _mm512_packs_epi32(dot4(qa.lo1, tok[t].x[2]), dot4(qb.lo1, tok[t].x[2])), sc[2]);
        s = _mm512_dpwssd_epi32(s, _mm512_packs_epi32(dot4(qa.hi1, tok[t].x[3]), dot4(qb.hi1, tok[t].x[3])), sc[3]);
        pair_acc[t][p] = s;
      }
    }
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h0));
    const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(h0, 16)));
    for (int t = 0; t < NT; ++t) {
      __m512i m = _mm512_madd_epi16(mins[0], tok[t].bs[0]);
      for (int k = 1; k < 4; ++k) m = _mm512_dpwssd_epi32(m, mins[k], tok[t].bs[k]);
      const __m512 sv = _mm512_cvtepi32_ps(reduce_pairs(pair_acc[t]));
      acc[t] = _mm512_fmadd_ps(sv, _mm512_mul_ps(d, tok[t].dx), acc[t]);
      acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmin, tok[t].dx), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    alignas(64) float out[16];
    _mm512_store_ps(out, acc[t]);
    for (int l = 0; l < 16; ++l) a.out(r0 + kPairLaneRows[l], t0 + t) = out[l];
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
      const std::byte* xq = xb + kQ8_KQs + 64 * c;
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q0, load256(xq)), _mm256_set1_epi16(sc[2 * c]));
      const __m256i p1 =
          _mm256_madd_epi16(_mm256_maddubs_epi16(q1, load256(xq + 32)), _mm256_set1_epi16(sc[2 * c + 1]));
      isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
    }
    const int s = hsum_i32(isum);
    const int m = hsum_i32(_mm256_madd_epi16(mins_for_bsums(mn), load256(xb + kQ8_KBsums)));
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
    by_token_groups(n_tokens, [&](auto nt, int64_t t) { exact_16_rows<nt()>(a, r, t); });
  }
  for (; r < n_rows; ++r) {
    for (int64_t t = 0; t < n_tokens; ++t) a.out(r, t) = exact_dot(n, a.w_row(r), a.x_row(t));
  }
}

void packed_gemm(const PackedActivations& x, const std::byte* w, size_t w_row_bytes, int64_t n_rows, float* y,
                 int64_t y_stride) {
  static const TileConfig config = make_config();
  packed_gemm_16<row_tile<unpack_tiles>, exact_gemm>(config, x.n / kQKK, x, w, w_row_bytes, n_rows, y, y_stride);
}

// Q4_Kx16: the same tiles, unpacked from the interleaved layout; whole groups of 16 rows only.
void packed_gemm_x16(const PackedActivations& x, const std::byte* w, size_t w_row_bytes, int64_t n_rows, float* y,
                     int64_t y_stride) {
  static const TileConfig config = make_config();
  check(n_rows % kTile == 0, ErrorKind::kInvalidArgument, [&] {
    return "packed gemm of Q4_Kx16 weights: " + std::to_string(n_rows) + " rows are not whole groups of 16";
  });
  run_packed(
      config, Call{x, w, w_row_bytes, y, y_stride, x.n / kQKK}, n_rows,
      [](const Call& c, int64_t n_full, int64_t tile0, int64_t tile1) {
        for (int64_t r = 0; r < n_full; r += kTile) row_tile<unpack_tiles_x16>(c, r, tile0, tile1);
      },
      [](int64_t) {});  // no rows past the last 16 (checked above)
}

}  // namespace

void add_vbmi_k_quants(KernelTable& t) {
  add_vbmi_q6_k(t);
  const size_t q4_k = dtype_slot(DType::kQ4_K);
  t.vec_dot[q4_k] = exact_vec_dot;
  t.gemm[q4_k] = in_l2_blocks<exact_gemm>;
  t.gemm[dtype_slot(DType::kQ4_Kx16)] = vbmi_interleaved_gemm(DType::kQ4_Kx16);
}

void add_amx_k_quants(KernelTable& t) {
  add_amx_q6_k(t);
  t.packed_gemm[dtype_slot(DType::kQ4_K)] = packed_gemm;
  t.pack_activations[dtype_slot(DType::kQ8_K)] = pack_q8_k;
  t.packed_gemm[dtype_slot(DType::kQ4_Kx16)] = packed_gemm_x16;
}

}  // namespace lightboat::kernels::detail
