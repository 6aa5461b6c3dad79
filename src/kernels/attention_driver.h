// The paged-attention loop nest shared by the SIMD units (included by the ISA units only;
// anonymous namespace so each unit compiles its own copy with its own flags). See
// kernels/attention.h for the contract and reference/attention.cpp for the specification.
//
// For G query heads sharing a KV head (G <= 8, a template argument so the accumulators live in
// registers), the visible positions are walked in chunks of at most kAttnChunk positions (the
// addresses of a chunk's rows are looked up in the page table first):
//   1. scores s[g][c] = scale · q_g·k_c: each K row is loaded once and multiplied with all G
//      query heads;
//   2. optional soft-cap; per head, when the chunk's maximum exceeds the running maximum m, the
//      running sum l and the output are rescaled by exp(m_old - m_new); then
//      s[g][c] = exp(s[g][c] - m) (vectorised polynomial exp) and l += their sum;
//   3. out[g] += Σ_c s[g][c] · v_c, one vector of head dimensions at a time with the G
//      accumulators in registers: each V row chunk is loaded once for all G heads.
// At the end out[g] /= l[g]. Head dimensions past the last full vector are done in scalar code.
//
// Ops (one struct per ISA) supplies: V, kLanes, zero, set1, load(const float*),
// load(const uint16_t*) (fp16 -> fp32), store, add, sub, mul, fmadd(a, b, c) = a·b + c, max,
// round (to nearest), scale_pow2(p, n) = p · 2^n for integral n in [-126, 0], reduce_add,
// reduce4(a, b, c, d, out) (out[0..3] = the sums of a, b, c, d), half(uint16_t) -> float.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/dispatch.h"

