// CPU feature detection and the choice of kernel table, made once per process.
#include "kernels/dispatch.h"

#include <cstdlib>
#include <string>

#include "base/error.h"
#include "kernels/isa_tables.h"

#if defined(LIGHTBOAT_KERNELS_X86)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace lightboat::kernels {
namespace {

#if defined(LIGHTBOAT_KERNELS_X86)
// AMX-TILE and AMX-INT8 (CPUID leaf 7: EDX bits 24 and 25), the OS enabling the tile state in
// XCR0 (bits 17 and 18), and Linux letting this process use it: the 8 KiB of tile data is
// switched on per process with arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), and any tile
// instruction before that faults. The permission covers every thread of the process, those
// already running included. Asked once.
bool amx_usable() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  if ((edx & (1u << 24)) == 0 || (edx & (1u << 25)) == 0) return false;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || (ecx & (1u << 27)) == 0) return false;  // OSXSAVE
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & (3u << 17)) != (3u << 17)) return false;
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
#if defined(LIGHTBOAT_KERNELS_X86)
    // __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0).
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      return cpu_has(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
    case Isa::kAvx512Vbmi:
      return cpu_has(Isa::kAvx512) && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni");
    case Isa::kAmx: {
      // The AMX table is the VBMI one plus tiles (every AMX CPU has VBMI and GFNI).
      static const bool usable = cpu_has(Isa::kAvx512Vbmi) && amx_usable();
      return usable;
    }
#endif
#if defined(LIGHTBOAT_KERNELS_ARM)
    case Isa::kNeon: {
#if defined(__linux__)
      const unsigned long hwcap = getauxval(AT_HWCAP);
      return (hwcap & HWCAP_ASIMDDP) != 0 && (hwcap & HWCAP_ASIMDHP) != 0 && (hwcap & HWCAP_FPHP) != 0;
#else
      return false;
#endif
    }
#endif
    default:
      return false;
  }
}

Isa best_available() {
  for (Isa isa : {Isa::kAmx, Isa::kAvx512Vbmi, Isa::kAvx512, Isa::kAvx2, Isa::kNeon}) {
    if (cpu_has(isa)) return isa;
  }
  return Isa::kScalar;
}

Isa choose_isa() {
  const char* forced = std::getenv("LIGHTBOAT_ISA");
  if (forced == nullptr || *forced == '\0') return best_available();
  const std::string name(forced);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vbmi, Isa::kAmx, Isa::kNeon}) {
    if (name == isa_name(isa)) {
      if (!cpu_has(isa)) {
        throw Error(ErrorKind::kInvalidArgument,
                    "LIGHTBOAT_ISA=" + name + ": this build or CPU does not support it");
      }
      return isa;
    }
  }
  throw Error(ErrorKind::kInvalidArgument,
              "LIGHTBOAT_ISA=" + name + ": unknown ISA (expected scalar, avx2, avx512, avx512vbmi, amx or neon)");
}

[[noreturn]] void no_kernel(const char* what, DType type) {
  throw Error(ErrorKind::kUnsupported,
              std::string(what) + ": no kernel for " + std::string(tensor::dtype_name(type)));
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Vbmi:
      return "avx512vbmi";
    case Isa::kAmx: return "amx";
    case Isa::kNeon: return "neon";
  }
  return "unknown";
}

bool isa_available(Isa isa) { return cpu_has(isa); }

const KernelTable& kernel_table(Isa isa) {
  if (!cpu_has(isa)) {
    throw Error(ErrorKind::kUnsupported,
                "kernel_table: ISA " + std::string(isa_name(isa)) + " is not available here");
  }
  switch (isa) {
#if defined(LIGHTBOAT_KERNELS_X86)
    case Isa::kAvx2: return detail::avx2_table();
    case Isa::kAvx512: return detail::avx512_table();
    case Isa::kAvx512Vbmi:
      return detail::vbmi_table();
    case Isa::kAmx: return detail::amx_table();
#endif
#if defined(LIGHTBOAT_KERNELS_ARM)
    case Isa::kNeon: return detail::neon_table();
#endif
    default: return detail::scalar_table();
  }
}

Isa active_isa() {
  static const Isa isa = choose_isa();
  return isa;
}

const KernelTable& active_kernels() {
  static const KernelTable& table = kernel_table(active_isa());
  return table;
}

QuantizeRowFn quantize_row_fn(const KernelTable& table, DType act_type) {
  const size_t slot = dtype_slot(act_type);
  if (slot < kDTypeSlots && table.quantize_row[slot] != nullptr) return table.quantize_row[slot];
  const KernelTable& scalar = detail::scalar_table();
  if (slot < kDTypeSlots && scalar.quantize_row[slot] != nullptr) return scalar.quantize_row[slot];
  no_kernel("quantize_row", act_type);
}

VecDotFn vec_dot_fn(const KernelTable& table, DType weight_type) {
  const size_t slot = dtype_slot(weight_type);
  if (slot < kDTypeSlots && table.vec_dot[slot] != nullptr) return table.vec_dot[slot];
  const KernelTable& scalar = detail::scalar_table();
  if (slot < kDTypeSlots && scalar.vec_dot[slot] != nullptr) return scalar.vec_dot[slot];
  no_kernel("vec_dot", weight_type);
}

GemmFn gemm_fn(const KernelTable& table, DType weight_type) {
  const size_t slot = dtype_slot(weight_type);
  if (slot < kDTypeSlots && table.gemm[slot] != nullptr) return table.gemm[slot];
  const KernelTable& scalar = detail::scalar_table();
  if (slot < kDTypeSlots && scalar.gemm[slot] != nullptr) return scalar.gemm[slot];
  no_kernel("gemm", weight_type);
}

}  // namespace lightboat::kernels
