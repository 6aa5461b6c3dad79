// Overflow-checked arithmetic for sizes and offsets that come from a file. Internal to gguf/:
// every sum or product of file-controlled numbers goes through these, so a hostile count can
// never wrap around into a small, plausible-looking size.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "gguf/types.h"

namespace lightboat::gguf::detail {

inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Rounds `x` up to a multiple of `align` (a nonzero power of two); nullopt on overflow.
inline std::optional<uint64_t> align_up(uint64_t x, uint64_t align) {
  std::optional<uint64_t> sum = checked_add(x, align - 1);
  if (!sum) return std::nullopt;
  return *sum & ~(align - 1);
}

inline bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

// The problem with a tensor shape for `type`, or an empty string when it is valid; on success
// fills the element count and the data size (bytes). Shared by the reader and the writer so both
// accept exactly the same shapes: 1..4 dims, each >= 1, the element count representable as
// int64 (ggml's int64 ne), ne[0] a whole number of blocks.
inline const char* check_shape(std::span<const uint64_t> ne, const TensorTypeGeometry& type,
                               uint64_t* n_elements, uint64_t* n_bytes) {
  constexpr uint64_t kMaxElements = static_cast<uint64_t>(INT64_MAX);
  if (ne.empty() || ne.size() > 4) return "the number of dimensions must be 1..4";
  uint64_t n = 1;
  for (uint64_t d : ne) {
    if (d == 0) return "a dimension is 0";
    std::optional<uint64_t> p = checked_mul(n, d);
    if (!p || *p > kMaxElements) return "the element count overflows int64";
    n = *p;
  }
  if (ne[0] % type.block_elems != 0) return "ne[0] is not a multiple of the type's block size";
  std::optional<uint64_t> bytes = checked_mul(n / type.block_elems, type.block_bytes);
  if (!bytes) return "the data size overflows uint64";
  *n_elements = n;
  *n_bytes = *bytes;
  return "";
}

}  // namespace lightboat::gguf::detail