// No std:: templates or inline library functions below (std::max_element, std::exp …): their
// out-of-line copies would be shared with other units and could carry this unit's ISA flags
// (isa_tables.h). Builtins and local helpers only.
namespace lightboat::kernels::detail {
namespace {

constexpr int64_t kAttnChunk = 64;  // positions per chunk: G·64 scores stay in L1 (2 KiB at G=8)

template <typename Ops>
float to_float(float x) {
  return x;
}
template <typename Ops>
float to_float(uint16_t x) {
  return Ops::half(x);
}

// exp(x) for x <= 0: x = n·ln2 + r with |r| <= ln2/2, exp(r) by its degree-7 Taylor polynomial
// (relative error < 3e-9 before fp32 rounding), times 2^n. Inputs below -87 (results under
// 2^-125, negligible beside the sum, which is >= 1) are clamped to -87.
template <typename Ops>
typename Ops::V exp_nonpositive(typename Ops::V x) {
  using V = typename Ops::V;
  x = Ops::max(x, Ops::set1(-87.0f));
  const V n = Ops::round(Ops::mul(x, Ops::set1(1.44269504088896341f)));
  V r = Ops::fmadd(n, Ops::set1(-0.693145751953125f), x);   // ln2 split in a high part exact in
  r = Ops::fmadd(n, Ops::set1(-1.428606765330187e-6f), r);  // fp32 times n, and the rest
  V p = Ops::set1(1.0f / 5040);
  p = Ops::fmadd(p, r, Ops::set1(1.0f / 720));
  p = Ops::fmadd(p, r, Ops::set1(1.0f / 120));
  p = Ops::fmadd(p, r, Ops::set1(1.0f / 24));
  p = Ops::fmadd(p, r, Ops::set1(1.0f / 6));
  p = Ops::fmadd(p, r, Ops::set1(0.5f));
  p = Ops::fmadd(p, r, Ops::set1(1.0f));
  p = Ops::fmadd(p, r, Ops::set1(1.0f));
  return Ops::scale_pow2(p, n);
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

template <typename Ops, typename T, int G>
void attend_group(const PagedKv& kv, const AttentionQuery& a, const float* q, float* out) {
  using V = typename Ops::V;
  constexpr int L = Ops::kLanes;
  const int64_t hd = a.head_dim;
  const auto* k_cache = static_cast<const T*>(kv.k);
  const auto* v_cache = static_cast<const T*>(kv.v);
  float m[G];
  float l[G];
  alignas(64) float s[G][kAttnChunk];  // scores, then weights, of the current chunk
  for (int g = 0; g < G; ++g) {
    m[g] = -__builtin_inff();
    l[g] = 0.0f;
  }
  std::memset(out, 0, sizeof(float) * static_cast<size_t>(G * hd));

  // The page of the next row and its slot in it, advanced row by row (no division per row).
  int64_t page = a.first / kv.page_size;
  int64_t in_page = a.first % kv.page_size;
  const T* k_row[kAttnChunk];  // the chunk's rows, already offset to the KV head
  const T* v_row[kAttnChunk];
  for (int64_t j = 0; j < a.n;) {
    // Chunks are counted from `first`, whatever the page size, so the result of a sequence does
    // not depend on how its positions are paged (a batch gives each sequence what it gets alone).
    const int64_t len = a.n - j < kAttnChunk ? a.n - j : kAttnChunk;
    for (int64_t c = 0; c < len; ++c) {
      const int64_t off = (static_cast<int64_t>(kv.pages[page]) * kv.page_size + in_page) * kv.row_stride + a.kv_offset;
      k_row[c] = k_cache + off;
      v_row[c] = v_cache + off;
      if (++in_page == kv.page_size) {
        in_page = 0;
        ++page;
      }
    }

    // 1. Scores. Four positions at a time per head, so one reduce4 turns four accumulators into
    //    four dot products (a horizontal sum per score would cost as much as the products); the
    //    K rows are then read once per head, from L1 after the first.
    int64_t c4 = 0;
    for (; c4 + 4 <= len; c4 += 4) {
      for (int g = 0; g < G; ++g) {
        const float* qg = q + g * hd;
        V acc0 = Ops::zero(), acc1 = Ops::zero(), acc2 = Ops::zero(), acc3 = Ops::zero();
        int64_t d = 0;
        for (; d + L <= hd; d += L) {
          const V qv = Ops::load(qg + d);
          acc0 = Ops::fmadd(qv, Ops::load(k_row[c4] + d), acc0);
          acc1 = Ops::fmadd(qv, Ops::load(k_row[c4 + 1] + d), acc1);
          acc2 = Ops::fmadd(qv, Ops::load(k_row[c4 + 2] + d), acc2);
          acc3 = Ops::fmadd(qv, Ops::load(k_row[c4 + 3] + d), acc3);
        }
        float dots[4];
        Ops::reduce4(acc0, acc1, acc2, acc3, dots);
        for (int i = 0; i < 4; ++i) {
          float dot = dots[i];
          for (int64_t dd = d; dd < hd; ++dd) dot += qg[dd] * to_float<Ops>(k_row[c4 + i][dd]);
          s[g][c4 + i] = dot * a.scale;
        }
      }
    }
    for (int64_t c = c4; c < len; ++c) {
      const T* kr = k_row[c];
      V acc[G];
      for (int g = 0; g < G; ++g) acc[g] = Ops::zero();
      int64_t d = 0;
      for (; d + L <= hd; d += L) {
        const V kk = Ops::load(kr + d);
        for (int g = 0; g < G; ++g) acc[g] = Ops::fmadd(Ops::load(q + g * hd + d), kk, acc[g]);
      }
      for (int g = 0; g < G; ++g) {
        float dot = Ops::reduce_add(acc[g]);
        for (int64_t dd = d; dd < hd; ++dd) dot += q[g * hd + dd] * to_float<Ops>(kr[dd]);
        s[g][c] = dot * a.scale;
      }
    }
    // 2. Soft-cap, running maximum and sum, weights.
    for (int g = 0; g < G; ++g) {
      float* sg = s[g];
      if (a.softcap > 0.0f) {
        for (int64_t c = 0; c < len; ++c) sg[c] = a.softcap * __builtin_tanhf(sg[c] / a.softcap);
      }
      float chunk_max = sg[0];
      for (int64_t c = 1; c < len; ++c) chunk_max = sg[c] > chunk_max ? sg[c] : chunk_max;
      if (chunk_max > m[g]) {
        if (j > 0) {  // nothing accumulated before the first chunk
          const float corr = __builtin_expf(m[g] - chunk_max);
          l[g] *= corr;
          scale_row<Ops>(out + g * hd, hd, corr);
        }
        m[g] = chunk_max;
      }
      l[g] += exp_shifted_sum<Ops>(sg, len, m[g]);
    }
    // 3. Weighted sum of V.
    int64_t d = 0;
    for (; d + L <= hd; d += L) {
      V acc[G];
      for (int g = 0; g < G; ++g) acc[g] = Ops::load(out + g * hd + d);
      for (int64_t c = 0; c < len; ++c) {
        const V vv = Ops::load(v_row[c] + d);
        for (int g = 0; g < G; ++g) acc[g] = Ops::fmadd(Ops::set1(s[g][c]), vv, acc[g]);
      }
      for (int g = 0; g < G; ++g) Ops::store(out + g * hd + d, acc[g]);
    }
    for (; d < hd; ++d) {
      for (int g = 0; g < G; ++g) {
        float acc = out[g * hd + d];
        for (int64_t c = 0; c < len; ++c) acc += s[g][c] * to_float<Ops>(v_row[c][d]);
        out[g * hd + d] = acc;
      }
    }
    j += len;
  }
  for (int g = 0; g < G; ++g) scale_row<Ops>(out + g * hd, hd, 1.0f / l[g]);
}

template <typename Ops, typename T>
void attend(const PagedKv& kv, const AttentionQuery& a) {
  for (int64_t g0 = 0; g0 < a.n_q; g0 += kAttentionMaxGroup) {
    const float* q = a.q + g0 * a.head_dim;
    float* out = a.out + g0 * a.head_dim;
    const int64_t left = a.n_q - g0;
    switch (left < kAttentionMaxGroup ? left : kAttentionMaxGroup) {
      case 1:
        attend_group<Ops, T, 1>(kv, a, q, out);
        break;
      case 2:
        attend_group<Ops, T, 2>(kv, a, q, out);
        break;
      case 3:
        attend_group<Ops, T, 3>(kv, a, q, out);
        break;
      case 4:
        attend_group<Ops, T, 4>(kv, a, q, out);
        break;
      case 5:
        attend_group<Ops, T, 5>(kv, a, q, out);
        break;
      case 6:
        attend_group<Ops, T, 6>(kv, a, q, out);
        break;
      case 7:
        attend_group<Ops, T, 7>(kv, a, q, out);
        break;
      default:
        attend_group<Ops, T, 8>(kv, a, q, out);
        break;
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
