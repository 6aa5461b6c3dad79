// AMX-BF16 gemm for F16 weights with F16 activations (Sapphire Rapids and later: AMX-BF16, no
// AMX-FP16 needed). Compiled with the AMX flags plus -mamx-bf16; add_amx_f16 registers it only
// where CPUID also reports AMX-BF16 (the tile state Linux granted for AMX-INT8 is the same
// XTILEDATA, so dispatch.cpp's permission request covers these tiles too).
//
// Exact split. An fp16 value v (11-bit significand, |v| >= 2^-24 unless 0) is hi + lo with
// hi = v truncated to bf16 (8 significant bits, same sign) and lo = v - hi (the 3 low bits, same
// sign): both are exact bf16 values, |hi| + |lo| = |v|. So for a weight w and an activation x,
//   w * x = hi(w) hi(x) + hi(w) lo(x) + lo(w) lo(x) + lo(w) hi(x),
// four products of bf16 pairs, each exact in fp32 (<= 16 significant bits), all >= 2^-48 in
// magnitude when non-zero, so the unit's flushing of denormal inputs and outputs never applies
// (partial sums are multiples of 2^-48 too). TDPBF16PS accumulates those products in fp32 with
// round-to-nearest-even at each addition, so an output is the fp32 sum of 4n exact terms in some
// order: |y - sum_i w_i x_i| <= 4n * 2^-24 * sum_i |w_i x_i| (plus the reference's own final
// rounding). It is not bit-identical to the AVX-512 kernel of decode (vec_dot), whose order of
// additions differs, so a token's F16 outputs may differ in the last bits between a big batch and
// a small one (the tests state this bound instead).
//
// Layout. Activations are the A operand (16 tokens x 32 bf16, row-major, as they come), packed once
// per matmul call by pack_f16: for token tile tt and k-step s (32 elements) a 2 KiB record
// [hi tile | lo tile]. Weights are the B operand, whose rows pair elements (B[k][2r + j] =
// element 2k + j of weight row r): each 16-row tile is transposed as 16 x 16 dwords (element
// pairs) and split, per thread, once per 32-row group and token chunk, into a buffer that every
// token tile of the chunk reuses. The fp32 sums stay in the tile registers over the whole row
// (C: 2 token tiles x 2 row tiles), and C is [token][row], the layout of y: full tiles are stored
// straight into y. Rows past the last multiple of 16 go to the AVX-512 dense gemm. F16x16 weights
// (tensor/interleave.h) give their tiles with one word permutation per tile row instead.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cpuid.h>
#include <immintrin.h>

#include <cstring>

#include "kernels/aligned_buffer.h"
#include "kernels/isa_tables.h"
#include "kernels/prefetch.h"
#include "kernels/x86/amx_common.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

constexpr int64_t kStep = 32;                    // elements per k-step: one 64-byte tile row of bf16
constexpr size_t kTileBytes = 1024;              // 16 rows x 64 bytes
constexpr size_t kRecordBytes = 2 * kTileBytes;  // the hi and lo tiles of one k-step
constexpr int64_t kBytesPerBlock = 4 * kStep;    // per token: two bf16 parts of 32 elements
static_assert(kStep == kPackedBlockElems && kRecordBytes == static_cast<size_t>(kTile * kBytesPerBlock));

// Token tiles per chunk: as many as keep the chunk's packed activations within 1.5 MiB of the
// 2 MiB L2 (they are read once per 32-row group), at least kChunkTiles so the weights' conversion
// is spread over at least 128 tokens. Each chunk converts every weight again: SmolLM2's 512-token
// prefill takes one chunk at 576 columns and two at 1536 (with 1 MiB: two and four, and the
// conversion was 16% of the gemm's profile).
constexpr size_t kChunkBytes = size_t{3} << 19;

// From this many tokens on the tiles beat the AVX-512 dense gemm, weight conversion included
// (one thread, 2048 x 2048: 16 tokens 1.9 -> 1.4 ms, 64 tokens 5.0 -> 2.2 ms). Below, a token
// tile is mostly padding while every weight is still converted.
constexpr int64_t kMinTokens = 16;

// All eight tiles are 16 rows x 64 bytes: C 0..3 (token tile b, row tile a at 2b + a), A 4..5
// (the two token tiles' hi or lo part), B 6..7 (the two row tiles' hi or lo part).
TileConfig make_config() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  return c;
}

// The hi and lo bf16 parts of 32 fp16 values, in the same order (see the file comment).
struct Parts {
  __m512i hi, lo;
};

