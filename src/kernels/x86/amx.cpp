// AMX-INT8 gemms for Q8_0, Q4_0 and Q5_0 weights with Q8_0 activations (Sapphire Rapids and later).
// Compiled with the AVX-512 flags plus -mamx-tile -mamx-int8; dispatch.cpp offers this table only
// after Linux granted the process the tile state. Everything else comes from the VBMI table
// (x86/vbmi.cpp: the AVX-512 table plus the VNNI kernels this table uses below its threshold).
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
// order (x86/amx_decode.cpp), so a token's outputs are bit-identical whichever path a batch takes.
//
// GCC 12's 512-bit intrinsics pass an undefined register as the unused merge source, which its
// -Wuninitialized flags once inlined (a known false positive); silenced for this unit only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm_driver.h"
#include "kernels/isa_tables.h"
#include "kernels/prefetch.h"
#include "kernels/x86/amx_common.h"
#include "kernels/x86/x86_common.h"
#include "tensor/interleave.h"

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

// Where an A tile of block i of 16 weight rows (starting at w) loads from: its address and row
// stride in bytes.
struct TileSource {
  const void* data;
  size_t stride;
};

// d of block i of 16 weight rows, as fp32 (gathered like the activations' scales).
void weight_scales(const std::byte* w, size_t row_bytes, size_t block_bytes, int64_t i, float* out) {
  const __m512i rows = row_offsets(row_bytes);
  const __m512i d = _mm512_i32gather_epi32(rows, w + static_cast<size_t>(i) * block_bytes, 1);
  _mm512_store_ps(out, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
}

// The row-major weight types: block i of each of the 16 rows at w + r * row_bytes + i * kBytes.
template <size_t kBlockBytes>
struct RowMajor {
  static constexpr size_t kBytes = kBlockBytes;
  static void scales(const std::byte* w, size_t row_bytes, int64_t i, float* out) {
    weight_scales(w, row_bytes, kBytes, i, out);
  }
  // A small batch (a decode step of a few sequences) streams the weights from memory as decode
  // does, and a tile load of 16 missing rows stalls until they all arrive: ask for each row's
  // line kWeightPrefetchBytes ahead, as the VNNI kernels do.
  static void prefetch(const std::byte* w, size_t row_bytes, int64_t i, int n_rows) {
    const std::byte* wi = w + static_cast<size_t>(i) * kBytes;
    for (int r = 0; r < n_rows; ++r) prefetch_weights(wi + static_cast<size_t>(r) * row_bytes);
  }
};

struct Q8_0Tiles : RowMajor<kQ8_0Bytes> {
  static constexpr DType kType = DType::kQ8_0;
  static TileSource a_tile(const std::byte* w, size_t row_bytes, int64_t i, int8_t* /*unpacked*/) {
    return {w + static_cast<size_t>(i) * kBytes + 2, row_bytes};
  }
};

struct Q4_0Tiles : RowMajor<kQ4_0Bytes> {
  static constexpr DType kType = DType::kQ4_0;
  static TileSource a_tile(const std::byte* w, size_t row_bytes, int64_t i, int8_t* unpacked) {  // [16][32]
    const std::byte* b = w + static_cast<size_t>(i) * kBytes + 2;
    for (int r = 0; r < kTile; ++r, b += row_bytes) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(unpacked + 32 * r), unpack_q4_0(b));
    }
    return {unpacked, 32};
  }
};

struct Q5_0Tiles : RowMajor<kQ5_0Bytes> {
  static constexpr DType kType = DType::kQ5_0;
  static TileSource a_tile(const std::byte* w, size_t row_bytes, int64_t i, int8_t* unpacked) {  // [16][32]
    const std::byte* b = w + static_cast<size_t>(i) * kBytes;
    for (int r = 0; r < kTile; ++r, b += row_bytes) {
      const __m256i q = _mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2));  // the 5-bit quants
      _mm256_store_si256(reinterpret_cast<__m256i*>(unpacked + 32 * r), _mm256_sub_epi8(q, _mm256_set1_epi8(16)));
    }
    return {unpacked, 32};
  }
};

