#include "tensor/interleave.h"

#include <cstring>
#include <string>

#include "base/error.h"

namespace lightboat::tensor {
namespace {

constexpr size_t kQ4_0Bytes = 18;  // fp16 d, then 16 bytes: byte j = quant j | quant j + 16 << 4
constexpr size_t kQ8_0Bytes = 34;  // fp16 d, then 32 signed quants
constexpr size_t kQ4_KBytes = 144;  // fp16 d, fp16 dmin, 12 scale bytes, 128 quant bytes

void check_shape(int64_t n_rows, int64_t n_cols, const char* what) {
  check(n_rows % kInterleavedRows == 0 && n_cols % 32 == 0, ErrorKind::kInvalidArgument,
        [&] { return std::string(what) + ": rows must be a multiple of 16 and columns of 32"; });
}

// Calls put(r, block, out) for every block of the rows of n_rows / 16 groups, group by group and
// row by row (the source is read in order): block is row r's (of its group) block b in src
// (block_bytes each, rows src_stride apart), out where the group's block b starts in dst.
template <typename Put>
void for_each_row_block(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t nb, size_t block_bytes,
                        size_t group_block_bytes, std::byte* dst, Put put) {
  const size_t group_bytes = static_cast<size_t>(nb) * group_block_bytes;
  for (int64_t g = 0; g < n_rows / kInterleavedRows; ++g) {
    for (int r = 0; r < kInterleavedRows; ++r) {
      const std::byte* block = src + static_cast<size_t>(g * kInterleavedRows + r) * src_stride;
      std::byte* out = dst + static_cast<size_t>(g) * group_bytes;
      for (int64_t b = 0; b < nb; ++b, block += block_bytes, out += group_block_bytes) put(r, block, out);
    }
  }
}

}  // namespace

void interleave_q4_0(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst) {
  check_shape(n_rows, n_cols, "interleave_q4_0");
  for_each_row_block(src, src_stride, n_rows, n_cols / 32, kQ4_0Bytes, kQ4_0x16BlockBytes, dst,
                     [](int r, const std::byte* block, std::byte* out) {
                       std::memcpy(out + 2 * r, block, 2);
                       // Quants 0..15 are the low nibbles of the 16 bytes, 16..31 the high ones; lane r of
                       // vector i takes quants 8i..8i+3 (low nibbles) and 8i+4..8i+7 (high nibbles).
                       uint32_t w[4];  // bytes 0-3, 4-7, 8-11, 12-15
                       std::memcpy(w, block + 2, 16);
                       const uint32_t lo = 0x0f0f0f0fu, hi = 0xf0f0f0f0u;
                       const uint32_t lanes[4] = {(w[0] & lo) | (w[1] & lo) << 4, (w[2] & lo) | (w[3] & lo) << 4,
                                                  (w[0] >> 4 & lo) | (w[1] & hi), (w[2] >> 4 & lo) | (w[3] & hi)};
                       for (int i = 0; i < 4; ++i) std::memcpy(out + 32 + 64 * i + 4 * r, &lanes[i], 4);
                     });
}

void deinterleave_q4_0_row_block(const std::byte* group, int64_t b, int lane, std::byte* out) {
  const std::byte* in = group + static_cast<size_t>(b) * kQ4_0x16BlockBytes;
  std::memcpy(out, in + 2 * lane, 2);
  uint8_t q[32];
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      const auto v = static_cast<uint8_t>(in[32 + 64 * i + 4 * lane + j]);
      q[8 * i + j] = v & 15;
      q[8 * i + 4 + j] = v >> 4;
    }
  }
  for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<std::byte>(q[j] | q[j + 16] << 4);
}

void deinterleave_q4_0_block(const std::byte* group, int64_t b, std::byte* out) {
  for (int r = 0; r < kInterleavedRows; ++r) deinterleave_q4_0_row_block(group, b, r, out + r * kQ4_0Bytes);
}

void interleave_q8_0(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst) {
  check_shape(n_rows, n_cols, "interleave_q8_0");
  for_each_row_block(src, src_stride, n_rows, n_cols / 32, kQ8_0Bytes, kQ8_0x16BlockBytes, dst,
                     [](int r, const std::byte* block, std::byte* out) {
                       std::memcpy(out + 2 * r, block, 2);
                       for (int i = 0; i < 8; ++i) {
                         uint32_t q;
                         std::memcpy(&q, block + 2 + 4 * i, 4);
                         q ^= 0x80808080u;  // q + 128, unsigned
                         std::memcpy(out + 32 + 64 * i + 4 * r, &q, 4);
                       }
                     });
}

