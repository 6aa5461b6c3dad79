// Dispatch of the reference kernels by dtype, and the unquantized formats (F32, F16, BF16).
//
// F32 / F16 / BF16 dot products follow ggml's scalar code: each product is formed in fp32 (exact
// for F16 and BF16 inputs, whose significands are short enough) and summed in double, then
// rounded to fp32 once.
#include "kernels/reference/reference.h"

#include <string>
#include <vector>

#include "base/error.h"
#include "kernels/reference/formats.h"
#include "tensor/blocks.h"
#include "tensor/interleave.h"

namespace lightboat::kernels::reference {
namespace {

using tensor::dtype_name;
using tensor::dtype_traits;

// Number of blocks in n elements of `type`; throws when n is negative or not a whole number of
// blocks (a caller bug or a malformed tensor shape, reported rather than read past the end).
int64_t block_count(DType type, int64_t n, const char* what) {
  const int64_t qk = dtype_traits(type).block_elems;
  if (n < 0 || n % qk != 0) {  // the message is built only on failure: this runs per dot product
    throw Error(ErrorKind::kInvalidArgument, std::string(what) + ": " + std::to_string(n) + " elements of " +
                                                 std::string(dtype_name(type)) +
                                                 " is not a multiple of its block size " + std::to_string(qk));
  }
  return n / qk;
}

[[noreturn]] void unsupported(DType type, const char* what) {
  throw Error(ErrorKind::kUnsupported,
              std::string(what) + ": no reference kernel for " + std::string(dtype_name(type)));
}

uint16_t load_u16(const void* p, int64_t i) { return detail::load_block<uint16_t>(p, i); }
float load_f32(const void* p, int64_t i) { return detail::load_block<float>(p, i); }

}  // namespace

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  const int64_t nb = block_count(type, n, "dequantize_row");
  switch (type) {
    case DType::kF32:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_f32(src, i);
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = tensor::fp16_to_fp32(load_u16(src, i));
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = tensor::bf16_to_fp32(load_u16(src, i));
      return;
    case DType::kQ4_0: return detail::dequantize_q4_0(src, dst, nb);
    case DType::kQ4_1: return detail::dequantize_q4_1(src, dst, nb);
    case DType::kQ5_0: return detail::dequantize_q5_0(src, dst, nb);
    case DType::kQ5_1: return detail::dequantize_q5_1(src, dst, nb);
    case DType::kQ8_0: return detail::dequantize_q8_0(src, dst, nb);
    case DType::kQ8_1: return detail::dequantize_q8_1(src, dst, nb);
    case DType::kQ4_K: return detail::dequantize_q4_k(src, dst, nb);
    case DType::kQ5_K: return detail::dequantize_q5_k(src, dst, nb);
    case DType::kQ6_K: return detail::dequantize_q6_k(src, dst, nb);
    case DType::kQ8_K: return detail::dequantize_q8_k(src, dst, nb);
    case DType::kQ4_0x16:  // rows interleaved in groups: no row stands alone
    case DType::kQ8_0x16:
    case DType::kF16x16:
    case DType::kQ4_Kx16:
      break;
  }
  unsupported(type, "dequantize_row");
}

void quantize_row(DType type, const float* src, void* dst, int64_t n) {
  const int64_t nb = block_count(type, n, "quantize_row");
  switch (type) {
    case DType::kF32:
      for (int64_t i = 0; i < n; ++i) detail::store_block(dst, i, src[i]);
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) detail::store_block(dst, i, tensor::fp32_to_fp16(src[i]));
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) detail::store_block(dst, i, tensor::fp32_to_bf16(src[i]));
      return;
    case DType::kQ4_0: return detail::quantize_q4_0(src, dst, nb);
    case DType::kQ4_1: return detail::quantize_q4_1(src, dst, nb);
    case DType::kQ5_0: return detail::quantize_q5_0(src, dst, nb);
    case DType::kQ5_1: return detail::quantize_q5_1(src, dst, nb);
    case DType::kQ8_0: return detail::quantize_q8_0(src, dst, nb);
    case DType::kQ8_1: return detail::quantize_q8_1(src, dst, nb);
    case DType::kQ4_K: return detail::quantize_q4_k(src, dst, nb);
    case DType::kQ5_K: return detail::quantize_q5_k(src, dst, nb);
    case DType::kQ6_K: return detail::quantize_q6_k(src, dst, nb);
    case DType::kQ8_K: return detail::quantize_q8_k(src, dst, nb);
    case DType::kQ4_0x16:
    case DType::kQ8_0x16:
    case DType::kF16x16:
    case DType::kQ4_Kx16:
      break;
  }
  unsupported(type, "quantize_row");
}

