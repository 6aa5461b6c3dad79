// Unit tests of the pieces of `lightboat bench`: bytes of weights per generated token (tied and
// untied embeddings, on hand-built directories and on llama.cpp-made fixtures), the type name,
// and the machine probes (bandwidth, spin, peak RSS) on small sizes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "cli/bench_machine.h"
#include "cli/bench_weights.h"
#include "fixtures.h"
#include "gguf/reader.h"

namespace lightboat::cli {
namespace {

gguf::TensorInfo tensor(const std::string& name, std::vector<uint64_t> ne, uint64_t n_bytes) {
  gguf::TensorInfo t;
  t.name = name;
  t.n_elements = 1;
  for (uint64_t d : ne) t.n_elements *= d;
  t.ne = std::move(ne);
  t.n_bytes = n_bytes;
  return t;
}

TEST(WeightBytesPerToken, UntiedCountsOneEmbeddingRow) {
  // token_embd [n_embd 64, n_vocab 100] Q8_0: 2 blocks of 34 bytes per row.
  const std::vector<gguf::TensorInfo> ts = {
      tensor("token_embd.weight", {64, 100}, 100 * 68), tensor("blk.0.attn_q.weight", {64, 64}, 64 * 68),
      tensor("blk.0.attn_norm.weight", {64}, 256),      tensor("output_norm.weight", {64}, 256),
      tensor("output.weight", {64, 100}, 100 * 68),
  };
  EXPECT_EQ(weight_bytes_per_token(ts), 68u + 64 * 68 + 256 + 256 + 100 * 68);
  EXPECT_EQ(parameter_count(ts), 6400u + 4096 + 64 + 64 + 6400);
}

TEST(WeightBytesPerToken, TiedReadsTheWholeEmbeddingOnce) {
  const std::vector<gguf::TensorInfo> ts = {
      tensor("token_embd.weight", {64, 100}, 100 * 68),
      tensor("blk.0.ffn_down.weight", {128, 64}, 64 * 136),
      tensor("output_norm.weight", {64}, 256),
  };
  EXPECT_EQ(weight_bytes_per_token(ts), 100u * 68 + 64 * 136 + 256);
}

TEST(WeightBytesPerToken, EmptyAndMalformed) {
  EXPECT_EQ(weight_bytes_per_token({}), 0u);
  const std::vector<gguf::TensorInfo> bad = {tensor("token_embd.weight", {64}, 256),
                                             tensor("output.weight", {64, 10}, 640)};
  try {
    weight_bytes_per_token(bad);
    FAIL() << "a 1-D token_embd with an output head must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat);
    EXPECT_NE(std::string(e.what()).find("token_embd.weight"), std::string::npos) << e.what();
  }
}

uint64_t total_bytes(const gguf::Reader& r) {
  uint64_t n = 0;
  for (const auto& t : r.tensors()) n += t.n_bytes;
  return n;
}

TEST(WeightBytesPerToken, TiedFixtureCountsEveryTensor) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const auto r = gguf::Reader::open(testing::fixtures_dir() / "arch" / "tiny-llama3-Q8_0.gguf");
  ASSERT_EQ(r->find_tensor("output.weight"), nullptr) << "tiny-llama3 is expected to be tied";
  ASSERT_NE(r->find_tensor("token_embd.weight"), nullptr);
  EXPECT_EQ(weight_bytes_per_token(r->tensors()), total_bytes(*r));
  // Tied: bytes per token is the file minus its header and padding.
  EXPECT_LE(weight_bytes_per_token(r->tensors()), r->file().size());
}

TEST(WeightBytesPerToken, UntiedFixtureCountsOneRow) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  for (const char* name : {"tiny-llama-Q8_0.gguf", "tiny-llama-Q4_K_M.gguf", "tiny-llama-F32.gguf"}) {
    const auto r = gguf::Reader::open(testing::fixtures_dir() / "arch" / name);
    const gguf::TensorInfo* embd = r->find_tensor("token_embd.weight");
    ASSERT_NE(r->find_tensor("output.weight"), nullptr) << name << " is expected to be untied";
    ASSERT_NE(embd, nullptr);
    const uint64_t row = embd->n_bytes / embd->ne[1];
    EXPECT_EQ(weight_bytes_per_token(r->tensors()), total_bytes(*r) - embd->n_bytes + row) << name;
  }
}