// The interleaved types (tensor/interleave.h): block i of 16 rows is kBytes at w + kBytes i, the
// 16 fp16 scales, then vectors whose 32-bit lane r is row r. The A tile wants row r's 32 quants in
// order, so the 8 vectors of quants 4k..4k+3 (signed) are transposed: pairs of dwords, then of
// qwords, give per 128-bit lane l the dwords 0..3 (and 4..7) of row 4l + j, stored as the two
// halves of that row.
void store_rows(const __m512i* v, int8_t* unpacked) {  // [16][32]
  for (int h = 0; h < 2; ++h) {                        // dwords 4h..4h+3 of every row
    const __m512i* s = v + 4 * h;
    const __m512i p01lo = _mm512_unpacklo_epi32(s[0], s[1]), p01hi = _mm512_unpackhi_epi32(s[0], s[1]);
    const __m512i p23lo = _mm512_unpacklo_epi32(s[2], s[3]), p23hi = _mm512_unpackhi_epi32(s[2], s[3]);
    const __m512i rows[4] = {_mm512_unpacklo_epi64(p01lo, p23lo), _mm512_unpackhi_epi64(p01lo, p23lo),
                             _mm512_unpacklo_epi64(p01hi, p23hi), _mm512_unpackhi_epi64(p01hi, p23hi)};
    for (int j = 0; j < 4; ++j) {  // 128-bit lane l of rows[j]: row 4l + j
      int8_t* out = unpacked + 16 * h + 32 * j;
      _mm_store_si128(reinterpret_cast<__m128i*>(out), _mm512_castsi512_si128(rows[j]));
      _mm_store_si128(reinterpret_cast<__m128i*>(out + 128), _mm512_extracti32x4_epi32(rows[j], 1));
      _mm_store_si128(reinterpret_cast<__m128i*>(out + 256), _mm512_extracti32x4_epi32(rows[j], 2));
      _mm_store_si128(reinterpret_cast<__m128i*>(out + 384), _mm512_extracti32x4_epi32(rows[j], 3));
    }
  }
}

template <size_t kBlockBytes>
struct Interleaved {
  static constexpr size_t kBytes = kBlockBytes;  // per block of the 16 rows
  static void scales(const std::byte* w, size_t /*row_bytes*/, int64_t i, float* out) {
    _mm512_store_ps(out, _mm512_cvtph_ps(load256(w + static_cast<size_t>(i) * kBytes)));
  }
  // The 16 rows are one stream: block i's lines kWeightPrefetchBytes ahead.
  static void prefetch(const std::byte* w, size_t row_bytes, int64_t i, int n_rows) {
    for (int g = 0; g < n_rows / kTile; ++g) {
      prefetch_lines(
          w + static_cast<size_t>(g * kTile) * row_bytes + static_cast<size_t>(i) * kBytes + kWeightPrefetchBytes,
          kBytes);
    }
  }
};

struct Q4_0x16Tiles : Interleaved<tensor::kQ4_0x16BlockBytes> {
  static constexpr DType kType = DType::kQ4_0x16;
  static TileSource a_tile(const std::byte* w, size_t /*row_bytes*/, int64_t i, int8_t* unpacked) {  // [16][32]
    const std::byte* b = w + static_cast<size_t>(i) * kBytes + 32;
    const __m512i low = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
    __m512i v[8];  // quants 4k..4k+3 of the 16 rows (lane r), minus 8
    for (int k = 0; k < 4; ++k) {
      const __m512i q = _mm512_loadu_si512(b + 64 * k);
      v[2 * k] = _mm512_sub_epi8(_mm512_and_si512(q, low), eight);
      v[2 * k + 1] = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(q, 4), low), eight);
    }
    store_rows(v, unpacked);
    return {unpacked, 32};
  }
};

