// Matrix products of weights (any supported dtype) with fp32 activations. The weight dtype is
// dispatched here, once per call, so the model's forward pass is written once for all formats.
// Activations are first converted to the format the weight type pairs with (Q8_0, Q8_1, Q8_K,
// F16, BF16 or F32, as llama.cpp does), then each output is one integer/float dot product.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/dispatch.h"
#include "tensor/view.h"

namespace lightboat::kernels {

// Scratch memory for quantized activations, sized once (no allocation in the token loop).
class MatmulScratch {
 public:
  // Room for n_tokens rows of up to max_cols activations in any vec-dot format, and, where
  // `kernels` (by default active_kernels()) has packed gemms, for them packed (kernels/dispatch.h).
  void reserve(int64_t n_tokens, int64_t max_cols);
  void reserve(int64_t n_tokens, int64_t max_cols, const KernelTable& kernels);
  // The same for weights of `weight_type`, whose packed layout may need more than the int8 ones
  // (F16 on AMX-BF16: matmul grows the scratch to it on an F16 model's first batch).
  void reserve(int64_t n_tokens, int64_t max_cols, const KernelTable& kernels, DType weight_type);
  std::byte* data() { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  // Where the packed activations of a call reserved with (n_tokens, max_cols) and a table with
  // packed gemms start (64-byte aligned, after the quantized rows).
  std::byte* packed(int64_t n_tokens, int64_t max_cols);

 private:
  static constexpr size_t kPackedAlign = 64;  // bytes
  static size_t packed_offset(int64_t n_tokens, int64_t max_cols);
  void reserve_packed(int64_t n_tokens, int64_t max_cols, int64_t packed_bytes_per_block);  // 0: no packed room

  std::vector<std::byte> bytes_;
};

// y[t, r] = dot(w.row(r), x[t, :]) for t < n_tokens, r < w.n_rows.
// x: [n_tokens, w.n_cols] fp32, row stride x_stride (elements); y: [n_tokens, w.n_rows] fp32,
// row stride y_stride (elements). Work is split across `pool` by output rows. Uses the kernels
// of active_kernels() (the best ISA of this CPU, or LIGHTBOAT_ISA).
void matmul(const tensor::MatrixView& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, MatmulScratch& scratch, ThreadPool& pool);

// The same with an explicit kernel table (tests and benchmarks compare ISAs).
void matmul(const KernelTable& kernels, const tensor::MatrixView& w, const float* x, int64_t x_stride,
            int64_t n_tokens, float* y, int64_t y_stride, MatmulScratch& scratch, ThreadPool& pool);

// One matrix of a shared-input product: y[t, r] = dot(w.row(r), x[t, :]), y with row stride
// y_stride (elements).
struct MatmulTarget {
  tensor::MatrixView w;
  float* y = nullptr;
  int64_t y_stride = 0;
};
inline constexpr size_t kMaxMatmulTargets = 4;

// matmul() of up to kMaxMatmulTargets matrices with the same columns over the same activations (a
// layer's Q, K and V projections; its FFN gate and up). The activations are converted once per
// format the matrices need, and the rows of all matrices sharing a format are split across `pool`
// in one pass: a decode step pays one wake-up and one barrier for them instead of one per matrix,
// and a matrix too small to be worth the pool on its own (the K and V projections of small
// models) is shared out with the others. Every output has the bits matmul() would give it.
// Throws kInvalidArgument on more targets or differing column counts.
void matmul_shared(std::span<const MatmulTarget> targets, const float* x, int64_t x_stride, int64_t n_tokens,
                   MatmulScratch& scratch, ThreadPool& pool);
void matmul_shared(const KernelTable& kernels, std::span<const MatmulTarget> targets, const float* x, int64_t x_stride,
                   int64_t n_tokens, MatmulScratch& scratch, ThreadPool& pool);

// Copies row `index` of w, dequantized, into out[0 .. w.n_cols) (embedding lookup).
void get_row(const tensor::MatrixView& w, int64_t index, float* out);

// Dequantizes a 1-D vector into out[0 .. v.n).
void load_vector(const tensor::VectorView& v, float* out);

}  // namespace lightboat::kernels
