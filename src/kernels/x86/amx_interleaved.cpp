// The VBMI table's gemms for Q4_0x16, Q8_0x16, Q4_Kx16 and F16x16 weights (Q4_0 / Q8_0 / Q4_K /
// F16 stored 16 rows interleaved, tensor/interleave.h), which the AMX table uses for decode: 1..4
// tokens at a time (batches: Q4_0x16 / Q8_0x16 8, F16x16 6), AVX-512 VNNI (F16x16: F16C and
// FMA), compiled with the VBMI units' flags; batches come through in_l2_blocks
// (x86/amx_common.h). Q4_Kx16 has its own section below.
//
// The layouts put row r of a 16-row group in 32-bit lane r of every vector, so a block of the 16
// rows is its fp16 scales and 4 (Q4_0x16: then 8 nibble operations) or 8 vector loads, and per
// token 8 VPDPBUSD with a broadcast activation dword: no gathers, no transposes, no reduction across
// lanes (the row-major kernels of x86/amx_decode.cpp need all three; docs/performance.md, "Q4_0 and
// Q8_0 matrices interleaved by 16 rows"). The quants are unsigned (Q4_0: q = w + 8; Q8_0: stored
// w + 128), so each block's integer sum is sum(q x) - bias sum(x), bias sum(x) taken once per token
// and block.
//
// Arithmetic order (Q4_0x16, Q8_0x16), as the tiles (x86/amx.cpp) and the other AMX decode kernels: per block, in
// block order from 0, acc = fma(float(the block's exact int32 dot product), d_w * d_x, acc). So a
// token's outputs are bit-identical whichever path (these kernels or the tiles) a batch takes, and
// to the row-major types' on the same rows.
//
// GCC 12's 512-bit intrinsics: the same -Wuninitialized false positive as in amx.cpp.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <string>
#include <type_traits>

#include "base/error.h"
#include "kernels/aligned_buffer.h"
#include "kernels/gemm_driver.h"
#include "kernels/prefetch.h"
#include "kernels/x86/amx_common.h"
#include "kernels/x86/x86_common.h"
#include "tensor/interleave.h"

namespace lightboat::kernels::detail {
namespace {

// Blocks whose activation scales and sums are prepared at a time (16384 columns): a wider matrix
// is taken in column segments, its fp32 sums carried through y between them.
constexpr int64_t kSegmentBlocks = 512;
// One token: a call's groups of 16 rows are read as kStreams runs side by side (a quarter of the
// groups each), one block of each run in turn, and each run asks for its lines kAheadBlocks
// blocks ahead into L1. The weights of consecutive groups lie end to end, so a run is one linear
// stream. One linear stream per core, prefetched 18 KiB ahead into L2 (the earlier scheme), read
// Llama-3.2-1B Q4_0's matrices at 14.4-14.6 GB/s on one thread; four runs read 17.8-18.3
// (docs/performance.md, "Four streams per core"). Two to four tokens keep the earlier scheme:
// four runs' accumulators and broadcast activations would not fit in the registers.
constexpr int kStreams = 4;
constexpr int64_t kAheadBlocks = 8;
constexpr int kRunPrefetchLocality = 3;  // prefetcht0: into L1
constexpr size_t kAheadBytes = 18432;    // the earlier scheme, into L2 (kLinearPrefetchLocality)

// The two layouts: bytes per block of 16 rows, the bias of their unsigned quants, and the 8
// vectors of a block's quants 4k..4k+3 (lane r: row r).
struct Q4_0x16Layout {
  static constexpr size_t kBlockBytes = tensor::kQ4_0x16BlockBytes;
  static constexpr int kBias = 8;
  static void quants(const std::byte* p, __m512i* v) {
    const __m512i low = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {  // low nibbles: quants 8i..8i+3; high: 8i+4..8i+7
      const __m512i q = _mm512_loadu_si512(p + 32 + 64 * i);
      v[2 * i] = _mm512_and_si512(q, low);
      v[2 * i + 1] = _mm512_and_si512(_mm512_srli_epi16(q, 4), low);
    }
  }
};

struct Q8_0x16Layout {
  static constexpr size_t kBlockBytes = tensor::kQ8_0x16BlockBytes;
  static constexpr int kBias = 128;
  static void quants(const std::byte* p, __m512i* v) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) v[i] = _mm512_loadu_si512(p + 32 + 64 * i);
  }
};

