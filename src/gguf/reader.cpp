// The GGUF parser. It walks the file once with a cursor that never moves past the end: every read
// first checks the bytes left, and every count is bounded by the bytes left (count × the smallest
// encoding of one item) before anything is reserved, so a hostile count fails fast instead of
// allocating. Memory use is bounded by a small constant times the file size (a one-byte array
// element becomes one Value).
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "base/error.h"
#include "gguf/checked.h"
#include "gguf/reader.h"

namespace lightboat::gguf {

static_assert(std::endian::native == std::endian::little, "GGUF is little-endian; a big-endian host needs byte swaps");

namespace {

using detail::checked_add;

constexpr uint32_t kMaxArrayDepth = 8;          // nested arrays; real files use depth 1
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;  // key length, 1-byte key, type, 1-byte value
constexpr uint64_t kMinTensorBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name len, name, n_dims, ne[0], type, offset
constexpr uint64_t kMaxDims = 4;                 // GGML_MAX_DIMS

// A key or tensor name as it may appear in a message: quoted, bounded, control bytes escaped.
std::string quoted(std::string_view s) {
  std::string out = "'";
  size_t n = std::min<size_t>(s.size(), 96);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (n < s.size()) out += "...";
  return out + "'";
}

// Names the field being read. Formatted only when an error is thrown, so reading the 100k
// elements of a vocabulary array builds no strings.
struct Where {
  std::string base;                              // "metadata key #3 'general.name'"
  std::array<uint64_t, kMaxArrayDepth> index{};  // element indices, outermost first
  uint32_t depth = 0;                            // how many of `index` are in use

  std::string describe(std::string_view part) const {
    std::string s = base;
    for (uint32_t i = 0; i < depth; ++i) s += " element #" + std::to_string(index[i]);
    if (!part.empty()) {
      s += ' ';
      s += part;
    }
    return s;
  }
};

}  // namespace

class Parser {
 public:
  explicit Parser(FileBytes bytes) : reader_(new Reader()) {
    reader_->file_ = std::move(bytes);
    base_ = reader_->file_.data();
    size_ = reader_->file_.size();
    path_ = reader_->file_.path().empty() ? std::string("<memory>") : reader_->file_.path();
  }

  std::shared_ptr<const Reader> run() {
    header();
    metadata();
    alignment();
    directory();
    tensor_ranges();
    return std::move(reader_);
  }

 private:
  [[noreturn]] void fail(const Where& w, std::string_view part, uint64_t offset, const std::string& problem) const {
    throw Error(ErrorKind::kFormat, path_ + ": " + w.describe(part) + " at offset " + std::to_string(offset) + ": " + problem);
  }

  uint64_t left() const { return size_ - pos_; }

  void need(uint64_t n, const Where& w, std::string_view part) const {
    if (n > left()) {
      fail(w, part, pos_, "needs " + std::to_string(n) + " bytes but the file ends after " + std::to_string(left()) +
                              " (truncated?)");
    }
  }

