// tools/make_model's layouts: the presets are the real models' shapes, the Llama 3 rope factors
// match the converter's (as stored in the tiny-llama3 fixture), and the synthetic vocabulary is
// well formed.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "base/error.h"
#include "fixtures.h"
#include "gguf/reader.h"
#include "model_spec.h"

namespace lightboat::make_model {
namespace {

TEST(MakeModel, PresetsAreTheRealShapes) {
  const ModelSpec s = *preset("smollm2-135m");
  EXPECT_EQ(s.n_layer, 30);
  EXPECT_EQ(s.n_embd, 576);
  EXPECT_EQ(s.n_head, 9);
  EXPECT_EQ(s.n_head_kv, 3);
  EXPECT_EQ(s.n_ff, 1536);
  EXPECT_EQ(s.n_vocab, 49152);
  EXPECT_EQ(s.head_dim(), 64);
  EXPECT_TRUE(s.tied);
  EXPECT_FALSE(s.llama3_rope.has_value());
  const ModelSpec l = *preset("llama-3.2-1b");
  EXPECT_EQ(l.n_layer, 16);
  EXPECT_EQ(l.n_embd, 2048);
  EXPECT_EQ(l.n_head, 32);
  EXPECT_EQ(l.n_head_kv, 8);
  EXPECT_EQ(l.n_ff, 8192);
  EXPECT_EQ(l.n_vocab, 128256);
  EXPECT_EQ(l.n_ctx_train, 131072);
  EXPECT_EQ(l.rope_theta, 500000.0);
  EXPECT_TRUE(l.tied);
  ASSERT_TRUE(l.llama3_rope.has_value());
  EXPECT_FALSE(preset("gpt-5").has_value());
  validate(s);
  validate(l);
  ModelSpec bad = s;
  bad.n_head = 7;
  EXPECT_THROW(validate(bad), Error);
  bad = s;
  bad.n_vocab = 100;
  EXPECT_THROW(validate(bad), Error);
}

// The fixture's rope_freqs.weight was written by llama.cpp's converter with theta 5e5, head_dim
// 16 and original context 64 (fixtures/arch/README.md).
TEST(MakeModel, Llama3RopeFactorsMatchTheConverter) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const auto r = gguf::Reader::open((lightboat::testing::fixtures_dir() / "arch/tiny-llama3-F32.gguf").string());
  const gguf::TensorInfo* t = r->find_tensor("rope_freqs.weight");
  ASSERT_NE(t, nullptr);
  std::vector<float> expected(t->n_elements);
  std::memcpy(expected.data(), t->data, t->n_bytes);
  const std::vector<float> ours = llama3_rope_factors(Llama3Rope{.original_context = 64}, 500000.0, 16);
  ASSERT_EQ(ours.size(), expected.size());
  for (size_t i = 0; i < ours.size(); ++i) EXPECT_NEAR(ours[i], expected[i], 2e-6f * expected[i]) << i;
}

TEST(MakeModel, Llama3RopeFactorsAtRealScale) {
  // Llama 3.2 (theta 5e5, head_dim 64, original 8192): short wavelengths keep 1, long get 32,
  // and the factors never decrease with the pair index.
  const std::vector<float> f = llama3_rope_factors(Llama3Rope{}, 500000.0, 64);
  ASSERT_EQ(f.size(), 32u);
  EXPECT_EQ(f.front(), 1.0f);
  EXPECT_EQ(f.back(), 32.0f);
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]);
}

TEST(MakeModel, SyntheticVocabulary) {
  for (int64_t n : {260, 512, 49152, 128256}) {
    const Vocab v = synthetic_spm_vocab(n);
    ASSERT_EQ(static_cast<int64_t>(v.tokens.size()), n);
    ASSERT_EQ(v.scores.size(), v.tokens.size());
    ASSERT_EQ(v.types.size(), v.tokens.size());
    EXPECT_EQ(std::set<std::string>(v.tokens.begin(), v.tokens.end()).size(), v.tokens.size()) << n;
    EXPECT_EQ(v.tokens[0], "<unk>");
    EXPECT_EQ(v.tokens[1], "<s>");
    EXPECT_EQ(v.tokens[2], "</s>");
    EXPECT_EQ(v.tokens[3], "<0x00>");
    EXPECT_EQ(v.tokens[3 + 0x0A], "<0x0A>");  // llama.cpp looks up the newline byte token
    EXPECT_EQ(v.tokens[258], "<0xFF>");
    EXPECT_EQ(v.types[258], 6);
    EXPECT_EQ(v.tokens[259], "\xE2\x96\x81");
  }
}

}  // namespace
}  // namespace lightboat::make_model