// One token's activations over a segment: d_x as fp32 and -bias * the sum of each block's quants
// (where the block's integer sum starts).
struct Prepared {
  float dx[kSegmentBlocks];
  int32_t neg_bias_sum[kSegmentBlocks];
};

void prepare(const std::byte* x_row, int64_t b0, int64_t nb, int bias, Prepared& p) {
  for (int64_t b = 0; b < nb; ++b) {
    const std::byte* xb = x_row + static_cast<size_t>(b0 + b) * kQ8_0Bytes;
    // sum of 32 signed bytes: widen to 16 bits and add pairs (exact).
    const __m512i wide = _mm512_cvtepi8_epi16(load256(xb + 2));
    p.neg_bias_sum[b] = -bias * _mm512_reduce_add_epi32(_mm512_madd_epi16(wide, _mm512_set1_epi16(1)));
    p.dx[b] = half_at(xb);
  }
}

// From memory straight into the vector (VPBROADCASTD zmm, m32 is a load alone): through a general
// register it would also take a slot on port 5, once per VPDPBUSD.
inline __m512i broadcast_dword(const std::byte* p) {
  return _mm512_broadcastd_epi32(_mm_loadu_si32(p));
}

// Calls visit(S, rows) over a call's groups of 16 rows: with kRuns > 1, first as kRuns runs side
// by side (run s takes groups [s per, (s + 1) per); rows[s] is the first row of its group in turn,
// S = kRuns), then every group past the runs alone (S = 1); with kRuns = 1, every group alone.
template <int kRuns, typename Visit>
void walk_groups(int64_t n_rows, Visit&& visit) {
  const int64_t n_groups = n_rows / tensor::kInterleavedRows;
  int64_t per = 0;
  if constexpr (kRuns > 1) {
    per = n_groups / kRuns;
    for (int64_t g = 0; g < per; ++g) {
      int64_t r[kRuns];
      for (int s = 0; s < kRuns; ++s) r[s] = (g + s * per) * tensor::kInterleavedRows;
      visit(std::integral_constant<int, kRuns>{}, r);
    }
  }
  for (int64_t g = per * kRuns; g < n_groups; ++g) {
    const int64_t r[1] = {g * tensor::kInterleavedRows};
    visit(std::integral_constant<int, 1>{}, r);
  }
}

// Groups of rows [r0[g], r0[g] + 16), g < S, x tokens [t0, t0 + NT), blocks [b0, b0 + nb), the S
// groups side by side block by block (S > 1 for one token only); acc starts from y when b0 > 0.
// Each (group, token) sums a block in one chain of 8 VPDPBUSD from -bias sum(x), or in two where
// fewer than 4 such chains would be in flight.
template <typename Layout, int NT, int S>
void group_rows(const GemmArgs& a, const int64_t* r0, int64_t t0, int64_t b0, int64_t nb, const Prepared* prep) {
  constexpr bool kOneChain = NT * S >= 4;
  __m512 acc[S][NT];
  const std::byte* group[S];
  for (int g = 0; g < S; ++g) {
    group[g] = a.w_row(r0[g]);
    for (int t = 0; t < NT; ++t) acc[g][t] = b0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(&a.out(r0[g], t0 + t));
  }
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 4
    for (int g = 0; g < S; ++g) {
      const std::byte* p = group[g] + static_cast<size_t>(b0 + b) * Layout::kBlockBytes;
      if constexpr (NT == 1) {
        prefetch_lines<kRunPrefetchLocality>(p + kAheadBlocks * Layout::kBlockBytes, Layout::kBlockBytes);
      } else {
        prefetch_lines<kLinearPrefetchLocality>(p + kAheadBytes, Layout::kBlockBytes);
      }
      const __m512 dw = _mm512_cvtph_ps(load256(p));
      __m512i v[8];
      Layout::quants(p, v);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const std::byte* xq = a.x_row(t0 + t) + static_cast<size_t>(b0 + b) * kQ8_0Bytes + 2;
        __m512i s = broadcast_dword(reinterpret_cast<const std::byte*>(&prep[t].neg_bias_sum[b]));
        if constexpr (kOneChain) {
#pragma GCC unroll 8
          for (int k = 0; k < 8; ++k) s = _mm512_dpbusd_epi32(s, v[k], broadcast_dword(xq + 4 * k));
        } else {
          __m512i s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) {  // two chains: quants 8k..8k+3 and 8k+4..8k+7
            s = _mm512_dpbusd_epi32(s, v[2 * k], broadcast_dword(xq + 8 * k));
            s1 = _mm512_dpbusd_epi32(s1, v[2 * k + 1], broadcast_dword(xq + 8 * k + 4));
          }
          s = _mm512_add_epi32(s, s1);
        }
        acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(prep[t].dx[b])), acc[g][t]);
      }
    }
  }
  for (int g = 0; g < S; ++g) {
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(&a.out(r0[g], t0 + t), acc[g][t]);
  }
}

