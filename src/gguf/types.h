// GGUF value types and ggml tensor type ids as the GGUF v3 format defines them.
// The tensor-type table here only knows block geometry (elements and bytes per block), which the
// reader needs to validate tensor data ranges; what the blocks mean lives in tensor/.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace lightboat::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

std::string_view value_type_name(ValueType type);
// True for the ids 0..12 that the format defines.
bool is_value_type(uint32_t id);
// Bytes of a scalar value on disk; 0 for kString and kArray, whose length varies.
uint32_t value_type_size(ValueType type);

// Block geometry of a ggml tensor type id (GGUF stores the raw id).
struct TensorTypeGeometry {
  std::string_view name;  // llama.cpp's name: "F32", "Q4_K" …
  uint32_t block_elems;   // elements per block (1 for F32/F16/BF16)
  uint32_t block_bytes;   // bytes per block
};

// nullopt for ids that ggml never defined or that were removed (Q4_2, Q4_3 …).
std::optional<TensorTypeGeometry> tensor_type_geometry(uint32_t type_id);

}  // namespace lightboat::gguf
