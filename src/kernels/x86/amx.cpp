// AMX-INT8 gemms for Q8_0, Q4_0 and Q5_0 weights with Q8_0 activations (Sapphire Rapids and later).
// Compiled with the AVX-512 flags plus -mamx-tile -mamx-int8; dispatch.cpp offers this table only
// after Linux granted the process the tile state. Everything else comes from the AVX-512 table.
//
// One TDPBSSD multiplies a 16 x 32 tile of signed weight bytes (A: 16 rows, one Q8_0 block each)
// by a 32 x 16 tile of signed activation bytes (B: 16 tokens, one block each, in the unit's
// "VNNI" layout: 8 rows of 16 tokens x 4 consecutive bytes) into 16 x 16 int32 sums (C). Q8_0
// scales every 32 elements, so each block's C is stored, converted to fp32 and added with
// d_w[row] * d_x[token] into fp32 accumulators; integer products are exact, so results differ
// from the reference only in the order of fp32 additions.
//
// Q8_0 weight tiles load straight from the mapped rows (stride = row bytes, base = the block's
// quants); Q4_0 and Q5_0 ones are unpacked to q - 8 / q - 16 bytes in a 512-byte buffer first. Activations are
// packed once per matmul call (pack_q8_0, below). Tiles: C 0..3 (2 weight tiles x 2 token tiles),
// A 4..5, B 6..7.
//
// Below packed_min_tokens (decode), and for the last rows of a matrix whose row count is not a
// multiple of 16, the table's gemm and vec_dot are VNNI kernels that add in exactly the tiles'
// order: acc = fma(float(int32 sum of the block's 32 products), d_w * d_x, acc), block after
// block from 0. So a token's outputs are bit-identical whichever path a batch takes (a sequence's
// logits do not depend on how many tokens or other sequences share its forward pass), as with
// the other tables. (The AVX-512 table's VNNI kernel keeps 8 partial sums per output instead,
// which the tiles cannot reproduce.)
//
// GCC 12's 512-bit intrinsics pass an undefined register as the unused merge source, which its
// -Wuninitialized flags once inlined (a known false positive); silenced for this unit only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <array>
#include <cstring>

#include "kernels/gemm_driver.h"
#include "kernels/isa_tables.h"
#include "kernels/prefetch.h"
#include "kernels/x86/amx_common.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

constexpr size_t kBQuantBytes = 512;                                   // one block of 16 tokens: 8 rows x 64 bytes
constexpr size_t kRecordBytes = kBQuantBytes + kTile * sizeof(float);  // + d_x of 16 tokens
// Tile registers (GCC's tile intrinsics paste the number into the assembly, so the code below
// names them as literals): C 0..3 = (weight tile a, token tile b) at 2a + b, A 4..5, B 6..7.

static_assert(kTile == kPackedTokenTile);
static_assert(kQK == kPackedBlockElems && kRecordBytes <= static_cast<size_t>(kTile * kPackedMaxBytesPerBlock));
static_assert(kRecordBytes % 64 == 0, "records keep the packed layout 64-byte aligned");