TEST(ModelTypeName, FromFileTypeKey) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const auto arch = testing::fixtures_dir() / "arch";
  EXPECT_EQ(model_type_name(*gguf::Reader::open(arch / "tiny-llama-Q4_K_M.gguf")), "Q4_K_M");
  EXPECT_EQ(model_type_name(*gguf::Reader::open(arch / "tiny-llama-Q8_0.gguf")), "Q8_0");
  EXPECT_EQ(model_type_name(*gguf::Reader::open(arch / "tiny-llama-F16.gguf")), "F16");
  EXPECT_EQ(model_type_name(*gguf::Reader::open(arch / "tiny-llama-BF16.gguf")), "BF16");
  const auto stories = testing::fixtures_dir() / "stories260K" / "stories260K-Q4_0.gguf";
  EXPECT_EQ(model_type_name(*gguf::Reader::open(stories)), "Q4_0");
  EXPECT_EQ(model_label(*gguf::Reader::open(stories), "/x/stories260K-Q4_0.gguf").empty(), false);
}

TEST(ReadBandwidth, SmallBufferGivesPositiveRates) {
  ThreadPool pool(2);
  const BandwidthResult r = measure_read_bandwidth(pool, size_t{8} << 20, 3);
  EXPECT_EQ(r.buffer_bytes, size_t{8} << 20);
  EXPECT_EQ(r.passes, 3);
  EXPECT_GT(r.median_gbps, 0);
  EXPECT_GE(r.best_gbps, r.median_gbps);
  // Sizes that are not whole lines, and smaller than a line, still work.
  EXPECT_EQ(measure_read_bandwidth(pool, 1000, 1).buffer_bytes, 960u);
  EXPECT_EQ(measure_read_bandwidth(pool, 1, 1).buffer_bytes, 64u);
  EXPECT_THROW(measure_read_bandwidth(pool, 0, 1), Error);
  EXPECT_THROW(measure_read_bandwidth(pool, 4096, 0), Error);
}

TEST(SpinProbe, TimesEveryThreadAndRatios) {
  ThreadPool pool(2);
  SpinProbe probe(1.0);
  EXPECT_GT(probe.iterations(), 0u);
  EXPECT_GT(probe.solo_ms(), 0);
  EXPECT_EQ(probe.after_before(), 1.0);
  const auto& ms = probe.check(pool, "before");
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_GT(ms[0], 0);
  EXPECT_GT(ms[1], 0);
  probe.check(pool, "after");
  ASSERT_EQ(probe.checks().size(), 2u);
  EXPECT_EQ(probe.checks()[1].label, "after");
  for (const auto& c : probe.checks()) {
    ASSERT_EQ(c.cpu_ms.size(), 2u);
    ASSERT_EQ(c.cpu.size(), 2u);
    // CPU time cannot exceed wall time by more than clock granularity (-1: no per-thread clock).
    for (size_t t = 0; t < 2; ++t) EXPECT_LE(c.cpu_ms[t], c.ms[t] + 1.0);
  }
  EXPECT_GE(probe.max_spread(), 1.0);
  EXPECT_GE(probe.worst_vs_best(), 1.0);
  EXPECT_GT(probe.after_before(), 0.0);
  EXPECT_GT(probe.vs_solo(), 0.0);
  std::string reason;
  EXPECT_FALSE(probe.degraded({.ratio = 1e9, .solo_ratio = 1e9}, &reason));
  EXPECT_TRUE(reason.empty());
  // Spread and worst-vs-best are at least 1, so a limit below 1 must trip and be named.
  EXPECT_TRUE(probe.degraded({.ratio = 0.5, .solo_ratio = 1e9}, &reason));
  EXPECT_NE(reason.find("spread"), std::string::npos) << reason;
  EXPECT_EQ(reason.find("alone"), std::string::npos) << reason;
  EXPECT_NE(reason.find("the slowest probe"), std::string::npos) << reason;
  EXPECT_TRUE(probe.degraded({.ratio = 1e9, .solo_ratio = 1e-6}, &reason));
  EXPECT_NE(reason.find("alone"), std::string::npos) << reason;
}

TEST(PeakRss, Positive) {
  EXPECT_GT(peak_rss_bytes(), 0u);
}

}  // namespace
}  // namespace lightboat::cli
