#include "kernels/ops.h"

#include <algorithm>
#include <cmath>

namespace lightboat::kernels {

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double sum_sq = 0.0;  // double, as ggml accumulates, so long rows lose nothing
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum_sq / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const float max = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void rope_angles(int64_t pos, int n_rot, float base, float freq_scale, const float* factors,
                 float* cos_out, float* sin_out) {
  // theta is advanced by repeated multiplication in fp32, as ggml does, so angles agree with
  // llama.cpp to the last bit for the same position.
  const float theta_scale = std::pow(base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (int i = 0; i < n_rot / 2; ++i) {
    const float factor = factors != nullptr ? factors[i] : 1.0f;
    const float angle = freq_scale * (theta / factor);
    cos_out[i] = std::cos(angle);
    sin_out[i] = std::sin(angle);
    theta *= theta_scale;
  }
}

void rope_apply(float* x, int n_heads, int head_dim, int n_rot, const float* cos_t, const float* sin_t,
                RopeMode mode) {
  const int half = n_rot / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      // kNorm: dims (2i, 2i+1); kNeox: dims (i, i + half).
      const int a = mode == RopeMode::kNorm ? 2 * i : i;
      const int b = mode == RopeMode::kNorm ? 2 * i + 1 : i + half;
      const float x0 = v[a];
      const float x1 = v[b];
      v[a] = x0 * cos_t[i] - x1 * sin_t[i];
      v[b] = x0 * sin_t[i] + x1 * cos_t[i];
    }
  }
}

}  // namespace lightboat::kernels
