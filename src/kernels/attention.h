// Attention of a tile of query tokens over a sequence's paged KV cache, for the query heads that
// share one KV head (grouped-query attention): scores q·k over the visible positions, the
// optional soft-cap (Gemma 2), softmax, and the softmax-weighted sum of V. The kernel reads the
// K and V rows straight from their page slots (no gather copy) and loads each row once for all
// the query heads and tokens it is given, so a GQA group costs one pass over its KV head, and a
// prefill tile of consecutive positions (n_tokens > 1) one pass for all its tokens.
//
// Each (token, head) row's result is a function of its own query, visible range and the cache
// values only: it does not depend on the page size, on which other tokens or heads share the
// call, or on where the call's tile starts (a token decoded alone gets the bits it gets inside a
// prefill tile). The model's batch-invariance tests rely on this.
//
// Every ISA table has an entry per KV element type (F32, F16); the scalar reference
// (reference/attention.cpp) is the specification. It is the single-pass "online" softmax:
// running maximum and sum per head, the output rescaled whenever the maximum grows. The SIMD
// variants do the same over chunks of positions, so they differ from it only by fp32 rounding
// (the order of additions and the polynomial exp): outputs agree within ~1e-5 relative.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace lightboat::kernels {

struct KernelTable;

// Where one sequence's K and V live in one layer's cache. Each cache is
// [n_pages · page_size slots, row_stride] elements of `type`; the sequence's position p is in
// slot pages[p / page_size] · page_size + p % page_size.
struct PagedKv {
  const void* k = nullptr;                   // the layer's K cache
  const void* v = nullptr;                   // the layer's V cache, same layout
  tensor::DType type = tensor::DType::kF16;  // kF16 or kF32
  int64_t row_stride = 0;                    // elements per slot (n_embd_kv)
  int64_t page_size = 0;                     // slots per page
  const int32_t* pages = nullptr;            // the sequence's page table, covering first + n - 1
};

// The query heads of one KV head, for n_tokens consecutive positions of one sequence.
struct AttentionQuery {
  const float* q = nullptr;  // per token: [n_q, head_dim] consecutive query heads (RoPE applied)
  float* out = nullptr;      // per token: [n_q, head_dim] the attention output of each head
  int64_t n_q = 0;           // query heads (any count >= 1; processed 8 at a time)
  int64_t head_dim = 0;      // elements per head
  int64_t kv_offset = 0;     // element offset of the KV head in a slot (kv_head · head_dim)
  int64_t first = 0;         // token 0's first visible position (causal window start)
  int64_t n = 0;             // token 0 sees positions first .. first + n - 1; n >= 1
  float scale = 1.0f;        // multiplies q·k (1/sqrt(head_dim) or the architecture's)
  float softcap = 0.0f;      // > 0: score = softcap · tanh(score / softcap) after scaling
  // Token i (< n_tokens) is at position first + n - 1 + i and sees first_i .. that position,
  // first_i = first, or with window > 0, max(first, position - window + 1).
  int64_t n_tokens = 1;      // >= 1
  int64_t token_stride = 0;  // elements from one token's q (and out) to the next token's
  int64_t window = 0;        // sliding window in positions; 0: none
};

using AttentionFn = void (*)(const PagedKv& kv, const AttentionQuery& q);

// Query heads a kernel keeps in registers at once; larger groups are run in slices of this.
inline constexpr int64_t kAttentionMaxGroup = 8;
// (token, head) rows the SIMD kernels process together; larger tiles are run in pieces.
inline constexpr int64_t kAttentionMaxRows = 32;

// The entry of `table` for KV elements of `kv_type` (falls back to the scalar reference).
// Throws Error(kUnsupported) for a type other than F32 and F16.
AttentionFn attention_fn(const KernelTable& table, tensor::DType kv_type);

namespace reference {
// The scalar specification (see the top of this file).
void attention(const PagedKv& kv, const AttentionQuery& q);
}  // namespace reference

}  // namespace lightboat::kernels