TileConfig make_config() {
  TileConfig c;
  for (int t = 0; t < 4; ++t) c.colsb[t] = 64, c.rows[t] = 16;  // C: 16 rows x 16 int32
  for (int t = 4; t < 6; ++t) c.colsb[t] = 32, c.rows[t] = 16;  // A: 16 rows x 32 bytes
  for (int t = 6; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 8;   // B: 8 x (16 tokens x 4 bytes)
  return c;
}

// Packed activations: for token tile tt and block i, a record at (tt * nb + i) * kRecordBytes of
// B[k][4 * t + j] = quant 4k + j of token 16 tt + t (k < 8, j < 4), then d_x of the 16 tokens as
// fp32. Tokens past n_tokens are zero (quants and scales), so padded outputs are 0 and unread.
void pack_q8_0(const PackedActivations& x, int64_t t0, int64_t t1) {
  const int64_t nb = x.n / kQK;
  const __m512i rows = row_offsets(x.row_bytes);
  for (int64_t tt = t0 / kTile; tt * kTile < t1; ++tt) {
    const int64_t valid = x.n_tokens - tt * kTile < kTile ? x.n_tokens - tt * kTile : kTile;
    const auto mask = static_cast<__mmask16>((1u << valid) - 1u);
    const std::byte* base = x.rows + static_cast<size_t>(tt * kTile) * x.row_bytes;
    for (int64_t i = 0; i < nb; ++i) {
      const std::byte* block = base + static_cast<size_t>(i) * kQ8_0Bytes;
      std::byte* rec = x.packed + static_cast<size_t>(tt * nb + i) * kRecordBytes;
      for (int k = 0; k < 8; ++k) {  // quants 4k..4k+3 of the 16 tokens: B's row k
        const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, rows, block + 2 + 4 * k, 1);
        _mm512_store_si512(rec + 64 * k, g);
      }
      // d sits in the low half of the 4 bytes at the block start.
      const __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, rows, block, 1);
      _mm512_store_ps(rec + kBQuantBytes, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
    }
  }
}

// Weights made unsigned for vpdpbusd by a bias (Q8_0: +128; Q4_0 / Q5_0: the quants as stored,
// i.e. q - 8 + 8 / q - 16 + 16); bias * sum(x) is subtracted from each block's sum.
struct Q8_0Biased {
  static constexpr char kBias = static_cast<char>(0x80);  // 128 as an unsigned byte
  static __m256i quants(const std::byte* b) { return _mm256_xor_si256(load256(b + 2), _mm256_set1_epi8(kBias)); }
};

struct Q4_0Biased {
  static constexpr char kBias = 8;
  static __m256i quants(const std::byte* b) {
    const __m128i q = load128(b + 2);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
  }
};

struct Q5_0Biased {  // the 5-bit quants as stored: q - 16 + 16
  static constexpr char kBias = 16;
  static __m256i quants(const std::byte* b) { return _mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)); }
};

// The decode kernels' loaders of four blocks (below, with the VNNI kernels).
struct Q8_0Group;
struct Q4_0Group;
struct Q5_0Group;

// Where an A tile of block i of 16 weight rows (starting at w) loads from: its address and row
// stride in bytes.
struct TileSource {
  const void* data;
  size_t stride;
};

struct Q8_0Tiles {
  static constexpr size_t kBytes = kQ8_0Bytes;
  static constexpr DType kType = DType::kQ8_0;
  using Biased = Q8_0Biased;
  using Group = Q8_0Group;
  static TileSource a_tile(const std::byte* w, size_t row_bytes, int64_t i, int8_t* /*unpacked*/) {
    return {w + static_cast<size_t>(i) * kBytes + 2, row_bytes};
  }
};

struct Q4_0Tiles {
  static constexpr size_t kBytes = kQ4_0Bytes;
  static constexpr DType kType = DType::kQ4_0;
  using Biased = Q4_0Biased;
  using Group = Q4_0Group;
  static TileSource a_tile(const std::byte* w, size_t row_bytes, int64_t i, int8_t* unpacked) {  // [16][32]
    const std::byte* b = w + static_cast<size_t>(i) * kBytes + 2;
    for (int r = 0; r < kTile; ++r, b += row_bytes) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(unpacked + 32 * r), unpack_q4_0(b));
    }
    return {unpacked, 32};
  }
};

struct Q5_0Tiles {
  static constexpr size_t kBytes = kQ5_0Bytes;
  static constexpr DType kType = DType::kQ5_0;
  using Biased = Q5_0Biased;
  using Group = Q5_0Group;
  static TileSource a_tile(const std::byte* w, size_t row_bytes, int64_t i, int8_t* unpacked) {  // [16][32]
    const std::byte* b = w + static_cast<size_t>(i) * kBytes;
    for (int r = 0; r < kTile; ++r, b += row_bytes) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(unpacked + 32 * r),
                         _mm256_sub_epi8(Biased::quants(b), _mm256_set1_epi8(Biased::kBias)));
    }
    return {unpacked, 32};
  }
};