struct Q8_0x16Tiles : Interleaved<tensor::kQ8_0x16BlockBytes> {
  static constexpr DType kType = DType::kQ8_0x16;
  static TileSource a_tile(const std::byte* w, size_t /*row_bytes*/, int64_t i, int8_t* unpacked) {  // [16][32]
    const std::byte* b = w + static_cast<size_t>(i) * kBytes + 32;
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512i v[8];  // quants 4k..4k+3 of the 16 rows (lane r), stored + 128: back to signed
    for (int k = 0; k < 8; ++k) v[k] = _mm512_xor_si512(_mm512_loadu_si512(b + 64 * k), bias);
    store_rows(v, unpacked);
    return {unpacked, 32};
  }
};

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
    Weights::prefetch(w0, c.w_row_bytes, i, RA * kTile);
    const TileSource a0 = Weights::a_tile(w0, c.w_row_bytes, i, unpacked[0]);
    _tile_loadd(4, a0.data, a0.stride);
    Weights::scales(w0, c.w_row_bytes, i, dw[0]);
    if constexpr (RA == 2) {
      const TileSource a1 = Weights::a_tile(w1, c.w_row_bytes, i, unpacked[1]);
      _tile_loadd(5, a1.data, a1.stride);
      Weights::scales(w1, c.w_row_bytes, i, dw[1]);
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

// ---- narrow batches: one token tile of at most 8 tokens (a batched decode step) ----

constexpr int64_t kNarrowTokens = 8;

// The same tiles with 8 token columns: C 16 rows x 8 int32, B 8 rows x (8 tokens x 4 bytes),
// loaded from the first half of each packed B row (stride 64). C stores as 512 contiguous bytes,
// which the sums below read as 8 registers without a pass through a 16 x 16 buffer.
TileConfig make_narrow_config() {
  TileConfig c;
  for (int t = 0; t < 4; ++t) c.colsb[t] = 32, c.rows[t] = 16;
  for (int t = 4; t < 6; ++t) c.colsb[t] = 32, c.rows[t] = 16;
  for (int t = 6; t < 8; ++t) c.colsb[t] = 32, c.rows[t] = 8;
  return c;
}

// Rows [r0, r0 + 16 RA) x the first 8 tokens: row_group's arithmetic with its fp32 sums held in
// registers. acc[a][p] holds rows 2p (lanes 0..7) and 2p + 1 (lanes 8..15) of weight tile a for
// tokens 0..7, and each block adds fma(float(c), d_w[row] * d_x[token], acc) exactly as
// scale_add does, so outputs are bit-identical to the wide tiles and the VNNI kernels.
template <typename Weights, int RA>
void narrow_row_group(const Call& c, int64_t r0) {
  alignas(64) int32_t sums[RA][kTile * kNarrowTokens];  // C tiles stored: [row][token]
  alignas(64) float dw[RA][kTile];
  alignas(64) int8_t unpacked[RA][kTile * kQK];
  __m512i pair[8];  // permutation picking d_w of rows 2p (lanes 0..7) and 2p + 1 (lanes 8..15)
  for (int p = 0; p < 8; ++p) {
    pair[p] = _mm512_setr_epi32(2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1,
                                2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1);
  }
  __m512 acc[RA][8];
  for (int a = 0; a < RA; ++a) {
    for (int p = 0; p < 8; ++p) acc[a][p] = _mm512_setzero_ps();
  }
  const std::byte* w0 = c.w + static_cast<size_t>(r0) * c.w_row_bytes;
  const std::byte* w1 = w0 + static_cast<size_t>(kTile) * c.w_row_bytes;
  for (int64_t i = 0; i < c.nb; ++i) {
    Weights::prefetch(w0, c.w_row_bytes, i, RA * kTile);
    const std::byte* b = c.x.packed + static_cast<size_t>(i) * kRecordBytes;  // token tile 0
    _tile_loadd(6, b, 64);
    const TileSource a0 = Weights::a_tile(w0, c.w_row_bytes, i, unpacked[0]);
    _tile_loadd(4, a0.data, a0.stride);
    _tile_zero(0);
    _tile_dpbssd(0, 4, 6);
    _tile_stored(0, sums[0], 32);
    Weights::scales(w0, c.w_row_bytes, i, dw[0]);
    if constexpr (RA == 2) {
      const TileSource a1 = Weights::a_tile(w1, c.w_row_bytes, i, unpacked[1]);
      _tile_loadd(5, a1.data, a1.stride);
      _tile_zero(2);
      _tile_dpbssd(2, 5, 6);
      _tile_stored(2, sums[1], 32);
      Weights::scales(w1, c.w_row_bytes, i, dw[1]);
    }
    const __m512 dx16 = _mm512_load_ps(b + kBQuantBytes);                  // d_x of tokens 0..15
    const __m512 dx = _mm512_shuffle_f32x4(dx16, dx16, _MM_SHUFFLE(1, 0, 1, 0));  // tokens 0..7 twice
    for (int a = 0; a < RA; ++a) {
      const __m512 d = _mm512_load_ps(dw[a]);
      for (int p = 0; p < 8; ++p) {
        const __m512 scale = _mm512_mul_ps(_mm512_permutexvar_ps(pair[p], d), dx);
        const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(sums[a] + 2 * kNarrowTokens * p));
        acc[a][p] = _mm512_fmadd_ps(v, scale, acc[a][p]);
      }
    }
  }
  for (int a = 0; a < RA; ++a) {
    alignas(64) float s[kTile * kNarrowTokens];  // [row][token]
    for (int p = 0; p < 8; ++p) _mm512_store_ps(s + 16 * p, acc[a][p]);
    for (int64_t t = 0; t < c.x.n_tokens; ++t) {
      float* out = c.y + t * c.y_stride + r0 + kTile * a;
      for (int m = 0; m < kTile; ++m) out[m] = s[kNarrowTokens * m + t];
    }
  }
}