// Tokens of a batch taken together by the interleaved Q4_0x16 / Q8_0x16 gemm: each block's 8
// quant vectors, unpacked once, serve 8 tokens (24 of the 32 vector registers with the chains and
// accumulators).
constexpr int kBatchTokens = 8;

template <typename Layout>
void gemm(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x, size_t x_row_bytes,
          int64_t n_tokens, float* y, int64_t y_stride) {
  check(n_rows % tensor::kInterleavedRows == 0, ErrorKind::kInvalidArgument,
        [&] { return "gemm of interleaved weights: " + std::to_string(n_rows) + " rows are not whole groups of 16"; });
  const GemmArgs a{n, w, w_row_bytes, x, x_row_bytes, y, y_stride};
  const int64_t nb = n / kQK;
  auto tokens = [&](auto nt, int64_t t0) {
    constexpr int NT = nt();
    Prepared prep[NT];
    for (int64_t b0 = 0; b0 < nb; b0 += kSegmentBlocks) {
      const int64_t seg = nb - b0 < kSegmentBlocks ? nb - b0 : kSegmentBlocks;
      for (int t = 0; t < NT; ++t) prepare(a.x_row(t0 + t), b0, seg, Layout::kBias, prep[t]);
      walk_groups<NT == 1 ? kStreams : 1>(n_rows, [&](auto runs, const int64_t* r) {  // runs for one token only
        group_rows<Layout, NT, runs()>(a, r, t0, b0, seg, prep);
      });
    }
  };
  int64_t t0 = 0;
  for (; t0 + kBatchTokens <= n_tokens; t0 += kBatchTokens) tokens(std::integral_constant<int, kBatchTokens>{}, t0);
  by_token_groups(n_tokens - t0, [&](auto nt, int64_t t) { tokens(nt, t0 + t); });
}

// ---- F16x16 ----
//
// Per column of a group: one VCVTPH2PS (the 16 rows' weights as fp32), then per token one FMA with
// the broadcast activation, into four accumulators per token (columns c mod 4), summed at the end
// ((a0 + a1) + (a2 + a3)). The activations (fp16, as F16's vec_dot type) are widened once per
// segment of columns. The fp32 order of additions is not the row-major kernel's, so outputs agree
// with it within rounding, not bit for bit (nor with the AMX-BF16 tiles, which never did).
constexpr int64_t kF16SegmentCols = 8192;  // 128 KiB of fp32 activations for 4 tokens
// One token: each run asks for its lines this far ahead, into L1 (128 columns); more tokens keep
// the earlier kAheadBytes into L2.
constexpr size_t kF16AheadBytes = 4096;

