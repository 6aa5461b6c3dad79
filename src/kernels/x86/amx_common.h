// Pieces shared by the VBMI and AMX-INT8 units (x86/amx_decode.cpp, amx_interleaved.cpp, amx.cpp:
// Q8_0 / Q4_0 / Q5_0 weights and their layouts; x86/amx_k.cpp: Q4_K, amx_q6_k.cpp: Q6_K). Like
// x86_common.h, the helpers sit in an anonymous namespace so each unit compiles its own copy with
// its own flags; only the table fillers and gemm lookups declared below are shared symbols.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/dispatch.h"

namespace lightboat::kernels::detail {

// The VBMI table (x86/vbmi.cpp) is the AVX-512 table plus the VNNI kernels below, which use
// AVX512-VBMI and GFNI and add in exactly the AMX tiles' order; the AMX table (x86/amx.cpp) is the
// VBMI table plus the tiles' packed gemms for batches. So a token's outputs are the same bits
// alone or in a batch on either table.
//
// x86/amx_decode.cpp: the VNNI gemm and vec_dot of Q8_0, Q4_0 and Q5_0, and the gemms of the
// interleaved types, into `t`; and the VNNI gemm by weight type (the AMX table's gemm for the
// rows past a packed gemm's last 16; null for other types).
void add_vbmi_decode(KernelTable& t);
GemmFn vbmi_decode_gemm(DType type);
// x86/amx_interleaved.cpp: the VNNI (F16x16: FMA) gemm of Q4_0x16, Q8_0x16, Q4_Kx16 or F16x16
// weights (whole groups of 16 rows); null for other types.
GemmFn vbmi_interleaved_gemm(DType type);
// x86/amx_k.cpp: Q4_K's and Q4_Kx16's VNNI gemm and vec_dot, and Q6_K's (x86/amx_q6_k.cpp).
void add_vbmi_k_quants(KernelTable& t);
void add_vbmi_q6_k(KernelTable& t);
// The same units' packed gemms of Q4_K, Q4_Kx16 and Q6_K on the tiles, and the Q8_K packing.
void add_amx_k_quants(KernelTable& t);
void add_amx_q6_k(KernelTable& t);
// Fills `t`'s F16 packed gemm (x86/amx_f16.cpp: AMX-BF16 on hi/lo parts) where the CPU has AMX-BF16.
void add_amx_f16(KernelTable& t);

namespace {

constexpr int64_t kTile = 16;       // rows of a weight tile, tokens of a token tile
constexpr int64_t kChunkTiles = 8;  // token tiles whose fp32 sums stay in L1 (16 KiB per 16 rows)

// Packed Q8_K activations (amx_k.cpp's pack_q8_k, read by both K-quant gemms): for token tile tt
// and super-block i, a record at (tt * nb + i) * kKRecordBytes holding, for each 64-element chunk
// c, a B tile (row k = quants 64c + 4k .. 64c + 4k + 3 of the 16 tokens, 4 bytes each), then d_x
// of the 16 tokens as fp32, then for p = 0..3 the 32-element sums of sub-blocks 2p and 2p + 1 of
// the 16 tokens as int16 pairs (token t's 4 bytes at 4t: for vpdpwssd against Q4_K mins). Padded
// tokens are zero.
constexpr int kKChunks = 4;            // 64-element chunks of a 256-element super-block
constexpr size_t kKChunkBytes = 1024;  // B of one chunk: 16 rows x (16 tokens x 4 bytes)
constexpr size_t kKDxOffset = kKChunks * kKChunkBytes;
constexpr size_t kKSumsOffset = kKDxOffset + kTile * sizeof(float);
constexpr size_t kKRecordBytes = kKSumsOffset + 4 * 64;
static_assert(kKRecordBytes % 64 == 0, "records keep the packed layout 64-byte aligned");
static_assert(kKRecordBytes <= static_cast<size_t>(256 / kPackedBlockElems * kTile * kPackedMaxBytesPerBlock));

// The LDTILECFG operand (palette 1): bytes per row and rows of each tile register.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// One packed gemm call as every unit's row kernels see it.
struct Call {
  const PackedActivations& x;
  const std::byte* w;  // row 0 of the caller's range
  size_t w_row_bytes;
  float* y;
  int64_t y_stride;
  int64_t nb;  // weight blocks per row
};

// The loop every unit's packed gemm runs: with the tile configuration loaded (it belongs to the
// thread; released afterwards so the OS need not save the tiles), token tiles in chunks of
// kChunkTiles, each passed with the rows that fill whole 16-row tiles to
// full_rows(c, n_full_rows, tile0, tile1); then the last n_rows % 16 rows to rest(first_row)
// (the unit's tile-order VNNI gemm).
template <typename FullRows, typename Rest>
void run_packed(const TileConfig& config, const Call& c, int64_t n_rows, FullRows full_rows, Rest rest) {
  const int64_t n_tiles = (c.x.n_tokens + kTile - 1) / kTile;
  const int64_t n_full = n_rows / kTile * kTile;
  if (n_full > 0) {
    _tile_loadconfig(&config);
    for (int64_t tile0 = 0; tile0 < n_tiles; tile0 += kChunkTiles) {
      full_rows(c, n_full, tile0, tile0 + kChunkTiles < n_tiles ? tile0 + kChunkTiles : n_tiles);
    }
    _tile_release();
  }
  if (n_full < n_rows) rest(n_full);
}

// The packed gemm of a unit whose tile kernel takes 16 rows at a time (RowTile(c, r0, tile0,
// tile1)) and whose tile-order VNNI gemm (Rest) takes the last n_rows % 16 rows: amx_k.cpp's
// Q4_K and amx_q6_k.cpp's Q6_K.
template <void (*RowTile)(const Call&, int64_t, int64_t, int64_t), GemmFn Rest>
void packed_gemm_16(const TileConfig& config, int64_t blocks_per_row, const PackedActivations& x, const std::byte* w,
                    size_t w_row_bytes, int64_t n_rows, float* y, int64_t y_stride) {
  run_packed(
      config, Call{x, w, w_row_bytes, y, y_stride, blocks_per_row}, n_rows,
      [](const Call& c, int64_t n_full, int64_t tile0, int64_t tile1) {
        for (int64_t r = 0; r < n_full; r += kTile) RowTile(c, r, tile0, tile1);
      },
      [&](int64_t first) {
        Rest(x.n, w + static_cast<size_t>(first) * w_row_bytes, w_row_bytes, n_rows - first, x.rows, x.row_bytes,
             x.n_tokens, y + first, y_stride);
      });
}

// Calls kernel(std::integral_constant<int, NT>{}, t0) over tokens [0, n_tokens): groups of 4, then
// one group of the 1..3 left (the decode kernels share each weight's work across a group).
template <typename Kernel>
inline void by_token_groups(int64_t n_tokens, Kernel&& kernel) {
  int64_t t = 0;
  for (; t + 4 <= n_tokens; t += 4) kernel(std::integral_constant<int, 4>{}, t);
  const int64_t left = n_tokens - t;
  if (left == 3) kernel(std::integral_constant<int, 3>{}, t);
  if (left == 2) kernel(std::integral_constant<int, 2>{}, t);
  if (left == 1) kernel(std::integral_constant<int, 1>{}, t);
}

// Weights or activations that a batch keeps in L2 at a time (in_l2_blocks), and the fewest rows
// of a block: the kernels prepare each token's activations once per block (Q4_0x16: each block's
// sum and scale, about a twelfth of the work of one group of 16 rows), which on Llama-3.2-1B's
// 8192-wide FFN-down rows, 192 KiB being 2 groups, cost about as much as the products. With at
// least 128 rows that matrix's pp512 calls took 117 ms on one thread instead of 124, while the
// other matrices of the same runs were 1.2x slower (the machine's phase).
constexpr size_t kBatchBlockBytes = size_t{192} << 10;
constexpr int64_t kBatchMinRows = 128;

// Gemm, for any number of tokens. Up to 4 (decode) that is Gemm itself, which streams its rows
// from memory once per group of tokens. A batch (the VBMI table's prompts, which have no tiles)
// is cut into blocks that stay in L2: chunks of tokens whose activations take about
// kBatchBlockBytes and, within each, blocks of whole 16-row groups whose weights take about as
// much, so Gemm re-reads a block's rows for each group of tokens (4, or the interleaved Q4_0x16 /
// Q8_0x16 kernel's 8) from L2 and not from memory.
// Each output still sums its own weight blocks in order: the blocking changes no bits.
template <GemmFn Gemm>
void in_l2_blocks(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                  size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  if (n_tokens <= 4) {
    Gemm(n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
    return;
  }
  // (Chunks of whole groups of 8 tokens, the interleaved Q4_0x16 / Q8_0x16 kernel's batch group.)
  const auto tokens = static_cast<int64_t>(kBatchBlockBytes / x_row_bytes / 8 * 8);
  const auto rows = static_cast<int64_t>(kBatchBlockBytes / w_row_bytes / kTile * kTile);
  const int64_t chunk = tokens > 8 ? tokens : 8, block = rows > kBatchMinRows ? rows : kBatchMinRows;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += chunk) {
    const int64_t nt = n_tokens - t0 < chunk ? n_tokens - t0 : chunk;
    for (int64_t r0 = 0; r0 < n_rows; r0 += block) {
      Gemm(n, w + static_cast<size_t>(r0) * w_row_bytes, w_row_bytes, n_rows - r0 < block ? n_rows - r0 : block,
           x + static_cast<size_t>(t0) * x_row_bytes, x_row_bytes, nt, y + t0 * y_stride + r0, y_stride);
    }
  }
}

// The 12 packed 6-bit scales and mins of 16 Q4_K rows, lane = row: h1, h2, h3 hold each row's
// scale bytes 0-3, 4-7 and 8-11. Byte j of each dword of sc_lo is scale j, of sc_hi scale 4 + j;
// min_pairs are the mins as int16 pairs (m0, m2), (m1, m3), (m4, m6), (m5, m7), against
// k_sum_pairs. (Q4_K's rule: j < 4: sc = q[j] & 63, m = q[j + 4] & 63; j >= 4: sc = q[j + 4] & 15
// | q[j - 4] >> 6 << 4, m = q[j + 4] >> 4 | q[j] >> 6 << 4.)
struct KScalesMins {
  __m512i sc_lo, sc_hi;
  __m512i min_pairs[4];
};

inline KScalesMins unpack_k_scales_mins(__m512i h1, __m512i h2, __m512i h3) {
  const __m512i m6 = _mm512_set1_epi8(0x3f), m4 = _mm512_set1_epi8(0x0f), top2 = _mm512_set1_epi8(0x30);
  const __m512i low8 = _mm512_set1_epi32(0x00ff00ff);
  const __m512i mn_lo = _mm512_and_si512(h2, m6);
  const __m512i mn_hi =
      _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h3, 4), m4), _mm512_and_si512(_mm512_srli_epi32(h2, 2), top2));
  return {_mm512_and_si512(h1, m6),
          _mm512_or_si512(_mm512_and_si512(h3, m4), _mm512_and_si512(_mm512_srli_epi32(h1, 2), top2)),
          {_mm512_and_si512(mn_lo, low8), _mm512_and_si512(_mm512_srli_epi32(mn_lo, 8), low8),
           _mm512_and_si512(mn_hi, low8), _mm512_and_si512(_mm512_srli_epi32(mn_hi, 8), low8)}};
}

