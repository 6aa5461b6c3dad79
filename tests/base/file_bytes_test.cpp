#include "base/file_bytes.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <cstring>
#include <fstream>

#include "base/error.h"

namespace lightboat {
namespace {

TEST(FileBytes, MmapAndReadGiveTheSameBytes) {
  const auto path = std::filesystem::temp_directory_path() / "lightboat_file_bytes_test.bin";
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 10000; ++i) out.put(static_cast<char>(i * 7));
  }
  FileBytes a = FileBytes::open(path.string(), LoadMode::kMmap);
  FileBytes b = FileBytes::open(path.string(), LoadMode::kRead);
  ASSERT_EQ(a.size(), 10000u);
  ASSERT_EQ(b.size(), 10000u);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u) << "read mode is 64-byte aligned";
  FileBytes moved = std::move(a);
  EXPECT_EQ(moved.size(), 10000u);
  EXPECT_EQ(a.size(), 0u);
  std::filesystem::remove(path);
}

TEST(FileBytes, MissingFileAndDirectoryAreClearErrors) {
  try {
    FileBytes::open("/nonexistent/model.gguf");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
  EXPECT_THROW(FileBytes::open("/tmp"), Error);
}

TEST(FileBytes, EmptyFileIsAnEmptySpan) {
  const auto path = std::filesystem::temp_directory_path() / "lightboat_empty_test.bin";
  { std::ofstream out(path, std::ios::binary); }
  FileBytes f = FileBytes::open(path.string());
  EXPECT_EQ(f.size(), 0u);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace lightboat