// ---- the packed (tile) gemm ----

template <typename Weights>
void packed_gemm(const PackedActivations& x, const std::byte* w, size_t w_row_bytes, int64_t n_rows, float* y,
                 int64_t y_stride) {
  static const TileConfig config = make_config();
  static const TileConfig narrow_config = make_narrow_config();
  const Call call{x, w, w_row_bytes, y, y_stride, x.n / kQK};
  auto rest = [&](int64_t first) {  // the last rows of a matrix whose row count is not a multiple of 16
    vbmi_decode_gemm(Weights::kType)(x.n, w + static_cast<size_t>(first) * w_row_bytes, w_row_bytes, n_rows - first,
                                     x.rows, x.row_bytes, x.n_tokens, y + first, y_stride);
  };
  if (x.n_tokens <= kNarrowTokens) {
    run_packed(
        narrow_config, call, n_rows,
        [](const Call& c, int64_t n_full, int64_t /*tile0*/, int64_t /*tile1*/) {
          int64_t r = 0;
          for (; r + 2 * kTile <= n_full; r += 2 * kTile) narrow_row_group<Weights, 2>(c, r);
          if (r < n_full) narrow_row_group<Weights, 1>(c, r);
        },
        rest);
    return;
  }
  run_packed(
      config, call, n_rows,
      [](const Call& c, int64_t n_full, int64_t tile0, int64_t tile1) {
        int64_t r = 0;
        for (; r + 2 * kTile <= n_full; r += 2 * kTile) row_group<Weights, 2>(c, r, tile0, tile1);
        if (r < n_full) row_group<Weights, 1>(c, r, tile0, tile1);
      },
      rest);
}

// From this many tokens on the tiles beat this unit's VNNI gemm, padding and packing included
// (a 1536 x 576 matrix, one thread, tiles vs VNNI time: Q8_0 at 1 token 2.1x slower, 2 tokens
// 1.6x slower, 4 tokens 1.14x faster, 8 tokens 2.1x, 16 tokens 3.9x, 64 tokens 5.1x; Q4_0 2.6x
// and 1.8x slower, 0.87x at 4, 1.4x faster at 6, 3.2x at 16, 5.0x at 64).
constexpr int64_t kMinTokens = 5;

KernelTable make_table() {
  KernelTable t = vbmi_table();
  t.isa = Isa::kAmx;
  t.pack_activations[dtype_slot(DType::kQ8_0)] = pack_q8_0;
  t.packed_gemm[dtype_slot(DType::kQ8_0)] = packed_gemm<Q8_0Tiles>;
  t.packed_gemm[dtype_slot(DType::kQ4_0)] = packed_gemm<Q4_0Tiles>;
  t.packed_gemm[dtype_slot(DType::kQ5_0)] = packed_gemm<Q5_0Tiles>;
  t.packed_gemm[dtype_slot(DType::kQ4_0x16)] = packed_gemm<Q4_0x16Tiles>;
  t.packed_gemm[dtype_slot(DType::kQ8_0x16)] = packed_gemm<Q8_0x16Tiles>;
  t.packed_min_tokens = kMinTokens;
  // Q4_K rows up to 2048 wide (1152 bytes) only. Wider ones, read row-major, decode faster:
  // Llama-3.2-1B Q4_K_M's 8192-wide FFN-down matrix at 0.95 of the same-shaped Q6_K matrix's GB/s
  // on two threads, 0.82-0.83 interleaved; its prompts took the same time either way (tiles).
  t.interleave_max_row_bytes[dtype_slot(DType::kQ4_K)] = 1152;
  add_amx_k_quants(t);
  add_amx_f16(t);
  return t;
}

}  // namespace

const KernelTable& amx_table() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace lightboat::kernels::detail
