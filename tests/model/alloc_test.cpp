// The decode step must not allocate: its scratch (activations, matmul scratch, attention
// buffers) is sized at load, so a token costs no trip to the heap. Counts global operator new
// calls around decode steps of every fixture architecture and weight type, on one thread and on a
// pool, after one warm-up step.
//
// This file replaces the global operator new/delete for its own test binary; counting is off
// except inside the measured regions.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "fixtures.h"
#include "model/model.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  const auto a = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
// GCC, once it inlines these into a caller of new, sees "free of a new'd pointer"; here that pairing
// is exactly the point.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace lightboat::model {
namespace {

// Runs fn with allocation counting on; returns the number of operator new calls it made.
template <typename Fn>
long allocations_in(Fn&& fn) {
  g_allocations = 0;
  g_counting = true;
  fn();
  g_counting = false;
  return g_allocations.load();
}

TEST(DecodeAllocation, CounterWorks) {
  EXPECT_GE(allocations_in([] { std::vector<int> v(10); }), 1);
}

// Every fixture model file (architectures x weight types).
std::vector<std::filesystem::path> fixture_models() {
  std::vector<std::filesystem::path> out;
  for (const char* dir : {"arch", "stories260K"}) {
    const auto d = testing::fixtures_dir() / dir;
    if (!std::filesystem::is_directory(d)) continue;
    for (const auto& e : std::filesystem::directory_iterator(d)) {
      if (e.path().extension() == ".gguf") out.push_back(e.path());
    }
  }
  return out;
}

TEST(DecodeAllocation, DecodeStepsAllocateNothing) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const auto models = fixture_models();
  ASSERT_FALSE(models.empty());
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    for (const auto& path : models) {
      auto m = load_model(gguf::Reader::open(path.string()), {.n_ctx = 64});
      const auto n_vocab = static_cast<size_t>(m->hparams().n_vocab);
      std::vector<float> logits(n_vocab);
      const std::vector<int32_t> prompt = {1, 2, 3, 4};
      m->forward(prompt, 1, logits.data(), pool);  // prefill, and the first use of everything
      int32_t token = 5;
      m->forward(std::span(&token, 1), 1, logits.data(), pool);  // warm-up decode step
      const long n = allocations_in([&] {
        for (int i = 0; i < 8; ++i) {
          token = static_cast<int32_t>((token * 7 + 3) % static_cast<int32_t>(n_vocab));
          m->forward(std::span(&token, 1), 1, logits.data(), pool);
        }
      });
      EXPECT_EQ(n, 0) << path.filename().string() << ", " << threads << " thread(s)";
    }
  }
}

}  // namespace
}  // namespace lightboat::model
