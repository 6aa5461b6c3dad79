// Runtime ISA dispatch of the hot kernels: one table of function pointers per instruction set,
// each table filled by its own translation unit compiled with that ISA's flags (x86/avx2.cpp,
// x86/avx512.cpp, arm/neon.cpp). The table is picked once, at first use, from the CPU's features;
// the environment variable LIGHTBOAT_ISA=scalar|avx2|avx512|avx512vbmi|amx|neon forces one (tests,
// benchmarks). "avx512vbmi" is the AVX-512 table plus the decode kernels that also need
// AVX512-VBMI and GFNI (Ice Lake and later, Zen 4 and later: x86/vbmi.cpp), with Q4_0, Q8_0 and
// Q4_K matrices interleaved for them; those kernels serve its batches too, in blocks
// that stay in L2. "amx" is that table plus gemms on Intel's AMX-INT8 tile unit (x86/amx.cpp) for batches,
// offered only where the CPU has AMX-TILE + AMX-INT8 and Linux granted this process the tile
// state; where the CPU also has AMX-BF16, F16 weights get a tile gemm too (x86/amx_f16.cpp).
//
// Every entry computes what the scalar reference (kernels/reference) computes: quantizers are
// bit-identical to it, dot products differ only in the order of fp32 additions (integer products
// are exact), so a model's output does not depend on the machine beyond rounding noise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/activations.h"
#include "kernels/attention.h"
#include "tensor/dtype.h"

namespace lightboat::kernels {

using tensor::DType;

enum class Isa { kScalar, kAvx2, kAvx512, kAvx512Vbmi, kAmx, kNeon };

// Quantizes n floats (a multiple of the type's block size) into blocks of one activation format.
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n);

// Dot product of n elements: a row of weights with a row of activations in vec_dot_type(weights).
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);

// Many dot products at once, for matmul: for r < n_rows and t < n_tokens,
//   y[t * y_stride + r] = vec_dot(n, w + r * w_row_bytes, x + t * x_row_bytes).
// Implementations block rows and tokens so each weight block loaded is used for several tokens.
using GemmFn = void (*)(int64_t n, const std::byte* w, size_t w_row_bytes, int64_t n_rows,
                        const std::byte* x, size_t x_row_bytes, int64_t n_tokens, float* y,
                        int64_t y_stride);

// Gemm over activations repacked once per matmul call for a matrix unit (AMX tiles), so every
// row range of the parallel loop reads them in the unit's layout without repacking them itself.
// Tokens are packed in tiles of kPackedTokenTile (the last one zero-padded); a layout may use at
// most kPackedMaxBytesPerBlock bytes (or its table's packed_bytes_per_block for the weight type)
// per 32 elements of each of those padded tokens (MatmulScratch relies on it).
inline constexpr int64_t kPackedTokenTile = 16;
inline constexpr int64_t kPackedBlockElems = 32;
inline constexpr int64_t kPackedMaxBytesPerBlock = 36;

struct PackedActivations {
  int64_t n;              // elements per token
  const std::byte* rows;  // [n_tokens, row_bytes]: quantized, one token per row
  size_t row_bytes;
  int64_t n_tokens;
  std::byte* packed;      // the packed layout, 64-byte aligned
};

// Packs tokens [t0, t1) of x.rows into x.packed; t0 is a multiple of kPackedTokenTile and t1 is
// one too or n_tokens (so disjoint ranges can be packed on different threads).
using PackActivationsFn = void (*)(const PackedActivations& x, int64_t t0, int64_t t1);

// y[t * y_stride + r] = vec_dot(x.n, w + r * w_row_bytes, token t) for r < n_rows, t < n_tokens,
// reading the activations packed (and, for remainders, x.rows).
using PackedGemmFn = void (*)(const PackedActivations& x, const std::byte* w, size_t w_row_bytes,
                              int64_t n_rows, float* y, int64_t y_stride);

