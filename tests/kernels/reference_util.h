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
