// Writer → bytes/file → Reader gives back every key, value, shape, type, offset and data byte;
// typed getters and conversions behave as documented; the writer rejects bad input.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <unistd.h>

#include "sample.h"

namespace lightboat::gguf {
namespace {

using testing::parse_bytes;
using testing::same_value;
using testing::sample_tensors;
using testing::sample_writer;

void expect_matches_writer(const Writer& w, const Reader& r) {
  EXPECT_EQ(r.version(), 3u);
  ASSERT_EQ(r.metadata().size(), w.metadata().size());
  for (size_t i = 0; i < w.metadata().size(); ++i) {
    EXPECT_EQ(r.metadata()[i].key, w.metadata()[i].key);
    EXPECT_TRUE(same_value(r.metadata()[i].value, w.metadata()[i].value)) << w.metadata()[i].key;
  }
  const auto expected = sample_tensors();
  ASSERT_EQ(r.tensors().size(), expected.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const TensorInfo& t = r.tensors()[i];
    EXPECT_EQ(t.name, expected[i].name);
    EXPECT_EQ(t.ne, expected[i].ne);
    EXPECT_EQ(t.type_id, expected[i].type_id);
    EXPECT_EQ(t.offset, offset) << t.name;
    EXPECT_EQ(t.offset % r.alignment(), 0u);
    ASSERT_EQ(t.n_bytes, expected[i].data.size()) << t.name;
    EXPECT_EQ(std::memcmp(t.data, expected[i].data.data(), t.n_bytes), 0) << t.name;
    EXPECT_EQ(t.data, r.file().data() + r.data_offset() + t.offset);
    EXPECT_EQ(r.find_tensor(t.name), &t);
    offset += (t.n_bytes + r.alignment() - 1) / r.alignment() * r.alignment();
  }
  EXPECT_EQ(r.data_offset() % r.alignment(), 0u);
  EXPECT_EQ(r.data_offset() + offset, r.file().size());  // the last tensor is padded too
}

TEST(GgufRoundTrip, EveryValueTypeAndTensor) {
  Writer w = sample_writer();
  auto r = parse_bytes(w.to_bytes());
  EXPECT_EQ(r->alignment(), 32u);
  expect_matches_writer(w, *r);

  EXPECT_EQ(r->get_string("general.architecture"), "llama");
  EXPECT_EQ(r->get_string("general.name").size(), 22u);  // embedded NUL kept
  EXPECT_EQ(r->get_uint("llama.block_count"), 5u);
  EXPECT_EQ(r->get_int("test.i8"), -128);
  EXPECT_EQ(r->get_int("test.i64"), INT64_MIN);
  EXPECT_EQ(r->get_uint("test.u64"), 0xFEDCBA9876543210ull);
  EXPECT_EQ(r->get_float("test.f32"), 1.5);
  EXPECT_EQ(r->get_float("test.f64"), 3.141592653589793);
  EXPECT_TRUE(r->get_bool("test.true"));
  EXPECT_FALSE(r->get_bool("test.false"));
  const Array& tokens = r->get_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.items.size(), 5u);
  EXPECT_EQ(tokens.elem_type, ValueType::kString);
  EXPECT_EQ(tokens.items[3].as_string("t"), "\xe2\x96\x81hello");
  EXPECT_EQ(tokens.items[2].as_string("t"), "");
  const Array& nested = r->get_array("test.nested");
  ASSERT_EQ(nested.items.size(), 3u);
  EXPECT_EQ(nested.items[0].as_array("n").items[1].as_int("n"), 2);
  EXPECT_TRUE(nested.items[1].as_array("n").items.empty());
  EXPECT_EQ(nested.items[1].as_array("n").elem_type, ValueType::kInt16);
  const Array& empty = r->get_array("test.empty_u64_array");
  EXPECT_EQ(empty.elem_type, ValueType::kUint64);
  EXPECT_TRUE(empty.items.empty());
  const Value& deep = r->get_array("test.nested3").items[0].as_array("n").items[0];
  EXPECT_EQ(deep.as_array("n").items[4].as_string("n"), "world");
}

TEST(GgufRoundTrip, AlignmentIsHonoured) {
  for (uint32_t align : {1u, 8u, 64u, 4096u}) {
    Writer w = sample_writer(align);
    auto r = parse_bytes(w.to_bytes());
    EXPECT_EQ(r->alignment(), align);
    expect_matches_writer(w, *r);
  }
}

// Reader::derived: made once per key (from any thread), 64-byte aligned, kept with the Reader.
TEST(GgufReader, DerivedBytesAreMadeOncePerKeyAndShared) {
  auto r = parse_bytes(sample_writer().to_bytes());
  EXPECT_EQ(r->derived_bytes(), 0u);
  std::atomic<int> made{0};
  auto fill = [&](std::byte v) {
    return [&made, v](std::byte* out) {
      ++made;
      std::memset(out, static_cast<int>(v), 1000);
    };
  };
  std::vector<const std::byte*> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] { got[i] = r->derived("a", 1000, fill(std::byte{7})); });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(made.load(), 1);
  for (const std::byte* p : got) EXPECT_EQ(p, got[0]);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(got[0]) % 64, 0u);
  const std::byte* b = r->derived("b", 100, fill(std::byte{9}));
  EXPECT_NE(b, got[0]);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 64, 0u);
  EXPECT_EQ(made.load(), 2);
  EXPECT_EQ(got[0][999], std::byte{7});  // b did not overlap a
  EXPECT_EQ(b[0], std::byte{9});
  EXPECT_EQ(r->derived_bytes(), 1024u + 128u);
  // A maker that throws leaves the key absent: the next call makes it.
  EXPECT_THROW(r->derived("c", 10, [](std::byte*) { throw Error(ErrorKind::kIo, "no"); }), Error);
  EXPECT_EQ(r->derived("c", 10, fill(std::byte{1}))[0], std::byte{1});
  // Larger than a chunk: its own block.
  const std::byte* big =
      r->derived("big", size_t{65} << 20, [](std::byte* out) { out[(size_t{65} << 20) - 1] = std::byte{3}; });
  EXPECT_EQ(big[(size_t{65} << 20) - 1], std::byte{3});
}

