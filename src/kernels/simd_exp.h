// The vectorised exp shared by the SIMD units' attention and activation kernels (included by the
// ISA units only, through attention_driver.h and activations_driver.h; anonymous namespace so
// each unit compiles its own copy with its own flags). Ops is the unit's vector struct (see
// attention_driver.h): set1, max, round, mul, fmadd, scale_pow2.
#pragma once

namespace lightboat::kernels::detail {
namespace {

// exp(x) for x <= 0: x = n·ln2 + r with |r| <= ln2/2, exp(r) by its degree-7 Taylor polynomial
// (relative error < 3e-9 before fp32 rounding), times 2^n. Inputs below -87 (results under
// 2^-125, negligible beside a softmax sum, which is >= 1, or 1 + e in silu) are clamped to -87.
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

}  // namespace
}  // namespace lightboat::kernels::detail
