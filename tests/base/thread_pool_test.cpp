#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
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

// chunks_per_thread sets the number of chunks: threads x it, or fewer when there are fewer grains,
// and every index is still covered once.
TEST(ThreadPool, ChunksPerThreadSetsTheCut) {
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    for (int per_thread : {0, 1, 4, 16}) {
      for (int64_t n : {int64_t{7}, int64_t{1000}}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> chunks{0};
        pool.parallel_for(
            n, 1,
            [&](int64_t b, int64_t e) {
              chunks++;
              for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
            },
            per_thread);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n=" << n << " i=" << i;
        const int64_t want = std::min<int64_t>(n, int64_t{threads} * std::max(1, per_thread));
        EXPECT_EQ(chunks.load(), want) << "threads=" << threads << " per thread=" << per_thread << " n=" << n;
      }
    }
  }
}

TEST(ThreadPool, ClaimsInTurnWalkConsecutiveChunks) {
  for (int threads : {1, 2, 3, 8}) {
    for (uint32_t chunks : {1u, 2u, 5u, 7u, 8u, 32u, 33u}) {
      std::vector<int> seen(chunks, 0);
      for (uint32_t k = 0; k < chunks; ++k) {
        const uint32_t c = ThreadPool::chunk_of_claim(k, chunks, threads);
        ASSERT_LT(c, chunks);
        seen[c]++;
        // The same thread's next claim (threads taking turns) runs the next chunk, except where
        // its run ends.
        const uint32_t k2 = k + static_cast<uint32_t>(threads);
        if (k2 < chunks) {
          const uint32_t c2 = ThreadPool::chunk_of_claim(k2, chunks, threads);
          EXPECT_EQ(c2, c + 1) << "threads=" << threads << " chunks=" << chunks << " claim=" << k;
        }
      }
      for (uint32_t c = 0; c < chunks; ++c) EXPECT_EQ(seen[c], 1) << "threads=" << threads << " chunks=" << chunks;
    }
  }
  // Two threads, eight chunks: claims 0, 2, 4, 6 -> chunks 0..3 and 1, 3, 5, 7 -> 4..7.
  EXPECT_EQ(ThreadPool::chunk_of_claim(2, 8, 2), 1u);
  EXPECT_EQ(ThreadPool::chunk_of_claim(1, 8, 2), 4u);
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

// The decode loop's pattern: many tiny operations back to back, with short serial gaps and the
// occasional long pause (workers fall asleep and must wake for the next call). Each call must see
// the caller's writes before it and publish its own writes to the caller after it.
TEST(ThreadPool, FastRepeatedCallsSeeEachOthersWrites) {
  for (int threads : {2, 4}) {
    ThreadPool pool(threads);
    std::vector<int64_t> data(64, 0);
    for (int k = 0; k < 3000; ++k) {
      pool.parallel_for(64, 4, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) data[static_cast<size_t>(i)] += 1;
      });
      data[static_cast<size_t>(k % 64)] += 1;  // serial work between calls, read by the next one
      if (k % 1000 == 999) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    int64_t total = 0;
    for (int64_t v : data) total += v;
    EXPECT_EQ(total, 3000 * 64 + 3000) << threads << " threads";
  }
}

// Chunks are claimed, not assigned: while one thread is held up in its chunk (here a worker that
// sleeps, standing in for a thread the OS has not scheduled), the caller takes every other chunk,
// so the call does not wait for the late thread to come back for its share.
TEST(ThreadPool, OthersTakeTheChunksOfAThreadThatIsHeldUp) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  int rounds_with_worker = 0;
  for (int round = 0; round < 5; ++round) {
    std::atomic<int64_t> by_caller{0}, by_worker{0};
    std::atomic<bool> slept{false};
    pool.parallel_for(800, 1, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() == caller) {
        // 2 ms of work per chunk: time for the worker to wake and claim one.
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
        while (std::chrono::steady_clock::now() < until) {
        }
        by_caller += e - b;
        return;
      }
      by_worker += e - b;
      if (!slept.exchange(true)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    });
    EXPECT_EQ(by_caller + by_worker, 800);
    // 8 chunks of 100: the worker holds at most the one it sleeps in (none if it woke late).
    EXPECT_GE(by_caller.load(), 700) << "round " << round;
    rounds_with_worker += by_worker > 0 ? 1 : 0;
  }
  EXPECT_GT(rounds_with_worker, 0) << "the worker never woke within 16 ms in 5 rounds: nothing was tested";
}

TEST(ThreadPool, DestroysCleanlyWhileWorkersSleep) {
  for (int k = 0; k < 20; ++k) {
    ThreadPool pool(3);
    pool.parallel_for(30, 1, [](int64_t, int64_t) {});
    std::this_thread::sleep_for(std::chrono::milliseconds(k % 2 ? 1 : 0));
  }
}

// run_parts: every part once, on distinct threads where they start, and a part's exception
// rethrown after all parts finished.
TEST(RunParts, RunsEveryPartOnceAndRethrowsAfterAllFinish) {
  for (unsigned n : {0u, 1u, 3u, 8u}) {
    std::vector<std::atomic<int>> runs(n);
    run_parts(n, [&](unsigned i) { ++runs[i]; });
    for (unsigned i = 0; i < n; ++i) EXPECT_EQ(runs[i].load(), 1) << "n=" << n << " part " << i;
  }
  std::atomic<int> finished{0};
  EXPECT_THROW(run_parts(4,
                         [&](unsigned i) {
                           if (i == 2) throw std::runtime_error("part 2");
                           std::this_thread::sleep_for(std::chrono::milliseconds(20));
                           ++finished;
                         }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 3);
}

}  // namespace
}  // namespace lightboat