TEST(GgufRoundTrip, WriteFileMatchesToBytesInBothLoadModes) {
  Writer w = sample_writer(64);
  auto dir = std::filesystem::temp_directory_path() / ("lb_gguf_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "sample.gguf").string();
  w.write_file(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::vector<std::byte> expected = w.to_bytes();
  for (LoadMode mode : {LoadMode::kMmap, LoadMode::kMmapHuge, LoadMode::kRead}) {
    auto r = Reader::open(path, mode);
    EXPECT_EQ(r->file().mode(), mode);
    ASSERT_EQ(r->file().size(), expected.size());
    EXPECT_EQ(std::memcmp(r->file().data(), expected.data(), expected.size()), 0);
    expect_matches_writer(w, *r);
  }
  // Overwriting goes through the temporary file too.
  w.write_file(path);
  EXPECT_EQ(std::filesystem::file_size(path), expected.size());
  std::filesystem::remove_all(dir);
}

TEST(GgufRoundTrip, WriterCopiesReadMetadataAndBorrowedTensors) {
  Writer w = sample_writer();
  auto r = parse_bytes(w.to_bytes());
  Writer copy;
  for (const MetadataEntry& e : r->metadata()) copy.set(e.key, e.value);
  for (const TensorInfo& t : r->tensors()) copy.add_tensor_borrowed(t.name, t.ne, t.type_id, {t.data, t.n_bytes});
  EXPECT_EQ(copy.to_bytes(), w.to_bytes());
}

TEST(GgufRoundTrip, SetReplacesInPlaceAndRemove) {
  Writer w;
  w.set_uint32("a", 1);
  w.set_string("b", "x");
  w.set_uint32("a", 2);
  ASSERT_EQ(w.metadata().size(), 2u);
  EXPECT_EQ(w.metadata()[0].key, "a");
  EXPECT_EQ(w.find("a")->as_uint("a"), 2u);
  EXPECT_TRUE(w.remove("a"));
  EXPECT_FALSE(w.remove("a"));
  EXPECT_EQ(w.find("a"), nullptr);
  auto r = parse_bytes(w.to_bytes());
  EXPECT_EQ(r->metadata().size(), 1u);
  EXPECT_EQ(r->tensors().size(), 0u);
}

TEST(GgufRoundTrip, GettersReportMissingKeysAndWrongTypes) {
  auto r = parse_bytes(sample_writer().to_bytes());
  try {
    r->get_uint("no.such.key");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("no.such.key"), std::string::npos);
  }
  try {
    r->get_uint("general.architecture");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat);
    EXPECT_NE(std::string(e.what()).find("general.architecture"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("string"), std::string::npos);
  }
  EXPECT_THROW(r->get_uint("test.i8"), Error);              // negative
  EXPECT_THROW(r->get_int("test.u64"), Error);              // above INT64_MAX
  EXPECT_THROW(r->get_bool("test.u8"), Error);
  EXPECT_THROW(r->get_string("test.arr_u8"), Error);
  EXPECT_THROW(r->get_array("test.f32"), Error);
  EXPECT_EQ(r->get_float("llama.block_count"), 5.0);       // integers widen to float
  EXPECT_FALSE(r->try_uint("missing").has_value());
  EXPECT_FALSE(r->try_string("missing").has_value());
  EXPECT_FALSE(r->try_int("missing").has_value());
  EXPECT_FALSE(r->try_float("missing").has_value());
  EXPECT_FALSE(r->try_bool("missing").has_value());
  EXPECT_EQ(r->try_uint("llama.block_count"), 5u);
  EXPECT_EQ(r->try_string("general.architecture"), "llama");
  EXPECT_EQ(r->try_bool("test.true"), true);
  EXPECT_EQ(r->try_int("test.i16"), -32768);
  EXPECT_THROW(r->try_uint("general.architecture"), Error);  // present but unfitting
  EXPECT_EQ(r->find("missing"), nullptr);
  EXPECT_EQ(r->find_tensor("missing"), nullptr);
}

TEST(GgufRoundTrip, WriterRejectsBadInput) {
  auto expect_invalid = [](auto&& fn) {
    try {
      fn();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    }
  };
  expect_invalid([] { make_uint(ValueType::kUint8, 256); });
  expect_invalid([] { make_uint(ValueType::kInt32, 1); });
  expect_invalid([] { make_int(ValueType::kInt16, 40000); });
  expect_invalid([] { make_float(ValueType::kUint32, 1.0); });
  expect_invalid([] { make_array(ValueType::kUint8, {make_int(ValueType::kInt8, 1)}); });
  expect_invalid([] { Writer().set("", make_bool(true)); });
  expect_invalid([] { Writer().set("k", Value{ValueType::kUint16, std::string("not a number")}); });
  expect_invalid([] { Writer().set_alignment(48); });
  expect_invalid([] { Writer().set_alignment(0); });
  expect_invalid([] { Writer().set("general.alignment", make_uint(ValueType::kUint64, 64)); });
  std::vector<std::byte> f32x4(16);
  expect_invalid([&] { Writer().add_tensor("t", {4}, 99, f32x4); });       // unknown type
  expect_invalid([&] { Writer().add_tensor("t", {5}, 0, f32x4); });        // size mismatch
  expect_invalid([&] { Writer().add_tensor("t", {}, 0, f32x4); });         // no dims
  expect_invalid([&] { Writer().add_tensor("t", {4, 0}, 0, f32x4); });     // zero dim
  expect_invalid([&] { Writer().add_tensor("t", {1, 1, 1, 1, 4}, 0, f32x4); });
  expect_invalid([&] { Writer().add_tensor("t", {16}, 8, f32x4); });       // not whole Q8_0 blocks
  expect_invalid([&] { Writer().add_tensor("", {4}, 0, f32x4); });
  expect_invalid([&] {
    Writer w;
    w.add_tensor("t", {4}, 0, f32x4);
    w.add_tensor("t", {4}, 0, f32x4);
  });
  // Deep nesting beyond what the reader accepts.
  expect_invalid([] {
    Value v = make_array(ValueType::kUint8, {});
    for (int i = 0; i < 9; ++i) v = make_array(ValueType::kArray, {v});
    Writer().set("deep", v);
  });
}

TEST(GgufRoundTrip, Version2IsAcceptedVersion1IsNot) {
  std::vector<std::byte> bytes = sample_writer().to_bytes();
  bytes[4] = std::byte{2};
  EXPECT_EQ(parse_bytes(bytes)->version(), 2u);
  bytes[4] = std::byte{1};
  try {
    parse_bytes(bytes);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat);
    EXPECT_NE(std::string(e.what()).find("version 1 "), std::string::npos) << e.what();
  }
}

TEST(GgufRoundTrip, OpenReportsMissingFile) {
  try {
    Reader::open("/nonexistent/dir/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
}

}  // namespace
}  // namespace lightboat::gguf
