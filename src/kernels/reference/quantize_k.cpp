// K-quant weight quantizers (Q4_K, Q5_K, Q6_K), equivalent to llama.cpp's reference quantizers
// without an importance matrix (what llama-quantize uses when given none). Each searches, per
// sub-block, for the scale (and min) minimising a weighted squared error, then quantizes those
// scales to 6 or 8 bits against one fp16 super-block scale and re-rounds every element with the
// scale it will actually be decoded with. Float operations are kept in llama.cpp's order so
// that, compiled without fused multiply-add contraction, blocks come out bit-identical.
#include <algorithm>
#include <cmath>

#include "kernels/reference/formats.h"

namespace lightboat::kernels::reference::detail {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // below this a group counts as all zero

// Fit x ≈ scale * L - min_out with L in 0..nmax (min_out >= 0: the offset subtracted), for n
// values with weights w. Start from the plain min/max grid, then try nstep + 1 slightly different
// grid spacings (nmax + rmin + rdelta * is levels over the range); for each, solve the weighted
// least-squares scale and offset for the rounded L exactly and keep it if its weighted squared
// error is smaller. Returns the scale; L receives the chosen quants. (llama.cpp: make_qkx2_quants.)
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* min_out,
                    float rmin, float rdelta, int nstep) {
  float min = x[0];
  float max = x[0];
  float sum_w = 0.0f;
  float sum_x = 0.0f;
  for (int i = 0; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;  // the offset only ever lowers the grid: zero stays representable
  if (max == min) {
    std::fill(L, L + n, 0);
    *min_out = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
    L[i] = static_cast<uint8_t>(l);
    const float diff = scale * static_cast<float>(l) + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  uint8_t trial[kQK_K];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      const float wl = w[i] * static_cast<float>(l);
      sum_l += wl;
      sum_l2 += wl * static_cast<float>(l);
      sum_xl += wl * x[i];
    }
    // Normal equations of min over (s, m) of sum w (s l + m - x)^2.
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {  // a positive offset is not representable: refit the scale alone
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float error = 0.0f;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * static_cast<float>(trial[i]) + this_min - x[i];
        error += w[i] * (diff * diff);
      }
      if (error < best_error) {
        std::copy(trial, trial + n, L);
        best_error = error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *min_out = -min;
  return scale;
}

// Fit x ≈ scale * (L - nmax) with L - nmax in -nmax..nmax-1 and weights x^2 (large values matter
// most). The signed extreme maps to -nmax; 18 nearby grid spacings are tried and the one with the
// best weighted least-squares fit (largest (sum w x l)^2 / sum w l^2) kept. Returns the scale,
// which may be negative. (llama.cpp: make_qx_quants with rmse_type 1 and no importance weights.)
float fit_symmetric_scale(int n, int nmax, const float* x, uint8_t* L) {
  float max = 0.0f;
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, 0);
    return 0.0f;
  }
  const auto level = [nmax](float v) { return std::clamp(nearest_int(v), -nmax, nmax - 1); };
  float iscale = static_cast<float>(-nmax) / max;
  float sum_lx = 0.0f, sum_l2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale * x[i]);
    L[i] = static_cast<uint8_t>(l + nmax);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * static_cast<float>(l);
    sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = sum_l2 != 0.0f ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sum_lx = 0.0f;
    sum_l2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = level(iscale * x[i]);
      const float w = x[i] * x[i];
      sum_lx += w * x[i] * static_cast<float>(l);
      sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(level(iscale * x[i]) + nmax);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