// d of block i of 16 weight rows, as fp32 (gathered like the activations' scales).
void weight_scales(const std::byte* w, size_t row_bytes, size_t block_bytes, int64_t i, float* out) {
  const __m512i rows = row_offsets(row_bytes);
  const __m512i d = _mm512_i32gather_epi32(rows, w + static_cast<size_t>(i) * block_bytes, 1);
  _mm512_store_ps(out, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
}

// acc[m][t] += float(c[m][t]) * dw[m] * dx[t] for a 16 x 16 tile.
inline void scale_add(const int32_t* c, const float* dw, const std::byte* dx_bytes, float* acc) {
  const __m512 dx = _mm512_load_ps(dx_bytes);
  for (int m = 0; m < kTile; ++m) {
    const __m512 s = _mm512_mul_ps(_mm512_set1_ps(dw[m]), dx);
    const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(c + kTile * m));
    _mm512_store_ps(acc + kTile * m, _mm512_fmadd_ps(v, s, _mm512_load_ps(acc + kTile * m)));
  }
}

// Rows [r0, r0 + 16 RA) x token tiles [tile0, tile1) (at most kChunkTiles): for each block, the
// RA weight tiles are loaded once and multiplied with every token tile of the chunk, two at a time.
template <typename Weights, int RA>
void row_group(const Call& c, int64_t r0, int64_t tile0, int64_t tile1) {
  alignas(64) float acc[RA][kChunkTiles][kTile * kTile];  // [weight tile][token tile][row][token]
  alignas(64) int32_t sums[RA * 2][kTile * kTile];        // C tiles 0..3 stored
  alignas(64) float dw[RA][kTile];
  alignas(64) int8_t unpacked[RA][kTile * kQK];
  // Only the chunk's token tiles: a batched decode step has one of the kChunkTiles (16 KiB each call).
  for (int a = 0; a < RA; ++a) std::memset(acc[a], 0, sizeof(acc[a][0]) * static_cast<size_t>(tile1 - tile0));
  const std::byte* w0 = c.w + static_cast<size_t>(r0) * c.w_row_bytes;
  const std::byte* w1 = w0 + static_cast<size_t>(kTile) * c.w_row_bytes;
  for (int64_t i = 0; i < c.nb; ++i) {
    const TileSource a0 = Weights::a_tile(w0, c.w_row_bytes, i, unpacked[0]);
    _tile_loadd(4, a0.data, a0.stride);
    weight_scales(w0, c.w_row_bytes, Weights::kBytes, i, dw[0]);
    if constexpr (RA == 2) {
      const TileSource a1 = Weights::a_tile(w1, c.w_row_bytes, i, unpacked[1]);
      _tile_loadd(5, a1.data, a1.stride);
      weight_scales(w1, c.w_row_bytes, Weights::kBytes, i, dw[1]);
    }
    auto record = [&](int64_t tt) { return c.x.packed + static_cast<size_t>(tt * c.nb + i) * kRecordBytes; };
    int64_t tt = tile0;
    for (; tt + 2 <= tile1; tt += 2) {
      const std::byte* b0 = record(tt);
      const std::byte* b1 = record(tt + 1);
      _tile_loadd(6, b0, 64);
      _tile_loadd(7, b1, 64);
      _tile_zero(0);
      _tile_zero(1);
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      if constexpr (RA == 2) {
        _tile_zero(2);
        _tile_zero(3);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
      }
      _tile_stored(0, sums[0], 64);
      _tile_stored(1, sums[1], 64);
      if constexpr (RA == 2) {
        _tile_stored(2, sums[2], 64);
        _tile_stored(3, sums[3], 64);
      }
      for (int a = 0; a < RA; ++a) {
        scale_add(sums[2 * a], dw[a], b0 + kBQuantBytes, acc[a][tt - tile0]);
        scale_add(sums[2 * a + 1], dw[a], b1 + kBQuantBytes, acc[a][tt + 1 - tile0]);
      }
    }
    if (tt < tile1) {  // an odd last token tile
      const std::byte* b0 = record(tt);
      _tile_loadd(6, b0, 64);
      _tile_zero(0);
      _tile_dpbssd(0, 4, 6);
      _tile_stored(0, sums[0], 64);
      if constexpr (RA == 2) {
        _tile_zero(2);
        _tile_dpbssd(2, 5, 6);
        _tile_stored(2, sums[2], 64);
      }
      for (int a = 0; a < RA; ++a) scale_add(sums[2 * a], dw[a], b0 + kBQuantBytes, acc[a][tt - tile0]);
    }
  }
  for (int a = 0; a < RA; ++a) {
    for (int64_t tt = tile0; tt < tile1; ++tt) {
      const int64_t valid = c.x.n_tokens - tt * kTile < kTile ? c.x.n_tokens - tt * kTile : kTile;
      const float* s = acc[a][tt - tile0];
      for (int64_t t = 0; t < valid; ++t) {
        float* out = c.y + (tt * kTile + t) * c.y_stride + r0 + kTile * a;
        for (int m = 0; m < kTile; ++m) out[m] = s[kTile * m + t];
      }
    }
  }
}