inline Parts split_f16(__m512i v) {
  const __m512 a = _mm512_cvtph_ps(_mm512_castsi512_si256(v));
  const __m512 b = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(v, 1));
  const __m512i top = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  const __m512i a_hi = _mm512_and_si512(_mm512_castps_si512(a), top);
  const __m512i b_hi = _mm512_and_si512(_mm512_castps_si512(b), top);
  // Exact: lo has at most 3 significant bits, so its fp32 form ends in 16 zero bits too.
  const __m512i a_lo = _mm512_castps_si512(_mm512_sub_ps(a, _mm512_castsi512_ps(a_hi)));
  const __m512i b_lo = _mm512_castps_si512(_mm512_sub_ps(b, _mm512_castsi512_ps(b_hi)));
  // The upper 16 bits of each fp32: odd words of a (0..31) then of b (32..63).
  const __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27,
                                       25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  return {_mm512_permutex2var_epi16(a_hi, odd, b_hi), _mm512_permutex2var_epi16(a_lo, odd, b_lo)};
}

// The 32 fp16 of k-step s of a row of n elements; zeros past n (masked: no byte past the row is read).
inline __m512i load_step(const std::byte* row, int64_t n, int64_t s) {
  const std::byte* p = row + static_cast<size_t>(s * kStep) * 2;
  const int64_t left = n - s * kStep;
  if (left >= kStep) return _mm512_loadu_si512(p);
  return _mm512_maskz_loadu_epi16(static_cast<__mmask32>((1u << left) - 1u), p);
}

// Packed activations: for token tile tt and k-step s, at (tt * ns + s) * kRecordBytes, the hi
// tile (row t = token 16 tt + t, 32 bf16) then the lo tile. Tokens past n_tokens and elements
// past n are zero.
void pack_f16(const PackedActivations& x, int64_t t0, int64_t t1) {
  const int64_t ns = (x.n + kStep - 1) / kStep;
  for (int64_t tt = t0 / kTile; tt * kTile < t1; ++tt) {
    for (int64_t t = 0; t < kTile; ++t) {
      const int64_t token = tt * kTile + t;
      std::byte* out = x.packed + static_cast<size_t>(tt * ns) * kRecordBytes + static_cast<size_t>(64 * t);
      for (int64_t s = 0; s < ns; ++s, out += kRecordBytes) {
        const __m512i v = token < x.n_tokens ? load_step(x.rows + static_cast<size_t>(token) * x.row_bytes, x.n, s)
                                             : _mm512_setzero_si512();
        const Parts p = split_f16(v);
        _mm512_store_si512(out, p.hi);
        _mm512_store_si512(out + kTileBytes, p.lo);
      }
    }
  }
}

// In place: r[i] dword j becomes r[j] dword i (16 x 16 dwords).
inline void transpose_16x16(__m512i* r) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // 128-bit lane L of u[4i + j]: dword 4L + j of rows 4i .. 4i + 3.
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  // Output 4L + j gathers lane L of u[j], u[4 + j], u[8 + j], u[12 + j].
  for (int j = 0; j < 4; ++j) {
    const __m512i p0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);  // lanes 0, 2 of each
    const __m512i p1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xdd);  // lanes 1, 3
    const __m512i q0 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
    const __m512i q1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_i32x4(p0, q0, 0x88);
    r[4 + j] = _mm512_shuffle_i32x4(p1, q1, 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(p0, q0, 0xdd);
    r[12 + j] = _mm512_shuffle_i32x4(p1, q1, 0xdd);
  }
}

// The B tiles of k-step s of 16 weight rows from w: hi at out, lo at out + kTileBytes, row k
// holding elements 2k, 2k + 1 of each of the 16 rows.
void weight_tiles(const std::byte* w, size_t row_bytes, int64_t n, int64_t s, std::byte* out) {
  __m512i r[16];
  for (int i = 0; i < 16; ++i) {
    const std::byte* row = w + static_cast<size_t>(i) * row_bytes;
    prefetch_weights(row + static_cast<size_t>(s * kStep) * 2);
    r[i] = load_step(row, n, s);
  }
  transpose_16x16(r);
  for (int k = 0; k < 16; ++k) {
    const Parts p = split_f16(r[k]);
    _mm512_store_si512(out + 64 * k, p.hi);
    _mm512_store_si512(out + kTileBytes + 64 * k, p.lo);
  }
}

// The same tiles from 16 rows stored as F16x16 (tensor/interleave.h) at `group`: columns 2k and
// 2k + 1 of the step are 64 adjacent bytes (the 16 rows' elements of one, then of the other), and
// one word permutation pairs them per row. Columns past n are zero.
void weight_tiles_x16(const std::byte* group, size_t /*row_bytes*/, int64_t n, int64_t s, std::byte* out) {
  // Word 2r + j of a tile row takes word 16j + r of the two columns.
  const __m512i pair = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                        5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int k = 0; k < 16; ++k) {
    const int64_t c = s * kStep + 2 * k;
    const std::byte* p = group + static_cast<size_t>(c) * 32;
    __m512i v;
    if (c + 1 < n) {
      prefetch_weights(p);
      v = _mm512_loadu_si512(p);
    } else {
      v = c < n ? _mm512_maskz_loadu_epi16(0xffffu, p) : _mm512_setzero_si512();
    }
    const Parts parts = split_f16(_mm512_permutexvar_epi16(pair, v));
    _mm512_store_si512(out + 64 * k, parts.hi);
    _mm512_store_si512(out + kTileBytes + 64 * k, parts.lo);
  }
}

