// Non-owning views of tensor data. Weights are 2-D matrices of rows: ne0 = n_cols (the input
// dimension, contiguous), ne1 = n_rows (the output dimension), as ggml stores them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace lightboat::tensor {

struct MatrixView {
  DType type = DType::kF32;
  int64_t n_cols = 0;            // elements per row (ne0)
  int64_t n_rows = 0;            // rows (ne1)
  size_t row_bytes = 0;          // bytes per row
  const std::byte* data = nullptr;

  const std::byte* row(int64_t i) const { return data + static_cast<size_t>(i) * row_bytes; }
};

// A 1-D vector of floats stored as any dtype (norm weights, biases, rope factors).
struct VectorView {
  DType type = DType::kF32;
  int64_t n = 0;
  const std::byte* data = nullptr;
};

}  // namespace lightboat::tensor
