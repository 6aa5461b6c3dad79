// The paged-attention loop nest shared by the SIMD units (included by the ISA units only;
// anonymous namespace so each unit compiles its own copy with its own flags). See
// kernels/attention.h for the contract and reference/attention.cpp for the specification.
//
// A call is cut into pieces of at most kAttentionMaxRows (token, head) rows (heads in slices of
// at most 8). A piece walks the positions its rows see in chunks of kAttnChunk positions
// aligned to multiples of kAttnChunk (absolute positions, so neither the page size nor the
// tile decides where a chunk starts). Per chunk, the addresses of its K and V rows are looked up
// in the page table once (and F16 K rows widened to fp32 once), then for every row that sees
// part [a, b] of the chunk:
//   1. scores s[c] = scale · q·k_c for c in [a, b], kScoreGroup positions at a time (one
//      reduce_group turns their accumulators into dot products: 16 at once on AVX-512, 4
//      elsewhere; a last group of fewer is padded with a repeated row, so every score comes out
//      of the same reduction whatever the range);
//   2. optional soft-cap; when the chunk's maximum exceeds the running maximum m, the running
//      sum l and the output are rescaled by exp(m_old - m_new); then s[c] = exp(s[c] - m)
//      (vectorised polynomial exp over [a, b] from a) and l += their sum;
// and then 3. out += Σ_c s[c] · v_c for blocks of up to 8 rows at a time, one vector of head
// dimensions at a time with the block's accumulators in registers: the positions every row of
// the block sees are loaded once for all of them; a row's positions outside that common range
// (the causal ends of a prefill tile) are added by the row alone, in the same ascending order.
// At the end out /= l. Head dimensions past the last full vector are done in scalar code.
//
// So each row's arithmetic depends only on its own range, query and the cache: a token gets the
// same bits alone (decode), inside any prefill tile, in a head slice of any size, under any page
// size.
//
// Ops (one struct per ISA) supplies: V, kLanes, zero, set1, load(const float*),
// load(const uint16_t*) (fp16 -> fp32), store, add, sub, mul, div, fmadd(a, b, c) = a·b + c,
// max, round (to nearest), scale_pow2(p, n) = p · 2^n for integral n in [-126, 0],
// select_neg(x, a, b) = x < 0 ? a : b per lane, reduce_add, reduce_max, kScoreGroup and
// reduce_group(const V* acc, float* out) (out[i] = the sum of acc[i]'s lanes, i < kScoreGroup,
// each a fixed tree of that vector's lanes), kQueryRegs (vectors of a query head kept in
// registers for the common head sizes), half(uint16_t) -> float.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/dispatch.h"
#include "kernels/simd_exp.h"

