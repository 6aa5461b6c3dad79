// Runtime ISA dispatch of the hot kernels: one table of function pointers per instruction set,
// each table filled by its own translation unit compiled with that ISA's flags (x86/avx2.cpp,
// x86/avx512.cpp, arm/neon.cpp). The table is picked once, at first use, from the CPU's features;
// the environment variable LIGHTBOAT_ISA=scalar|avx2|avx512|neon forces one (tests, benchmarks).
//
// Every entry computes what the scalar reference (kernels/reference) computes: quantizers are
// bit-identical to it, dot products differ only in the order of fp32 additions (integer products
// are exact), so a model's output does not depend on the machine beyond rounding noise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/attention.h"
#include "tensor/dtype.h"

namespace lightboat::kernels {

using tensor::DType;

enum class Isa { kScalar, kAvx2, kAvx512, kNeon };

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

// Dense index of a DType in the tables (ggml ids run to 30 with gaps).
inline constexpr size_t kDTypeSlots = 31;
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