// Groups of rows [r0[g], r0[g] + 16), g < S, x tokens [t0, t0 + NT), columns [c0, c0 + nc), the S
// groups side by side, 4 columns of each in turn.
template <int NT, int S>
void f16_group_rows(const GemmArgs& a, const int64_t* r0, int64_t t0, int64_t c0, int64_t nc, const float* xf,
                    int64_t xf_stride) {
  __m512 acc[S][NT][4];
  const std::byte* p[S];
  for (int g = 0; g < S; ++g) {
    p[g] = a.w_row(r0[g]) + static_cast<size_t>(c0) * 32;
    for (int t = 0; t < NT; ++t) {
      for (int i = 0; i < 4; ++i) acc[g][t][i] = _mm512_setzero_ps();
    }
  }
  int64_t c = 0;
  for (; c + 4 <= nc; c += 4) {
#pragma GCC unroll 4
    for (int g = 0; g < S; ++g) {
      const std::byte* q = p[g] + static_cast<size_t>(c) * 32;
      // 128 bytes a step: the lines of its last bytes (the first is the previous step's last)
      if constexpr (NT == 1) {
        prefetch_line<kRunPrefetchLocality>(q + kF16AheadBytes + 63);
        prefetch_line<kRunPrefetchLocality>(q + kF16AheadBytes + 127);
      } else {
        prefetch_line<kLinearPrefetchLocality>(q + kAheadBytes + 63);
        prefetch_line<kLinearPrefetchLocality>(q + kAheadBytes + 127);
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const __m512 w = _mm512_cvtph_ps(load256(q + 32 * i));
        for (int t = 0; t < NT; ++t)
          acc[g][t][i] = _mm512_fmadd_ps(w, _mm512_set1_ps(xf[t * xf_stride + c + i]), acc[g][t][i]);
      }
    }
  }
  for (; c < nc; ++c) {
    for (int g = 0; g < S; ++g) {
      const __m512 w = _mm512_cvtph_ps(load256(p[g] + static_cast<size_t>(c) * 32));
      for (int t = 0; t < NT; ++t)
        acc[g][t][0] = _mm512_fmadd_ps(w, _mm512_set1_ps(xf[t * xf_stride + c]), acc[g][t][0]);
    }
  }
  for (int g = 0; g < S; ++g) {
    for (int t = 0; t < NT; ++t) {
      __m512 s = _mm512_add_ps(_mm512_add_ps(acc[g][t][0], acc[g][t][1]), _mm512_add_ps(acc[g][t][2], acc[g][t][3]));
      if (c0 > 0) s = _mm512_add_ps(_mm512_loadu_ps(&a.out(r0[g], t0 + t)), s);
      _mm512_storeu_ps(&a.out(r0[g], t0 + t), s);
    }
  }
}

// Tokens [t0, t0 + nt) of columns [c0, c0 + nc), widened to fp32 at xf (rows xf_stride apart).
void widen_f16(const GemmArgs& a, int64_t t0, int64_t nt, int64_t c0, int64_t nc, float* xf, int64_t xf_stride) {
  for (int64_t t = 0; t < nt; ++t) {
    const std::byte* xr = a.x_row(t0 + t) + static_cast<size_t>(c0) * 2;
    for (int64_t c = 0; c < nc; c += 16) {
      const auto m = static_cast<__mmask16>(nc - c >= 16 ? 0xffffu : (1u << (nc - c)) - 1u);
      _mm512_mask_storeu_ps(xf + t * xf_stride + c, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, xr + 2 * c)));
    }
  }
}

// Tokens per group of a batch: 6 x 4 accumulators and the 16 rows' weights fill the registers.
constexpr int kF16BatchTokens = 6;

