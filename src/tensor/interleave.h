// Q4_0x16, Q8_0x16, Q4_Kx16 and F16x16: Q4_0, Q8_0, Q4_K and F16 matrices stored 16 rows
// interleaved, the layouts the x86 VBMI and AMX tables' kernels read fastest
// (x86/amx_interleaved.cpp, x86/amx.cpp, x86/amx_k.cpp). A group of 16 rows holds, per 32-element block b (Q4_Kx16:
// 256-element super-block), at b * (16 x the type's block bytes) from the group's start:
//   - the 16 rows' fp16 scales d (row r at 2r), 32 bytes;
//   - Q4_0x16: 4 vectors of 64 bytes in which 32-bit lane r is row r: byte j of lane r of vector
//     i has the quant of element 8i + j in its low nibble and of element 8i + 4 + j in its high
//     one (quants as stored, 0..15);
//   - Q8_0x16: 8 vectors of 64 bytes in which byte j of lane r of vector i is row r's quant of
//     element 4i + j plus 128 (stored XOR 0x80: unsigned, as VPDPBUSD takes its first operand).
//   - Q4_Kx16 (2304 bytes a super-block): the 16 rows' fp16 d (row r at 2r), then their fp16
//     dmin (at 32 + 2r); then 3 vectors of 64 bytes in which 32-bit lane r of vector k is row
//     r's scale bytes 4k..4k+3 (the 12 packed 6-bit scales and mins, as stored); then 32
//     vectors in which lane r of vector i is row r's quant bytes 4i..4i+3 as stored (so the low
//     nibbles are elements 64 (i / 8) + 4 (i % 8) + j of sub-block 2 (i / 8), the high ones the
//     same + 32, of sub-block 2 (i / 8) + 1).
//   - F16x16 (no scales; a "block" is one column): per column c, at 32c, the 16 rows' fp16
//     elements c (row r at 2r), so one VCVTPH2PS gives every row's weight of the column.
// So a group is exactly the bytes of its 16 rows (16 x 18, 16 x 34, 16 x 144 or 16 x 2 per block): row offsets and
// sizes stay those of the file. One VPDPBUSD of a vector (Q4_0x16: its low or high nibbles) with a
// broadcast dword of activations adds four products into every row's lane, and each such vector
// is one row of an AMX "VNNI" tile. Portable code: the layouts are defined here, the kernels that
// read them are not.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace lightboat::tensor {

inline constexpr int64_t kInterleavedRows = 16;
inline constexpr size_t kQ4_0x16BlockBytes = 16 * 18;  // one block of the 16 rows
inline constexpr size_t kQ8_0x16BlockBytes = 16 * 34;
inline constexpr size_t kQ4_Kx16BlockBytes = 16 * 144;  // one super-block of the 16 rows
inline constexpr size_t kQ4_Kx16ScalesOffset = 64;      // after the 16 d and 16 dmin
inline constexpr size_t kQ4_Kx16QuantsOffset = 256;     // after the 3 vectors of scale bytes

// Interleaves n_rows rows (a multiple of 16) of n_cols elements (a multiple of 32) of Q4_0, rows
// src_stride bytes apart, into dst (n_rows * n_cols / 32 * 18 bytes, rows end to end).
void interleave_q4_0(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst);

// Block b of the group at `group` (n_cols / 32 blocks) as 16 Q4_0 blocks of 18 bytes, row r's at
// out + 18 r: the inverse of interleave_q4_0, one block at a time (the reference kernels).
void deinterleave_q4_0_block(const std::byte* group, int64_t b, std::byte* out);
// The same for row `lane` (0..15) of the group only: one Q4_0 block (a row lookup: get_row).
void deinterleave_q4_0_row_block(const std::byte* group, int64_t b, int lane, std::byte* out);

// The same for Q8_0 (blocks of 34 bytes) and Q8_0x16.
void interleave_q8_0(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst);
void deinterleave_q8_0_block(const std::byte* group, int64_t b, std::byte* out);
void deinterleave_q8_0_row_block(const std::byte* group, int64_t b, int lane, std::byte* out);

// The same for Q4_K (super-blocks of 144 bytes, n_cols a multiple of 256) and Q4_Kx16.
void interleave_q4_k(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst);
void deinterleave_q4_k_block(const std::byte* group, int64_t b, std::byte* out);
void deinterleave_q4_k_row_block(const std::byte* group, int64_t b, int lane, std::byte* out);

// The same for F16 (any n_cols) and F16x16; a row's elements come back n at a time.
void interleave_f16(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst);
void deinterleave_f16_row(const std::byte* group, int64_t c0, int64_t n, int lane, std::byte* out);

// How a file type is stored 16 rows interleaved: the interleaved type and the function writing it
// (above); {file_type, nullptr} for a type with no interleaved layout.
using InterleaveFn = void (*)(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst);
struct Interleaving {
  DType type;
  InterleaveFn fn;
};
Interleaving interleaving_of(DType file_type);

}  // namespace lightboat::tensor