// The shared part of Q4_K and Q5_K: fit each sub-block of 32 (weights: rms of the sub-block plus
// |x|), quantize the 8 scales and 8 mins to 6 bits against max/63, then re-round every element
// with its decoded scale and min. Fills d, dmin, scales and L (quants 0..nmax per element).
template <typename Block>
void quantize_scales_and_mins(const float* xb, int nmax, float rmin, float rdelta, int nstep,
                              Block* b, uint8_t* L) {
  float scales[8];
  float mins[8];
  float max_scale = 0.0f;  // sub-block scales are positive: the min takes the offset
  float max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    const float* xs = xb + 32 * j;
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    float weights[32];
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(32, nmax, xs, weights, L + 32 * j, &mins[j], rmin, rdelta, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  std::fill(std::begin(b->scales), std::end(b->scales), 0);
  for (int j = 0; j < 8; ++j) {
    // llama.cpp stores nearest_int into a uint8_t before clamping; kept for equality.
    const auto ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    const auto lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    pack_scale_min(j, std::min<uint8_t>(63, ls), std::min<uint8_t>(63, lm), b->scales);
  }
  b->d = fp32_to_fp16(max_scale / 63.0f);
  b->dmin = fp32_to_fp16(max_min / 63.0f);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min(j, b->scales, &sc, &m);
    const float d = half(b->d) * static_cast<float>(sc);
    if (d == 0.0f) continue;  // keep the fit's quants: they decode to -dm whatever they are
    const float dm = half(b->dmin) * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      const int q = nearest_int((xb[32 * j + l] + dm) / d);
      L[32 * j + l] = static_cast<uint8_t>(std::clamp(q, 0, nmax));
    }
  }
}

}  // namespace

void quantize_q4_k(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK_K;
    BlockQ4_K b;
    uint8_t L[kQK_K];
    quantize_scales_and_mins(xb, 15, -1.0f, 0.1f, 20, &b, L);
    // Chunk c of 64 elements: low nibbles = elements 64c..64c+31, high = 64c+32..64c+63.
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        b.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
      }
    }
    store_block(y, i, b);
  }
}

void quantize_q5_k(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK_K;
    BlockQ5_K b;
    uint8_t L[kQK_K];
    quantize_scales_and_mins(xb, 31, -0.5f, 0.1f, 15, &b, L);
    std::fill(std::begin(b.qh), std::end(b.qh), 0);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l];
        const int hi = L[64 * c + 32 + l];
        b.qs[32 * c + l] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
        b.qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
    store_block(y, i, b);
  }
}

void quantize_q6_k(const float* x, void* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK_K;
    uint8_t L[kQK_K];  // quants 0..63 (value + 32)
    float scales[16];
    float max_scale = 0.0f;  // the scale of largest magnitude, with its sign
    float max_abs_scale = 0.0f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_symmetric_scale(16, 32, xb + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    BlockQ6_K b{};  // an all-zero super-block stays all zero bytes (d = +0)
    if (max_abs_scale >= kGroupMaxEps) {
      // Sub-block scales become int8 against d = max_scale / -128 (the extreme maps to -128).
      const float iscale = -128.0f / max_scale;
      b.d = fp32_to_fp16(1 / iscale);
      for (int j = 0; j < 16; ++j) {
        b.scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
      }
      for (int j = 0; j < 16; ++j) {
        const float d = half(b.d) * static_cast<float>(b.scales[j]);
        if (d == 0.0f) continue;
        for (int l = 0; l < 16; ++l) {
          const int q = std::clamp(nearest_int(xb[16 * j + l] / d), -32, 31);
          L[16 * j + l] = static_cast<uint8_t>(q + 32);
        }
      }
      for (int h = 0; h < 2; ++h) {
        const uint8_t* Lh = L + 128 * h;
        for (int l = 0; l < 32; ++l) {
          b.ql[64 * h + l] = static_cast<uint8_t>((Lh[l] & 0x0f) | ((Lh[l + 64] & 0x0f) << 4));
          b.ql[64 * h + 32 + l] =
              static_cast<uint8_t>((Lh[l + 32] & 0x0f) | ((Lh[l + 96] & 0x0f) << 4));
          b.qh[32 * h + l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                                  ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
        }
      }
    }
    store_block(y, i, b);
  }
}

}  // namespace lightboat::kernels::reference::detail
