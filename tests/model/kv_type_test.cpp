// The KV cache element type (ModelSettings::kv_type): an fp16 cache takes half the bytes of an
// fp32 one and changes a model's logits only by the rounding of K and V to fp16; decoding with
// it is as consistent (incremental = one batch, paged in a batch = alone) as with fp32; other
// types are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "fixtures.h"
#include "model/model.h"

namespace lightboat::model {
namespace {

using tensor::DType;

const std::vector<int32_t> kTokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 400, 290, 263};

std::string stories(const char* type) {
  return (testing::fixtures_dir() / "stories260K" / (std::string("stories260K-") + type + ".gguf")).string();
}

std::vector<float> all_logits(Model& m, ThreadPool& pool) {
  const auto n = static_cast<int64_t>(kTokens.size());
  std::vector<float> out(static_cast<size_t>(n * m.hparams().n_vocab));
  m.forward(kTokens, n, out.data(), pool);
  return out;
}

TEST(KvType, F16HalvesTheCacheBytes) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  auto f32 = load_model(gguf::Reader::open(stories("F32")), {.kv_type = DType::kF32});
  auto f16 = load_model(gguf::Reader::open(stories("F32")), {.kv_type = DType::kF16});
  EXPECT_EQ(f16->kv_type(), DType::kF16);
  EXPECT_EQ(2 * f16->kv_bytes_per_token(), f32->kv_bytes_per_token());
  EXPECT_EQ(f32->kv_bytes_per_token(), kv_bytes_per_token(f32->hparams(), DType::kF32));
  EXPECT_EQ(f32->kv_bytes_per_token(), 2 * f32->hparams().n_layer * f32->hparams().n_embd_kv() * 4);
}

TEST(KvType, OtherTypesAreRefused) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  try {
    load_model(gguf::Reader::open(stories("F32")), {.kv_type = DType::kQ8_0});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("KV cache type"), std::string::npos) << e.what();
  }
}

// fp16 keeps 11 significant bits: K and V move by <= 2^-11 relative, and the logits of this F32
// model by well under 1% of their range (observed: 0.02 on a range of 20.5); the top token of each position whose
// top-2 gap exceeds that does not change.
TEST(KvType, F16LogitsStayCloseToF32) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(2);
  auto f32 = load_model(gguf::Reader::open(stories("F32")), {.kv_type = DType::kF32});
  auto f16 = load_model(gguf::Reader::open(stories("F32")), {.kv_type = DType::kF16});
  const std::vector<float> a = all_logits(*f32, pool);
  const std::vector<float> b = all_logits(*f16, pool);
  const int64_t n_vocab = f32->hparams().n_vocab;
  float range = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    range = std::max(range, std::abs(a[i]));
    diff = std::max(diff, std::abs(a[i] - b[i]));
  }
  std::printf("F16 vs F32 KV cache: largest logit difference %.3g (logit range %.3g)\n", diff, range);
  EXPECT_LT(diff, 1e-2f * range);
  for (size_t t = 0; t < kTokens.size(); ++t) {
    const float* ra = &a[t * static_cast<size_t>(n_vocab)];
    const float* rb = &b[t * static_cast<size_t>(n_vocab)];
    std::vector<float> sorted(ra, ra + n_vocab);
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
    if (sorted[0] - sorted[1] > 4 * diff) {
      EXPECT_EQ(std::max_element(ra, ra + n_vocab) - ra, std::max_element(rb, rb + n_vocab) - rb) << "position " << t;
    }
  }
}

// With an fp16 cache, token-by-token decoding reads back exactly what a whole-prompt batch
// wrote, and a sequence's attention does not depend on its page layout.
TEST(KvType, F16IncrementalDecodingEqualsOneBatch) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(2);
  auto batch = load_model(gguf::Reader::open(stories("F32")), {.kv_type = DType::kF16});
  auto step = load_model(gguf::Reader::open(stories("F32")), {.kv_page_size = 3, .kv_type = DType::kF16});
  const int64_t n_vocab = batch->hparams().n_vocab;
  const std::vector<float> all = all_logits(*batch, pool);
  std::vector<float> row(static_cast<size_t>(n_vocab));
  for (size_t t = 0; t < kTokens.size(); ++t) {
    step->forward(std::span(&kTokens[t], 1), 1, row.data(), pool);
    for (int64_t v = 0; v < n_vocab; ++v) {
      const float want = all[t * static_cast<size_t>(n_vocab) + static_cast<size_t>(v)];
      ASSERT_NEAR(row[static_cast<size_t>(v)], want, 1e-4f * std::max(1.0f, std::abs(want))) << "position " << t;
    }
  }
}

// Long enough for attention to run on the pool (>= 64 KiB of K/V per step), with 3 threads so
// a one-token step over stories260K's 4 KV heads is split into single-head items: the same
// logits as one thread, for both cache types.
TEST(KvType, PoolSplitsDoNotChangeResults) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  std::vector<int32_t> prompt(300);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(1 + (i * 37) % 500);
  for (DType type : {DType::kF32, DType::kF16}) {
    std::vector<std::vector<float>> runs;
    for (int threads : {1, 3}) {
      ThreadPool pool(threads);
      auto m = load_model(gguf::Reader::open(stories("F32")), {.n_ctx = 512, .kv_type = type});
      const auto n_vocab = static_cast<size_t>(m->hparams().n_vocab);
      std::vector<float> out(n_vocab * 5);
      m->forward(prompt, 1, out.data(), pool);
      for (int step = 1; step < 5; ++step) {
        const int32_t next = static_cast<int32_t>(std::max_element(&out[(step - 1) * n_vocab], &out[step * n_vocab]) -
                                                  &out[(step - 1) * n_vocab]);
        m->forward(std::span(&next, 1), 1, &out[step * n_vocab], pool);
      }
      runs.push_back(std::move(out));
    }
    EXPECT_EQ(runs[0], runs[1]) << tensor::dtype_name(type);
  }
}

}  // namespace
}  // namespace lightboat::model
