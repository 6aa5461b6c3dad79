// Element-wise and row-wise operations of the transformer, fp32. Each is the reference version
// (plain loops the compiler vectorises); shapes are given per call.
#pragma once

#include <cstdint>

namespace lightboat::kernels {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i], i < n. out may alias x.
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);

// x[i] += y[i].
void add(float* x, const float* y, int64_t n);

// gate[i] = silu(gate[i]) * up[i]  (SwiGLU), silu(v) = v / (1 + exp(-v)).
void swiglu(float* gate, const float* up, int64_t n);

// In-place softmax of x[0..n): exp(x - max) / sum.
void softmax(float* x, int64_t n);

// How RoPE pairs dimensions: kNorm rotates (2i, 2i+1) (Llama), kNeox rotates (i, i + n_rot/2).
enum class RopeMode { kNorm, kNeox };

// cos/sin tables for one position: theta_i = pos * freq_scale * base^(-2i/n_rot) / factor_i for
// i < n_rot/2 (factors may be null: all 1). cos_out, sin_out: [n_rot/2].
void rope_angles(int64_t pos, int n_rot, float base, float freq_scale, const float* factors,
                 float* cos_out, float* sin_out);

// Rotates the first n_rot dims of each of n_heads vectors of head_dim floats in x
// ([n_heads, head_dim]); the remaining head_dim - n_rot dims pass through.
void rope_apply(float* x, int n_heads, int head_dim, int n_rot, const float* cos_t, const float* sin_t,
                RopeMode mode);

}  // namespace lightboat::kernels