// ---- VNNI kernels in the tiles' order of additions ----
//
// Decoding streams every weight from memory once per token, so the kernel for 1..4 tokens is
// built to spend few vector instructions per weight byte: with 512-bit code only ports 0 and 5
// execute vector instructions, and permutes run on port 5 alone. Sixteen rows are taken four
// blocks at a time:
//  - per row, 64-byte loads and one VPERMT2B (AVX512-VBMI, which every AMX CPU has) gather the
//    four blocks' quants into two registers: 128-bit lane k holds elements 0..15 (lo) and
//    16..31 (hi) of block k, as unsigned bytes (Biased);
//  - the activations get the same layout once per group and token (Q8Group), reused by the 16
//    rows; each row's VPDPBUSD sums start from -bias * (the activations' partial sums), so lanes
//    4k .. 4k + 3 of a row's register end as four partial sums of block k's exact integer dot
//    product;
//  - a transposing add tree turns the 16 rows' registers into four, one per block with lane =
//    row (reduce_quad, then transpose_lanes);
//  - then each block's fp32 step, in block order, exactly as the tiles take it.

// Bytes p[0 .. min(avail, 64)), zero beyond (masked loads do not fault past the row's end).
template <bool kPartial>
inline __m512i load_upto(const std::byte* p, int64_t avail) {
  if constexpr (!kPartial) {
    return _mm512_loadu_si512(p);
  } else {
    if (avail <= 0) return _mm512_setzero_si512();
    const __mmask64 m = avail >= 64 ? ~__mmask64{0} : (__mmask64{1} << avail) - 1;
    return _mm512_maskz_loadu_epi8(m, p);
  }
}

// VPERMT2B indices: byte j = 16k + e of the result takes source byte src(k, e) of the 128-byte
// pair (first register: 0..63, second: 64..127).
template <typename Src>
constexpr std::array<uint8_t, 64> permute_bytes(Src src) {
  std::array<uint8_t, 64> idx{};
  for (int j = 0; j < 64; ++j) idx[static_cast<size_t>(j)] = static_cast<uint8_t>(src(j / 16, j % 16));
  return idx;
}

inline __m512i load_index(const std::array<uint8_t, 64>& idx) { return _mm512_loadu_si512(idx.data()); }

alignas(64) constexpr auto kQ8_0Lo = permute_bytes([](int k, int e) { return 34 * k + 2 + e; });
alignas(64) constexpr auto kQ8_0Hi = permute_bytes([](int k, int e) { return 34 * k + 18 + e - 8; });
alignas(64) constexpr auto kQ4_0Quants = permute_bytes([](int k, int e) {
  const int s = 18 * k + 2 + e;
  return s < 64 ? s : 64 + s - 8;
});
alignas(64) constexpr auto kQ5_0Quants = permute_bytes([](int k, int e) {
  const int s = 22 * k + 6 + e;
  return s < 64 ? s : 64 + s - 24;
});

