#include "gguf/types.h"

#include <array>

namespace lightboat::gguf {
namespace {

// ggml's type ids with the block geometry of ggml-common.h (QK_K = 256 for the K and IQ
// families). Ids 4, 5 (Q4_2, Q4_3), 31..33 (Q4_0_4_4 …) and 36..38 (IQ4_NL_4_4 …) were removed
// from ggml and from GGUF files; they stay empty. The ids are append-only upstream, so a new
// type only ever adds a row at the end.
struct Row {
  std::string_view name;  // empty: never defined or removed
  uint32_t block_elems;
  uint32_t block_bytes;
};

constexpr std::array<Row, 43> kTypes = {{
    {"F32", 1, 4},         // 0
    {"F16", 1, 2},         // 1
    {"Q4_0", 32, 18},      // 2: f16 d + 16 nibble bytes
    {"Q4_1", 32, 20},      // 3: f16 d, m + 16
    {"", 0, 0},            // 4: Q4_2, removed
    {"", 0, 0},            // 5: Q4_3, removed
    {"Q5_0", 32, 22},      // 6: f16 d + 4 high bits + 16
    {"Q5_1", 32, 24},      // 7
    {"Q8_0", 32, 34},      // 8: f16 d + 32 int8
    {"Q8_1", 32, 36},      // 9: f16 d, s + 32 int8
    {"Q2_K", 256, 84},     // 10
    {"Q3_K", 256, 110},    // 11
    {"Q4_K", 256, 144},    // 12
    {"Q5_K", 256, 176},    // 13
    {"Q6_K", 256, 210},    // 14
    {"Q8_K", 256, 292},    // 15: f32 d + 256 int8 + 16 int16 sums
    {"IQ2_XXS", 256, 66},  // 16
    {"IQ2_XS", 256, 74},   // 17
    {"IQ3_XXS", 256, 98},  // 18
    {"IQ1_S", 256, 50},    // 19
    {"IQ4_NL", 32, 18},    // 20
    {"IQ3_S", 256, 110},   // 21
    {"IQ2_S", 256, 82},    // 22
    {"IQ4_XS", 256, 136},  // 23
    {"I8", 1, 1},          // 24
    {"I16", 1, 2},         // 25
    {"I32", 1, 4},         // 26
    {"I64", 1, 8},         // 27
    {"F64", 1, 8},         // 28
    {"IQ1_M", 256, 56},    // 29
    {"BF16", 1, 2},        // 30
    {"", 0, 0},            // 31: Q4_0_4_4, removed from GGUF files
    {"", 0, 0},            // 32: Q4_0_4_8, removed
    {"", 0, 0},            // 33: Q4_0_8_8, removed
    {"TQ1_0", 256, 54},    // 34
    {"TQ2_0", 256, 66},    // 35
    {"", 0, 0},            // 36: IQ4_NL_4_4, removed
    {"", 0, 0},            // 37: IQ4_NL_4_8, removed
    {"", 0, 0},            // 38: IQ4_NL_8_8, removed
    {"MXFP4", 32, 17},     // 39: e8m0 scale + 16 nibble bytes
    {"NVFP4", 64, 36},     // 40: 4 ue4m3 sub-block scales + 32 nibble bytes
    {"Q1_0", 128, 18},     // 41: f16 d + 16 sign-bit bytes
    {"Q2_0", 64, 18},      // 42: f16 d + 16 bytes of 2-bit quants
}};

}  // namespace

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kUint8: return "uint8";
    case ValueType::kInt8: return "int8";
    case ValueType::kUint16: return "uint16";
    case ValueType::kInt16: return "int16";
    case ValueType::kUint32: return "uint32";
    case ValueType::kInt32: return "int32";
    case ValueType::kFloat32: return "float32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "uint64";
    case ValueType::kInt64: return "int64";
    case ValueType::kFloat64: return "float64";
  }
  return "unknown";
}

bool is_value_type(uint32_t id) { return id <= static_cast<uint32_t>(ValueType::kFloat64); }

uint32_t value_type_size(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool: return 1;
    case ValueType::kUint16:
    case ValueType::kInt16: return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32: return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64: return 8;
    case ValueType::kString:
    case ValueType::kArray: return 0;
  }
  return 0;
}

std::optional<TensorTypeGeometry> tensor_type_geometry(uint32_t type_id) {
  if (type_id >= kTypes.size() || kTypes[type_id].name.empty()) return std::nullopt;
  const Row& r = kTypes[type_id];
  return TensorTypeGeometry{r.name, r.block_elems, r.block_bytes};
}

}  // namespace lightboat::gguf
