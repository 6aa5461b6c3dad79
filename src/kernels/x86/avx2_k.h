// Internal: the AVX2 K-quant kernels (avx2_k.cpp), added to the AVX2 and AVX-512 tables.
#pragma once

#include "kernels/dispatch.h"

namespace lightboat::kernels::detail {

// Sets the Q4_K, Q5_K and Q6_K vec_dot and gemm entries of t.
void add_avx2_k_quants(KernelTable& t);

}  // namespace lightboat::kernels::detail