// Four Q8_0 blocks (136 bytes at b; `avail` of them readable) as lo / hi halves: block k's lo
// half (34k + 2 .. 34k + 17, at most 119) from b[0, 64) and b[64, 128), its hi half (34k + 18 ..
// 34k + 33: 18 .. 67 and 86 .. 135) from b[8, 72) and b[72, 136).
template <bool kPartial>
inline void q8_0_halves(const std::byte* b, int64_t avail, __m512i& lo, __m512i& hi) {
  lo = _mm512_permutex2var_epi8(load_upto<kPartial>(b, avail), load_index(kQ8_0Lo), load_upto<kPartial>(b + 64, avail - 64));
  hi = _mm512_permutex2var_epi8(load_upto<kPartial>(b + 8, avail - 8), load_index(kQ8_0Hi), load_upto<kPartial>(b + 72, avail - 72));
}

// The activations of one group of four blocks for one token: their lo / hi halves (Q8_0's
// layout), -bias * their partial sums (the start of every row's sums), and d_x of each block.
struct Q8Group {
  __m512i lo, hi, start;
  float dx[4];
};

template <bool kPartial>
inline void load_q8_group(const std::byte* xb, int g, uint8_t bias, Q8Group& x) {
  q8_0_halves<kPartial>(xb, static_cast<int64_t>(g) * static_cast<int64_t>(kQ8_0Bytes), x.lo, x.hi);
  const __m512i bv = _mm512_set1_epi8(static_cast<char>(bias));
  const __m512i s = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), bv, x.lo), bv, x.hi);
  x.start = _mm512_sub_epi32(_mm512_setzero_si512(), s);
  for (int k = 0; k < 4; ++k) x.dx[k] = k < g ? half_at(xb + static_cast<size_t>(k) * kQ8_0Bytes) : 0.0f;
}

// The high nibble of every byte, moved to the low nibble (the rest zero) in one GF2P8AFFINEQB:
// output bit i (< 4) is input bit i + 4; row i of the bit matrix sits in byte 7 - i.
inline __m512i high_nibbles(__m512i q) {
  return _mm512_gf2p8affine_epi64_epi8(q, _mm512_set1_epi64(0x1020408000000000), 0);
}

// Weights' four-block halves, unsigned (quants + kBias), in the activations' lane layout.
// kNarrow: every lane of a row's sums (8 products of (quant - kBias) * x, |x| <= 127) and the
// sum of two lanes fit int16, so reduce_quad may pack them (Q4_0: 2 * 8 * 8 * 127 = 16256; Q5_0:
// 2 * 8 * 16 * 127 = 32512; Q8_0 does not: 8 * 128 * 127).
struct Q8_0Group {
  static constexpr uint8_t kBias = 0x80;
  static constexpr bool kNarrow = false;
  template <bool kPartial>
  static void halves(const std::byte* b, int64_t avail, __m512i& lo, __m512i& hi) {
    q8_0_halves<kPartial>(b, avail, lo, hi);
    lo = _mm512_xor_si512(lo, _mm512_set1_epi8(static_cast<char>(kBias)));
    hi = _mm512_xor_si512(hi, _mm512_set1_epi8(static_cast<char>(kBias)));
  }
};

// Q4_0: block k's 16 quant bytes at 18k + 2 .. 18k + 17 (at most 71); A = b[0, 64), B = b[8, 72).
// Low nibbles are elements 0..15, high nibbles 16..31.
struct Q4_0Group {
  static constexpr uint8_t kBias = 8;
  static constexpr bool kNarrow = true;
  template <bool kPartial>
  static void halves(const std::byte* b, int64_t avail, __m512i& lo, __m512i& hi) {
    const __m512i q = _mm512_permutex2var_epi8(load_upto<kPartial>(b, avail), load_index(kQ4_0Quants), load_upto<kPartial>(b + 8, avail - 8));
    lo = _mm512_and_si512(q, _mm512_set1_epi8(0x0f));
    hi = high_nibbles(q);
  }
};