  template <typename T>
  T load(const Where& w, std::string_view part) {
    need(sizeof(T), w, part);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // A count of items that each take at least `min_item_bytes` must fit in the bytes left.
  void check_count(uint64_t count, uint64_t min_item_bytes, const Where& w, std::string_view part, uint64_t at) const {
    if (count > left() / min_item_bytes) {
      fail(w, part, at, "count " + std::to_string(count) + " cannot fit in the " + std::to_string(left()) +
                            " bytes left (each item takes at least " + std::to_string(min_item_bytes) + ")");
    }
  }

  // A string's bytes, still in the file.
  std::string_view string_view(const Where& w, std::string_view length_part) {
    uint64_t at = pos_;
    uint64_t n = load<uint64_t>(w, length_part);
    if (n > left()) {
      fail(w, length_part, at, "string length " + std::to_string(n) + " exceeds the " + std::to_string(left()) + " bytes left");
    }
    std::string_view s(reinterpret_cast<const char*>(base_ + pos_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }

  std::string string(const Where& w, std::string_view length_part) { return std::string(string_view(w, length_part)); }

  ValueType value_type(const Where& w, std::string_view part) {
    uint64_t at = pos_;
    uint32_t id = load<uint32_t>(w, part);
    if (!is_value_type(id)) fail(w, part, at, "unknown value type id " + std::to_string(id));
    return static_cast<ValueType>(id);
  }

  // Reads a value of `type` into `v` in place (no temporaries: a vocabulary has 100k of them).
  void value(ValueType type, Where& w, Value& v) {
    v.type = type;
    uint64_t at = pos_;
    switch (type) {
      case ValueType::kUint8: v.data.emplace<uint64_t>(load<uint8_t>(w, "value")); break;
      case ValueType::kInt8: v.data.emplace<int64_t>(load<int8_t>(w, "value")); break;
      case ValueType::kUint16: v.data.emplace<uint64_t>(load<uint16_t>(w, "value")); break;
      case ValueType::kInt16: v.data.emplace<int64_t>(load<int16_t>(w, "value")); break;
      case ValueType::kUint32: v.data.emplace<uint64_t>(load<uint32_t>(w, "value")); break;
      case ValueType::kInt32: v.data.emplace<int64_t>(load<int32_t>(w, "value")); break;
      case ValueType::kUint64: v.data.emplace<uint64_t>(load<uint64_t>(w, "value")); break;
      case ValueType::kInt64: v.data.emplace<int64_t>(load<int64_t>(w, "value")); break;
      case ValueType::kFloat32: v.data.emplace<double>(load<float>(w, "value")); break;
      case ValueType::kFloat64: v.data.emplace<double>(load<double>(w, "value")); break;
      case ValueType::kBool: {
        uint8_t b = load<uint8_t>(w, "value");
        if (b > 1) fail(w, "value", at, "bool byte is " + std::to_string(b) + ", not 0 or 1");
        v.data.emplace<bool>(b == 1);
        break;
      }
      case ValueType::kString: {
        std::string_view s = string_view(w, "string length");
        v.data.emplace<std::string>(s.data(), s.size());
        break;
      }
      case ValueType::kArray: array(w, v.data.emplace<Array>()); break;
    }
  }

  void array(Where& w, Array& a) {
    if (w.depth >= kMaxArrayDepth) {
      fail(w, "array", pos_, "arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
    }
    a.elem_type = value_type(w, "array element type");
    uint64_t at = pos_;
    uint64_t count = load<uint64_t>(w, "array count");
    // The smallest encoding of one element: a scalar's size, an empty string's length field,
    // an empty array's element type and count.
    uint64_t min_bytes = value_type_size(a.elem_type);
    if (a.elem_type == ValueType::kString) min_bytes = 8;
    if (a.elem_type == ValueType::kArray) min_bytes = 4 + 8;
    check_count(count, min_bytes, w, "array count", at);
    a.items.resize(static_cast<size_t>(count));
    uint32_t depth = w.depth++;
    for (uint64_t i = 0; i < count; ++i) {
      w.index[depth] = i;
      value(a.elem_type, w, a.items[i]);
    }
    w.depth = depth;
  }

  void header() {
    Where w{"header"};
    if (size_ < 4) fail(w, "magic", 0, "file is " + std::to_string(size_) + " bytes, too short for a GGUF header");
    if (std::memcmp(base_, "GGUF", 4) != 0) {
      fail(w, "magic", 0, "not a GGUF file: the first 4 bytes are " +
                              quoted(std::string(reinterpret_cast<const char*>(base_), 4)) + ", not 'GGUF'");
    }
    pos_ = 4;
    uint32_t version = load<uint32_t>(w, "version");
    if (version != 2 && version != 3) {
      std::string problem = "GGUF version " + std::to_string(version) + " is not supported (versions 2 and 3 are)";
      if (version == 0x02000000u || version == 0x03000000u) problem = "big-endian GGUF files are not supported";
      fail(w, "version", 4, problem);
    }
    reader_->version_ = version;
    n_tensors_ = load<uint64_t>(w, "n_tensors");
    n_kv_ = load<uint64_t>(w, "n_kv");
    check_count(n_tensors_, kMinTensorBytes, w, "n_tensors", 8);
    check_count(n_kv_, kMinKvBytes, w, "n_kv", 16);
  }

  void metadata() {
    reader_->metadata_.reserve(static_cast<size_t>(n_kv_));
    value_offsets_.reserve(static_cast<size_t>(n_kv_));
    for (uint64_t i = 0; i < n_kv_; ++i) {
      Where w{"metadata key #" + std::to_string(i)};
      uint64_t key_at = pos_;
      std::string key = string(w, "length");
      if (key.empty()) fail(w, "", key_at, "empty key");
      w.base += " " + quoted(key);
      ValueType type = value_type(w, "type");
      value_offsets_.push_back(pos_);
      auto [it, inserted] = reader_->metadata_index_.emplace(key, reader_->metadata_.size());
      if (!inserted) fail(w, "", key_at, "duplicate key (also metadata key #" + std::to_string(it->second) + ")");
      MetadataEntry& e = reader_->metadata_.emplace_back();
      e.key = std::move(key);
      value(type, w, e.value);
    }
  }

  void alignment() {
    auto it = reader_->metadata_index_.find("general.alignment");
    if (it == reader_->metadata_index_.end()) return;  // the default, 32
    const Value& v = reader_->metadata_[it->second].value;
    Where w{"metadata key #" + std::to_string(it->second) + " 'general.alignment'"};
    uint64_t at = value_offsets_[it->second];
    if (v.type != ValueType::kUint32) fail(w, "value", at, "must be uint32, found " + std::string(value_type_name(v.type)));
    uint64_t a = std::get<uint64_t>(v.data);
    if (!detail::is_power_of_two(a)) fail(w, "value", at, std::to_string(a) + " is not a nonzero power of two");
    reader_->alignment_ = a;
  }

  void directory() {
    reader_->tensors_.reserve(static_cast<size_t>(n_tensors_));
    offset_offsets_.reserve(static_cast<size_t>(n_tensors_));
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      Where w{"tensor #" + std::to_string(i)};
      TensorInfo t;
      uint64_t name_at = pos_;
      t.name = string(w, "name length");
      if (t.name.empty()) fail(w, "name", name_at, "empty tensor name");
      w.base = "tensor " + quoted(t.name);

      uint64_t at = pos_;
      uint32_t n_dims = load<uint32_t>(w, "n_dims");
      if (n_dims == 0 || n_dims > kMaxDims) fail(w, "n_dims", at, std::to_string(n_dims) + " is not in 1..4");
      for (uint32_t d = 0; d < n_dims; ++d) {
        std::string part = "ne[" + std::to_string(d) + "]";
        at = pos_;
        uint64_t ne = load<uint64_t>(w, part);
        if (ne == 0) fail(w, part, at, "dimension is 0");
        if (ne > static_cast<uint64_t>(INT64_MAX)) fail(w, part, at, std::to_string(ne) + " is negative as ggml's int64");
        t.ne.push_back(ne);
      }

      at = pos_;
      t.type_id = load<uint32_t>(w, "type");
      std::optional<TensorTypeGeometry> geo = tensor_type_geometry(t.type_id);
      if (!geo) fail(w, "type", at, "unknown ggml tensor type id " + std::to_string(t.type_id));
      const char* shape_problem = detail::check_shape(t.ne, *geo, &t.n_elements, &t.n_bytes);
      if (*shape_problem != '\0') fail(w, "shape", name_at, std::string(shape_problem) + " (type " + std::string(geo->name) + ")");

      at = pos_;
      t.offset = load<uint64_t>(w, "offset");
      if (t.offset % reader_->alignment_ != 0) {
        fail(w, "offset", at, std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(reader_->alignment_));
      }
      offset_offsets_.push_back(at);

      auto [it, inserted] = reader_->tensor_index_.emplace(t.name, reader_->tensors_.size());
      if (!inserted) fail(w, "name", name_at, "duplicate tensor name (also tensor #" + std::to_string(it->second) + ")");
      reader_->tensors_.push_back(std::move(t));
    }
  }

  // Places each tensor in the data section and checks that its bytes lie inside the file and
  // that no two tensors share bytes.
  void tensor_ranges() {
    std::optional<uint64_t> data_offset = detail::align_up(pos_, reader_->alignment_);
    if (!data_offset) fail(Where{"data section"}, "", pos_, "offset overflows when aligned");
    reader_->data_offset_ = *data_offset;
    auto& tensors = reader_->tensors_;
    for (size_t i = 0; i < tensors.size(); ++i) {
      TensorInfo& t = tensors[i];
      std::optional<uint64_t> begin = checked_add(*data_offset, t.offset);
      std::optional<uint64_t> end = begin ? checked_add(*begin, t.n_bytes) : std::nullopt;
      if (!end || *end > size_) {
        fail(Where{"tensor " + quoted(t.name)}, "offset", offset_offsets_[i],
             "data of " + std::to_string(t.n_bytes) + " bytes at data offset " + std::to_string(t.offset) +
                 " ends past the end of the file (" + std::to_string(size_) + " bytes)");
      }
      t.data = base_ + *begin;
    }
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const TensorInfo& prev = tensors[order[k - 1]];
      const TensorInfo& cur = tensors[order[k]];
      if (prev.offset + prev.n_bytes > cur.offset) {  // no overflow: both ranges are inside the file
        fail(Where{"tensor " + quoted(cur.name)}, "offset", offset_offsets_[order[k]],
             "data overlaps tensor " + quoted(prev.name));
      }
    }
  }

  std::shared_ptr<Reader> reader_;
  const std::byte* base_ = nullptr;
  uint64_t size_ = 0;  // bytes
  uint64_t pos_ = 0;   // bytes from the start of the file
  std::string path_;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  std::vector<uint64_t> value_offsets_;   // per metadata entry: where its value starts
  std::vector<uint64_t> offset_offsets_;  // per tensor: where its offset field is
};

namespace {

// The process-wide table of open files behind Reader::open: a file is identified by device and
// inode, with size and modification/change times (ns) so a file rewritten in place is a new
// entry. Entries are weak: the Reader (and its mapping) dies with its last user.
struct OpenKey {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  LoadMode mode = LoadMode::kMmap;
  auto operator<=>(const OpenKey&) const = default;
};

struct OpenFiles {
  std::mutex mu;
  std::map<OpenKey, std::weak_ptr<const Reader>> readers;
};

OpenFiles& open_files() {
  static OpenFiles files;
  return files;
}

std::optional<OpenKey> key_of(const std::string& path, LoadMode mode) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;  // open() reports it
  return OpenKey{.dev = static_cast<uint64_t>(st.st_dev), .ino = static_cast<uint64_t>(st.st_ino),
                 .size = static_cast<uint64_t>(st.st_size),
                 .mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
                 .ctime_ns = int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec, .mode = mode};
}

}  // namespace

std::shared_ptr<const Reader> Reader::open(const std::string& path, LoadMode mode) {
  const std::optional<OpenKey> key = key_of(path, mode);
  if (!key) return parse(FileBytes::open(path, mode));
  OpenFiles& files = open_files();
  {
    std::lock_guard<std::mutex> g(files.mu);
    if (auto it = files.readers.find(*key); it != files.readers.end()) {
      if (auto shared = it->second.lock()) return shared;
    }
  }
  // Parsed outside the lock (a large file takes a while); a racing open of the same file keeps
  // whichever Reader was registered first.
  std::shared_ptr<const Reader> fresh = parse(FileBytes::open(path, mode));
  std::lock_guard<std::mutex> g(files.mu);
  std::erase_if(files.readers, [](const auto& kv) { return kv.second.expired(); });
  auto [it, inserted] = files.readers.try_emplace(*key, fresh);
  if (!inserted) {
    if (auto shared = it->second.lock()) return shared;
    it->second = fresh;
  }
  return fresh;
}

size_t Reader::open_count() {
  OpenFiles& files = open_files();
  std::lock_guard<std::mutex> g(files.mu);
  return static_cast<size_t>(
      std::count_if(files.readers.begin(), files.readers.end(), [](const auto& kv) { return !kv.second.expired(); }));
}

std::shared_ptr<const Reader> Reader::parse(FileBytes bytes) { return Parser(std::move(bytes)).run(); }

// derived()'s bytes: carved 64-byte aligned from chunks of huge-page memory, so small matrices do
// not each leave a partly used 2 MiB page behind (only a chunk's last one is).
struct Reader::Derived {
  static constexpr size_t kChunkBytes = size_t{64} << 20;
  std::mutex mu;
  std::unordered_map<std::string, const std::byte*> index;
  std::vector<std::unique_ptr<std::byte, decltype(&std::free)>> chunks;
  std::byte* next = nullptr;
  size_t left = 0;
  size_t handed = 0;
};

Reader::Reader() : derived_(std::make_unique<Derived>()) {}
Reader::~Reader() = default;

const std::byte* Reader::derived(const std::string& key, size_t size,
                                 const std::function<void(std::byte*)>& make) const {
  Derived& d = *derived_;
  std::lock_guard<std::mutex> lock(d.mu);
  if (auto it = d.index.find(key); it != d.index.end()) return it->second;
  const size_t need = std::max<size_t>((size + 63) / 64 * 64, 64);
  if (need > d.left) {
    const size_t chunk = (std::max(need, Derived::kChunkBytes) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    std::unique_ptr<std::byte, decltype(&std::free)> block(alloc_huge_pages(chunk), &std::free);
    d.chunks.push_back(std::move(block));
    d.next = d.chunks.back().get();
    d.left = chunk;
  }
  std::byte* out = d.next;
  make(out);  // (a throw leaves the space unused and the key absent)
  d.next += need;
  d.left -= need;
  d.handed += need;
  d.index.emplace(key, out);
  return out;
}

size_t Reader::derived_bytes() const {
  std::lock_guard<std::mutex> lock(derived_->mu);
  return derived_->handed;
}

const Value* Reader::find(std::string_view key) const {
  auto it = metadata_index_.find(std::string(key));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

const TensorInfo* Reader::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

const Value& required(const Reader& r, std::string_view key) {
  const Value* v = r.find(key);
  if (v == nullptr) throw Error(ErrorKind::kNotFound, r.file().path() + ": metadata key " + quoted(key) + " not found");
  return *v;
}

std::string what(const Reader& r, std::string_view key) { return r.file().path() + ": metadata key " + quoted(key); }

}  // namespace

uint64_t Reader::get_uint(std::string_view key) const { return required(*this, key).as_uint(what(*this, key)); }
int64_t Reader::get_int(std::string_view key) const { return required(*this, key).as_int(what(*this, key)); }
double Reader::get_float(std::string_view key) const { return required(*this, key).as_float(what(*this, key)); }
bool Reader::get_bool(std::string_view key) const { return required(*this, key).as_bool(what(*this, key)); }

const std::string& Reader::get_string(std::string_view key) const {
  return required(*this, key).as_string(what(*this, key));
}

const Array& Reader::get_array(std::string_view key) const { return required(*this, key).as_array(what(*this, key)); }

std::optional<uint64_t> Reader::try_uint(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_uint(what(*this, key));
}

std::optional<int64_t> Reader::try_int(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_int(what(*this, key));
}

std::optional<double> Reader::try_float(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_float(what(*this, key));
}

std::optional<bool> Reader::try_bool(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_bool(what(*this, key));
}

std::optional<std::string> Reader::try_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_string(what(*this, key));
}

}  // namespace lightboat::gguf
