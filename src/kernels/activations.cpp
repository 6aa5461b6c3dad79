#include "kernels/activations.h"

#include <array>
#include <cmath>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/ops.h"
#include "tensor/dtype.h"

namespace lightboat::kernels {
namespace {

// fp16(gelu(x)) for every fp16 bit pattern x, and a zero pad entry: 128 KiB, built once on
// first use (thread-safe static initialisation), constant afterwards.
const std::array<uint16_t, 65537>& gelu_table() {
  static const auto table = [] {
    std::array<uint16_t, 65537> t{};
    for (uint32_t i = 0; i < 65536; ++i) {
      t[i] = tensor::fp32_to_fp16(gelu_tanh(tensor::fp16_to_fp32(static_cast<uint16_t>(i))));
    }
    return t;
  }();
  return table;
}

}  // namespace

SwigluFn swiglu_fn(const KernelTable& table) {
  return table.swiglu != nullptr ? table.swiglu : swiglu;
}

GegluFn geglu_fn(const KernelTable& table) {
  return table.geglu != nullptr ? table.geglu : geglu;
}

const uint16_t* gelu_fp16_table() {
  return gelu_table().data();
}

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoef = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoef * x * x)));
}

void geglu(float* gate, const float* up, int64_t n) {
  const auto& table = gelu_table();
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    float g;
    if (x <= -10.0f) {
      g = 0.0f;
    } else if (x >= 10.0f) {
      g = x;
    } else {
      g = tensor::fp16_to_fp32(table[tensor::fp32_to_fp16(x)]);
    }
    gate[i] = g * up[i];
  }
}

void softcap(float* x, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] * inv);
}

}  // namespace lightboat::kernels
