// SwiGLU and GEGLU over SIMD vectors, shared by the ISA units (included by them only; anonymous namespace so
// each unit compiles its own copy with its own flags). Ops is the unit's vector struct (see
// attention_driver.h, plus gelu_lookup). The scalar specifications are kernels::swiglu (ops.h)
// and kernels::geglu; see kernels/activations.h for the agreement.
#pragma once

#include <cstdint>

#include "kernels/activations.h"
#include "kernels/dispatch.h"
#include "kernels/simd_exp.h"

namespace lightboat::kernels::detail {
namespace {

// gate[i] = silu(gate[i]) · up[i]. With e = exp(-|x|) <= 1 (no overflow for any x):
// silu(x) = x / (1 + e) for x >= 0, x · e / (1 + e) for x < 0.
template <typename Ops>
void swiglu_simd(float* gate, const float* up, int64_t n) {
  using V = typename Ops::V;
  const V one = Ops::set1(1.0f);
  int64_t i = 0;
  for (; i + Ops::kLanes <= n; i += Ops::kLanes) {
    const V x = Ops::load(gate + i);
    const V neg_abs = Ops::sub(Ops::zero(), Ops::max(x, Ops::sub(Ops::zero(), x)));
    const V e = exp_nonpositive<Ops>(neg_abs);
    // e is clamped at 2^-125.5 below -87: x is too (to -88) in x · e, or a huge negative x
    // would give a finite non-zero product instead of ~0.
    const V num = Ops::select_neg(x, Ops::mul(Ops::max(x, Ops::set1(-88.0f)), e), x);
    const V silu = Ops::div(num, Ops::add(one, e));
    Ops::store(gate + i, Ops::mul(silu, Ops::load(up + i)));
  }
  for (; i < n; ++i) {  // the reference's formula
    const float g = gate[i];
    gate[i] = g / (1.0f + __builtin_expf(-g)) * up[i];
  }
}

// gate[i] = gelu(gate[i]) · up[i] the way kernels::geglu computes it: 0 for x <= -10, x for
// x >= 10, else the table entry of fp16(x) (round to nearest even, as tensor::fp32_to_fp16),
// widened; Ops::gelu_lookup converts and looks up a vector.
template <typename Ops>
void geglu_simd(float* gate, const float* up, int64_t n) {
  using V = typename Ops::V;
  const uint16_t* table = gelu_fp16_table();
  const V lo = Ops::set1(-10.0f), hi = Ops::set1(10.0f);
  int64_t i = 0;
  for (; i + Ops::kLanes <= n; i += Ops::kLanes) {
    const V x = Ops::load(gate + i);
    V g = Ops::gelu_lookup(x, table);
    g = Ops::select_neg(Ops::sub(lo, x), g, Ops::zero());  // x > -10 keeps g
    g = Ops::select_neg(Ops::sub(x, hi), g, x);            // x < 10 keeps g
    Ops::store(gate + i, Ops::mul(g, Ops::load(up + i)));
  }
  if (i < n) geglu(gate + i, up + i, n - i);
}

// Sets the activation entries of t.
template <typename Ops>
void set_activations(KernelTable& t) {
  t.swiglu = swiglu_simd<Ops>;
  t.geglu = geglu_simd<Ops>;
}

}  // namespace
}  // namespace lightboat::kernels::detail
