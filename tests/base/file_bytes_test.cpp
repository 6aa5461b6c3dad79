#include "base/file_bytes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

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

// Over 64 MiB, read mode splits the file between threads on 2 MiB boundaries, and kMmapHuge moves
// its pieces with several threads: a size that is not a multiple of 2 MiB, with every 4-byte word
// distinct, must come back whole and in place.
TEST(FileBytes, LargeFileReadOrMovedByThreadsIsExact) {
  const auto path = std::filesystem::temp_directory_path() / "lightboat_file_bytes_large_test.bin";
  constexpr size_t kWords = (size_t{70} << 20) / 4 + 12345;
  {
    std::vector<uint32_t> words(kWords);
    for (size_t i = 0; i < kWords; ++i) words[i] = static_cast<uint32_t>(i * 2654435761u);
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(words.data()), static_cast<std::streamsize>(kWords * 4));
    out.put('x');  // and one byte past the last word
  }
  FileBytes a = FileBytes::open(path.string(), LoadMode::kMmap);
  FileBytes b = FileBytes::open(path.string(), LoadMode::kRead);
  ASSERT_EQ(b.size(), kWords * 4 + 1);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % (size_t{2} << 20), 0u) << "read mode is 2 MiB aligned";
  // Mapped, then its 35 whole 2 MiB pieces moved onto huge pages by a background thread (where
  // Linux has transparent huge pages; elsewhere a plain mapping): the same bytes, the tail
  // included. Two threads read it over and over, from just after open() to after the move; how
  // many of their passes overlapped the move is printed (it depends on the machine's timing).
  FileBytes c = FileBytes::open(path.string(), LoadMode::kMmapHuge);
  ASSERT_EQ(c.size(), a.size());
  EXPECT_EQ(c.mode(), LoadMode::kMmapHuge);
  std::atomic<bool> stop{false}, move_done{false};
  std::atomic<int> mismatches{0}, passes{0}, during_move{0};
  auto reader = [&] {
    while (!stop.load()) {
      const bool started_during_move = !move_done.load();
      if (std::memcmp(a.data(), c.data(), a.size()) != 0) ++mismatches;
      ++passes;
      if (started_during_move) ++during_move;
    }
  };
  std::thread r1(reader), r2(reader);
  const size_t moved = c.wait_for_huge_pages();
  move_done = true;
  while (passes.load() < 4) std::this_thread::yield();
  stop = true;
  r1.join();
  r2.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_TRUE(moved == 0 || moved == c.size() / (size_t{2} << 20)) << moved;  // none (no THP) or all
  std::fprintf(stderr, "kMmapHuge: %zu of %zu pieces moved; %d reads, %d of them begun during the move\n", moved,
               c.size() / (size_t{2} << 20), passes.load(), during_move.load());
  FileBytes d = std::move(c);
  EXPECT_EQ(std::memcmp(a.data(), d.data(), a.size()), 0);
  // Destroyed while moving: the mover stops first (ASan / the next test would see a use after unmap).
  {
    FileBytes e = FileBytes::open(path.string(), LoadMode::kMmapHuge);
    e.start_huge_page_move();
  }
  std::filesystem::remove(path);
}

// Pages of [p, p + n) mapped in this process now (/proc/self/pagemap's "present" bit; mincore
// would count the file's pages in the page cache instead). SIZE_MAX where pagemap is unreadable.
size_t present_pages(const std::byte* p, size_t n) {
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) / page;
  const uintptr_t last = (reinterpret_cast<uintptr_t>(p) + n + page - 1) / page;
  std::ifstream pagemap("/proc/self/pagemap", std::ios::binary);
  if (!pagemap) return SIZE_MAX;
  pagemap.seekg(static_cast<std::streamoff>(first * 8));
  std::vector<uint64_t> entries(last - first);
  if (!pagemap.read(reinterpret_cast<char*>(entries.data()), static_cast<std::streamsize>(entries.size() * 8))) {
    return SIZE_MAX;
  }
  size_t count = 0;
  for (uint64_t e : entries) count += e >> 63;
  return count;
}

// discard(): the bytes stay readable (a mapping faults them in from the file again), and the move
// onto huge pages skips the pieces mostly discarded before it starts, and maps from the file again
// those mostly discarded after it moved them; read mode keeps its bytes.
TEST(FileBytes, DiscardedBytesStayReadableAndTheMoveSkipsThem) {
  const auto path = std::filesystem::temp_directory_path() / "lightboat_file_bytes_discard_test.bin";
  constexpr size_t kPiece = size_t{2} << 20;
  constexpr size_t kSize = 12 * kPiece + 777;
  std::vector<std::byte> want(kSize);
  for (size_t i = 0; i < kSize; ++i) want[i] = static_cast<std::byte>(i * 2654435761u >> 24);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(want.data()), static_cast<std::streamsize>(kSize));
  }
  // Pieces 2..4 whole plus a bit; piece 8 a third (under half: still moved); the tail.
  auto discard_some = [&](const FileBytes& f) {
    f.discard(2 * kPiece - 100, 3 * kPiece + 5000);
    f.discard(8 * kPiece + 1000, kPiece / 3);
    f.discard(12 * kPiece, 777);
    f.discard(kSize - 10, 1000);  // past the end: clipped
    f.discard(kSize + 10, 10);    // outside: nothing
  };
  {
    FileBytes before = FileBytes::open(path.string(), LoadMode::kMmapHuge);
    ASSERT_EQ(std::memcmp(before.data(), want.data(), kSize), 0);  // every page touched once
    discard_some(before);
    const size_t present = present_pages(before.data() + 2 * kPiece, 3 * kPiece);
    if (present != SIZE_MAX) {
      EXPECT_LT(present, 4u) << "discarded pages were given back";
    }
    const size_t moved = before.wait_for_huge_pages();
    EXPECT_TRUE(moved == 0 || moved == 12 - 3) << moved;  // (none where Linux has no THP)
    EXPECT_EQ(std::memcmp(before.data(), want.data(), kSize), 0);
  }
  {
    FileBytes after = FileBytes::open(path.string(), LoadMode::kMmapHuge);
    const size_t moved = after.wait_for_huge_pages();
    EXPECT_TRUE(moved == 0 || moved == 12) << moved;
    discard_some(after);
    const size_t present = present_pages(after.data() + 2 * kPiece, 3 * kPiece);
    if (present != SIZE_MAX) {
      EXPECT_LT(present, 4u) << "moved pieces mapped from the file again";
    }
    EXPECT_EQ(std::memcmp(after.data(), want.data(), kSize), 0);
  }
  for (LoadMode mode : {LoadMode::kMmap, LoadMode::kRead}) {
    FileBytes f = FileBytes::open(path.string(), mode);
    ASSERT_EQ(std::memcmp(f.data(), want.data(), kSize), 0);
    discard_some(f);
    EXPECT_EQ(std::memcmp(f.data(), want.data(), kSize), 0) << (mode == LoadMode::kRead ? "read" : "mmap");
  }
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
