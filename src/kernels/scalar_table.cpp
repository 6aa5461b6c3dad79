// The scalar kernel table: the reference kernels themselves, plus a gemm that calls the reference
// dot product per (row, token) in row chunks (so a chunk of weight rows stays in cache while every
// token passes over it).
#include "kernels/attention.h"
#include "kernels/isa_tables.h"
#include "kernels/reference/reference.h"

namespace lightboat::kernels::detail {
namespace {

template <DType kType>
void quantize(const float* x, void* y, int64_t n) {
  reference::quantize_row(kType, x, y, n);
}

template <DType kType>
float vec_dot(int64_t n, const void* w, const void* x) {
  return reference::vec_dot(kType, n, w, x);
}

template <DType kType>
void gemm(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows, const std::byte* x,
          size_t x_row_bytes, int64_t n_tokens, float* y, int64_t y_stride) {
  constexpr int64_t kRowChunk = 16;
  for (int64_t r0 = 0; r0 < n_rows; r0 += kRowChunk) {
    const int64_t r1 = r0 + kRowChunk < n_rows ? r0 + kRowChunk : n_rows;
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = r0; r < r1; ++r) {
        y[t * y_stride + r] = reference::vec_dot(kType, n, w + static_cast<size_t>(r) * w_row_bytes,
                                                 x + static_cast<size_t>(t) * x_row_bytes);
      }
    }
  }
}

template <DType kType>
void set_weight(KernelTable& t) {
  t.vec_dot[dtype_slot(kType)] = vec_dot<kType>;
  t.gemm[dtype_slot(kType)] = gemm<kType>;
}

KernelTable make_table() {
  KernelTable t;
  t.isa = Isa::kScalar;
  t.quantize_row[dtype_slot(DType::kF32)] = quantize<DType::kF32>;
  t.quantize_row[dtype_slot(DType::kF16)] = quantize<DType::kF16>;
  t.quantize_row[dtype_slot(DType::kBF16)] = quantize<DType::kBF16>;
  t.quantize_row[dtype_slot(DType::kQ8_0)] = quantize<DType::kQ8_0>;
  t.quantize_row[dtype_slot(DType::kQ8_1)] = quantize<DType::kQ8_1>;
  t.quantize_row[dtype_slot(DType::kQ8_K)] = quantize<DType::kQ8_K>;
  set_weight<DType::kF32>(t);
  set_weight<DType::kF16>(t);
  set_weight<DType::kBF16>(t);
  set_weight<DType::kQ4_0>(t);
  set_weight<DType::kQ4_1>(t);
  set_weight<DType::kQ5_0>(t);
  set_weight<DType::kQ5_1>(t);
  set_weight<DType::kQ8_0>(t);
  set_weight<DType::kQ4_K>(t);
  set_weight<DType::kQ5_K>(t);
  set_weight<DType::kQ6_K>(t);
  t.gemm[dtype_slot(DType::kQ4_0x16)] = reference::gemm_q4_0x16;  // no vec_dot: rows are interleaved
  t.gemm[dtype_slot(DType::kQ8_0x16)] = reference::gemm_q8_0x16;
  t.gemm[dtype_slot(DType::kF16x16)] = reference::gemm_f16x16;
  t.gemm[dtype_slot(DType::kQ4_Kx16)] = reference::gemm_q4_kx16;
  t.attention[dtype_slot(DType::kF32)] = reference::attention;
  t.attention[dtype_slot(DType::kF16)] = reference::attention;
  return t;
}

}  // namespace

const KernelTable& scalar_table() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace lightboat::kernels::detail
