// GGUF v3 writer: metadata key/values (every value type, nested arrays), tensors with their data
// laid out in insertion order at offsets aligned to general.alignment (default 32), each padded
// with zeros to the alignment as llama.cpp and gguf-py do. The output loads in llama.cpp and in
// Reader. Bad input (a wrong value payload, a duplicate tensor, a data size that does not match the
// shape) throws Error(kInvalidArgument) naming the key or tensor.
//
//   Writer w;
//   w.set_string("general.architecture", "llama");
//   w.set_uint32("llama.block_count", 5);
//   w.add_tensor("token_embd.weight", {64, 512}, 0 /* F32 */, bytes);  // ne[0] innermost
//   w.write_file("out.gguf");  // out.gguf.tmp, then rename
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/reader.h"
#include "gguf/types.h"

namespace lightboat::gguf {

// Value builders. Each throws Error(kInvalidArgument) when `type` is not of the builder's kind or
// `v` does not fit in it (make_uint(kUint8, 300)).
Value make_uint(ValueType type, uint64_t v);  // kUint8, kUint16, kUint32, kUint64
Value make_int(ValueType type, int64_t v);    // kInt8, kInt16, kInt32, kInt64
Value make_float(ValueType type, double v);   // kFloat32, kFloat64
Value make_bool(bool v);
Value make_string(std::string v);
// Every item must be of `elem_type` (items of kArray may themselves hold any element type).
Value make_array(ValueType elem_type, std::vector<Value> items);
Value make_string_array(std::span<const std::string> items);

class Writer {
 public:
  // Sets `key` to `value`: replaces the value in place when the key exists (keeping its position),
  // appends otherwise. Values read by Reader can be passed straight back (copying metadata).
  // general.alignment must be a uint32 nonzero power of two.
  void set(std::string key, Value value);
  void set_uint32(std::string key, uint32_t v) { set(std::move(key), make_uint(ValueType::kUint32, v)); }
  void set_uint64(std::string key, uint64_t v) { set(std::move(key), make_uint(ValueType::kUint64, v)); }
  void set_int32(std::string key, int32_t v) { set(std::move(key), make_int(ValueType::kInt32, v)); }
  void set_float32(std::string key, float v) { set(std::move(key), make_float(ValueType::kFloat32, v)); }
  void set_bool(std::string key, bool v) { set(std::move(key), make_bool(v)); }
  void set_string(std::string key, std::string v) { set(std::move(key), make_string(std::move(v))); }
  void set_string_array(std::string key, std::span<const std::string> items) {
    set(std::move(key), make_string_array(items));
  }
  void set_alignment(uint32_t bytes) { set_uint32("general.alignment", bytes); }
  // Removes `key`; false when it was absent.
  bool remove(std::string_view key);
  const Value* find(std::string_view key) const;
  const std::vector<MetadataEntry>& metadata() const { return metadata_; }
  uint64_t alignment() const;  // bytes: general.alignment or 32

  // Adds a tensor of shape `ne` (1..4 dims, ne[0] innermost, a multiple of the type's block) and
  // raw ggml `type_id`; `data` must be exactly the shape's size in bytes. add_tensor copies the
  // bytes; add_tensor_borrowed keeps only the span, which must stay valid until the last write.
  void add_tensor(std::string name, std::vector<uint64_t> ne, uint32_t type_id, std::span<const std::byte> data);
  void add_tensor_borrowed(std::string name, std::vector<uint64_t> ne, uint32_t type_id,
                           std::span<const std::byte> data);
  size_t n_tensors() const { return tensors_.size(); }

  // The whole file in memory.
  std::vector<std::byte> to_bytes() const;
  // Writes `path` + ".tmp", flushes it to disk, then renames it to `path`, so a reader never sees
  // half a file. Throws Error(kIo) naming the path when the OS refuses.
  void write_file(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type_id = 0;
    std::vector<std::byte> owned;     // the bytes when copied
    std::span<const std::byte> data;  // into `owned`, or borrowed
  };

  void add(PendingTensor t);
  // Header, metadata, tensor directory and the padding up to the data section.
  std::vector<std::byte> head() const;

  std::vector<MetadataEntry> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace lightboat::gguf
