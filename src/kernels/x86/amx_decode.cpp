// The VBMI table's kernels for Q8_0, Q4_0 and Q5_0 weights (x86/vbmi.cpp: every batch size there,
// batches through in_l2_blocks), which the AMX table uses for 1..4 tokens and for the rows past
// the last 16 of a packed gemm: AVX-512 VNNI that adds in exactly the tiles' order (x86/amx.cpp):
// acc = fma(float(int32 sum of the block's 32 products), d_w * d_x, acc), block after block from
// 0. So a token's outputs are bit-identical whichever path a batch takes (a sequence's logits do
// not depend on how many tokens or other sequences share its forward pass), as with the other
// tables. (The AVX-512 table's VNNI kernel keeps 8 partial sums per output instead, which the
// tiles cannot reproduce.) Compiled with the VBMI units' flags (AVX-512 plus VBMI and GFNI).
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

// Decoding streams every weight from memory once per token, so the kernel for 1..4 tokens is
// built to spend few vector instructions per weight byte: with 512-bit code only ports 0 and 5
// execute vector instructions, and permutes run on port 5 alone. Sixteen rows are taken four
// blocks at a time:
//  - per row, 64-byte loads and one VPERMT2B (AVX512-VBMI, which every AMX CPU has; two for
//    Q8_0's 136 bytes) gather the four blocks' quants into two registers: 128-bit lane k holds
//    elements 0..15 (lo) and 16..31 (hi) of block k, as unsigned bytes (the *Group loaders);
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

// Prefetch (kernels/prefetch.h) in the kernel's own order of reads. It walks 16 rows column-wise
// (four blocks of each row, then the next four), so a fixed byte distance ahead lands sometimes in
// the rows being read and sometimes a whole row group beyond: one thread then kept too few lines
// in flight (Llama-3.2-1B Q4_0 tg, one thread, 10.1 tok/s of a 15 tok/s roofline). Instead each
// row asks for its own lines about kAheadBytes on (past its end: the next 16 rows' first bytes),
// each 64-byte line once (prefetch_lines). Short rows (kLinearPrefetchMaxRowBytes,
// kernels/prefetch.h) instead take the next 16 rows' bytes in address order, into L2: row j's span
// of a step is the j-th piece of the bytes the step reads.
constexpr size_t kAheadBytes = 576;

// Where a 16-row step's prefetches go: row j's span of `span` bytes starts at p + j * stride
// (stride: the row length; linear: the span, the bytes of the step's blocks in one row).
struct Ahead {
  const std::byte* p;
  size_t stride;
  size_t span;
  bool linear;
};

// Blocks [i, i + g) (g <= 4) of rows [r0, r0 + 16) x tokens [t0, t0 + NT) into acc (lane = row);
// pf: where the rows' prefetch spans start.
template <typename Group, size_t kBytes, int NT, bool kPartial>
inline void group_16_rows(const GemmArgs& a, int64_t r0, int64_t t0, int64_t i, int g, __m512i rows, Ahead pf,
                          __m512* acc) {
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
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    __m512i d[NT][4];
    const std::byte* wq = w + static_cast<size_t>(4 * q) * rs;
    const std::byte* row[4] = {wq, wq + rs, wq + 2 * rs, wq + 3 * rs};
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const std::byte* b = row[j];
      const std::byte* span = pf.p + static_cast<size_t>(4 * q + j) * pf.stride;
      if (pf.linear) {
        prefetch_lines<kLinearPrefetchLocality>(span, pf.span);
      } else {
        prefetch_lines(span, pf.span);
      }
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
  constexpr size_t kGroupBytes = 4 * Weights::kBytes;
  constexpr size_t kAhead = (kAheadBytes / kGroupBytes > 0 ? kAheadBytes / kGroupBytes : 1) * kGroupBytes;
  const std::byte* w = a.w_row(r0);
  const size_t row_len = static_cast<size_t>(nb) * Weights::kBytes;
  const std::byte* next_rows = w + static_cast<size_t>(kTile) * a.w_row_bytes;
  const bool linear = linear_prefetch_rows(row_len, a.w_row_bytes);
  auto prefetch_at = [&](int64_t i, int g) -> Ahead {
    if (linear) {  // the next 16 rows, as far in as these are read: g blocks of each row
      const size_t span = static_cast<size_t>(g) * Weights::kBytes;
      return {next_rows + static_cast<size_t>(i * kTile) * Weights::kBytes, span, span, true};
    }
    // These rows kAhead bytes on, or the next 16 rows' start.
    const size_t target = static_cast<size_t>(i) * Weights::kBytes + kAhead;
    return {target < row_len ? w + target : next_rows + (target - row_len), a.w_row_bytes, 4 * Weights::kBytes, false};
  };
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    group_16_rows<Group, Weights::kBytes, NT, false>(a, r0, t0, i, 4, rows, prefetch_at(i, 4), acc);
  }
  if (i < nb) {
    const int g = static_cast<int>(nb - i);
    group_16_rows<Group, Weights::kBytes, NT, true>(a, r0, t0, i, g, rows, prefetch_at(i, g), acc);
  }
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
    by_token_groups(n_tokens, [&](auto nt, int64_t t) { exact_16_rows<Weights, nt()>(a, r, t); });
  }
  for (; r < n_rows; ++r) {
    for (int64_t t = 0; t < n_tokens; ++t) a.out(r, t) = exact_dot<Weights>(n, a.w_row(r), a.x_row(t));
  }
}

// The three weight types: block bytes, the one-block loader (exact_dot) and the four-block one.
struct Q8_0Decode {
  static constexpr size_t kBytes = kQ8_0Bytes;
  using Biased = Q8_0Biased;
  using Group = Q8_0Group;
};
struct Q4_0Decode {
  static constexpr size_t kBytes = kQ4_0Bytes;
  using Biased = Q4_0Biased;
  using Group = Q4_0Group;
};
struct Q5_0Decode {
  static constexpr size_t kBytes = kQ5_0Bytes;
  using Biased = Q5_0Biased;
  using Group = Q5_0Group;
};

}  // namespace

void add_vbmi_decode(KernelTable& t) {
  t.vec_dot[dtype_slot(DType::kQ8_0)] = exact_vec_dot<Q8_0Decode>;
  t.vec_dot[dtype_slot(DType::kQ4_0)] = exact_vec_dot<Q4_0Decode>;
  t.vec_dot[dtype_slot(DType::kQ5_0)] = exact_vec_dot<Q5_0Decode>;
  for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ5_0}) t.gemm[dtype_slot(type)] = vbmi_decode_gemm(type);
  for (DType type : {DType::kQ4_0x16, DType::kQ8_0x16, DType::kF16x16}) {
    t.gemm[dtype_slot(type)] = vbmi_interleaved_gemm(type);
  }
}

GemmFn vbmi_decode_gemm(DType type) {
  switch (type) {
    case DType::kQ8_0:
      return in_l2_blocks<exact_gemm<Q8_0Decode>>;
    case DType::kQ4_0:
      return in_l2_blocks<exact_gemm<Q4_0Decode>>;
    case DType::kQ5_0:
      return in_l2_blocks<exact_gemm<Q5_0Decode>>;
    case DType::kQ4_0x16:
    case DType::kQ8_0x16:
      return vbmi_interleaved_gemm(type);
    default: return nullptr;
  }
}

}  // namespace lightboat::kernels::detail
