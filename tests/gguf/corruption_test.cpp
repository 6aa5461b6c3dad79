// A corpus of broken files made from valid ones: truncated at every offset of the header,
// metadata and directory (and a sampling of the data), every count, length, dimension, type id,
// offset and the alignment overwritten with hostile values, value types swapped, random bytes
// flipped. Each must throw lightboat::Error(kFormat) naming an offset — never crash, hang or
// allocate more than a small multiple of the file size.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "alloc_guard.h"
#include "fixtures.h"
#include "sample.h"

namespace lightboat::gguf {
namespace {

using testing::parse_bytes;
using Bytes = std::vector<std::byte>;

// Where a field of a valid file lies, found by an independent walk of the format (kept naive on
// purpose: it only ever sees valid files).
enum class Kind { kNTensors, kNKv, kKeyLength, kValueType, kStringLength, kElemType, kArrayCount,
                  kNameLength, kNDims, kDim, kTensorType, kTensorOffset, kAlignment };

struct Field {
  Kind kind;
  size_t offset;  // bytes
  size_t size;    // 4 or 8
  std::string label;
};

class Walker {
 public:
  explicit Walker(const Bytes& b) : b_(b) {}

  std::vector<Field> walk() {
    pos_ = 8;
    uint64_t n_tensors = u64(Kind::kNTensors, "n_tensors");
    uint64_t n_kv = u64(Kind::kNKv, "n_kv");
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string key = str(Kind::kKeyLength, "key length");
      uint32_t type = u32(Kind::kValueType, key + " type");
      if (key == "general.alignment") fields_.push_back({Kind::kAlignment, pos_, 4, "alignment"});
      value(type, key);
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      std::string name = str(Kind::kNameLength, "name length");
      uint32_t n_dims = u32(Kind::kNDims, name + " n_dims");
      for (uint32_t d = 0; d < n_dims; ++d) u64(Kind::kDim, name + " ne");
      u32(Kind::kTensorType, name + " type");
      u64(Kind::kTensorOffset, name + " offset");
    }
    return fields_;
  }