// Up to 4 tokens: each group of tokens widens its activations once and streams the matrix. More
// (the VBMI table's prompts, the AMX table's batches below its tiles' threshold): every token is
// widened once into a per-thread buffer, and the tokens loop in groups of kF16BatchTokens inside
// each group of 16 rows, so the group's weights come from memory once and from L2 for the other
// tokens. Every output adds in the same order either way, so its bits do not depend on the batch.
void f16x16_gemm(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                 size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  check(n_rows % tensor::kInterleavedRows == 0, ErrorKind::kInvalidArgument,
        [&] { return "gemm of F16x16 weights: " + std::to_string(n_rows) + " rows are not whole groups of 16"; });
  const GemmArgs a{n, w, w_row_bytes, x, x_row_bytes, y, y_stride};
  thread_local AlignedBuffer scratch;
  for (int64_t c0 = 0; c0 < n; c0 += kF16SegmentCols) {
    const int64_t nc = n - c0 < kF16SegmentCols ? n - c0 : kF16SegmentCols;
    float* xs = n_tokens > 4 ? scratch.get_floats(static_cast<size_t>(n_tokens * nc)) : nullptr;
    if (xs != nullptr) {
      // A batch: every token widened once, then per group of 16 rows the tokens in groups of
      // kF16BatchTokens (then of 4 and fewer), the group's weights read from L2 for each.
      widen_f16(a, 0, n_tokens, c0, nc, xs, nc);
      for (int64_t r = 0; r < n_rows; r += tensor::kInterleavedRows) {
        const int64_t r0[1] = {r};
        int64_t t0 = 0;
        for (; t0 + kF16BatchTokens <= n_tokens; t0 += kF16BatchTokens) {
          f16_group_rows<kF16BatchTokens, 1>(a, r0, t0, c0, nc, xs + t0 * nc, nc);
        }
        by_token_groups(n_tokens - t0, [&](auto nt, int64_t t) {
          f16_group_rows<nt(), 1>(a, r0, t0 + t, c0, nc, xs + (t0 + t) * nc, nc);
        });
      }
    } else if (n_tokens <= 4) {
      by_token_groups(n_tokens, [&](auto nt, int64_t t0) {
        alignas(64) float xf[nt()][kF16SegmentCols];
        widen_f16(a, t0, nt(), c0, nc, &xf[0][0], kF16SegmentCols);
        // One token reads the groups as runs, as the Q4_0x16 / Q8_0x16 kernels do (more tokens would
        // need more accumulators than there are registers).
        walk_groups<nt() == 1 ? kStreams : 1>(n_rows, [&](auto runs, const int64_t* r) {
          f16_group_rows<nt(), runs()>(a, r, t0, c0, nc, &xf[0][0], kF16SegmentCols);
        });
      });
    } else {  // a batch without memory for its widened tokens: widened again per group of 16 rows
      for (int64_t r = 0; r < n_rows; r += tensor::kInterleavedRows) {
        by_token_groups(n_tokens, [&](auto nt, int64_t t0) {
          alignas(64) float xf[nt()][kF16SegmentCols];
          widen_f16(a, t0, nt(), c0, nc, &xf[0][0], kF16SegmentCols);
          const int64_t r0[1] = {r};
          f16_group_rows<nt(), 1>(a, r0, t0, c0, nc, &xf[0][0], kF16SegmentCols);
        });
      }
    }
  }
}

// ---- Q4_Kx16 ----
//
// Per super-block of 16 rows (2304 bytes): the 16 rows' d and dmin are two VCVTPH2PS, their scales
// and mins three loads and a dozen and/shift ops (lane = row, as x86/amx_k.cpp's exact_16_rows
// unpacks its gathered headers), and each of the 32 quant vectors an AND and a GF2P8AFFINEQB into
// low and high nibbles, each one VPDPBUSD per token with a broadcast activation dword. The sums of
// sub-blocks 2c and 2c + 1 (chunk c's 8 vectors, low and high nibbles) are multiplied by their
// 6-bit scales (VPMULLD, lane = row) into S; the mins' term M is 4 VPDPWSSD against the token's
// sub-block sums. S and M are the exact integers of the Q4_K kernels, and the two fp32 steps
//   acc = fma(float(S), d * d_x, acc);  acc = fnmadd(float(M), dmin * d_x, acc)
// are theirs, so a token's outputs are the bits of the Q4_K gemms on the original rows. The
// kernel does about 190 vector operations per 2304 bytes where exact_16_rows, which must gather
// the headers and transpose its row sums, does about 330.
constexpr size_t kKBlockBytes = tensor::kQ4_Kx16BlockBytes;
// One token reads each run one super-block (2304 bytes, as Q4_0x16's 8 blocks) ahead into L1.
constexpr size_t kKRunAheadBytes = kKBlockBytes;

