// Activation functions whose exact numerics matter for agreement with llama.cpp.
#pragma once

#include <cstdint>

namespace lightboat::kernels {

struct KernelTable;

// gate[i] = silu(gate[i]) · up[i] (SwiGLU), silu(x) = x / (1 + exp(-x)). The scalar
// specification is kernels::swiglu (ops.h); the SIMD entries use the polynomial exp of the
// attention kernels (kernels/simd_exp.h) and agree with it within 2e-6 relative (plus 1e-37
// absolute, for x < -87, where exp is clamped).
using SwigluFn = void (*)(float* gate, const float* up, int64_t n);

// The entry of `table` (falls back to the scalar kernels::swiglu).
SwigluFn swiglu_fn(const KernelTable& table);

// GEGLU (geglu below); the SIMD entries convert to fp16 and look the table up in vector
// registers, with the same rounding: bit-identical to the scalar.
using GegluFn = void (*)(float* gate, const float* up, int64_t n);
GegluFn geglu_fn(const KernelTable& table);

// fp16(gelu(fp16 x)) indexed by the fp16 bits of x, followed by one unused zero entry (so a
// 32-bit gather at the last index stays inside): the table geglu samples.
const uint16_t* gelu_fp16_table();

// gate[i] = gelu_tanh(gate[i]) * up[i] (GEGLU, Gemma's FFN). GELU is evaluated the way ggml's
// CPU backend does: x rounded to fp16, looked up in a table of fp16(gelu(x)), with 0 for
// x <= -10 and x for x >= 10. Exact tanh-GELU would move Gemma's logits by ~3e-3.
void geglu(float* gate, const float* up, int64_t n);

// The tanh approximation of GELU in fp32, the function the table samples.
float gelu_tanh(float x);

// x[i] = cap * tanh(x[i] / cap): Gemma 2's soft-capping of attention scores and final logits.
void softcap(float* x, int64_t n, float cap);

}  // namespace lightboat::kernels