 private:
  template <typename T>
  T raw() {
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  uint32_t u32(Kind k, std::string label) {
    fields_.push_back({k, pos_, 4, std::move(label)});
    return raw<uint32_t>();
  }
  uint64_t u64(Kind k, std::string label) {
    fields_.push_back({k, pos_, 8, std::move(label)});
    return raw<uint64_t>();
  }
  std::string str(Kind k, std::string label) {
    uint64_t n = u64(k, std::move(label));
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void value(uint32_t type, const std::string& key) {
    switch (static_cast<ValueType>(type)) {
      case ValueType::kString: str(Kind::kStringLength, key + " string length"); break;
      case ValueType::kArray: {
        uint32_t elem = u32(Kind::kElemType, key + " element type");
        uint64_t n = u64(Kind::kArrayCount, key + " array count");
        for (uint64_t i = 0; i < n; ++i) value(elem, key);
        break;
      }
      default: pos_ += value_type_size(static_cast<ValueType>(type));
    }
  }

  const Bytes& b_;
  size_t pos_ = 0;
  std::vector<Field> fields_;
};

void put(Bytes& b, const Field& f, uint64_t v) {
  if (f.size == 4) {
    uint32_t x = static_cast<uint32_t>(v);
    std::memcpy(b.data() + f.offset, &x, 4);
  } else {
    std::memcpy(b.data() + f.offset, &v, 8);
  }
}

uint64_t get(const Bytes& b, const Field& f) {
  uint64_t v = 0;
  std::memcpy(&v, b.data() + f.offset, f.size);
  return v;
}

// The bytes a hostile parse may hold at once: the Values a file's bytes expand into (one per
// byte at worst) plus a fixed allowance.
size_t allocation_budget(size_t file_size) { return 64 * file_size + (size_t{1} << 20); }

// Parses `bytes`; true when it parsed, false when it threw Error(kFormat) naming an offset.
// Any other outcome is a test failure.
bool parse_outcome(const Bytes& bytes, const std::string& label) {
  ::lightboat::testing::reset_largest_allocation();
  bool parsed = false;
  try {
    parse_bytes(bytes);
    parsed = true;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat) << label << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(" at offset "), std::string::npos) << label << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": threw a non-lightboat exception: " << e.what();
  }
  if (::lightboat::testing::alloc_guard_active()) {
    EXPECT_LE(::lightboat::testing::largest_allocation(), allocation_budget(bytes.size())) << label;
  }
  return parsed;
}

void expect_format_error(const Bytes& bytes, const std::string& label) {
  EXPECT_FALSE(parse_outcome(bytes, label)) << label << ": parsed without error";
}

// End of the last tensor's data: truncating at or after it leaves a valid file.
size_t data_end(const Bytes& bytes) {
  auto r = parse_bytes(bytes);
  size_t end = r->data_offset();
  for (const TensorInfo& t : r->tensors()) end = std::max<size_t>(end, r->data_offset() + t.offset + t.n_bytes);
  return end;
}

// Truncates `good` at every offset of the header, metadata and directory (with `head_stride`
// > 1: every offset of the first and last `dense` bytes of that region and every
// head_stride-th one between), then in the data at every data_stride-th offset and one byte
// before the end of each tensor.
void truncations(const Bytes& good, size_t head_stride, size_t dense, size_t data_stride) {
  auto r = parse_bytes(good);
  const size_t head = r->data_offset();
  std::vector<size_t> cuts;
  for (size_t n = 0; n < head;) {
    cuts.push_back(n);
    n += (n < dense || n + dense >= head) ? 1 : head_stride;
  }
  for (size_t n = head; n < good.size(); n += data_stride) cuts.push_back(n);
  for (const TensorInfo& t : r->tensors()) cuts.push_back(head + t.offset + t.n_bytes - 1);
  const size_t end = data_end(good);
  for (size_t n : cuts) {
    if (n >= end) continue;  // only padding is lost: still a valid file
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    expect_format_error(cut, "truncated at " + std::to_string(n));
    if (::testing::Test::HasFailure()) return;  // one report is enough
  }
}

// Overwrites every field (or every field_stride-th one, always including the header counts and
// the alignment) with hostile values.
void hostile_values(const Bytes& good, size_t field_stride = 1) {
  const uint64_t size = good.size();
  size_t index = 0;
  const std::vector<uint64_t> huge64 = {~0ull, 1ull << 63, 1ull << 60, (1ull << 32) + 5, size + 1, size * 8};
  const std::vector<uint64_t> huge32 = {0xFFFFFFFFu, 0x80000000u, 13, 1000};
  for (const Field& f : Walker(good).walk()) {
    bool always = f.kind == Kind::kNTensors || f.kind == Kind::kNKv || f.kind == Kind::kAlignment;
    if (!always && index++ % field_stride != 0) continue;
    std::vector<uint64_t> must_fail;
    switch (f.kind) {
      case Kind::kNTensors:
      case Kind::kNKv:
      case Kind::kKeyLength:
      case Kind::kStringLength:
      case Kind::kArrayCount:
      case Kind::kNameLength: must_fail = huge64; break;
      case Kind::kValueType:
      case Kind::kElemType: must_fail = huge32; break;
      case Kind::kNDims: must_fail = {0, 5, 0xFFFFFFFFu}; break;
      case Kind::kDim: must_fail = {0, ~0ull, 1ull << 63, 1ull << 62, 1ull << 40, size * 4}; break;
      case Kind::kTensorType: must_fail = {4, 31, 36, 43, 1000, 0xFFFFFFFFu}; break;
      case Kind::kTensorOffset: {
        uint64_t v = get(good, f);
        must_fail = {v + 1, ~0ull, ~0ull & ~uint64_t{31}, 1ull << 62, (size + 31) / 32 * 32};
        break;
      }
      case Kind::kAlignment: must_fail = {0, 3, 48, 0x80000000u}; break;
    }
    for (uint64_t v : must_fail) {
      Bytes bad = good;
      put(bad, f, v);
      expect_format_error(bad, f.label + " at " + std::to_string(f.offset) + " := " + std::to_string(v));
    }
    // Any other value type must parse or fail cleanly (the same bytes read as another type).
    if (f.kind == Kind::kValueType || f.kind == Kind::kElemType) {
      for (uint64_t t = 0; t <= 12; ++t) {
        Bytes bad = good;
        put(bad, f, t);
        parse_outcome(bad, f.label + " := type " + std::to_string(t));
      }
    }
  }
}

void random_flips(const Bytes& good, size_t n, uint32_t seed) {
  size_t head = parse_bytes(good)->data_offset();
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; ++i) {
    Bytes bad = good;
    for (int k = 0; k < 3; ++k) {
      size_t at = rng() % head;
      bad[at] = static_cast<std::byte>(rng());
    }
    parse_outcome(bad, "random bytes, round " + std::to_string(i));
  }
}