// One token's terms for a super-block: its quants, its sub-block sums as int16 pairs (b0, b2),
// (b1, b3), (b4, b6), (b5, b7) broadcast (against the mins' pairs below), and d_x.
struct KToken {
  const std::byte* q;
  __m512i bs[4];
  __m512 dx;
};

inline void k_token(const std::byte* xb, KToken& t) {
  t.q = xb + kQ8_KQs;
  k_sum_pairs(xb + kQ8_KBsums, t.bs);
  t.dx = _mm512_set1_ps(load_f32(xb));
}

// VPSHUFB controls that zero-extend byte j of every dword (j = 0..3) to the dword.
inline __m512i byte_of_dwords(int j) {
  alignas(64) int8_t c[64];
  for (int i = 0; i < 64; ++i) c[i] = static_cast<int8_t>(i % 4 == 0 ? (i / 4 % 4) * 4 + j : -128);
  return _mm512_load_si512(c);
}

// Groups of rows [r0[g], r0[g] + 16), g < S, x tokens [t0, t0 + NT), every super-block, the S
// groups side by side super-block by super-block (S > 1 for one token only).
template <int NT, int S>
void k_group_rows(const GemmArgs& a, const int64_t* r0, int64_t t0) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i high_nibbles = _mm512_set1_epi64(0x1020408000000000);  // GF2P8AFFINEQB: bits 4..7 to 0..3
  const __m512i pick[4] = {byte_of_dwords(0), byte_of_dwords(1), byte_of_dwords(2), byte_of_dwords(3)};
  const int64_t nb = a.n / 256;
  __m512 acc[S][NT];
  const std::byte* group[S];
  for (int g = 0; g < S; ++g) {
    group[g] = a.w_row(r0[g]);
    for (int t = 0; t < NT; ++t) acc[g][t] = _mm512_setzero_ps();
  }
  for (int64_t i = 0; i < nb; ++i) {
    KToken tok[NT];
    for (int t = 0; t < NT; ++t) k_token(a.x_row(t0 + t) + static_cast<size_t>(i) * kQ8_KBytes, tok[t]);
    for (int g = 0; g < S; ++g) {
      const std::byte* p = group[g] + static_cast<size_t>(i) * kKBlockBytes;
      const std::byte* pf = p + (NT == 1 ? kKRunAheadBytes : kAheadBytes);
      const __m512i h1 = _mm512_loadu_si512(p + tensor::kQ4_Kx16ScalesOffset);
      const __m512i h2 = _mm512_loadu_si512(p + tensor::kQ4_Kx16ScalesOffset + 64);
      const __m512i h3 = _mm512_loadu_si512(p + tensor::kQ4_Kx16ScalesOffset + 128);
      const KScalesMins sm = unpack_k_scales_mins(h1, h2, h3);
      __m512i s[NT];
      for (int t = 0; t < NT; ++t) s[t] = _mm512_setzero_si512();
      // One token walks the 4 chunks together, vector k of each in turn: 8 VPDPBUSD chains of 8
      // instead of 2 at a time (a chain is 8 x 5 cycles of latency).
      constexpr int kTogether = NT == 1 ? 4 : 1;
      if constexpr (NT == 1) {  // the super-block ahead's first 4 lines; its other 32 below
#pragma GCC unroll 4
        for (int l = 0; l < 4; ++l) prefetch_line<kRunPrefetchLocality>(pf + 64 * l);
      }
#pragma GCC unroll 4
      for (int c0 = 0; c0 < 4; c0 += kTogether) {
        if constexpr (NT > 1) {  // the super-block ahead, a quarter per chunk (its 36 lines: 9 a chunk)
          prefetch_lines<kLinearPrefetchLocality>(pf + 576 * c0, 576);
        }
        __m512i lo[kTogether][NT], hi[kTogether][NT];
        for (int c = 0; c < kTogether; ++c) {
          for (int t = 0; t < NT; ++t) lo[c][t] = hi[c][t] = _mm512_setzero_si512();
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
#pragma GCC unroll 4
          for (int c = 0; c < kTogether; ++c) {
            if constexpr (NT == 1) prefetch_line<kRunPrefetchLocality>(pf + 64 * (4 + 8 * c + k));
            const __m512i v = _mm512_loadu_si512(p + tensor::kQ4_Kx16QuantsOffset + 512 * (c0 + c) + 64 * k);
            const __m512i vl = _mm512_and_si512(v, m4);
            const __m512i vh = _mm512_gf2p8affine_epi64_epi8(v, high_nibbles, 0);
            for (int t = 0; t < NT; ++t) {
              const std::byte* xq = tok[t].q + 64 * (c0 + c) + 4 * k;
              lo[c][t] = _mm512_dpbusd_epi32(lo[c][t], vl, broadcast_dword(xq));       // sub-block 2c
              hi[c][t] = _mm512_dpbusd_epi32(hi[c][t], vh, broadcast_dword(xq + 32));  // sub-block 2c + 1
            }
          }
        }
#pragma GCC unroll 4
        for (int c = 0; c < kTogether; ++c) {
          const int ch = c0 + c;
          const __m512i sc = ch < 2 ? sm.sc_lo : sm.sc_hi;
          const __m512i sc_a = _mm512_shuffle_epi8(sc, pick[2 * (ch % 2)]);
          const __m512i sc_b = _mm512_shuffle_epi8(sc, pick[2 * (ch % 2) + 1]);
          for (int t = 0; t < NT; ++t) {
            s[t] = _mm512_add_epi32(
                s[t], _mm512_add_epi32(_mm512_mullo_epi32(lo[c][t], sc_a), _mm512_mullo_epi32(hi[c][t], sc_b)));
          }
        }
      }
      const __m512 d = _mm512_cvtph_ps(load256(p));
      const __m512 dmin = _mm512_cvtph_ps(load256(p + 32));
      for (int t = 0; t < NT; ++t) {
        __m512i m = _mm512_madd_epi16(sm.min_pairs[0], tok[t].bs[0]);
        for (int k = 1; k < 4; ++k) m = _mm512_dpwssd_epi32(m, sm.min_pairs[k], tok[t].bs[k]);
        acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), _mm512_mul_ps(d, tok[t].dx), acc[g][t]);
        acc[g][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmin, tok[t].dx), acc[g][t]);
      }
    }
  }
  for (int g = 0; g < S; ++g) {
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(&a.out(r0[g], t0 + t), acc[g][t]);
  }
}

void q4_kx16_gemm(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                  size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  check(n_rows % tensor::kInterleavedRows == 0, ErrorKind::kInvalidArgument,
        [&] { return "gemm of Q4_Kx16 weights: " + std::to_string(n_rows) + " rows are not whole groups of 16"; });
  const GemmArgs a{n, w, w_row_bytes, x, x_row_bytes, y, y_stride};
  by_token_groups(n_tokens, [&](auto nt, int64_t t0) {
    walk_groups<nt() == 1 ? kStreams : 1>(n_rows,
                                          [&](auto runs, const int64_t* r) { k_group_rows<nt(), runs()>(a, r, t0); });
  });
}

}  // namespace

GemmFn vbmi_interleaved_gemm(DType type) {
  switch (type) {
    case DType::kQ4_0x16:
      return in_l2_blocks<gemm<Q4_0x16Layout>>;
    case DType::kQ8_0x16:
      return in_l2_blocks<gemm<Q8_0x16Layout>>;
    case DType::kF16x16:
      return in_l2_blocks<f16x16_gemm>;
    case DType::kQ4_Kx16:
      return in_l2_blocks<q4_kx16_gemm>;
    default:
      return nullptr;
  }
}

}  // namespace lightboat::kernels::detail
