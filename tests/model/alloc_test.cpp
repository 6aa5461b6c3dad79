// The decode step must not allocate: its scratch (activations, matmul scratch, attention
// buffers) is sized at load, so a token costs no trip to the heap. Counts heap allocations
// (tests/alloc_counter.h) around decode steps of every fixture architecture and weight type, on
// one thread and on a pool, after one warm-up step.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "base/thread_pool.h"
#include "fixtures.h"
#include "model/model.h"

namespace lightboat::model {
namespace {

using testing::allocations_in;

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