// Q5_0: block k's 16 nibble bytes at 22k + 6 .. 22k + 21 (at most 87; A = b[0, 64), B = b[24,
// 88)) and its 32 fifth bits in the little-endian word at 22k + 2 (bit e: element e), which set
// bit 4 of each byte through a mask: bit 16k + e of the lo (hi) mask is bit e (16 + e) of block k.
struct Q5_0Group {
  static constexpr uint8_t kBias = 16;
  static constexpr bool kNarrow = true;
  template <bool kPartial>
  static void halves(const std::byte* b, int64_t avail, __m512i& lo, __m512i& hi) {
    const __m512i q = _mm512_permutex2var_epi8(load_upto<kPartial>(b, avail), load_index(kQ5_0Quants), load_upto<kPartial>(b + 24, avail - 24));
    uint64_t bits_lo = 0, bits_hi = 0;
    for (int k = 0; k < 4; ++k) {
      if (kPartial && 22 * (k + 1) > avail) break;
      uint32_t h;
      std::memcpy(&h, b + 22 * k + 2, sizeof(h));
      bits_lo |= static_cast<uint64_t>(h & 0xffffu) << (16 * k);
      bits_hi |= static_cast<uint64_t>(h >> 16) << (16 * k);
    }
    const __m512i fifth = _mm512_set1_epi8(0x10);
    const __m512i l4 = _mm512_and_si512(q, _mm512_set1_epi8(0x0f));
    const __m512i h4 = high_nibbles(q);
    lo = _mm512_mask_add_epi8(l4, bits_lo, l4, fifth);
    hi = _mm512_mask_add_epi8(h4, bits_hi, h4, fifth);
  }
};

// d[j] = row 4q + j's four partial sums of each block (128-bit lane k = block k) -> lane k of the
// result = [row 4q, 4q + 1, 4q + 2, 4q + 3]'s full sums of block k.
template <bool kNarrow>
inline __m512i reduce_quad(const __m512i* d) {
  if constexpr (kNarrow) {  // pack to int16 pairs, add pairs: [d0 m0+m1, d0 m2+m3, d1 .., d1 ..], twice
    const __m512i ones = _mm512_set1_epi16(1);
    const __m512i p01 = _mm512_madd_epi16(_mm512_packs_epi32(d[0], d[1]), ones);
    const __m512i p23 = _mm512_madd_epi16(_mm512_packs_epi32(d[2], d[3]), ones);
    return _mm512_madd_epi16(_mm512_packs_epi32(p01, p23), ones);
  }
  const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(d[0], d[1]), _mm512_unpackhi_epi32(d[0], d[1]));
  const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(d[2], d[3]), _mm512_unpackhi_epi32(d[2], d[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

// t[q]'s 128-bit lane k -> u[k]'s lane q: u[k] = block k's sums of rows 0..15 in order.
inline void transpose_lanes(const __m512i* t, __m512i* u) {
  const __m512i a = _mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512i b = _mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(3, 2, 3, 2));
  const __m512i c = _mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512i d = _mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(3, 2, 3, 2));
  u[0] = _mm512_shuffle_i32x4(a, c, _MM_SHUFFLE(2, 0, 2, 0));
  u[1] = _mm512_shuffle_i32x4(a, c, _MM_SHUFFLE(3, 1, 3, 1));
  u[2] = _mm512_shuffle_i32x4(b, d, _MM_SHUFFLE(2, 0, 2, 0));
  u[3] = _mm512_shuffle_i32x4(b, d, _MM_SHUFFLE(3, 1, 3, 1));
}

