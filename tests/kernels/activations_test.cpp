// SIMD SwiGLU and GEGLU (kernels/activations.h) against the scalar specifications
// kernels::swiglu (ops.h) and kernels::geglu (GEGLU bit-identical, it only converts and looks up)
// on every ISA this machine runs: every length 0 .. 2 x 16 + 1 from misaligned starts (so the
// vector body and the scalar tail both run), and values over the whole range, including the
// exp clamp (|x| > 87), zeros of both signs, and large magnitudes.
//
// Tolerance: the polynomial exp is within 3e-9 relative before rounding; silu adds a division
// and the x < 0 form x · e / (1 + e) one more rounding than the reference's x / (1 + exp(-x)):
// a few ulp, under 2e-6 relative. For x < -87 the SIMD exp is clamped (e = 2^-125.5 instead of
// exp(x)), which changes results below 1e-34 in magnitude only: 1e-30 absolute covers it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/activations.h"
#include "kernels/dispatch.h"
#include "kernels/ops.h"
#include "tensor/dtype.h"

namespace lightboat::kernels {
namespace {

std::vector<Isa> isas_here() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (isa_available(isa)) out.push_back(isa);
  }
  return out;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  for (size_t i = 0; i < want.size(); ++i) {
    const double tol = 2e-6 * std::abs(double{want[i]}) + 1e-30;
    ASSERT_NEAR(got[i], want[i], tol) << what << " at " << i;
  }
}

TEST(Activations, SimdSwigluMatchesTheScalarOnEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uni(-12.0f, 12.0f);
  for (Isa isa : isas_here()) {
    const SwigluFn fn = swiglu_fn(kernel_table(isa));
    for (int64_t n = 0; n <= 33; ++n) {
      for (int64_t off = 0; off < 3; ++off) {
        std::vector<float> gate(static_cast<size_t>(n + off)), up(gate.size());
        for (auto& x : gate) x = uni(rng);
        for (auto& x : up) x = uni(rng);
        std::vector<float> want = gate;
        swiglu(want.data() + off, up.data() + off, n);
        std::vector<float> got = gate;
        fn(got.data() + off, up.data() + off, n);
        expect_close(got, want, std::string(isa_name(isa)) + " n=" + std::to_string(n) + " off=" + std::to_string(off));
      }
    }
  }
}

TEST(Activations, SimdSwigluOverTheWholeRange) {
  std::vector<float> gate;
  for (float x : {0.0f,  -0.0f,  1e-30f, -1e-30f, 1e-7f,  -1e-7f,  0.5f, -0.5f, 20.0f, -20.0f,
                  86.0f, -86.0f, 88.0f,  -88.0f,  100.0f, -100.0f, 1e4f, -1e4f, 3e38f, -3e38f}) {
    gate.push_back(x);
  }
  for (int i = -4000; i <= 4000; ++i) gate.push_back(static_cast<float>(i) * 0.03f);
  const std::vector<float> up(gate.size(), 1.0f);
  std::vector<float> want = gate;
  swiglu(want.data(), up.data(), static_cast<int64_t>(want.size()));
  for (Isa isa : isas_here()) {
    std::vector<float> got = gate;
    swiglu_fn(kernel_table(isa))(got.data(), up.data(), static_cast<int64_t>(got.size()));
    expect_close(got, want, std::string(isa_name(isa)));
  }
}

// Every length and alignment, and values around the clamps (±10), fp16 rounding ties and
// subnormals: the same bits as the scalar.
TEST(Activations, SimdGegluEqualsTheScalar) {
  std::vector<float> gate;
  for (float x :
       {-10.0f, 10.0f, std::nextafter(-10.0f, 0.0f), std::nextafter(10.0f, 0.0f), std::nextafter(-10.0f, -20.0f),
        std::nextafter(10.0f, 20.0f), 0.0f, -0.0f, 1e-8f, -1e-8f, 3e-5f, -6e-5f, 2.98023224e-8f, 1e30f, -1e30f}) {
    gate.push_back(x);
  }
  for (int i = -24000; i <= 24000; ++i) gate.push_back(static_cast<float>(i) * 0.000513f);  // ±12.3
  for (uint16_t h = 0; h < 0x7c00; h += 7) {  // fp16 values and the midpoints between neighbours (ties)
    const float f = tensor::fp16_to_fp32(h);
    const float next = tensor::fp16_to_fp32(static_cast<uint16_t>(h + 1));
    gate.push_back(f);
    gate.push_back(-(f + next) / 2);
  }
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uni(-2.0f, 2.0f);
  std::vector<float> up(gate.size());
  for (auto& x : up) x = uni(rng);
  for (Isa isa : isas_here()) {
    const GegluFn fn = geglu_fn(kernel_table(isa));
    for (int64_t off = 0; off < 3; ++off) {
      for (int64_t n :
           {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{16}, int64_t{33}, static_cast<int64_t>(gate.size()) - off}) {
        std::vector<float> want(gate.begin(), gate.end()), got = want;
        geglu(want.data() + off, up.data() + off, n);
        fn(got.data() + off, up.data() + off, n);
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_EQ(got[i], want[i]) << isa_name(isa) << " n=" << n << " off=" << off << " x=" << gate[i];
        }
      }
    }
  }
}

TEST(Activations, SimdTablesHaveTheirOwnEntries) {
  for (Isa isa : isas_here()) {
    if (isa == Isa::kScalar) continue;
    EXPECT_NE(swiglu_fn(kernel_table(isa)), &swiglu) << isa_name(isa);
    EXPECT_NE(geglu_fn(kernel_table(isa)), &geglu) << isa_name(isa);
  }
}

}  // namespace
}  // namespace lightboat::kernels
