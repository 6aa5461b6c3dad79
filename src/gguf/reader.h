// GGUF v3 reader. Parses the header, the metadata key/value table and the tensor directory of a
// file held by FileBytes (mmap by default, or read), validating every count, length, offset,
// dimension and type overflow-safely before use. A malformed, truncated or hostile file throws
// Error(kFormat) whose message names the field and the byte offset at fault.
//
// Layout (little-endian): magic "GGUF", u32 version (3; 2 accepted), u64 n_tensors, u64 n_kv,
// n_kv × {string key, u32 type, value}, n_tensors × {string name, u32 n_dims, n_dims × u64 ne,
// u32 type, u64 offset}, padding to general.alignment (default 32), then tensor data.
// A string is u64 length + bytes (no terminator). An array is u32 element type + u64 count + values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/file_bytes.h"
#include "gguf/types.h"

namespace lightboat::gguf {

struct Value;

// An array keeps its element type even when empty; nested arrays are allowed.
struct Array {
  ValueType elem_type = ValueType::kUint8;
  std::vector<Value> items;
};

struct Value {
  ValueType type = ValueType::kUint8;
  // Integers are widened to int64_t/uint64_t, floats to double; the original type is in `type`.
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  bool is_integer() const;
  bool is_float() const;
  // Conversions that throw Error(kFormat) naming `what` when the value is not of a fitting type
  // or is out of range for the result. Any integer type converts to as_int/as_uint when it fits;
  // as_float also accepts integers; as_bool only bool.
  int64_t as_int(std::string_view what) const;
  uint64_t as_uint(std::string_view what) const;
  double as_float(std::string_view what) const;
  bool as_bool(std::string_view what) const;
  const std::string& as_string(std::string_view what) const;
  const Array& as_array(std::string_view what) const;
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> ne;   // dimensions, ne[0] innermost (row length) as in ggml
  uint32_t type_id = 0;       // raw ggml type id
  uint64_t offset = 0;        // bytes, relative to the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;       // bytes of data, from the type's block geometry
  const std::byte* data = nullptr;  // points into the file's bytes
};

struct MetadataEntry {
  std::string key;
  Value value;
};

class Reader {
 public:
  // Opens and parses `path`. Throws Error(kNotFound/kIo) for OS failures, kFormat for bad content.
  // Shared weights: inside one process, opening a file that is open already (same device and
  // inode, size, modification and change times, and mode) returns the same Reader, so the file
  // is mapped once however many models use it; the mapping goes with the last shared_ptr.
  static std::shared_ptr<const Reader> open(const std::string& path, LoadMode mode = LoadMode::kMmap);
  // The number of distinct files held open through open() now (tests, diagnostics).
  static size_t open_count();
  // Parses bytes already held (tests, fuzzing).
  static std::shared_ptr<const Reader> parse(FileBytes bytes);
  ~Reader();

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }       // bytes
  uint64_t data_offset() const { return data_offset_; }   // bytes from the start of the file
  const FileBytes& file() const { return file_; }

  // Metadata in file order.
  const std::vector<MetadataEntry>& metadata() const { return metadata_; }
  const Value* find(std::string_view key) const;  // nullptr when absent

  // Typed getters: required ones throw Error(kNotFound) naming the key when absent and
  // Error(kFormat) when present with an unfitting type. The try_ ones return nullopt when the
  // key is absent and also throw Error(kFormat) when it is present with an unfitting type.
  uint64_t get_uint(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const Array& get_array(std::string_view key) const;
  std::optional<uint64_t> try_uint(std::string_view key) const;
  std::optional<int64_t> try_int(std::string_view key) const;
  std::optional<double> try_float(std::string_view key) const;
  std::optional<bool> try_bool(std::string_view key) const;
  std::optional<std::string> try_string(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent

  // Bytes derived from this file's tensors at load, such as a kernel's own layout of a weight
  // matrix (tensor/interleave.h): the first call for a key has `make` fill `size` bytes (64-byte
  // aligned), and every later call, from any model sharing this Reader, returns the same bytes.
  // They live in the Reader's own memory (huge pages where Linux grants them) as long as it does.
  // Thread-safe; `make` runs under the Reader's lock.
  const std::byte* derived(const std::string& key, size_t size, const std::function<void(std::byte*)>& make) const;
  size_t derived_bytes() const;  // bytes handed out by derived() so far

 private:
  Reader();
  struct Derived;  // derived()'s memory and index

  FileBytes file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<MetadataEntry> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
  std::unique_ptr<Derived> derived_;

  friend class Parser;
};

}  // namespace lightboat::gguf