DType vec_dot_type(DType weight_type) {
  switch (weight_type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
      return weight_type;
    case DType::kF16x16:
      return DType::kF16;
    case DType::kQ4_0:
    case DType::kQ4_0x16:
    case DType::kQ5_0:
    case DType::kQ8_0:
    case DType::kQ8_0x16:
      return DType::kQ8_0;
    case DType::kQ4_1:
    case DType::kQ5_1:
      return DType::kQ8_1;
    case DType::kQ4_K:
    case DType::kQ4_Kx16:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return DType::kQ8_K;
    case DType::kQ8_1:  // activation-only formats: never a weight
    case DType::kQ8_K:
      break;
  }
  unsupported(weight_type, "vec_dot_type");
}

float vec_dot(DType weight_type, int64_t n, const void* w, const void* x) {
  const int64_t nb = block_count(weight_type, n, "vec_dot");
  switch (weight_type) {
    case DType::kF32: {
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(load_f32(w, i) * load_f32(x, i));
      return static_cast<float>(sum);
    }
    case DType::kF16: {
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const float product =
            tensor::fp16_to_fp32(load_u16(w, i)) * tensor::fp16_to_fp32(load_u16(x, i));
        sum += static_cast<double>(product);
      }
      return static_cast<float>(sum);
    }
    case DType::kBF16: {
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const float product =
            tensor::bf16_to_fp32(load_u16(w, i)) * tensor::bf16_to_fp32(load_u16(x, i));
        sum += static_cast<double>(product);
      }
      return static_cast<float>(sum);
    }
    case DType::kQ4_0: return detail::dot_q4_0_q8_0(w, x, nb);
    case DType::kQ4_1: return detail::dot_q4_1_q8_1(w, x, nb);
    case DType::kQ5_0: return detail::dot_q5_0_q8_0(w, x, nb);
    case DType::kQ5_1: return detail::dot_q5_1_q8_1(w, x, nb);
    case DType::kQ8_0: return detail::dot_q8_0_q8_0(w, x, nb);
    case DType::kQ4_K: return detail::dot_q4_k_q8_k(w, x, nb);
    case DType::kQ5_K: return detail::dot_q5_k_q8_k(w, x, nb);
    case DType::kQ6_K: return detail::dot_q6_k_q8_k(w, x, nb);
    case DType::kQ8_1:
    case DType::kQ8_K:
    case DType::kQ4_0x16:  // a row is spread over its group: gemm_interleaved / gemm_q4_kx16 / gemm_f16x16 below
    case DType::kQ8_0x16:
    case DType::kF16x16:
    case DType::kQ4_Kx16:
      break;
  }
  unsupported(weight_type, "vec_dot");
}

