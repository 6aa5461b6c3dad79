// The VBMI table: the AVX-512 table plus the VNNI kernels that need AVX512-VBMI byte permutes and
// GFNI (Ice Lake and later, Zen 4 and later), with Q4_0, Q8_0, Q4_K and F16 matrices interleaved
// by 16 rows for them (tensor/interleave.h). These kernels stream a decode step's
// weights with few vector instructions per byte (x86/amx_decode.cpp, amx_interleaved.cpp,
// amx_k.cpp, amx_q6_k.cpp), and without tiles they serve batches too, cut into blocks that stay in
// L2 (in_l2_blocks, x86/amx_common.h). They add in the tiles' order, so the AMX table is this one
// plus the tiles (x86/amx.cpp), and on both a token's outputs are the same bits alone or in a
// batch. The other weight types keep the AVX-512 table's kernels.
#include "kernels/isa_tables.h"
#include "kernels/x86/amx_common.h"

namespace lightboat::kernels::detail {
namespace {

KernelTable make_table() {
  KernelTable t = avx512_table();
  t.isa = Isa::kAvx512Vbmi;
  add_vbmi_decode(t);
  add_vbmi_k_quants(t);
  // Q4_K of any width: prompts on this table run the VNNI kernels, and on Llama-3.2-1B Q4_K_M's
  // 8192-wide FFN-down rows Q4_Kx16's gemm took 79-80 ms per pp512 call against 131-133 ms for
  // the row-major one (one thread). Decode reads those rows 3-13% slower interleaved (the AMX
  // table, whose tiles take the prompts either way, keeps them row-major: x86/amx.cpp).
  // F16: F16x16's decode reads SmolLM2-135M F16 at 64 tok/s on one thread where the row-major
  // kernel reads 44-47, and its batches (6 tokens a group) took 12-15% less time than the AVX-512
  // gemm in that model's prompt. Its bits are its own (amx_interleaved.cpp), alone or in a batch
  // alike.
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kF16}) t.interleave[dtype_slot(type)] = true;
  return t;
}

}  // namespace

const KernelTable& vbmi_table() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace lightboat::kernels::detail
