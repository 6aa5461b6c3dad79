#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace lightboat {
namespace {

TEST(ThreadPool, CoversEveryIndexOnceInWholeGrains) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 5, 64, 1000, 1001}) {
      for (int64_t grain : {1, 4, 32}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          EXPECT_EQ(b % grain, 0) << "chunks start on a grain boundary";
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n=" << n << " i=" << i;
      }
    }
  }
}

TEST(ThreadPool, RethrowsAnExceptionFromAWorker) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(300, 1, [](int64_t b, int64_t) {
    if (b > 0) throw std::runtime_error("worker failed");
  }), std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int64_t> sum{0};
  pool.parallel_for(100, 1, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) sum += i; });
  EXPECT_EQ(sum.load(), 4950);
}

TEST(ThreadPool, ManyCallsInARow) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  for (int k = 0; k < 2000; ++k) pool.parallel_for(8, 1, [&](int64_t b, int64_t e) { total += e - b; });
  EXPECT_EQ(total.load(), 16000);
}

}  // namespace
}  // namespace lightboat