namespace {

// A group's block back to 16 blocks of the file's type, and that type's dot product of one block.
template <size_t kBlock, void (*kDeinterleave)(const std::byte*, int64_t, std::byte*),
          float (*kDot)(const void*, const void*, int64_t)>
void gemm_interleaved(DType type, int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                      size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  const int64_t nb = block_count(type, n, "gemm");
  if (n_rows % tensor::kInterleavedRows != 0) {
    throw Error(ErrorKind::kInvalidArgument, "gemm of " + std::string(dtype_name(type)) + ": " +
                                                 std::to_string(n_rows) + " rows are not whole groups of " +
                                                 std::to_string(tensor::kInterleavedRows));
  }
  constexpr size_t kXBlock = sizeof(tensor::BlockQ8_0);
  std::byte rows[tensor::kInterleavedRows * kBlock];
  for (int64_t r0 = 0; r0 < n_rows; r0 += tensor::kInterleavedRows) {
    const std::byte* group = w + static_cast<size_t>(r0) * w_row_bytes;
    for (int64_t t = 0; t < n_tokens; ++t) {
      float acc[tensor::kInterleavedRows] = {};
      for (int64_t b = 0; b < nb; ++b) {
        kDeinterleave(group, b, rows);
        const std::byte* xb = x + static_cast<size_t>(t) * x_row_bytes + static_cast<size_t>(b) * kXBlock;
        for (int r = 0; r < tensor::kInterleavedRows; ++r) acc[r] += kDot(rows + r * kBlock, xb, 1);
      }
      for (int r = 0; r < tensor::kInterleavedRows; ++r) y[t * y_stride + r0 + r] = acc[r];
    }
  }
}

}  // namespace

void gemm_q4_0x16(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                  size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  gemm_interleaved<sizeof(tensor::BlockQ4_0), tensor::deinterleave_q4_0_block, detail::dot_q4_0_q8_0>(
      DType::kQ4_0x16, n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

void gemm_q8_0x16(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                  size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  gemm_interleaved<sizeof(tensor::BlockQ8_0), tensor::deinterleave_q8_0_block, detail::dot_q8_0_q8_0>(
      DType::kQ8_0x16, n, w, w_row_bytes, n_rows, x, x_row_bytes, n_tokens, y, y_stride);
}

void gemm_q4_kx16(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                  size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  const int64_t nb = block_count(DType::kQ4_Kx16, n, "gemm");
  if (n_rows % tensor::kInterleavedRows != 0) {
    throw Error(ErrorKind::kInvalidArgument, "gemm of Q4_Kx16: " + std::to_string(n_rows) +
                                                 " rows are not whole groups of " +
                                                 std::to_string(tensor::kInterleavedRows));
  }
  constexpr size_t kBlock = sizeof(tensor::BlockQ4_K);
  thread_local std::vector<std::byte> row;  // grows once per thread: a token loop allocates no more
  row.resize(static_cast<size_t>(nb) * kBlock);
  for (int64_t r0 = 0; r0 < n_rows; r0 += tensor::kInterleavedRows) {
    const std::byte* group = w + static_cast<size_t>(r0) * w_row_bytes;
    for (int r = 0; r < tensor::kInterleavedRows; ++r) {
      for (int64_t b = 0; b < nb; ++b) {
        tensor::deinterleave_q4_k_row_block(group, b, r, row.data() + static_cast<size_t>(b) * kBlock);
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        y[t * y_stride + r0 + r] = vec_dot(DType::kQ4_K, n, row.data(), x + static_cast<size_t>(t) * x_row_bytes);
      }
    }
  }
}

void gemm_f16x16(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
                 size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  if (n_rows % tensor::kInterleavedRows != 0) {
    throw Error(ErrorKind::kInvalidArgument, "gemm of F16x16: " + std::to_string(n_rows) +
                                                 " rows are not whole groups of " +
                                                 std::to_string(tensor::kInterleavedRows));
  }
  for (int64_t r0 = 0; r0 < n_rows; r0 += tensor::kInterleavedRows) {
    const std::byte* group = w + static_cast<size_t>(r0) * w_row_bytes;
    for (int64_t t = 0; t < n_tokens; ++t) {
      const std::byte* xt = x + static_cast<size_t>(t) * x_row_bytes;
      for (int r = 0; r < tensor::kInterleavedRows; ++r) {
        double sum = 0.0;  // as vec_dot of F16: fp32 products, summed in double
        for (int64_t c = 0; c < n; ++c) {
          sum += static_cast<double>(tensor::fp16_to_fp32(load_u16(group + 32 * c + 2 * r, 0)) *
                                     tensor::fp16_to_fp32(load_u16(xt, c)));
        }
        y[t * y_stride + r0 + r] = static_cast<float>(sum);
      }
    }
  }
}

}  // namespace lightboat::kernels::reference
