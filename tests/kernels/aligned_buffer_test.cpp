// The kernels' per-thread scratch buffer (kernels/aligned_buffer.h): 64-byte aligned, reused while
// big enough, grown when not, empty (nullptr) when a size cannot be allocated.
#include "kernels/aligned_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

namespace lightboat::kernels::detail {
namespace {

TEST(AlignedBuffer, IsAlignedReusedWhileBigEnoughAndGrown) {
  AlignedBuffer b;
  std::byte* first = b.get(100);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
  std::memset(first, 0x5a, 100);  // all 100 bytes are writable
  EXPECT_EQ(b.get(1), first);
  EXPECT_EQ(b.get(100), first);
  std::byte* grown = b.get(size_t{1} << 20);
  ASSERT_NE(grown, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(grown) % 64, 0u);
  std::memset(grown, 0x5a, size_t{1} << 20);
  float* f = b.get_floats(1000);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(reinterpret_cast<std::byte*>(f), grown);  // 4000 bytes fit in what it has
}

TEST(AlignedBuffer, ASizeItCannotAllocateGivesNullAndEmpties) {
  AlignedBuffer b;
  ASSERT_NE(b.get(64), nullptr);
  EXPECT_EQ(b.get(SIZE_MAX), nullptr);
  EXPECT_EQ(b.get(SIZE_MAX - 10), nullptr);
  EXPECT_EQ(b.get_floats(SIZE_MAX / 2), nullptr);
  std::byte* again = b.get(64);  // usable again afterwards
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again) % 64, 0u);
}

}  // namespace
}  // namespace lightboat::kernels::detail
