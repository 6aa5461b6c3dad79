// Element and block formats of tensors, bit-compatible with llama.cpp's ggml block layouts.
// DType values are the ggml type ids stored in GGUF files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lightboat::tensor {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  // Not GGUF types: Q4_0 / Q8_0 matrices stored 16 rows interleaved (tensor/interleave.h), made at
  // load for the kernels that read them faster. 4 and 5 are ggml ids retired before GGUF existed
  // (Q4_2, Q4_3), so no file names them; dtype_from_id never returns them.
  kQ4_0x16 = 4,
  kQ8_0x16 = 5,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,  // activations only (paired with Q4_1 / Q5_1 weights)
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,  // activations only (paired with K-quant weights)
  kBF16 = 30,
  // Not GGUF types either: F16 and Q4_K stored 16 rows interleaved, on the ids of ggml's retired
  // Q4_0_4_4 and Q4_0_4_8 repackings (31, 32). Files of 2024 may carry them; the GGUF reader
  // rejects them as removed types (gguf/types.cpp), and dtype_from_id never returns these.
  kF16x16 = 31,
  kQ4_Kx16 = 32,
};

struct DTypeTraits {
  std::string_view name;  // llama.cpp's name, e.g. "Q4_K"
  int64_t block_elems;    // elements per block
  size_t block_bytes;     // bytes per block
  bool is_quantized;
};

// Traits of a supported dtype.
const DTypeTraits& dtype_traits(DType type);
// The DType for a raw ggml id, or nullopt when Lightboat does not support that id.
std::optional<DType> dtype_from_id(uint32_t id);
std::string_view dtype_name(DType type);

// Bytes of a row of n elements; n must be a multiple of block_elems (checked by callers).
inline size_t row_bytes(DType type, int64_t n) {
  const DTypeTraits& t = dtype_traits(type);
  return static_cast<size_t>(n / t.block_elems) * t.block_bytes;
}

// IEEE half and bfloat16 conversions (round to nearest even; NaN preserved).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

}  // namespace lightboat::tensor