// Blocks [i, i + g) (g <= 4) of rows [r0, r0 + 16) x tokens [t0, t0 + NT) into acc (lane = row).
template <typename Group, size_t kBytes, int NT, bool kPartial>
inline void group_16_rows(const GemmArgs& a, int64_t r0, int64_t t0, int64_t i, int g, __m512i rows, __m512* acc) {
  Q8Group x[NT];
  for (int t = 0; t < NT; ++t) {
    load_q8_group<kPartial>(a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_0Bytes, g, Group::kBias, x[t]);
  }
  const std::byte* w = a.w_row(r0) + static_cast<size_t>(i) * kBytes;
  const int64_t avail = static_cast<int64_t>(g) * static_cast<int64_t>(kBytes);
  // The 16 rows' d of each block, gathered first so that their latency overlaps the sums.
  __m512 dw[4];
  for (int k = 0; k < g; ++k) {
    const __m512i dbits = _mm512_i32gather_epi32(rows, w + static_cast<size_t>(k) * kBytes, 1);
    dw[k] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dbits));
  }
  __m512i quad[NT][4];
  const size_t rs = a.w_row_bytes;
  for (int q = 0; q < 4; ++q) {
    __m512i d[NT][4];
    const std::byte* wq = w + static_cast<size_t>(4 * q) * rs;
    const std::byte* row[4] = {wq, wq + rs, wq + 2 * rs, wq + 3 * rs};
    for (int j = 0; j < 4; ++j) {
      const std::byte* b = row[j];
      // Decode streams the weights from memory (kernels/prefetch.h): a line per 64 bytes the group
      // moves on (Q4_0 and Q5_0 one, Q8_0 two).
      for (size_t o = 0; o + 64 < 4 * kBytes; o += 64) prefetch_weights(b + o);
      __m512i lo, hi;
      Group::template halves<kPartial>(b, avail, lo, hi);
      for (int t = 0; t < NT; ++t) d[t][j] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(x[t].start, lo, x[t].lo), hi, x[t].hi);
    }
    for (int t = 0; t < NT; ++t) quad[t][q] = reduce_quad<Group::kNarrow>(d[t]);
  }
  for (int t = 0; t < NT; ++t) {
    __m512i u[4];
    transpose_lanes(quad[t], u);
    for (int k = 0; k < g; ++k) {
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(u[k]), _mm512_mul_ps(dw[k], _mm512_set1_ps(x[t].dx[k])), acc[t]);
    }
  }
}

// Rows [r0, r0 + 16) x tokens [t0, t0 + NT) (NT <= 4).
template <typename Weights, int NT>
void exact_16_rows(const GemmArgs& a, int64_t r0, int64_t t0) {
  using Group = typename Weights::Group;
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(static_cast<int>(a.w_row_bytes)));
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  const int64_t nb = a.n / kQK;
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) group_16_rows<Group, Weights::kBytes, NT, false>(a, r0, t0, i, 4, rows, acc);
  if (i < nb) group_16_rows<Group, Weights::kBytes, NT, true>(a, r0, t0, i, static_cast<int>(nb - i), rows, acc);
  for (int t = 0; t < NT; ++t) {
    alignas(64) float out[16];
    _mm512_store_ps(out, acc[t]);
    for (int l = 0; l < 16; ++l) a.out(r0 + l, t0 + t) = out[l];
  }
}

// One output, block by block (the rows past the last 16 and vec_dot).
template <typename Weights>
float exact_dot(int64_t n, const std::byte* w, const std::byte* x) {
  const __m256i bias = _mm256_set1_epi8(Weights::Biased::kBias);
  __m128 acc = _mm_setzero_ps();
  for (int64_t i = 0; i < n / kQK; ++i) {
    const std::byte* wb = w + static_cast<size_t>(i) * Weights::kBytes;
    const std::byte* xb = x + static_cast<size_t>(i) * kQ8_0Bytes;
    prefetch_weights(wb);
    const __m256i xq = load256(xb + 2);
    const int sum = hsum_i32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), Weights::Biased::quants(wb), xq)) -
                    hsum_i32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, xq));
    const float s = half_at(wb) * half_at(xb);
    acc = _mm_fmadd_ss(_mm_set_ss(static_cast<float>(sum)), _mm_set_ss(s), acc);
  }
  return _mm_cvtss_f32(acc);
}

template <typename Weights>
float exact_vec_dot(int64_t n, const void* w, const void* x) {
  return exact_dot<Weights>(n, static_cast<const std::byte*>(w), static_cast<const std::byte*>(x));
}

