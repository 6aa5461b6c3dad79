// Internal to kernels/: the per-ISA table builders. Each lives in its own translation unit,
// compiled with its ISA's flags, and is only called after dispatch.cpp has checked the CPU.
// Code in those units must not instantiate templates or inline functions shared with other units
// (the linker could keep the copy compiled with wider instructions): everything there sits in an
// anonymous namespace and uses only intrinsics, builtins and its own helpers.
#pragma once

#include "kernels/dispatch.h"

namespace lightboat::kernels::detail {

// The scalar reference, always compiled in (scalar_table.cpp).
const KernelTable& scalar_table();

#if defined(__x86_64__) || defined(_M_X64)
#define LIGHTBOAT_KERNELS_X86 1
const KernelTable& avx2_table();    // x86/avx2.cpp: AVX2 + FMA + F16C
const KernelTable& avx512_table();  // x86/avx512.cpp: AVX-512 F/BW/VL + VNNI (AVX2 elsewhere)
const KernelTable& vbmi_table();    // x86/vbmi.cpp: the AVX-512 table + the VBMI/GFNI kernels
const KernelTable& amx_table();     // x86/amx.cpp: the VBMI table + AMX-INT8 packed gemms
void add_avx2_attention(KernelTable& t);    // x86/avx2_attention.cpp
void add_avx512_attention(KernelTable& t);  // x86/avx512_attention.cpp
void add_avx512_quantizers(KernelTable& t);  // x86/avx512_quantize.cpp: Q8_0 and Q8_K activations
#endif

#if defined(__aarch64__)
#define LIGHTBOAT_KERNELS_ARM 1
const KernelTable& neon_table();  // arm/neon.cpp: ARMv8.2-A NEON + dotprod + fp16
void add_neon_attention(KernelTable& t);  // arm/neon_attention.cpp
#endif

}  // namespace lightboat::kernels::detail