struct Block {
  const std::byte* a;  // token tile tt's record of k-step 0
  size_t a_next;       // bytes to token tile tt + 1's
  const std::byte* b;  // the row group's converted weights: k-step s, row tile r at (s * RB + r) * kRecordBytes
  int64_t ns;          // k-steps
  float* y;            // output of token 16 tt, row 0 of the group
  int64_t y_stride;
  int64_t valid[2];    // real tokens of each token tile (16 when full)
};

// C tile `c` of (token tile b, row tile a): straight into y when the token tile is full, else
// through a buffer for its real tokens.
#define LIGHTBOAT_STORE_C(c, b, a)                                                                      \
  do {                                                                                                  \
    float* out = blk.y + (kTile * (b)) * blk.y_stride + kTile * (a);                                   \
    if (blk.valid[b] == kTile) {                                                                        \
      _tile_stored(c, out, blk.y_stride * static_cast<int64_t>(sizeof(float)));                        \
    } else {                                                                                            \
      alignas(64) float tmp[kTile * kTile];                                                             \
      _tile_stored(c, tmp, 64);                                                                         \
      for (int64_t t = 0; t < blk.valid[b]; ++t) std::memcpy(out + t * blk.y_stride, tmp + kTile * t, 64); \
    }                                                                                                   \
  } while (false)

// TA token tiles x RB row tiles, the whole row: per k-step 4 products (hi/lo x hi/lo) for each
// of the TA x RB C tiles, the part tiles loaded in an order that reuses two of them each time.
template <int TA, int RB>
void block(const Block& blk) {
  _tile_zero(0);
  if constexpr (RB == 2) _tile_zero(1);
  if constexpr (TA == 2) _tile_zero(2);
  if constexpr (TA == 2 && RB == 2) _tile_zero(3);
  auto products = [] {
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (RB == 2) _tile_dpbf16ps(1, 4, 7);
    if constexpr (TA == 2) _tile_dpbf16ps(2, 5, 6);
    if constexpr (TA == 2 && RB == 2) _tile_dpbf16ps(3, 5, 7);
  };
  for (int64_t s = 0; s < blk.ns; ++s) {
    const std::byte* a0 = blk.a + static_cast<size_t>(s) * kRecordBytes;
    const std::byte* a1 = a0 + blk.a_next;
    const std::byte* b0 = blk.b + static_cast<size_t>(s * RB) * kRecordBytes;
    const std::byte* b1 = b0 + kRecordBytes;
    _tile_loadd(4, a0, 64);  // A hi x B hi
    if constexpr (TA == 2) _tile_loadd(5, a1, 64);
    _tile_loadd(6, b0, 64);
    if constexpr (RB == 2) _tile_loadd(7, b1, 64);
    products();
    _tile_loadd(6, b0 + kTileBytes, 64);  // A hi x B lo
    if constexpr (RB == 2) _tile_loadd(7, b1 + kTileBytes, 64);
    products();
    _tile_loadd(4, a0 + kTileBytes, 64);  // A lo x B lo
    if constexpr (TA == 2) _tile_loadd(5, a1 + kTileBytes, 64);
    products();
    _tile_loadd(6, b0, 64);  // A lo x B hi
    if constexpr (RB == 2) _tile_loadd(7, b1, 64);
    products();
  }
  LIGHTBOAT_STORE_C(0, 0, 0);
  if constexpr (RB == 2) LIGHTBOAT_STORE_C(1, 0, 1);
  if constexpr (TA == 2) LIGHTBOAT_STORE_C(2, 1, 0);
  if constexpr (TA == 2 && RB == 2) LIGHTBOAT_STORE_C(3, 1, 1);
}
#undef LIGHTBOAT_STORE_C

template <int RB>
void row_group(const PackedActivations& x, const std::byte* wb, int64_t ns, int64_t tile0, int64_t tile1, float* y,
               int64_t y_stride) {
  const size_t a_next = static_cast<size_t>(ns) * kRecordBytes;
  for (int64_t tt = tile0; tt < tile1; tt += 2) {
    Block blk{.a = x.packed + static_cast<size_t>(tt) * a_next,
              .a_next = a_next,
              .b = wb,
              .ns = ns,
              .y = y + tt * kTile * y_stride,
              .y_stride = y_stride,
              .valid = {}};
    for (int b = 0; b < 2; ++b) {
      const int64_t left = x.n_tokens - (tt + b) * kTile;
      blk.valid[b] = left < 0 ? 0 : (left < kTile ? left : kTile);
    }
    if (tt + 2 <= tile1) {
      block<2, RB>(blk);
    } else {
      block<1, RB>(blk);
    }
  }
}

