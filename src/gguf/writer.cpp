#include "gguf/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "base/error.h"
#include "gguf/checked.h"

namespace lightboat::gguf {
namespace {

constexpr uint64_t kDefaultAlignment = 32;  // bytes, when general.alignment is absent
constexpr uint32_t kMaxArrayDepth = 8;      // as the reader accepts

[[noreturn]] void invalid(const std::string& message) { throw Error(ErrorKind::kInvalidArgument, message); }

// Checks that a value's payload agrees with its declared type, recursively. Values built by the
// make_* functions or read by Reader always pass; a hand-assembled Value may not.
void validate(const Value& v, const std::string& what, uint32_t depth) {
  auto need = [&](bool ok, const char* expected) {
    if (!ok) invalid(what + ": a " + std::string(value_type_name(v.type)) + " value must hold " + expected);
  };
  const auto* u = std::get_if<uint64_t>(&v.data);
  const auto* i = std::get_if<int64_t>(&v.data);
  switch (v.type) {
    case ValueType::kUint8: need(u && *u <= UINT8_MAX, "an unsigned integer <= 255"); break;
    case ValueType::kUint16: need(u && *u <= UINT16_MAX, "an unsigned integer <= 65535"); break;
    case ValueType::kUint32: need(u && *u <= UINT32_MAX, "an unsigned integer < 2^32"); break;
    case ValueType::kUint64: need(u != nullptr, "an unsigned integer"); break;
    case ValueType::kInt8: need(i && *i >= INT8_MIN && *i <= INT8_MAX, "an integer in int8 range"); break;
    case ValueType::kInt16: need(i && *i >= INT16_MIN && *i <= INT16_MAX, "an integer in int16 range"); break;
    case ValueType::kInt32: need(i && *i >= INT32_MIN && *i <= INT32_MAX, "an integer in int32 range"); break;
    case ValueType::kInt64: need(i != nullptr, "a signed integer"); break;
    case ValueType::kFloat32:
    case ValueType::kFloat64: need(std::holds_alternative<double>(v.data), "a double"); break;
    case ValueType::kBool: need(std::holds_alternative<bool>(v.data), "a bool"); break;
    case ValueType::kString: need(std::holds_alternative<std::string>(v.data), "a string"); break;
    case ValueType::kArray: {
      const auto* a = std::get_if<Array>(&v.data);
      need(a != nullptr, "an Array");
      if (depth >= kMaxArrayDepth) invalid(what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      if (!is_value_type(static_cast<uint32_t>(a->elem_type))) invalid(what + ": bad array element type");
      for (size_t k = 0; k < a->items.size(); ++k) {
        std::string item = what + " element #" + std::to_string(k);
        if (a->items[k].type != a->elem_type) {
          invalid(item + " is " + std::string(value_type_name(a->items[k].type)) + " in an array of " +
                  std::string(value_type_name(a->elem_type)));
        }
        validate(a->items[k], item, depth + 1);
      }
      break;
    }
    default: invalid(what + ": unknown value type id " + std::to_string(static_cast<uint32_t>(v.type)));
  }
}

// Little-endian byte output into a growing buffer.
class Out {
 public:
  explicit Out(std::vector<std::byte>& buf) : buf_(buf) {}

  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    buf_.insert(buf_.end(), p, p + sizeof(T));
  }
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  void string(std::string_view s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void value(const Value& v) {
    switch (v.type) {
      case ValueType::kUint8: put(static_cast<uint8_t>(std::get<uint64_t>(v.data))); break;
      case ValueType::kUint16: put(static_cast<uint16_t>(std::get<uint64_t>(v.data))); break;
      case ValueType::kUint32: put(static_cast<uint32_t>(std::get<uint64_t>(v.data))); break;
      case ValueType::kUint64: put(std::get<uint64_t>(v.data)); break;
      case ValueType::kInt8: put(static_cast<int8_t>(std::get<int64_t>(v.data))); break;
      case ValueType::kInt16: put(static_cast<int16_t>(std::get<int64_t>(v.data))); break;
      case ValueType::kInt32: put(static_cast<int32_t>(std::get<int64_t>(v.data))); break;
      case ValueType::kInt64: put(std::get<int64_t>(v.data)); break;
      case ValueType::kFloat32: put(static_cast<float>(std::get<double>(v.data))); break;
      case ValueType::kFloat64: put(std::get<double>(v.data)); break;
      case ValueType::kBool: put<uint8_t>(std::get<bool>(v.data) ? 1 : 0); break;
      case ValueType::kString: string(std::get<std::string>(v.data)); break;
      case ValueType::kArray: {
        const Array& a = std::get<Array>(v.data);
        put(static_cast<uint32_t>(a.elem_type));
        put<uint64_t>(a.items.size());
        for (const Value& item : a.items) value(item);
        break;
      }
    }
  }
  void pad_to(uint64_t align) {
    while (buf_.size() % align != 0) buf_.push_back(std::byte{0});
  }

 private:
  std::vector<std::byte>& buf_;
};

// Zero bytes after `size` bytes of data up to the next multiple of `align`.
uint64_t padding(uint64_t size, uint64_t align) { return (align - size % align) % align; }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

void write_all(int fd, const std::string& path, const void* p, size_t n) {
  const auto* b = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t got = ::write(fd, b, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw Error(ErrorKind::kIo, "cannot write '" + path + "': " + std::strerror(errno));
    b += got;
    n -= static_cast<size_t>(got);
  }
}

}  // namespace

Value make_uint(ValueType type, uint64_t v) {
  Value out{type, v};
  validate(out, "make_uint(" + std::string(value_type_name(type)) + ", " + std::to_string(v) + ")", 0);
  return out;
}

Value make_int(ValueType type, int64_t v) {
  Value out{type, v};
  validate(out, "make_int(" + std::string(value_type_name(type)) + ", " + std::to_string(v) + ")", 0);
  return out;
}

Value make_float(ValueType type, double v) {
  if (type != ValueType::kFloat32 && type != ValueType::kFloat64) {
    invalid("make_float: " + std::string(value_type_name(type)) + " is not a float type");
  }
  return Value{type, v};
}

Value make_bool(bool v) { return Value{ValueType::kBool, v}; }

Value make_string(std::string v) { return Value{ValueType::kString, std::move(v)}; }

Value make_array(ValueType elem_type, std::vector<Value> items) {
  Value out{ValueType::kArray, Array{elem_type, std::move(items)}};
  validate(out, "make_array", 0);
  return out;
}

Value make_string_array(std::span<const std::string> items) {
  Array a{ValueType::kString, {}};
  a.items.reserve(items.size());
  for (const std::string& s : items) a.items.push_back(make_string(s));
  return Value{ValueType::kArray, std::move(a)};
}

void Writer::set(std::string key, Value value) {
  if (key.empty()) invalid("metadata key is empty");
  validate(value, "metadata key '" + key + "'", 0);
  if (key == "general.alignment") {
    if (value.type != ValueType::kUint32 || !detail::is_power_of_two(std::get<uint64_t>(value.data))) {
      invalid("general.alignment must be a uint32 nonzero power of two");
    }
  }
  for (MetadataEntry& e : metadata_) {
    if (e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  metadata_.push_back(MetadataEntry{std::move(key), std::move(value)});
}

bool Writer::remove(std::string_view key) {
  for (auto it = metadata_.begin(); it != metadata_.end(); ++it) {
    if (it->key == key) {
      metadata_.erase(it);
      return true;
    }
  }
  return false;
}

const Value* Writer::find(std::string_view key) const {
  for (const MetadataEntry& e : metadata_) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

uint64_t Writer::alignment() const {
  const Value* v = find("general.alignment");
  return v == nullptr ? kDefaultAlignment : std::get<uint64_t>(v->data);
}

void Writer::add_tensor(std::string name, std::vector<uint64_t> ne, uint32_t type_id, std::span<const std::byte> data) {
  PendingTensor t{std::move(name), std::move(ne), type_id, {}, {}};
  t.owned.assign(data.begin(), data.end());
  t.data = t.owned;
  add(std::move(t));
}

void Writer::add_tensor_borrowed(std::string name, std::vector<uint64_t> ne, uint32_t type_id,
                                 std::span<const std::byte> data) {
  add(PendingTensor{std::move(name), std::move(ne), type_id, {}, data});
}

void Writer::add(PendingTensor t) {
  std::string what = "tensor '" + t.name + "'";
  if (t.name.empty()) invalid("tensor name is empty");
  for (const PendingTensor& other : tensors_) {
    if (other.name == t.name) invalid(what + " added twice");
  }
  std::optional<TensorTypeGeometry> geo = tensor_type_geometry(t.type_id);
  if (!geo) invalid(what + ": unknown ggml tensor type id " + std::to_string(t.type_id));
  uint64_t n_elements = 0, n_bytes = 0;
  const char* problem = detail::check_shape(t.ne, *geo, &n_elements, &n_bytes);
  if (*problem != '\0') invalid(what + ": " + problem + " (type " + std::string(geo->name) + ")");
  if (t.data.size() != n_bytes) {
    invalid(what + ": " + std::to_string(t.data.size()) + " bytes of data for a shape that needs " + std::to_string(n_bytes));
  }
  tensors_.push_back(std::move(t));
}

std::vector<std::byte> Writer::head() const {
  uint64_t align = alignment();
  std::vector<std::byte> buf;
  Out out(buf);
  out.bytes("GGUF", 4);
  out.put<uint32_t>(3);
  out.put<uint64_t>(tensors_.size());
  out.put<uint64_t>(metadata_.size());
  for (const MetadataEntry& e : metadata_) {
    out.string(e.key);
    out.put(static_cast<uint32_t>(e.value.type));
    out.value(e.value);
  }
  uint64_t offset = 0;  // bytes from the start of the data section
  for (const PendingTensor& t : tensors_) {
    out.string(t.name);
    out.put(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) out.put(d);
    out.put(t.type_id);
    out.put(offset);
    offset += t.data.size() + padding(t.data.size(), align);
  }
  out.pad_to(align);
  return buf;
}

std::vector<std::byte> Writer::to_bytes() const {
  std::vector<std::byte> buf = head();
  uint64_t align = alignment();
  for (const PendingTensor& t : tensors_) {
    buf.insert(buf.end(), t.data.begin(), t.data.end());
    buf.resize(buf.size() + padding(t.data.size(), align), std::byte{0});
  }
  return buf;
}

void Writer::write_file(const std::string& path) const {
  std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw Error(ErrorKind::kIo, "cannot create '" + tmp + "': " + std::strerror(errno));
  try {
    std::vector<std::byte> buf = head();
    write_all(fd.get(), tmp, buf.data(), buf.size());
    uint64_t align = alignment();
    const std::byte zeros[256] = {};  // padding source; alignments above 256 loop
    for (const PendingTensor& t : tensors_) {
      write_all(fd.get(), tmp, t.data.data(), t.data.size());
      for (uint64_t pad = padding(t.data.size(), align); pad > 0;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof(zeros)));
        write_all(fd.get(), tmp, zeros, n);
        pad -= n;
      }
    }
    if (::fsync(fd.get()) != 0) throw Error(ErrorKind::kIo, "cannot flush '" + tmp + "': " + std::strerror(errno));
    if (::close(fd.release()) != 0) throw Error(ErrorKind::kIo, "cannot close '" + tmp + "': " + std::strerror(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      throw Error(ErrorKind::kIo, "cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(errno));
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace lightboat::gguf