template <typename Weights>
void exact_gemm(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  const GemmArgs a{n, w, w_row_bytes, x, x_row_bytes, y, y_stride};
  int64_t r = 0;
  for (; r + kTile <= n_rows; r += kTile) {
    int64_t t = 0;
    for (; t + 4 <= n_tokens; t += 4) exact_16_rows<Weights, 4>(a, r, t);
    switch (n_tokens - t) {
      case 3:
        exact_16_rows<Weights, 3>(a, r, t);
        break;
      case 2:
        exact_16_rows<Weights, 2>(a, r, t);
        break;
      case 1:
        exact_16_rows<Weights, 1>(a, r, t);
        break;
      default:
        break;
    }
  }
  for (; r < n_rows; ++r) {
    for (int64_t t = 0; t < n_tokens; ++t) a.out(r, t) = exact_dot<Weights>(n, a.w_row(r), a.x_row(t));
  }
}

// ---- the packed (tile) gemm ----

template <typename Weights>
void packed_gemm(const PackedActivations& x, const std::byte* w, size_t w_row_bytes, int64_t n_rows, float* y,
                 int64_t y_stride) {
  static const TileConfig config = make_config();
  run_packed(
      config, Call{x, w, w_row_bytes, y, y_stride, x.n / kQK}, n_rows,
      [](const Call& c, int64_t n_full, int64_t tile0, int64_t tile1) {
        int64_t r = 0;
        for (; r + 2 * kTile <= n_full; r += 2 * kTile) row_group<Weights, 2>(c, r, tile0, tile1);
        if (r < n_full) row_group<Weights, 1>(c, r, tile0, tile1);
      },
      [&](int64_t first) {  // the last rows of a matrix whose row count is not a multiple of 16
        exact_gemm<Weights>(x.n, w + static_cast<size_t>(first) * w_row_bytes, w_row_bytes, n_rows - first, x.rows,
                            x.row_bytes, x.n_tokens, y + first, y_stride);
      });
}

// From this many tokens on the tiles beat this unit's VNNI gemm, padding and packing included
// (a 1536 x 576 matrix, one thread, tiles vs VNNI time: Q8_0 at 1 token 2.1x slower, 2 tokens
// 1.6x slower, 4 tokens 1.14x faster, 8 tokens 2.1x, 16 tokens 3.9x, 64 tokens 5.1x; Q4_0 2.6x
// and 1.8x slower, 0.87x at 4, 1.4x faster at 6, 3.2x at 16, 5.0x at 64).
constexpr int64_t kMinTokens = 5;

KernelTable make_table() {
  KernelTable t = avx512_table();
  t.isa = Isa::kAmx;
  t.vec_dot[dtype_slot(DType::kQ8_0)] = exact_vec_dot<Q8_0Tiles>;
  t.vec_dot[dtype_slot(DType::kQ4_0)] = exact_vec_dot<Q4_0Tiles>;
  t.gemm[dtype_slot(DType::kQ8_0)] = exact_gemm<Q8_0Tiles>;
  t.gemm[dtype_slot(DType::kQ4_0)] = exact_gemm<Q4_0Tiles>;
  t.vec_dot[dtype_slot(DType::kQ5_0)] = exact_vec_dot<Q5_0Tiles>;
  t.gemm[dtype_slot(DType::kQ5_0)] = exact_gemm<Q5_0Tiles>;
  t.pack_activations[dtype_slot(DType::kQ8_0)] = pack_q8_0;
  t.packed_gemm[dtype_slot(DType::kQ8_0)] = packed_gemm<Q8_0Tiles>;
  t.packed_gemm[dtype_slot(DType::kQ4_0)] = packed_gemm<Q4_0Tiles>;
  t.packed_gemm[dtype_slot(DType::kQ5_0)] = packed_gemm<Q5_0Tiles>;
  t.packed_min_tokens = kMinTokens;
  add_amx_k_quants(t);
  return t;
}

}  // namespace

const KernelTable& amx_table() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace lightboat::kernels::detail
