// Helpers shared by the reference-kernel tests: random rows, quantize/dequantize round trips into
// std::vectors, and the list of formats under test.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/reference/reference.h"
#include "tensor/dtype.h"

namespace lightboat::kernels::reference::test_util {

using tensor::DType;

// Weight formats with a vec_dot, and every format with a quantizer.
inline constexpr DType kWeightTypes[] = {
    DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0,
    DType::kQ5_1, DType::kQ8_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K,
};
inline constexpr DType kAllTypes[] = {
    DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
    DType::kQ8_0, DType::kQ8_1, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_K,
};

// n samples of N(0, 1), each group of 32 scaled by its own factor in [0.05, 2] so that blocks and
// K-quant sub-blocks see different magnitudes (the case their scale encodings exist for).
inline std::vector<float> random_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> group_scale(0.05f, 2.0f);
  std::vector<float> x(static_cast<size_t>(n));
  float s = 1.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (i % 32 == 0) s = group_scale(rng);
    x[static_cast<size_t>(i)] = s * normal(rng);
  }
  return x;
}

// Largest |x - y| over a block, divided by the largest |x| of that block: the bound each format's
// encoding promises. Derivations (d = block scale, amax = block max |x|):
//   Q8_0/Q8_1  d = amax/127, error <= d/2, plus the fp16 rounding of d (<= 127 d 2^-11).
//   Q8_K       same with an fp32 d.
//   Q4_0       d = amax/8; the side opposite the extreme is clamped at +7: error <= d = amax/8.
//   Q5_0       d = amax/16, same clamp: error <= amax/16.
//   Q4_1/Q5_1  d = (max-min)/15 or /31 <= 2 amax/15 or /31, error <= d/2, plus fp16 of d and m.
//   K-quants   sub-block scales are themselves quantized to 6 (Q4_K/Q5_K) or 8 bits (Q6_K)
//              against the super-block maximum; the bounds are measured maxima with margin.
//   F16/BF16   relative rounding of each element: 2^-11 and 2^-8 of |x| <= amax.
inline double block_error_bound(DType type) {
  switch (type) {
    case DType::kF32: return 0.0;
    case DType::kF16: return 0x1p-11;
    case DType::kBF16: return 0x1p-8;
    case DType::kQ8_0:
    case DType::kQ8_1: return 0.5 / 127 + 0x1p-11;
    case DType::kQ8_K: return 0.5 / 127 * 1.0001;
    case DType::kQ4_0: return 1.0 / 8 + 0x1p-10;
    case DType::kQ5_0: return 1.0 / 16 + 0x1p-10;
    case DType::kQ4_1: return 1.0 / 15 + 0x1p-9;
    case DType::kQ5_1: return 1.0 / 31 + 0x1p-9;
    case DType::kQ4_K: return 0.12;
    case DType::kQ5_K: return 0.06;
    case DType::kQ6_K: return 0.022;
    case DType::kQ4_0x16:
    case DType::kQ8_0x16:
    case DType::kF16x16:
    case DType::kQ4_Kx16:
      break;  // layouts of Q4_0 / Q8_0 / F16 / Q4_K, not quantizers
  }
  return 0.0;
}

inline std::vector<uint8_t> quantize(DType type, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(tensor::row_bytes(type, n));
  quantize_row(type, x.data(), q.data(), n);
  return q;
}

inline std::vector<float> dequantize(DType type, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(type, q.data(), y.data(), n);
  return y;
}

inline double dot_double(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

inline double norm(const std::vector<float>& a) { return std::sqrt(dot_double(a, a)); }

}  // namespace lightboat::kernels::reference::test_util
