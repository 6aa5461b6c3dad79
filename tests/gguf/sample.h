// A generated GGUF that exercises every value type, nested and string arrays and tensors of
// several types and ranks; shared by the round-trip and corruption tests.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

namespace lightboat::gguf::testing {

struct SampleTensor {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type_id;
  std::vector<std::byte> data;
};

// Deterministic bytes (an LCG) so that each tensor's data is distinct.
inline std::vector<std::byte> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<std::byte> out(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
  return out;
}

inline std::vector<SampleTensor> sample_tensors() {
  // {name, ne, type}: sizes from the block geometry (F32 4 B, F16/BF16 2 B, Q8_0 34 B per 32,
  // Q4_K 144 B per 256, Q6_K 210 B per 256, I8 1 B, Q4_0 18 B per 32).
  std::vector<SampleTensor> t = {
      {"token_embd.weight", {8, 3}, 0, {}},          // F32: 96 bytes
      {"blk.0.attn_norm.weight", {5}, 1, {}},        // F16: 10 bytes (needs padding)
      {"blk.0.attn_q.weight", {64, 2}, 8, {}},       // Q8_0: 136 bytes
      {"blk.0.ffn_up.weight", {256, 1}, 12, {}},     // Q4_K: 144 bytes
      {"blk.0.ffn_down.weight", {4, 2, 3}, 30, {}},  // BF16: 48 bytes
      {"blk.0.ffn_gate.weight", {256, 1, 1, 2}, 14, {}},  // Q6_K: 420 bytes
      {"rank4.int8", {2, 3, 2, 2}, 24, {}},          // I8: 24 bytes
      {"output.weight", {32, 1}, 2, {}},             // Q4_0: 18 bytes
  };
  for (size_t i = 0; i < t.size(); ++i) {
    const TensorTypeGeometry g = *tensor_type_geometry(t[i].type_id);
    uint64_t n = 1;
    for (uint64_t d : t[i].ne) n *= d;
    t[i].data = pattern_bytes(n / g.block_elems * g.block_bytes, static_cast<uint32_t>(i + 1));
  }
  return t;
}

// Metadata with every value type, in a fixed order.
inline void add_sample_metadata(Writer& w) {
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", std::string("tiny \xc3\xa9 model\0with nul", 22));
  w.set("test.u8", make_uint(ValueType::kUint8, 255));
  w.set("test.i8", make_int(ValueType::kInt8, -128));
  w.set("test.u16", make_uint(ValueType::kUint16, 65535));
  w.set("test.i16", make_int(ValueType::kInt16, -32768));
  w.set_uint32("llama.block_count", 5);
  w.set_int32("test.i32", -2147483647 - 1);
  w.set_float32("test.f32", 1.5f);
  w.set_bool("test.true", true);
  w.set_bool("test.false", false);
  w.set_uint64("test.u64", 0xFEDCBA9876543210ull);
  w.set("test.i64", make_int(ValueType::kInt64, INT64_MIN));
  w.set("test.f64", make_float(ValueType::kFloat64, 3.141592653589793));
  w.set_string("test.empty", "");
  w.set("test.arr_u8", make_array(ValueType::kUint8, {make_uint(ValueType::kUint8, 1), make_uint(ValueType::kUint8, 2)}));
  w.set("test.arr_i32", make_array(ValueType::kInt32, {make_int(ValueType::kInt32, -1), make_int(ValueType::kInt32, 7),
                                                       make_int(ValueType::kInt32, 1 << 30)}));
  w.set("test.arr_f32", make_array(ValueType::kFloat32, {make_float(ValueType::kFloat32, -0.25)}));
  w.set("test.arr_f64", make_array(ValueType::kFloat64, {make_float(ValueType::kFloat64, 1e300)}));
  w.set("test.arr_bool", make_array(ValueType::kBool, {make_bool(true), make_bool(false), make_bool(true)}));
  w.set("test.arr_u16", make_array(ValueType::kUint16, {make_uint(ValueType::kUint16, 513)}));
  w.set("test.arr_i16", make_array(ValueType::kInt16, {make_int(ValueType::kInt16, -513)}));
  w.set("test.arr_i8", make_array(ValueType::kInt8, {make_int(ValueType::kInt8, -3)}));
  w.set("test.arr_i64", make_array(ValueType::kInt64, {make_int(ValueType::kInt64, -5)}));
  w.set("test.arr_u32", make_array(ValueType::kUint32, {make_uint(ValueType::kUint32, 4000000000u)}));
  w.set("test.empty_u64_array", make_array(ValueType::kUint64, {}));
  std::vector<std::string> tokens = {"<unk>", "<s>", "", "\xe2\x96\x81hello", "world"};
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  // [[1, 2], [], [3]] of int16, and a string array inside an array inside an array.
  w.set("test.nested", make_array(ValueType::kArray, {
                                      make_array(ValueType::kInt16, {make_int(ValueType::kInt16, 1), make_int(ValueType::kInt16, 2)}),
                                      make_array(ValueType::kInt16, {}),
                                      make_array(ValueType::kInt16, {make_int(ValueType::kInt16, 3)}),
                                  }));
  w.set("test.nested3", make_array(ValueType::kArray, {make_array(ValueType::kArray, {make_string_array(tokens)})}));
}

inline Writer sample_writer(uint32_t alignment = 0) {
  Writer w;
  add_sample_metadata(w);
  if (alignment != 0) w.set_alignment(alignment);
  for (const SampleTensor& t : sample_tensors()) w.add_tensor(t.name, t.ne, t.type_id, t.data);
  return w;
}

inline std::shared_ptr<const Reader> parse_bytes(std::span<const std::byte> bytes) {
  return Reader::parse(FileBytes::from_memory(bytes));
}

// Deep equality; float32 payloads are compared at float precision, the width they were stored in.
inline bool same_value(const Value& a, const Value& b) {
  if (a.type != b.type || a.data.index() != b.data.index()) return false;
  if (a.type == ValueType::kFloat32) return static_cast<float>(std::get<double>(a.data)) == static_cast<float>(std::get<double>(b.data));
  if (a.type != ValueType::kArray) {
    if (const auto* d = std::get_if<double>(&a.data)) return *d == std::get<double>(b.data);
    if (const auto* s = std::get_if<std::string>(&a.data)) return *s == std::get<std::string>(b.data);
    if (const auto* u = std::get_if<uint64_t>(&a.data)) return *u == std::get<uint64_t>(b.data);
    if (const auto* i = std::get_if<int64_t>(&a.data)) return *i == std::get<int64_t>(b.data);
    return std::get<bool>(a.data) == std::get<bool>(b.data);
  }
  const Array& x = std::get<Array>(a.data);
  const Array& y = std::get<Array>(b.data);
  if (x.elem_type != y.elem_type || x.items.size() != y.items.size()) return false;
  for (size_t i = 0; i < x.items.size(); ++i) {
    if (!same_value(x.items[i], y.items[i])) return false;
  }
  return true;
}

}  // namespace lightboat::gguf::testing
