// Q4_0x16: Q4_0 matrices stored 16 rows interleaved, the layout the x86 AMX table's Q4_0 kernels
// read fastest (x86/amx_decode.cpp, x86/amx.cpp). A group of 16 rows holds, per 32-element block
// b, at b * 288 bytes from the group's start:
//   - the 16 rows' fp16 scales d (row r at 2r), 32 bytes;
//   - 4 vectors of 64 bytes in which 32-bit lane r is row r: byte j of lane r of vector i has the
//     quant of element 8i + j in its low nibble and of element 8i + 4 + j in its high one.
// So a group is exactly the bytes of its 16 Q4_0 rows (16 x 18 per block): row offsets and sizes
// stay those of the file. One VPDPBUSD of vector i's low (or high) nibbles with a broadcast dword
// of activations adds four products into every row's lane, and those nibbles are one row of an
// AMX "VNNI" tile. Portable code: the layout is defined here, the kernels that read it are not.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lightboat::tensor {

inline constexpr int64_t kInterleavedRows = 16;
inline constexpr size_t kQ4_0x16BlockBytes = 16 * 18;  // one block of the 16 rows

// Interleaves n_rows rows (a multiple of 16) of n_cols elements (a multiple of 32) of Q4_0, rows
// src_stride bytes apart, into dst (n_rows * n_cols / 32 * 18 bytes, rows end to end).
void interleave_q4_0(const std::byte* src, size_t src_stride, int64_t n_rows, int64_t n_cols, std::byte* dst);

// Block b of the group at `group` (n_cols / 32 blocks) as 16 Q4_0 blocks of 18 bytes, row r's at
// out + 18 r: the inverse of interleave_q4_0, one block at a time (the reference kernels).
void deinterleave_q4_0_block(const std::byte* group, int64_t b, std::byte* out);

}  // namespace lightboat::tensor