// No std:: templates or inline library functions below (std::max_element, std::exp …): their
// out-of-line copies would be shared with other units and could carry this unit's ISA flags
// (isa_tables.h). Builtins and local helpers only.
namespace lightboat::kernels::detail {
namespace {

constexpr int64_t kAttnChunk = 64;   // positions per chunk: 32 rows' scores stay in L1 (8 KiB)
constexpr int64_t kScratchHd = 256;  // F16 K rows are widened once per chunk up to this head_dim

template <typename Ops>
float to_float(float x) {
  return x;
}
template <typename Ops>
float to_float(uint16_t x) {
  return Ops::half(x);
}

// s[i] = exp(s[i] - m), i < n; returns their sum.
template <typename Ops>
float exp_shifted_sum(float* s, int64_t n, float m) {
  using V = typename Ops::V;
  const V vm = Ops::set1(m);
  V acc = Ops::zero();
  int64_t i = 0;
  for (; i + Ops::kLanes <= n; i += Ops::kLanes) {
    const V e = exp_nonpositive<Ops>(Ops::sub(Ops::load(s + i), vm));
    Ops::store(s + i, e);
    acc = Ops::add(acc, e);
  }
  float sum = Ops::reduce_add(acc);
  for (; i < n; ++i) {
    s[i] = __builtin_expf(s[i] - m);
    sum += s[i];
  }
  return sum;
}

template <typename Ops>
void scale_row(float* x, int64_t n, float f) {
  const typename Ops::V vf = Ops::set1(f);
  int64_t i = 0;
  for (; i + Ops::kLanes <= n; i += Ops::kLanes) Ops::store(x + i, Ops::mul(Ops::load(x + i), vf));
  for (; i < n; ++i) x[i] *= f;
}

// One (token, head) row of a piece.
struct AttnRow {
  const float* q;  // [head_dim]
  float* out;      // [head_dim]
  int64_t lo, hi;  // visible positions, inclusive
  float m, l;      // running maximum and sum of exp(score - m)
  int64_t a, b;    // the current chunk's positions the row sees, inclusive
  float* w;        // [kAttnChunk] scores, then weights, of positions a .. b
};

// s[c] = scale · q·k_row[c] for c < len (len >= 1), Ops::kScoreGroup positions per
// reduce_group (a last group of fewer is padded with a repeated row; each score is a fixed sum
// of its own accumulator's lanes, whatever the other rows of the group are).
template <typename Ops, typename KT>
void row_scores(const float* q, const KT* const* k_row, int64_t len, int64_t hd, float scale, float* s) {
  using V = typename Ops::V;
  constexpr int L = Ops::kLanes;
  constexpr int S = Ops::kScoreGroup;
  for (int64_t c0 = 0; c0 < len; c0 += S) {
    const KT* r[S];
    for (int i = 0; i < S; ++i) r[i] = k_row[c0 + i < len ? c0 + i : len - 1];
    V acc[S];
    for (int i = 0; i < S; ++i) acc[i] = Ops::zero();
    int64_t d = 0;
    for (; d + L <= hd; d += L) {
      const V qv = Ops::load(q + d);
      for (int i = 0; i < S; ++i) acc[i] = Ops::fmadd(qv, Ops::load(r[i] + d), acc[i]);
    }
    alignas(64) float dots[S];
    Ops::reduce_group(acc, dots);
    const int64_t m = len - c0 < S ? len - c0 : S;
    for (int64_t i = 0; i < m; ++i) {
      float dot = dots[i];
      for (int64_t dd = d; dd < hd; ++dd) dot += q[dd] * to_float<Ops>(r[i][dd]);
      s[c0 + i] = dot * scale;
    }
  }
}

// row_scores for head_dim = NV · kLanes, with the query held in NV registers (the same
// operations in the same order per score, so the same bits).
template <typename Ops, typename KT, int NV>
void row_scores_fixed(const float* q, const KT* const* k_row, int64_t len, float scale, float* s) {
  using V = typename Ops::V;
  constexpr int L = Ops::kLanes;
  constexpr int S = Ops::kScoreGroup;
  V qv[NV];
  for (int v = 0; v < NV; ++v) qv[v] = Ops::load(q + v * L);
  for (int64_t c0 = 0; c0 < len; c0 += S) {
    V acc[S];
    for (int i = 0; i < S; ++i) {
      const KT* r = k_row[c0 + i < len ? c0 + i : len - 1];
      V a = Ops::zero();
      for (int v = 0; v < NV; ++v) a = Ops::fmadd(qv[v], Ops::load(r + v * L), a);
      acc[i] = a;
    }
    alignas(64) float dots[S];
    Ops::reduce_group(acc, dots);
    const int64_t m = len - c0 < S ? len - c0 : S;
    if (S == L && m == S) {  // a whole vector of scores: scaled in one multiply (same rounding)
      Ops::store(s + c0, Ops::mul(Ops::load(dots), Ops::set1(scale)));
    } else {
      for (int64_t i = 0; i < m; ++i) s[c0 + i] = dots[i] * scale;
    }
  }
}

template <typename Ops, typename KT>
void scores(const float* q, const KT* const* k_row, int64_t len, int64_t hd, float scale, float* s) {
  constexpr int L = Ops::kLanes;
  if (hd == 4 * L) {
    row_scores_fixed<Ops, KT, 4>(q, k_row, len, scale, s);
  } else if (hd == 8 * L && Ops::kQueryRegs >= 8) {
    row_scores_fixed<Ops, KT, (Ops::kQueryRegs >= 8 ? 8 : 1)>(q, k_row, len, scale, s);
  } else if (hd == 16 * L && Ops::kQueryRegs >= 16) {
    row_scores_fixed<Ops, KT, (Ops::kQueryRegs >= 16 ? 16 : 1)>(q, k_row, len, scale, s);
  } else {
    row_scores<Ops, KT>(q, k_row, len, hd, scale, s);
  }
}

// The largest of s[0 .. len), len >= 1 (max is exact, so the order does not matter).
template <typename Ops>
float max_of(const float* s, int64_t len) {
  int64_t c = 0;
  float m = s[0];
  if (len >= Ops::kLanes) {
    typename Ops::V vm = Ops::load(s);
    for (c = Ops::kLanes; c + Ops::kLanes <= len; c += Ops::kLanes) vm = Ops::max(vm, Ops::load(s + c));
    m = Ops::reduce_max(vm);
  }
  for (; c < len; ++c) m = s[c] > m ? s[c] : m;
  return m;
}

// Steps 1 and 2 for one row over positions row.a .. row.b, whose K rows are k_row[0 ..].
template <typename Ops, typename KT>
void row_softmax_step(AttnRow& row, const KT* const* k_row, int64_t hd, float scale, float softcap) {
  const int64_t len = row.b - row.a + 1;
  float* s = row.w;
  scores<Ops, KT>(row.q, k_row, len, hd, scale, s);
  if (softcap > 0.0f) {
    for (int64_t c = 0; c < len; ++c) s[c] = softcap * __builtin_tanhf(s[c] / softcap);
  }
  const float chunk_max = max_of<Ops>(s, len);
  if (chunk_max > row.m) {
    if (row.m != -__builtin_inff()) {  // nothing accumulated before the row's first chunk
      const float corr = __builtin_expf(row.m - chunk_max);
      row.l *= corr;
      scale_row<Ops>(row.out, hd, corr);
    }
    row.m = chunk_max;
  }
  row.l += exp_shifted_sum<Ops>(s, len, row.m);
}

// out += Σ_{c in [c0, c1]} w[c - a] · v_row[c - base] for one row, head dimensions [0, d_end),
// d_end a multiple of the lanes.
template <typename Ops, typename T>
void row_add_v(const AttnRow& row, const T* const* v_row, int64_t base, int64_t c0, int64_t c1, int64_t d_end) {
  using V = typename Ops::V;
  for (int64_t d = 0; d < d_end; d += Ops::kLanes) {
    V acc = Ops::load(row.out + d);
    for (int64_t c = c0; c <= c1; ++c)
      acc = Ops::fmadd(Ops::set1(row.w[c - row.a]), Ops::load(v_row[c - base] + d), acc);
    Ops::store(row.out + d, acc);
  }
}

// Step 3 for a block of G rows (positions [a, b] each; v_row indexed from the chunk's base).
template <typename Ops, typename T, int G>
void block_add_v(AttnRow* const* rows, const T* const* v_row, int64_t base, int64_t hd) {
  using V = typename Ops::V;
  constexpr int L = Ops::kLanes;
  const int64_t d_end = hd / L * L;
  int64_t j0 = rows[0]->a, j1 = rows[0]->b;  // the positions every row of the block sees
  for (int g = 1; g < G; ++g) {
    j0 = rows[g]->a > j0 ? rows[g]->a : j0;
    j1 = rows[g]->b < j1 ? rows[g]->b : j1;
  }
  if (j0 > j1) {  // nothing in common: each row on its own
    for (int g = 0; g < G; ++g) row_add_v<Ops, T>(*rows[g], v_row, base, rows[g]->a, rows[g]->b, d_end);
  } else {
    for (int g = 0; g < G; ++g) row_add_v<Ops, T>(*rows[g], v_row, base, rows[g]->a, j0 - 1, d_end);
    const float* w[G];  // the weights of position j0 on
    float* out[G];
    for (int g = 0; g < G; ++g) {
      w[g] = rows[g]->w + (j0 - rows[g]->a);
      out[g] = rows[g]->out;
    }
    for (int64_t d = 0; d < d_end; d += L) {
      V acc[G];
      for (int g = 0; g < G; ++g) acc[g] = Ops::load(out[g] + d);
      for (int64_t c = j0; c <= j1; ++c) {
        const V vv = Ops::load(v_row[c - base] + d);
        for (int g = 0; g < G; ++g) acc[g] = Ops::fmadd(Ops::set1(w[g][c - j0]), vv, acc[g]);
      }
      for (int g = 0; g < G; ++g) Ops::store(out[g] + d, acc[g]);
    }
    for (int g = 0; g < G; ++g) row_add_v<Ops, T>(*rows[g], v_row, base, j1 + 1, rows[g]->b, d_end);
  }
  for (int g = 0; g < G; ++g) {  // head dimensions past the last vector, positions in order
    const AttnRow& r = *rows[g];
    for (int64_t d = d_end; d < hd; ++d) {
      float acc = r.out[d];
      for (int64_t c = r.a; c <= r.b; ++c) acc += r.w[c - r.a] * to_float<Ops>(v_row[c - base][d]);
      r.out[d] = acc;
    }
  }
}

template <typename Ops, typename T>
void add_v(AttnRow* const* rows, int64_t n, const T* const* v_row, int64_t base, int64_t hd) {
  for (int64_t i = 0; i < n; i += kAttentionMaxGroup) {
    AttnRow* const* r = rows + i;
    switch (n - i < kAttentionMaxGroup ? n - i : kAttentionMaxGroup) {
      case 1:
        block_add_v<Ops, T, 1>(r, v_row, base, hd);
        break;
      case 2:
        block_add_v<Ops, T, 2>(r, v_row, base, hd);
        break;
      case 3:
        block_add_v<Ops, T, 3>(r, v_row, base, hd);
        break;
      case 4:
        block_add_v<Ops, T, 4>(r, v_row, base, hd);
        break;
      case 5:
        block_add_v<Ops, T, 5>(r, v_row, base, hd);
        break;
      case 6:
        block_add_v<Ops, T, 6>(r, v_row, base, hd);
        break;
      case 7:
        block_add_v<Ops, T, 7>(r, v_row, base, hd);
        break;
      default:
        block_add_v<Ops, T, 8>(r, v_row, base, hd);
        break;
    }
  }
}

// Tokens [t0, t0 + nt) x heads [h0, h0 + nh) of a call, nt · nh <= kAttentionMaxRows.
template <typename Ops, typename T>
void attend_piece(const PagedKv& kv, const AttentionQuery& a, int64_t t0, int64_t nt, int64_t h0, int64_t nh) {
  const int64_t hd = a.head_dim;
  AttnRow rows[kAttentionMaxRows];
  alignas(64) float w[kAttentionMaxRows][kAttnChunk];
  const int64_t nr = nt * nh;
  for (int64_t i = 0; i < nt; ++i) {
    const int64_t tok = t0 + i;
    const int64_t last = a.first + a.n - 1 + tok;
    const int64_t lo = a.window > 0 && last - a.window + 1 > a.first ? last - a.window + 1 : a.first;
    for (int64_t h = 0; h < nh; ++h) {
      AttnRow& r = rows[i * nh + h];
      r.q = a.q + tok * a.token_stride + (h0 + h) * hd;
      r.out = a.out + tok * a.token_stride + (h0 + h) * hd;
      r.lo = lo;
      r.hi = last;
      r.m = -__builtin_inff();
      r.l = 0.0f;
      r.w = w[i * nh + h];
      std::memset(r.out, 0, sizeof(float) * static_cast<size_t>(hd));
    }
  }
  const int64_t lo = rows[0].lo, hi = rows[nr - 1].hi;  // the union of the rows' ranges
  const auto* k_cache = static_cast<const T*>(kv.k);
  const auto* v_cache = static_cast<const T*>(kv.v);
  constexpr bool kWiden = sizeof(T) == 2;
  alignas(64) float k32[kWiden ? kAttnChunk * kScratchHd : 1];  // [kAttnChunk, hd] widened K rows
  const T* k_row[kAttnChunk];                                   // indexed by position - base
  const T* v_row[kAttnChunk];
  const float* kf_row[kAttnChunk];
  AttnRow* active[kAttentionMaxRows];

  int64_t page = lo / kv.page_size;
  int64_t in_page = lo % kv.page_size;
  for (int64_t base = lo / kAttnChunk * kAttnChunk; base <= hi; base += kAttnChunk) {
    const int64_t cs = base > lo ? base : lo;
    const int64_t ce = base + kAttnChunk - 1 < hi ? base + kAttnChunk - 1 : hi;
    for (int64_t c = cs; c <= ce; ++c) {
      const int64_t off = (static_cast<int64_t>(kv.pages[page]) * kv.page_size + in_page) * kv.row_stride + a.kv_offset;
      k_row[c - base] = k_cache + off;
      v_row[c - base] = v_cache + off;
      if (++in_page == kv.page_size) {
        in_page = 0;
        ++page;
      }
    }
    // The scores read fp32 K rows: the cache's (F32), widened copies (F16 up to kScratchHd), or
    // the F16 rows themselves, converted at every load (larger heads).
    const bool widen = kWiden && hd <= kScratchHd;
    if constexpr (kWiden) {
      if (widen) {
        for (int64_t c = cs; c <= ce; ++c) {
          float* dst = k32 + (c - base) * hd;
          const T* src = k_row[c - base];
          int64_t d = 0;
          for (; d + Ops::kLanes <= hd; d += Ops::kLanes) Ops::store(dst + d, Ops::load(src + d));
          for (; d < hd; ++d) dst[d] = to_float<Ops>(src[d]);
          kf_row[c - base] = dst;
        }
      }
    } else {
      for (int64_t c = cs; c <= ce; ++c) kf_row[c - base] = k_row[c - base];
    }
    int64_t n_active = 0;
    for (int64_t r = 0; r < nr; ++r) {
      AttnRow& row = rows[r];
      row.a = row.lo > base ? row.lo : base;
      row.b = row.hi < base + kAttnChunk - 1 ? row.hi : base + kAttnChunk - 1;
      if (row.a > row.b) continue;
      if (!kWiden || widen) {
        row_softmax_step<Ops, float>(row, kf_row + (row.a - base), hd, a.scale, a.softcap);
      } else {
        row_softmax_step<Ops, T>(row, k_row + (row.a - base), hd, a.scale, a.softcap);
      }
      active[n_active++] = &row;
    }
    add_v<Ops, T>(active, n_active, v_row, base, hd);
  }
  for (int64_t r = 0; r < nr; ++r) scale_row<Ops>(rows[r].out, hd, 1.0f / rows[r].l);
}

template <typename Ops, typename T>
void attend(const PagedKv& kv, const AttentionQuery& a) {
  for (int64_t h0 = 0; h0 < a.n_q; h0 += kAttentionMaxGroup) {
    const int64_t nh = a.n_q - h0 < kAttentionMaxGroup ? a.n_q - h0 : kAttentionMaxGroup;
    const int64_t per_piece = kAttentionMaxRows / nh;  // tokens
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += per_piece) {
      attend_piece<Ops, T>(kv, a, t0, a.n_tokens - t0 < per_piece ? a.n_tokens - t0 : per_piece, h0, nh);
    }
  }
}

// Sets the F32 and F16 attention entries of t.
template <typename Ops>
void set_attention(KernelTable& t) {
  t.attention[dtype_slot(DType::kF32)] = attend<Ops, float>;
  t.attention[dtype_slot(DType::kF16)] = attend<Ops, uint16_t>;
}

}  // namespace
}  // namespace lightboat::kernels::detail