void deinterleave_q8_0_row_block(const std::byte* group, int64_t b, int lane, std::byte* out) {
  const std::byte* in = group + static_cast<size_t>(b) * kQ8_0x16BlockBytes;
  std::memcpy(out, in + 2 * lane, 2);
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) out[2 + 4 * i + j] = in[32 + 64 * i + 4 * lane + j] ^ std::byte{0x80};
  }
}

void deinterleave_q8_0_block(const std::byte* group, int64_t b, std::byte* out) {
  for (int r = 0; r < kInterleavedRows; ++r) deinterleave_q8_0_row_block(group, b, r, out + r * kQ8_0Bytes);
}

void interleave_q4_k(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst) {
  check(n_rows % kInterleavedRows == 0 && n_cols % 256 == 0, ErrorKind::kInvalidArgument,
        [] { return std::string("interleave_q4_k: rows must be a multiple of 16 and columns of 256"); });
  for_each_row_block(src, src_stride, n_rows, n_cols / 256, kQ4_KBytes, kQ4_Kx16BlockBytes, dst,
                     [](int r, const std::byte* block, std::byte* out) {
                       std::memcpy(out + 2 * r, block, 2);
                       std::memcpy(out + 32 + 2 * r, block + 2, 2);
                       for (int k = 0; k < 3; ++k) {
                         std::memcpy(out + kQ4_Kx16ScalesOffset + 64 * k + 4 * r, block + 4 + 4 * k, 4);
                       }
                       for (int i = 0; i < 32; ++i) {
                         std::memcpy(out + kQ4_Kx16QuantsOffset + 64 * i + 4 * r, block + 16 + 4 * i, 4);
                       }
                     });
}

void deinterleave_q4_k_row_block(const std::byte* group, int64_t b, int lane, std::byte* out) {
  const std::byte* in = group + static_cast<size_t>(b) * kQ4_Kx16BlockBytes;
  std::memcpy(out, in + 2 * lane, 2);
  std::memcpy(out + 2, in + 32 + 2 * lane, 2);
  for (int k = 0; k < 3; ++k) std::memcpy(out + 4 + 4 * k, in + kQ4_Kx16ScalesOffset + 64 * k + 4 * lane, 4);
  for (int i = 0; i < 32; ++i) std::memcpy(out + 16 + 4 * i, in + kQ4_Kx16QuantsOffset + 64 * i + 4 * lane, 4);
}

void deinterleave_q4_k_block(const std::byte* group, int64_t b, std::byte* out) {
  for (int r = 0; r < kInterleavedRows; ++r) deinterleave_q4_k_row_block(group, b, r, out + r * kQ4_KBytes);
}

void interleave_f16(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst) {
  check(n_rows % kInterleavedRows == 0, ErrorKind::kInvalidArgument,
        [] { return std::string("interleave_f16: rows must be a multiple of 16"); });
  const size_t group_bytes = static_cast<size_t>(n_cols) * 2 * kInterleavedRows;
  for (int64_t g = 0; g < n_rows / kInterleavedRows; ++g) {
    std::byte* group = dst + static_cast<size_t>(g) * group_bytes;
    for (int r = 0; r < kInterleavedRows; ++r) {  // row by row: the source is read in order
      const std::byte* row = src + static_cast<size_t>(g * kInterleavedRows + r) * src_stride;
      for (int64_t c = 0; c < n_cols; ++c) std::memcpy(group + 32 * c + 2 * r, row + 2 * c, 2);
    }
  }
}

void deinterleave_f16_row(const std::byte* group, int64_t c0, int64_t n, int lane, std::byte* out) {
  for (int64_t c = 0; c < n; ++c) std::memcpy(out + 2 * c, group + 32 * (c0 + c) + 2 * lane, 2);
}

Interleaving interleaving_of(DType file_type) {
  switch (file_type) {
    case DType::kQ4_0:
      return {DType::kQ4_0x16, interleave_q4_0};
    case DType::kQ8_0:
      return {DType::kQ8_0x16, interleave_q8_0};
    case DType::kQ4_K:
      return {DType::kQ4_Kx16, interleave_q4_k};
    case DType::kF16:
      return {DType::kF16x16, interleave_f16};
    default:
      return {file_type, nullptr};
  }
}

}  // namespace lightboat::tensor