// A Q8_K block's sub-block sums b0..b7 (pairs of its 16-element bsums at `bsums`), broadcast as
// int16 pairs (b0, b2), (b1, b3), (b4, b6), (b5, b7): M = sum_k vpdpwssd(min_pairs[k], bs[k]).
inline void k_sum_pairs(const std::byte* bsums, __m512i* bs) {
  const __m256i b =
      _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums)), _mm256_set1_epi16(1));
  const __m256i w = _mm256_shuffle_epi8(
      _mm256_packs_epi32(b, b),
      _mm256_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 0, 1, 4, 5, 2, 3, 6, 7, 0, 1, 4, 5, 2, 3, 6, 7, 0, 1, 4, 5, 2, 3, 6, 7));
  alignas(32) int32_t pairs[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(pairs), w);
  bs[0] = _mm512_set1_epi32(pairs[0]);
  bs[1] = _mm512_set1_epi32(pairs[1]);
  bs[2] = _mm512_set1_epi32(pairs[4]);
  bs[3] = _mm512_set1_epi32(pairs[5]);
}

// Sixteen row sums from d[p] = 8 int32 partial sums of row 2p (lanes 0..7) and 8 of row 2p + 1
// (lanes 8..15): lane 4k + j of the result is row k + 4j's sum (kRowOfLane).
inline __m512i reduce_16_rows(const __m512i* d) {
  __m512i s[4];
  for (int q = 0; q < 4; ++q) {  // 128-bit lane k of s[q]: row 4q + k's 4 partial sums
    const __m512i a = _mm512_shuffle_i32x4(d[2 * q], d[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i b = _mm512_shuffle_i32x4(d[2 * q], d[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1));
    s[q] = _mm512_add_epi32(a, b);
  }
  // Within each 128-bit lane k: [row k, row 4 + k, row 8 + k, row 12 + k] (a 4 x 4 transpose-add).
  const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[0], s[1]), _mm512_unpackhi_epi32(s[0], s[1]));
  const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[2], s[3]), _mm512_unpackhi_epi32(s[2], s[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
}

constexpr int kRowOfLane[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

// Byte offsets of 16 consecutive rows `stride` bytes apart, for gathers.
inline __m512i row_offsets(size_t stride) {
  return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                            _mm512_set1_epi32(static_cast<int>(stride)));
}

}  // namespace
}  // namespace lightboat::kernels::detail