// Tiles gives a 16-row tile's B tiles of one k-step (weight_tiles or weight_tiles_x16); Rest is
// the gemm of rows past the last multiple of 16 (or of all, without a buffer).
template <void (*Tiles)(const std::byte*, size_t, int64_t, int64_t, std::byte*), DType kRestType>
void packed_gemm_f16(const PackedActivations& x, const std::byte* w, size_t w_row_bytes, int64_t n_rows, float* y,
                     int64_t y_stride) {
  static const TileConfig config = make_config();
  thread_local AlignedBuffer weights;  // [k-step][row tile 0..1][hi, lo tile] of one 32-row group
  const int64_t ns = (x.n + kStep - 1) / kStep;
  const int64_t n_tiles = (x.n_tokens + kTile - 1) / kTile;
  std::byte* wb = weights.get(static_cast<size_t>(2 * ns) * kRecordBytes);
  const int64_t n_full = wb != nullptr ? n_rows / kTile * kTile : 0;
  if (n_full > 0) {
    // Chunks of about equal size, each within kChunkBytes where that leaves kChunkTiles.
    const int64_t fit = static_cast<int64_t>(kChunkBytes / (static_cast<size_t>(ns) * kRecordBytes));
    const int64_t max_tiles = fit > kChunkTiles ? fit : kChunkTiles;
    const int64_t n_chunks = (n_tiles + max_tiles - 1) / max_tiles;
    const int64_t chunk = (n_tiles + n_chunks - 1) / n_chunks;
    _tile_loadconfig(&config);
    for (int64_t tile0 = 0; tile0 < n_tiles; tile0 += chunk) {
      const int64_t tile1 = tile0 + chunk < n_tiles ? tile0 + chunk : n_tiles;
      for (int64_t r = 0; r < n_full; r += 2 * kTile) {
        const int64_t rb = n_full - r >= 2 * kTile ? 2 : 1;
        const std::byte* wr = w + static_cast<size_t>(r) * w_row_bytes;
        for (int64_t s = 0; s < ns; ++s) {
          for (int64_t a = 0; a < rb; ++a) {
            Tiles(wr + static_cast<size_t>(a * kTile) * w_row_bytes, w_row_bytes, x.n, s,
                  wb + static_cast<size_t>(s * rb + a) * kRecordBytes);
          }
        }
        __asm__ volatile("" ::: "memory");  // the tile loads read wb (GCC's _tile_loadd has no memory operand)
        if (rb == 2) {
          row_group<2>(x, wb, ns, tile0, tile1, y + r, y_stride);
        } else {
          row_group<1>(x, wb, ns, tile0, tile1, y + r, y_stride);
        }
      }
    }
    _tile_release();
  }
  if (n_full < n_rows) {  // the last n_rows % 16 rows (or all, without a buffer)
    const GemmFn rest =
        kRestType == DType::kF16 ? avx512_table().gemm[dtype_slot(DType::kF16)] : vbmi_interleaved_gemm(DType::kF16x16);
    rest(x.n, w + static_cast<size_t>(n_full) * w_row_bytes, w_row_bytes, n_rows - n_full, x.rows, x.row_bytes,
         x.n_tokens, y + n_full, y_stride);
  }
}

// AMX-BF16: CPUID leaf 7, EDX bit 22 (the tile state itself was checked with AMX-INT8).
bool cpu_has_amx_bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 && (edx & (1u << 22)) != 0;
}

}  // namespace

void add_amx_f16(KernelTable& t) {
  if (!cpu_has_amx_bf16()) return;
  const size_t f16 = dtype_slot(DType::kF16);
  t.packed_gemm[f16] = packed_gemm_f16<weight_tiles, DType::kF16>;
  t.pack_activations[f16] = pack_f16;
  t.packed_min_tokens_of[f16] = kMinTokens;
  t.packed_bytes_per_block[f16] = kBytesPerBlock;
  const size_t f16x16 = dtype_slot(DType::kF16x16);
  t.packed_gemm[f16x16] = packed_gemm_f16<weight_tiles_x16, DType::kF16x16>;
  t.packed_min_tokens_of[f16x16] = kMinTokens;
  t.packed_bytes_per_block[f16x16] = kBytesPerBlock;
  t.interleave[f16] = true;
}

}  // namespace lightboat::kernels::detail
