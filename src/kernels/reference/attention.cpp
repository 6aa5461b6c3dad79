// The scalar specification of paged attention (kernels/attention.h): each query head on its own,
// one pass over the visible positions with a running maximum m and sum l of exp(score - m); the
// output accumulates exp(score - m) · v and is rescaled by exp(m_old - m_new) whenever the
// maximum grows, then divided by l at the end. Equal to softmax(scores) · V up to rounding.
// A tile of tokens is the tokens one after the other, each over its own visible range.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/attention.h"

namespace lightboat::kernels::reference {
namespace {

// Element `d` of slot row `row` of a cache of `type` (kF32 or kF16).
float element(const void* cache, tensor::DType type, int64_t row, int64_t d) {
  if (type == tensor::DType::kF32) return static_cast<const float*>(cache)[row + d];
  return tensor::fp16_to_fp32(static_cast<const uint16_t*>(cache)[row + d]);
}

// One token's heads.
void attend_token(const PagedKv& kv, const AttentionQuery& a) {
  const int64_t hd = a.head_dim;
  for (int64_t g = 0; g < a.n_q; ++g) {
    const float* q = a.q + g * hd;
    float* out = a.out + g * hd;
    std::memset(out, 0, sizeof(float) * static_cast<size_t>(hd));
    float m = -std::numeric_limits<float>::infinity();
    float l = 0.0f;
    for (int64_t j = 0; j < a.n; ++j) {
      const int64_t pos = a.first + j;
      const int64_t slot = static_cast<int64_t>(kv.pages[pos / kv.page_size]) * kv.page_size + pos % kv.page_size;
      const int64_t row = slot * kv.row_stride + a.kv_offset;  // elements
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot += q[d] * element(kv.k, kv.type, row, d);
      float s = dot * a.scale;
      if (a.softcap > 0.0f) s = a.softcap * std::tanh(s / a.softcap);
      if (s > m) {
        const float corr = std::exp(m - s);  // 0 on the first position (m = -inf)
        l *= corr;
        for (int64_t d = 0; d < hd; ++d) out[d] *= corr;
        m = s;
      }
      const float p = std::exp(s - m);
      l += p;
      for (int64_t d = 0; d < hd; ++d) out[d] += p * element(kv.v, kv.type, row, d);
    }
    const float inv = 1.0f / l;
    for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
  }
}

}  // namespace

void attention(const PagedKv& kv, const AttentionQuery& a) {
  for (int64_t i = 0; i < a.n_tokens; ++i) {
    AttentionQuery t = a;
    const int64_t last = a.first + a.n - 1 + i;  // the token's position
    t.first = a.window > 0 ? std::max(a.first, last - a.window + 1) : a.first;
    t.n = last + 1 - t.first;
    t.q = a.q + i * a.token_stride;
    t.out = a.out + i * a.token_stride;
    attend_token(kv, t);
  }
}

}  // namespace lightboat::kernels::reference