// Dense index of a DType in the tables (ggml ids run to 30 with gaps; 31 is F16x16, 32 Q4_Kx16).
inline constexpr size_t kDTypeSlots = 33;
constexpr size_t dtype_slot(DType t) { return static_cast<size_t>(t); }

struct KernelTable {
  Isa isa = Isa::kScalar;
  // Indexed by dtype_slot(activation type); null where the ISA has nothing better than scalar
  // (the accessors below fall back to the reference).
  QuantizeRowFn quantize_row[kDTypeSlots] = {};
  // Indexed by dtype_slot(weight type).
  VecDotFn vec_dot[kDTypeSlots] = {};
  GemmFn gemm[kDTypeSlots] = {};
  // Paged attention (kernels/attention.h), indexed by dtype_slot(KV element type): F32, F16.
  AttentionFn attention[kDTypeSlots] = {};
  // SwiGLU (kernels/activations.h); null: the scalar kernels::swiglu.
  SwigluFn swiglu = nullptr;
  // GEGLU through the fp16 GELU table (kernels/activations.h); null: the scalar kernels::geglu.
  GegluFn geglu = nullptr;
  // Packed gemm (above), indexed by dtype_slot(weight type) and used from packed_min_tokens
  // tokens on; pack_activations is indexed by dtype_slot(activation type). Null elsewhere.
  PackedGemmFn packed_gemm[kDTypeSlots] = {};
  PackActivationsFn pack_activations[kDTypeSlots] = {};
  int64_t packed_min_tokens = 0;
  // A weight type's own threshold where its packed gemm pays from another batch size (F16's
  // bf16 split, x86/amx_f16.cpp), indexed by dtype_slot(weight type); 0: packed_min_tokens.
  int64_t packed_min_tokens_of[kDTypeSlots] = {};
  // Bytes per kPackedBlockElems elements of a padded token that a weight type's packed layout
  // uses where it needs more than kPackedMaxBytesPerBlock (F16: 128), indexed by dtype_slot(weight
  // type); 0: kPackedMaxBytesPerBlock.
  int64_t packed_bytes_per_block[kDTypeSlots] = {};
  // The weight types whose matrices this table reads faster stored 16 rows interleaved
  // (tensor/interleave.h), indexed by dtype_slot(the file's type): Q4_0 as Q4_0x16, Q8_0 as
  // Q8_0x16, Q4_K as Q4_Kx16, F16 as F16x16. Where set, the table's gemms of the interleaved type
  // are its own, not the scalar reference's.
  bool interleave[kDTypeSlots] = {};
  // Rows wider than this many bytes stay in the file's layout (0: any width is interleaved).
  size_t interleave_max_row_bytes[kDTypeSlots] = {};
  bool interleaves() const {
    for (bool b : interleave) {
      if (b) return true;
    }
    return false;
  }
  // Whether a matrix of `type` with rows of row_bytes is bound interleaved (model/weights.cpp).
  bool interleaves(DType type, size_t row_bytes) const {
    const size_t s = dtype_slot(type);
    return interleave[s] && (interleave_max_row_bytes[s] == 0 || row_bytes <= interleave_max_row_bytes[s]);
  }
};

// The table of `isa`; throws kUnsupported when that ISA was not compiled in or the CPU lacks it.
const KernelTable& kernel_table(Isa isa);

// Whether `isa` is compiled in and this CPU runs it.
bool isa_available(Isa isa);

// The best available ISA, or the one LIGHTBOAT_ISA names (an unknown or unavailable name throws
// kInvalidArgument on first use). Decided once per process.
Isa active_isa();
const KernelTable& active_kernels();

std::string_view isa_name(Isa isa);

// Entries of `table`, falling back to the scalar reference where the ISA has no variant.
// Throws kUnsupported for a type with no kernel at all.
QuantizeRowFn quantize_row_fn(const KernelTable& table, DType act_type);
VecDotFn vec_dot_fn(const KernelTable& table, DType weight_type);
GemmFn gemm_fn(const KernelTable& table, DType weight_type);

}  // namespace lightboat::kernels