Bytes sample_bytes() { return testing::sample_writer().to_bytes(); }

Bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  Bytes b(std::filesystem::file_size(p));
  in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return b;
}

TEST(GgufCorruption, TruncationsOfGeneratedFile) { truncations(sample_bytes(), 1, 0, 7); }

TEST(GgufCorruption, HostileValuesInGeneratedFile) { hostile_values(sample_bytes()); }

TEST(GgufCorruption, HostileAlignmentInGeneratedFile) {
  Bytes good = testing::sample_writer(64).to_bytes();
  size_t alignment_fields = 0;
  for (const Field& f : Walker(good).walk()) alignment_fields += f.kind == Kind::kAlignment;
  EXPECT_EQ(alignment_fields, 1u);
  hostile_values(good);
}

TEST(GgufCorruption, AlignmentOfWrongTypeIsRejected) {
  Bytes good = testing::sample_writer(64).to_bytes();
  for (const Field& f : Walker(good).walk()) {
    if (f.kind != Kind::kValueType || f.label != "general.alignment type") continue;
    for (ValueType t : {ValueType::kInt32, ValueType::kFloat32}) {  // same width, wrong type
      Bytes bad = good;
      put(bad, f, static_cast<uint32_t>(t));
      expect_format_error(bad, "general.alignment as " + std::string(value_type_name(t)));
    }
    return;
  }
  FAIL() << "general.alignment not found";
}

TEST(GgufCorruption, RandomBytesInGeneratedFile) { random_flips(sample_bytes(), 3000, 1234); }

TEST(GgufCorruption, ErrorsNameFieldAndOffset) {
  Bytes good = sample_bytes();
  for (const Field& f : Walker(good).walk()) {
    if (f.kind == Kind::kStringLength && f.label == "general.name string length") {
      Bytes bad = good;
      put(bad, f, 1ull << 60);
      try {
        parse_bytes(bad);
        FAIL();
      } catch (const Error& e) {
        std::string m = e.what();
        EXPECT_NE(m.find("'general.name'"), std::string::npos) << m;
        EXPECT_NE(m.find("at offset " + std::to_string(f.offset)), std::string::npos) << m;
      }
    }
    if (f.kind == Kind::kTensorType && f.label == "blk.0.attn_q.weight type") {
      Bytes bad = good;
      put(bad, f, 77);
      try {
        parse_bytes(bad);
        FAIL();
      } catch (const Error& e) {
        std::string m = e.what();
        EXPECT_NE(m.find("tensor 'blk.0.attn_q.weight' type at offset " + std::to_string(f.offset)), std::string::npos) << m;
        EXPECT_NE(m.find("77"), std::string::npos) << m;
      }
    }
  }
}

