// Q4_0, Q8_0 and Q4_K matrices bound as Q4_0x16 / Q8_0x16 / Q4_Kx16 (ModelSettings::interleave,
// where the kernel table reads those layouts faster): every Q4_0 and Q8_0 fixture architecture,
// and the Q4_K_M llama, gives the same
// logits, bit for bit, as with the file's layout (tied embedding tables included: the output
// matmul reads them interleaved, the lookup through get_row); the bytes are made once per Reader and shared by
// a second model of it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/file_bytes.h"
#include "base/thread_pool.h"
#include "fixtures.h"
#include "kernels/dispatch.h"
#include "model/model.h"
#include "tensor/dtype.h"

namespace lightboat::model {
namespace {

const std::vector<int32_t> kTokens = {1, 22, 35, 7, 13, 61, 5, 2};

std::vector<float> logits(Model& m, ThreadPool& pool, const std::vector<int32_t>& tokens = kTokens) {
  const auto n = static_cast<int64_t>(tokens.size());
  std::vector<float> out(static_cast<size_t>(n * m.hparams().n_vocab));
  m.forward(tokens, n, out.data(), pool);
  return out;
}

TEST(Interleave, QuantizedModelsGiveTheSameLogitsInterleaved) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const bool interleaves = kernels::active_kernels().interleaves();
  if (!interleaves) {
    std::printf("the active kernel table (%s) does not interleave: both runs use the file\'s layout\n",
                std::string(kernels::isa_name(kernels::active_isa())).c_str());
  }
  ThreadPool pool(2);
  for (const std::string file :
       {"llama-Q4_0", "llama3-Q4_0", "qwen2-Q4_0", "qwen3-Q4_0", "phi3-Q4_0", "gemma-Q4_0", "gemma2-Q4_0", "llama-Q8_0",
        "llama3-Q8_0", "qwen2-Q8_0", "qwen3-Q8_0", "phi3-Q8_0", "gemma-Q8_0", "gemma2-Q8_0", "llama-Q4_K_M"}) {
    const std::string path = (testing::fixtures_dir() / "arch" / ("tiny-" + file + ".gguf")).string();
    const std::string& arch = file;
    // Two Readers of the file (Reader::open would share one): the file's layout, then interleaved.
    auto plain_reader = gguf::Reader::parse(FileBytes::open(path, LoadMode::kMmap));
    auto plain = load_model(plain_reader, {.interleave = false});
    EXPECT_EQ(plain_reader->derived_bytes(), 0u) << arch;
    const std::vector<float> want = logits(*plain, pool);

    auto reader = gguf::Reader::parse(FileBytes::open(path, LoadMode::kMmapHuge));
    auto first = load_model(reader, {});
    const size_t made = reader->derived_bytes();
    EXPECT_EQ(made > 0, interleaves) << arch;
    EXPECT_EQ(logits(*first, pool), want) << arch;
    // A second model of the same Reader finds the bytes made (none made again) and agrees too.
    auto second = load_model(reader, {});
    EXPECT_EQ(reader->derived_bytes(), made) << arch;
    EXPECT_EQ(logits(*second, pool), want) << arch;
    // A decode step (one token: the VNNI kernels, not the tiles of the 8-token batch) after the 8.
    EXPECT_EQ(logits(*first, pool, {42}), logits(*plain, pool, {42})) << arch << ", one token";
  }
}

// F16 matrices bound as F16x16. Below the tiles' threshold the FMA kernel adds in another order
// (x86/amx_interleaved.cpp), and a last-bit fp32 difference can flip the fp16 rounding of an
// activation (F16 weights take fp16 activations, 2^-11 relative): 8 tokens' logits agree within a
// few fp16 ulps of the largest logit (measured: 0.0051 of 8.0, against a bound of 4 x 2^-11 x 8.0).
// A batch of 24 takes the AMX-BF16 tiles, whose B tiles hold the same bytes from either layout:
// the same bits.
TEST(Interleave, F16ModelGivesTheSameLogitsWithinRoundingAndTheSameBitsInTiles) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(2);
  const std::string path = (testing::fixtures_dir() / "arch" / "tiny-llama-F16.gguf").string();
  auto plain_reader = gguf::Reader::parse(FileBytes::open(path, LoadMode::kMmap));
  auto plain = load_model(plain_reader, {.interleave = false});
  auto reader = gguf::Reader::parse(FileBytes::open(path, LoadMode::kMmap));
  auto model = load_model(reader, {});
  const bool interleaves = kernels::active_kernels().interleave[kernels::dtype_slot(tensor::DType::kF16)];
  EXPECT_EQ(reader->derived_bytes() > 0, interleaves);

  const std::vector<float> want = logits(*plain, pool);
  const std::vector<float> got = logits(*model, pool);
  ASSERT_EQ(got.size(), want.size());
  float scale = 0.0f, worst = 0.0f;
  for (size_t i = 0; i < got.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    worst = std::max(worst, std::fabs(got[i] - want[i]));
  }
  std::printf("8 tokens: largest logit difference %.3g (largest logit %.3g)\n", worst, scale);
  EXPECT_LE(worst, 4.0f * 0x1p-11f * scale);

  // (fresh models: a forward continues the sequence in the KV cache, which the 8 tokens filled)
  std::vector<int32_t> batch;
  for (int i = 0; i < 24; ++i) batch.push_back((37 * i + 5) % 500 + 1);
  auto plain_batch = load_model(plain_reader, {.interleave = false});
  auto model_batch = load_model(reader, {});
  EXPECT_EQ(logits(*model_batch, pool, batch), logits(*plain_batch, pool, batch));
}

}  // namespace
}  // namespace lightboat::model
