// Scalar reference kernels: the specification of every block format. SIMD variants (later, in
// their own translation units) are tested against these. n is a count of elements and must be a
// multiple of the type's block size (callers check; these functions assume it).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace lightboat::kernels::reference {

using tensor::DType;

// Expands n elements of `type` at src into floats.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

// Quantizes n floats into `type` blocks as llama.cpp's reference quantizers do (same rounding,
// same scale choice), so that activations quantized here equal llama.cpp's bit for bit.
void quantize_row(DType type, const float* src, void* dst, int64_t n);

// The activation format llama.cpp pairs with a weight type in its dot products:
// Q4_0/Q5_0/Q8_0 -> Q8_0, Q4_1/Q5_1 -> Q8_1, K-quants -> Q8_K, F16 -> F16, BF16 -> BF16, F32 -> F32.
DType vec_dot_type(DType weight_type);

// Dot product of n elements: a row of weights of `weight_type` with a row of activations already
// in vec_dot_type(weight_type). Integer products inside a block, fp32 accumulation across blocks.
float vec_dot(DType weight_type, int64_t n, const void* w, const void* x);

// The GemmFns (kernels/dispatch.h) of Q4_0x16 and Q8_0x16 weights (tensor/interleave.h), whose
// rows cannot be dotted one at a time: n_rows must be whole groups of 16. Each block's 16 rows are
// taken back to Q4_0 / Q8_0 and dotted as vec_dot does, fp32 accumulation across blocks.
void gemm_q4_0x16(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                  size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride);
void gemm_q8_0x16(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                  size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride);
// Q4_Kx16 and F16x16: each output is exactly vec_dot(Q4_K / F16, ...) of the original row.
void gemm_q4_kx16(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                  size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride);
void gemm_f16x16(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                 size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride);

}  // namespace lightboat::kernels::reference