TEST(GgufCorruption, DuplicatesAreRejected) {
  // Two keys / two tensors with the same name can only come from a hand-edited file: rename the
  // second one in place to the first one's name (same length).
  Writer w;
  w.set_uint32("key.a", 1);
  w.set_uint32("key.b", 2);
  std::vector<std::byte> four(4);
  w.add_tensor("ta", {1}, 0, four);
  w.add_tensor("tb", {1}, 0, four);
  Bytes good = w.to_bytes();
  Bytes dup_key = good, dup_tensor = good;
  auto replace = [](Bytes& b, std::string_view from, std::string_view to) {
    std::string_view s(reinterpret_cast<const char*>(b.data()), b.size());
    size_t at = s.find(from);
    ASSERT_NE(at, std::string_view::npos);
    std::memcpy(b.data() + at, to.data(), to.size());
  };
  replace(dup_key, "key.b", "key.a");
  replace(dup_tensor, "tb", "ta");
  expect_format_error(dup_key, "duplicate key");
  expect_format_error(dup_tensor, "duplicate tensor");
}

TEST(GgufCorruption, OverlappingTensorsAreRejected) {
  Writer w;
  std::vector<std::byte> data(64);
  w.add_tensor("a", {16}, 0, data);
  w.add_tensor("b", {16}, 0, data);
  Bytes good = w.to_bytes();
  for (const Field& f : Walker(good).walk()) {
    if (f.kind == Kind::kTensorOffset && get(good, f) != 0) {
      Bytes bad = good;
      put(bad, f, 32);  // aligned, inside the file, but inside tensor a
      expect_format_error(bad, "overlap");
    }
  }
}

TEST(GgufCorruption, BadMagicAndTinyFiles) {
  expect_format_error({}, "empty");
  Bytes good = sample_bytes();
  Bytes bad = good;
  bad[0] = std::byte{'X'};
  expect_format_error(bad, "magic");
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    bad = good;
    std::memcpy(bad.data() + 4, &v, 4);
    expect_format_error(bad, "version " + std::to_string(v));
  }
}

TEST(GgufCorruption, NestingDepthIsBounded) {
  // 9 levels of array nesting: one more than the reader allows. Built by hand, because the
  // writer refuses it.
  Bytes b;
  auto put_bytes = [&](const void* p, size_t n) {
    const auto* c = static_cast<const std::byte*>(p);
    b.insert(b.end(), c, c + n);
  };
  auto u32 = [&](uint32_t v) { put_bytes(&v, 4); };
  auto u64 = [&](uint64_t v) { put_bytes(&v, 8); };
  put_bytes("GGUF", 4);
  u32(3);
  u64(0);
  u64(1);
  u64(1);
  put_bytes("k", 1);
  u32(9);
  for (int i = 0; i < 9; ++i) {
    u32(9);  // element type: array
    u64(1);
  }
  u32(9);
  u64(0);
  expect_format_error(b, "deep nesting");
}

// The llama.cpp-made stories260K Q8_0 file, sampled: its 14 KB of metadata (a 512-token
// vocabulary) and directory would take seconds to corrupt exhaustively.
Bytes stories_bytes() {
  auto path = ::lightboat::testing::fixtures_dir() / "stories260K" / "stories260K-Q8_0.gguf";
  return std::filesystem::exists(path) ? read_file(path) : Bytes{};
}

TEST(GgufCorruption, TruncationsOfStoriesFixture) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  truncations(stories_bytes(), 97, 256, 32749);
}

TEST(GgufCorruption, HostileValuesInStoriesFixture) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  hostile_values(stories_bytes(), 23);
}

TEST(GgufCorruption, RandomBytesInStoriesFixture) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  random_flips(stories_bytes(), 200, 99);
}

}  // namespace
}  // namespace lightboat::gguf
